"""Slack incoming webhooks: Block Kit from render.slack (escaped, within limits), POSTed."""

from __future__ import annotations

import json

import httpx

from d24watch.channels import SlackChannel
from d24watch.deliver.http import post
from d24watch.deliver.payload import Payload
from d24watch.deliver.render.slack import slack_message


class SlackSender:
    def __init__(self, channel: SlackChannel, client: httpx.AsyncClient, user_agent: str) -> None:
        self.client = client
        self.webhook_url = channel.webhook_url
        self.timeout_s = channel.timeout_s
        self.user_agent = user_agent

    async def send(self, payload: Payload) -> None:
        body = json.dumps(slack_message(payload), ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": self.user_agent}
        await post(self.client, self.webhook_url.reveal(), body, headers, self.timeout_s)
