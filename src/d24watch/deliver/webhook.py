"""The generic webhook: the JSON payload POSTed as is, with a delivery id that is the same on
every retry and, when a secret is set, an HMAC-SHA256 signature of the raw body."""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx

from d24watch.channels import WebhookChannel
from d24watch.deliver.http import post
from d24watch.deliver.payload import Payload


def signature(secret: str, body: bytes) -> str:
    """The X-D24Watch-Signature value for `body`."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def webhook_body(payload: Payload) -> bytes:
    """The exact bytes POSTed, and signed: compact JSON in UTF-8."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class WebhookSender:
    def __init__(self, channel: WebhookChannel, client: httpx.AsyncClient, user_agent: str) -> None:
        self.client = client
        self.url = channel.url
        self.secret = channel.secret
        self.timeout_s = channel.timeout_s
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
