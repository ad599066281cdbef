"""Slack incoming webhooks: Block Kit rendered by render.slack_message (escaped, within limits)."""

from __future__ import annotations

import json

import httpx

from d24watch.config import Secret
from d24watch.deliver.http import post
from d24watch.deliver.render import Payload, slack_message


class SlackSender:
    def __init__(self, client: httpx.AsyncClient, webhook_url: Secret, timeout_s: float, user_agent: str) -> None:
        self.client = client
        self.webhook_url = webhook_url
        self.timeout_s = timeout_s
        self.user_agent = user_agent

    async def send(self, payload: Payload) -> None:
        body = json.dumps(slack_message(payload), ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": self.user_agent}
        await post(self.client, self.webhook_url.reveal(), body, headers, self.timeout_s)
