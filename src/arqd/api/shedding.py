"""Load shedding: a cap on requests in flight, so overload gets a quick 503, not a timeout.

Past ``ARQD_MAX_INFLIGHT`` requests being served at once, a new one is refused before
anything reads it: no work started, nothing accepted, so nothing can be lost, and the
caller learns at once to come back (``Retry-After: 1``) instead of queueing in a server
that is already behind. Probes and metrics are exempt, so they tell the truth under load;
so are WebSockets, each one long-lived connection bounded by its own buffer.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from arqd.api import problems
from arqd.api.ratelimit import EXEMPT_PATHS
from arqd.api.state import ApiState

RETRY_AFTER_SECONDS = "1"


class LoadShedding:
    """503 problem for requests over ``cap`` in flight; ``state.inflight`` counts them."""

    def __init__(self, app: ASGIApp, state: ApiState, cap: int) -> None:
        self.app = app
        self.state = state
        self.cap = cap

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        if self.state.inflight >= self.cap:
            detail = (
                f"the server is at its limit of {self.cap} requests in flight "
                "(ARQD_MAX_INFLIGHT); nothing was done, try again shortly"
            )
            headers = {"Retry-After": RETRY_AFTER_SECONDS}
            response = problems.problem(503, detail, "overloaded", headers=headers)
            await response(scope, receive, send)
            return
        self.state.inflight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.state.inflight -= 1
