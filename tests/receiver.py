"""Real receivers on 127.0.0.1 for deliveries: an HTTP server that records every POST and answers
from a script, and an SMTP server (aiosmtpd) that can be stopped and started on the same port."""

from __future__ import annotations

import socket
import ssl
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Posted:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int


class Receiver:
    """Answers each POST with the next (status, headers) in `answers`, then 200."""

    def __init__(self) -> None:
        self.posts: list[Posted] = []
        self.answers: list[tuple[int, dict[str, str]]] = []
        self.echo = False  # a careless receiver that repeats the request path in its error body
        self.lock = threading.Lock()
        owner = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with owner.lock:
                    status, headers = owner.answers.pop(0) if owner.answers else (200, {})
                    owner.posts.append(Posted(self.path, {k.lower(): v for k, v in self.headers.items()}, body, status))
                reply = b"ok" if status < 300 else b"unavailable"
                if owner.echo and status >= 300:
                    reply += b": no route for " + self.path.encode()
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def accepted(self) -> list[Posted]:
        return [p for p in self.posts if 200 <= p.status < 300]

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class _Inbox:
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[Any] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


class MailServer:
    """aiosmtpd on a fixed loopback port, so that it can go away and come back."""

    def __init__(self, **smtp: Any) -> None:
        self.port = free_port()
        self.inbox = _Inbox()
        self.smtp = smtp
        self.logins: list[str] = []
        self.controller: Controller | None = None

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        if isinstance(auth_data, LoginPassword) and auth_data.password == b"mail-pass-1234":
            self.logins.append(auth_data.login.decode())
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    @property
    def messages(self) -> list[EmailMessage]:
        return self.inbox.messages

    def start(self) -> MailServer:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, **self.smtp)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context
