"""The researchers' workspace over HTTP (Starlette, served by uvicorn): the pages, triage and feeds
of `pages`, beside `/healthz` and `/metrics`, on one port. The daemon serves it from a thread of its
own with its own event loop, so a slow page never stalls the scheduler; `d24watch serve` serves it
without the jobs. Every answer carries a strict Content-Security-Policy (nothing from any other
origin, no script), `X-Content-Type-Options`, `Referrer-Policy` and `frame-ancestors 'none'`."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Callable
from importlib.resources import files
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from d24watch.app import App
from d24watch.errors import D24WatchError
from d24watch.web.access import Access
from d24watch.web.pages import Workspace

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),  # a POST's Origin is still sent to this site
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
ICON = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#1d2430"/>'
    b'<path d="M4 11V5h2.5a3 3 0 0 1 0 6z" fill="none" stroke="#ffe58a" stroke-width="1.6"/></svg>'
)
Health = Callable[[], tuple[int, dict[str, Any]]]


class SecurityHeaders:
    """Adds the security headers to every HTTP answer, and `Cache-Control: no-store` to the ones
    that do not set their own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                headers.extend(h for h in SECURITY_HEADERS if h[0] not in names)
                if b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def create_app(
    app: App, *, listen: str, health: Health | None = None, metrics: Callable[[], tuple[bytes, str]] | None = None
) -> ASGIApp:
    """The workspace for `app`, with `/healthz` from `health` (the daemon's) or a database check,
    and `/metrics` when `metrics` is given."""
    config = app.config
    access = Access(
        read=config.read_token,
        triage=config.triage_token,
        listen=listen,
        read_env=config.read_token_env,
        triage_env=config.triage_token_env,
    )
    workspace = Workspace(app, access)
    css = files("d24watch").joinpath("templates/web/workspace.css").read_bytes()

    def healthz(request: Request) -> Response:
        status, body = health() if health is not None else _store_health(app)
        return Response(json.dumps(body), status_code=status, media_type="application/json")

    def metrics_route(request: Request) -> Response:
        if metrics is None:
            return PlainTextResponse("no metrics: `d24watch serve` runs no jobs\n", status_code=404)
        body, content_type = metrics()
        return Response(body, media_type=content_type)

    def stylesheet(request: Request) -> Response:
        return Response(css, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"})

    def icon(request: Request) -> Response:
        return Response(ICON, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})

    def not_found(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("not found\n", status_code=404)

    routes = [
        Route("/healthz", healthz),
        Route("/metrics", metrics_route),
        Route("/static/workspace.css", stylesheet),
        Route("/favicon.ico", icon),
        Route("/static/icon.svg", icon),
        Route("/", workspace.inbox),
        Route("/entity/{entity:str}", workspace.entity),
        Route("/article/{article:int}", workspace.article),
        Route("/article/{article:int}/evidence.zip", workspace.evidence),
        Route("/search", workspace.search),
        Route("/sources", workspace.sources),
        Route("/triage", workspace.triage_form, methods=["POST"]),
        Route("/api/triage", workspace.triage_api, methods=["POST"]),
        Route("/feeds/{name:str}", workspace.feed),
        Route("/login", workspace.login_page, methods=["GET"]),
        Route("/login", workspace.login, methods=["POST"]),
        Route("/logout", workspace.logout, methods=["POST"]),
    ]
    return SecurityHeaders(Starlette(routes=routes, exception_handlers={404: not_found}))


def _store_health(app: App) -> tuple[int, dict[str, Any]]:
    try:
        with app.store() as store:
            writable = store.check_writable()
    except D24WatchError:
        writable = False
    body = {"status": "ok" if writable else "unhealthy", "database": "writable" if writable else "not writable"}
    return (200 if writable else 503), body


class WebServer:
    """uvicorn in a thread of its own, on a socket bound up front (so a port in use is an error
    at start-up, not in the thread); `stop` ends it within a few seconds."""

    def __init__(self, asgi: ASGIApp, listen: str) -> None:
        import uvicorn

        host, _, port = listen.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((host, int(port)))
        except OSError as exc:
            self.sock.close()
            raise D24WatchError(f"cannot listen on {listen}: {exc.strerror or exc}") from None
        self.sock.listen(128)
        self.sock.setblocking(False)
        config = uvicorn.Config(
            asgi,
            log_level="warning",
            access_log=False,  # request lines would carry feed tokens
            lifespan="off",
            timeout_graceful_shutdown=3,
            server_header=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, name="http", daemon=True)

    def _run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.sock]))

    @property
    def address(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"http://[{host}]:{port}" if ":" in str(host) else f"http://{host}:{port}"

    def start(self) -> WebServer:
        self.thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        self.sock.close()
