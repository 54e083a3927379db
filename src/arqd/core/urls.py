"""Redis URLs in messages: a password never shows, even in a URL too malformed to use."""

from __future__ import annotations

import re

_PASSWORD_PARAM = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def redacted(url: str) -> str:
    """``url`` with what could be a password replaced by ``***``: after the user name in
    ``user:password@``, a lone ``secret@`` (redis-py would read it as a user name, but
    people write passwords there), and a ``password=`` parameter."""
    head, at, rest = url.rpartition("@")
    if at:
        found = _SCHEME.match(head)
        scheme = found.group(0) if found else ""
        user, colon, _ = head[len(scheme) :].partition(":")
        head = f"{scheme}{user}:***" if colon else f"{scheme}***"
    return _PASSWORD_PARAM.sub(r"\1***", f"{head}{at}{rest}")
