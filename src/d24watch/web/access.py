"""Who may use the workspace, without accounts: a read token and a triage token from the
environment. A browser pastes one once and gets a session cookie (HttpOnly, SameSite=Strict,
Secure over TLS) that carries the role and its expiry, signed with a key derived from the token,
so changing the token ends every session. Scripts send `Authorization: Bearer TOKEN`; feed readers
may put `?token=` on feed URLs, and nowhere else. With no token set, the workspace is open only
when it listens on a loopback address. Forms carry a CSRF token bound to the session."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
from dataclasses import dataclass
from typing import Literal

from d24watch.secret import Secret

Role = Literal["read", "triage"]
SESSION_COOKIE = "d24watch_session"
SESSION_DAYS = 30


def is_loopback(listen: str) -> bool:
    """Whether `HOST:PORT` listens on a loopback address only."""
    host = listen.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class Grant:
    role: Role | None  # None: not allowed in
    session: str  # what the CSRF token is bound to ("" when there is no session)


class Access:
    def __init__(
        self,
        *,
        read: Secret | None,
        triage: Secret | None,
        listen: str,
        read_env: str = "D24WATCH_READ_TOKEN",
        triage_env: str = "D24WATCH_TRIAGE_TOKEN",
    ) -> None:
        self._tokens: dict[Role, str] = {}
        if read is not None:
            self._tokens["read"] = read.reveal()
        if triage is not None:
            self._tokens["triage"] = triage.reveal()
        self.loopback = is_loopback(listen)
        self.env_names = (read_env, triage_env)
        self._secret = secrets.token_bytes(32)  # signs CSRF tokens of this process's open workspace

    @property
    def open(self) -> bool:
        """No token is set: every visitor may read and triage (allowed on loopback only)."""
        return not self._tokens

    @property
    def refused(self) -> bool:
        """No token is set and the address is reachable from other machines."""
        return self.open and not self.loopback

    def refusal(self) -> str:
        read_env, triage_env = self.env_names
        return (
            "The workspace is off: it listens on an address other machines can reach and no token is set. "
            f"Set {read_env} (reading) and {triage_env} (reading and triage), or listen on 127.0.0.1."
        )

    def role_of_token(self, token: str) -> Role | None:
        roles: tuple[Role, ...] = ("triage", "read")
        for role in roles:
            known = self._tokens.get(role)
            if known is not None and hmac.compare_digest(known.encode(), token.encode()):
                return role
        return None

    def grant(self, *, bearer: str | None, cookie: str | None, query_token: str | None) -> Grant:
        if self.refused:
            return Grant(None, "")
        if self.open:
            return Grant("triage", "")
        for token in (bearer, query_token):
            if token:
                return Grant(self.role_of_token(token), "")
        if cookie:
            role = self._session_role(cookie)
            if role is not None:
                return Grant(role, cookie)
        return Grant(None, "")

    # -- sessions --------------------------------------------------------------------------------

    def _key(self, role: Role) -> bytes:
        return hashlib.sha256(b"d24watch session\0" + self._tokens[role].encode()).digest()

    def session_for(self, role: Role, now: float | None = None) -> str:
        expires = int((now or time.time()) + SESSION_DAYS * 86400)
        payload = f"{role}.{expires}"
        signature = hmac.new(self._key(role), payload.encode(), hashlib.sha256).hexdigest()
        return f"{payload}.{signature}"

    def _session_role(self, cookie: str, now: float | None = None) -> Role | None:
        name, _, rest = cookie.partition(".")
        expires, _, signature = rest.partition(".")
        role: Role | None = "read" if name == "read" else "triage" if name == "triage" else None
        if role is None or role not in self._tokens or not expires.isdigit() or int(expires) < (now or time.time()):
            return None
        expected = hmac.new(self._key(role), f"{role}.{expires}".encode(), hashlib.sha256).hexdigest()
        return role if hmac.compare_digest(expected, signature) else None

    # -- CSRF ------------------------------------------------------------------------------------

    def csrf_token(self, session: str) -> str:
        """The token a form must send back: bound to the session (or, open, to this process)."""
        return hmac.new(self._secret, b"csrf\0" + session.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, session: str, token: str) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf_token(session), token)
