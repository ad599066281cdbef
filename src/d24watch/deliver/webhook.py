"""The generic webhook: the JSON payload POSTed as is, with a delivery id that is the same on
every retry and, when a secret is set, an HMAC-SHA256 signature of the raw body. Beside those, the
Standard Webhooks headers (https://www.standardwebhooks.com): `webhook-id` (the delivery id),
`webhook-timestamp` (taken afresh at each attempt) and `webhook-signature: v1,<base64 HMAC-SHA256
of "id.timestamp.body">`, so a receiver gets replay protection and its standard library verifies
the call. The key is the secret's bytes; a secret written in the standard's own form, `whsec_`
and base64, is decoded first, as the standard's libraries do."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time

import httpx

from d24watch.channels import WebhookChannel
from d24watch.deliver.http import post
from d24watch.deliver.payload import Payload


def signature(secret: str, body: bytes) -> str:
    """The X-D24Watch-Signature value for `body`."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


STANDARD_PREFIX = "whsec_"


def standard_key(secret: str) -> bytes:
    """The Standard Webhooks signing key of a configured secret: `whsec_BASE64` decoded, any other
    secret as its UTF-8 bytes (a receiver then uses `"whsec_" + base64(secret)`)."""
    if secret.startswith(STANDARD_PREFIX):
        try:
            return base64.b64decode(secret[len(STANDARD_PREFIX) :] + "==")
        except (binascii.Error, ValueError):
            pass
    return secret.encode("utf-8")


def standard_signature(key: bytes, delivery_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: `v1,` and the base64 HMAC-SHA256 of "id.timestamp.body"."""
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")


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
        now = int(time.time())  # each attempt is signed afresh, so a replayed one grows old
        headers["webhook-id"] = payload["delivery_id"]
        headers["webhook-timestamp"] = str(now)
        if self.secret is not None:
            secret = self.secret.reveal()
            headers["X-D24Watch-Signature"] = signature(secret, body)
            headers["webhook-signature"] = standard_signature(standard_key(secret), payload["delivery_id"], now, body)
        await post(self.client, self.url, body, headers, self.timeout_s)
