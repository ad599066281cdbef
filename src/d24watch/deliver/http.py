"""One POST to a receiver, shared by the webhook and Slack channels: 2xx is accepted, anything
else is a DeliveryError carrying Retry-After. Messages never include the URL (Slack's is a secret)."""

from __future__ import annotations

import httpx

from d24watch.errors import DeliveryError
from d24watch.fetch import retry_after_seconds


async def post(client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> None:
    try:
        response = await client.post(url, content=body, headers=headers, timeout=timeout_s)
    except httpx.TimeoutException:
        raise DeliveryError(f"no answer within {timeout_s:g} s") from None
    except httpx.HTTPError as exc:
        raise DeliveryError(f"cannot connect ({type(exc).__name__})") from None
    if 200 <= response.status_code < 300:
        return
    detail = " ".join(response.text[:200].split())
    raise DeliveryError(
        f"HTTP {response.status_code}" + (f": {detail}" if detail else ""),
        retry_after_s=retry_after_seconds(response.headers.get("retry-after")),
    )
