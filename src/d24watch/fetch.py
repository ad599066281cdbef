"""All network I/O: one shared httpx client, concurrency limits, conditional GET, size caps after
decompression, manual redirects and the address guard (SPEC section 7) on every hop."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from urllib.parse import urljoin, urlsplit

import httpx

from d24watch.config import FetchConfig
from d24watch.errors import FetchError
from d24watch.models import FetchResult

REDIRECTS = frozenset({301, 302, 303, 307, 308})
PAGE_ACCEPT = "text/html, application/xhtml+xml, */*;q=0.8"  # what an article page is asked for


def is_public_address(address: str) -> bool:
    """False for loopback, private, link-local, multicast, reserved and unspecified addresses,
    including IPv4 written inside IPv6 (::ffff:127.0.0.1)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or ip.sixtofour
        if mapped is not None:
            ip = mapped
    return ip.is_global and not ip.is_multicast


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (a number or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class Fetcher:
    """Use as `async with Fetcher(config) as f: await f.get(url)`."""

    def __init__(self, config: FetchConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._global = asyncio.Semaphore(config.concurrency)
        self._hosts: defaultdict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(config.per_host))

    async def __aenter__(self) -> Fetcher:
        limits = httpx.Limits(
            max_connections=self.config.concurrency, max_keepalive_connections=self.config.concurrency
        )
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.config.timeout_s),
            limits=limits,
            headers={"User-Agent": self.config.user_agent, "Accept-Encoding": "gzip, deflate"},
            follow_redirects=False,
            transport=self._transport,
            trust_env=False,
        )
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        trusted: bool = False,
        accept: str = "*/*",
        keep_errors: bool = False,
    ) -> FetchResult:
        """GET `url`, following up to `max_redirects` redirects. `trusted` means the URL stands
        literally in the config, so only its first hop skips the address guard. With `keep_errors`
        an error status (a 404 that proves a takedown) is returned with its body, not raised."""
        headers = {"Accept": accept}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        return await self._follow(url, headers, trusted=trusted, keep_errors=keep_errors)

    async def post_form(self, url: str, body: bytes, *, accept: str = "*/*") -> FetchResult:
        """POST a form (`application/x-www-form-urlencoded`) to `url`, under the same guard, caps
        and limits as a GET; a redirect is followed with a GET, as browsers do."""
        return await self.post(url, body, content_type="application/x-www-form-urlencoded;charset=UTF-8", accept=accept)

    async def post(
        self, url: str, body: bytes, *, content_type: str, accept: str = "*/*", trusted: bool = False
    ) -> FetchResult:
        """POST `body` to `url` under the same guard, caps and limits as a GET (a URL from the
        config is `trusted` for its first hop); a redirect is followed with a GET."""
        headers = {"Accept": accept, "Content-Type": content_type}
        await self._guard(url, trusted=trusted)
        result = await self._one(url, headers, body)
        if result.status not in REDIRECTS:
            return result
        location = result.headers.get("location")
        if not location:
            raise FetchError(url, f"HTTP {result.status} without a Location header")
        return await self._follow(urljoin(url, location), {"Accept": accept}, trusted=False)

    async def _follow(
        self, url: str, headers: dict[str, str], *, trusted: bool, keep_errors: bool = False
    ) -> FetchResult:
        seen: set[str] = set()
        hops: list[FetchResult] = []
        current = url
        for hop in range(self.config.max_redirects + 1):
            if current in seen:
                raise FetchError(url, f"redirect loop at {current}")
            seen.add(current)
            await self._guard(current, trusted=trusted and hop == 0)
            result = await self._one(current, headers, keep_errors=keep_errors)
            if result.status in REDIRECTS:
                location = result.headers.get("location")
                if not location:
                    raise FetchError(url, f"HTTP {result.status} without a Location header")
                hops.append(result)
                current = urljoin(current, location)
                continue
            return replace(result, history=tuple(hops)) if hops else result
        raise FetchError(url, f"more than {self.config.max_redirects} redirects")

    async def _guard(self, url: str, *, trusted: bool) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FetchError(url, "only http and https URLs are fetched")
        if trusted or self.config.allow_private_addresses:
            return
        host = parts.hostname
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise FetchError(url, "the URL has an invalid port") from None
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise FetchError(url, f"cannot resolve {host} ({exc})") from None
        for info in infos:
            address = str(info[4][0])
            if not is_public_address(address):
                raise FetchError(url, f"refused: {host} resolves to the non-public address {address}")

    async def _one(
        self, url: str, headers: dict[str, str], body: bytes | None = None, *, keep_errors: bool = False
    ) -> FetchResult:
        assert self._client is not None, "use Fetcher inside `async with`"
        host = urlsplit(url).hostname or ""
        cap = self.config.max_bytes
        try:
            # The host's slot first, so a busy host never holds one of the global slots waiting.
            async with self._hosts[host], self._global, asyncio.timeout(self.config.timeout_s * 2):
                method = "GET" if body is None else "POST"
                async with self._client.stream(method, url, headers=headers, content=body) as response:
                    status = response.status_code
                    response_headers = {k.lower(): v for k, v in response.headers.items()}
                    sent = (("method", method), *((k, v) for k, v in response.request.headers.items()))
                    if status == 304:
                        return FetchResult(url, status, response_headers, b"", not_modified=True, request=sent)
                    if status in REDIRECTS:
                        return FetchResult(url, status, response_headers, b"", request=sent)
                    if status >= 400 and not keep_errors:
                        retry = retry_after_seconds(response_headers.get("retry-after"))
                        raise FetchError(url, f"HTTP {status}", retry_after_s=retry, status=status)
                    declared = response_headers.get("content-length", "")
                    encoded = response_headers.get("content-encoding", "identity") != "identity"
                    if declared.isdigit() and int(declared) > cap and not encoded:
                        raise FetchError(url, f"body of {int(declared):,} bytes is over the {cap:,}-byte cap")
                    chunks: list[bytes] = []
                    size = 0
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > cap:
                            raise FetchError(url, f"body is over the {cap:,}-byte cap (after decompression)")
                        chunks.append(chunk)
                    return FetchResult(str(response.url), status, response_headers, b"".join(chunks), request=sent)
        except TimeoutError:
            raise FetchError(url, f"timed out after {self.config.timeout_s * 2:g}s in all") from None
        except httpx.TimeoutException:
            raise FetchError(url, f"timed out ({self.config.timeout_s:g}s without progress)") from None
        except httpx.DecodingError:
            raise FetchError(url, "the body could not be decompressed") from None
        except httpx.TooManyRedirects:
            raise FetchError(url, "too many redirects") from None
        except httpx.ConnectError as exc:
            raise FetchError(url, f"connection failed ({_reason(exc)})") from None
        except (httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError) as exc:
            raise FetchError(url, f"connection broken ({_reason(exc)})") from None
        except httpx.InvalidURL as exc:
            raise FetchError(url, f"invalid URL ({exc})") from None
        except httpx.HTTPError as exc:
            raise FetchError(url, f"HTTP error ({_reason(exc)})") from None


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
