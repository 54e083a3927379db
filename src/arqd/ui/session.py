"""Dashboard sessions and CSRF tokens, signed with HMAC; no I/O.

A browser gets a session cookie on its first visit: a random nonce, the digest of the key
it signed in with (empty until then) and an expiry, signed with the process's secret
(``ARQD_UI_SECRET``, or a random one per process). The key itself is never in the cookie.
Whether a session may look or act is decided on every request from the keys configured
now, so removing a key from ``API_KEYS`` ends its sessions. The CSRF token of a session is
an HMAC of its nonce: a page of the dashboard can show it, another origin cannot read it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

SESSION_SECONDS = 12 * 3600
OPEN_ACTOR = "open"  # who acts when no API key is configured


def key_digest(key: str) -> str:
    """What the audit trail and the session show of a key: a short SHA-256 digest."""
    return "key:" + hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Session:
    nonce: str
    digest: str  # key_digest of the key signed in with; "" before signing in
    expires: int  # Unix seconds


class Sessions:
    """Issues and checks sessions for the configured keys (none: the dashboard is open)."""

    def __init__(
        self, secret: bytes, keys: list[str], read_only: list[str], ttl: int = SESSION_SECONDS
    ) -> None:
        self._secret = secret
        self._keys = [key.encode() for key in keys]
        self._digests = {key_digest(key) for key in keys}
        self._read_only = {key_digest(key) for key in read_only}
        self.ttl = ttl

    @property
    def open(self) -> bool:
        return not self._keys

    def new(self, digest: str = "") -> Session:
        return Session(secrets.token_urlsafe(16), digest, int(time.time()) + self.ttl)

    def encode(self, session: Session) -> str:
        body = f"{session.nonce}.{session.digest}.{session.expires}"
        return f"{body}.{self._sign('session', body)}"

    def decode(self, cookie: str | None) -> Session | None:
        """The session of a cookie, or None if it is forged, malformed or expired."""
        body, _, signature = (cookie or "").rpartition(".")
        if not body or not hmac.compare_digest(signature, self._sign("session", body)):
            return None
        nonce, digest, expires = body.split(".")
        if int(expires) < time.time():
            return None
        return Session(nonce, digest, int(expires))

    def sign_in(self, key: str) -> Session | None:
        """A fresh signed-in session if ``key`` is configured (constant time), else None."""
        candidate = key.strip().encode()
        found = False
        for configured in self._keys:
            found |= hmac.compare_digest(configured, candidate)
        return self.new(key_digest(key.strip())) if found else None

    def signed_in(self, session: Session) -> bool:
        return self.open or session.digest in self._digests

    def read_only(self, session: Session) -> bool:
        return not self.open and session.digest in self._read_only

    def actor(self, session: Session) -> str:
        return OPEN_ACTOR if self.open else session.digest

    def csrf(self, session: Session) -> str:
        return self._sign("csrf", session.nonce)

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token, self.csrf(session))

    def _sign(self, purpose: str, body: str) -> str:
        mac = hmac.new(self._secret, f"{purpose}:{body}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")
