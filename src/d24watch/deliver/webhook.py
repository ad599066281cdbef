"""The generic webhook: the JSON payload POSTed as is, with a delivery id that is the same on
every retry and, when a secret is set, an HMAC-SHA256 signature of the raw body."""

from __future__ import annotations

import hashlib
import hmac

import httpx

from d24watch.config import Secret
from d24watch.deliver.http import post
from d24watch.deliver.render import Payload, webhook_body


def signature(secret: str, body: bytes) -> str:
    """The X-D24Watch-Signature value for `body`."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


class WebhookSender:
    def __init__(
        self, client: httpx.AsyncClient, url: str, secret: Secret | None, timeout_s: float, user_agent: str
    ) -> None:
        self.client = client
        self.url = url
        self.secret = secret
        self.timeout_s = timeout_s
        self.user_agent = user_agent

    async def send(self, payload: Payload) -> None:
        body = webhook_body(payload)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": self.user_agent,
            "X-D24Watch-Delivery": payload["delivery_id"],
            "X-D24Watch-Event": payload["event"],
        }
        if self.secret is not None:
            headers["X-D24Watch-Signature"] = signature(self.secret.reveal(), body)
        await post(self.client, self.url, body, headers, self.timeout_s)
