"""The email view: a digest, or one alert shown as a digest of one article, in plain text and HTML
from Jinja2 templates (autoescaped), as one multipart/alternative message. Pure."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from functools import lru_cache
from typing import Any

import jinja2

from d24watch.deliver.payload import (
    AlertPayload,
    DigestGroup,
    DigestItem,
    EntityPayload,
    FailingSourcePayload,
    Payload,
    payload_time,
)
from d24watch.deliver.render.common import (
    body_hits,
    change_lines,
    day,
    highlight,
    is_web_link,
    one_line,
    parse_time,
    subject_for,
)

DIGEST_HITS_PER_ARTICLE = 3


def digest_view(payload: Payload) -> dict[str, Any]:
    """What the email templates show: a digest as it is, an alert as a digest of one article."""
    groups: list[DigestGroup]
    failing: list[FailingSourcePayload]
    if payload["event"] == "digest":
        groups, failing, count = payload["entities"], payload["failing_sources"], payload["count"]
    else:
        groups, failing, count = [_alert_group(payload, e) for e in payload["entities"]], [], 1
    view_groups = []
    for group in groups:
        articles = []
        for item in group["articles"]:
            article = item["article"]
            hits = body_hits(item["hits"])
            articles.append(
                {
                    "event": item["event"],
                    "title": one_line(article["title"] or article["url"], 300),
                    "url": article["url"] if is_web_link(article["url"]) else None,
                    "shown_url": article["url"],
                    "source": one_line(article["source"], 100),
                    "date": day(article["published"] or item["detected_at"]),
                    "snippets": [highlight(h["snippet"], h["text"]) for h in hits[:DIGEST_HITS_PER_ARTICLE]],
                    "more_hits": max(0, len(hits) - DIGEST_HITS_PER_ARTICLE),
                    "change": change_lines(item["event"], item.get("change")),
                }
            )
        view_groups.append({"label": group["label"], "kind": group["kind"], "articles": articles})
    return {
        "subject": subject_for(payload),
        "is_digest": payload["event"] == "digest",
        "count": count,
        "created": day(payload_time(payload)),
        "groups": view_groups,
        "failing": [
            {
                "name": f["name"],
                "url": f["url"],
                "error": f["error"],
                "since": day(f["since"]),
                "errors": f["errors"],
            }
            for f in failing
        ],
        "delivery_id": payload["delivery_id"],
    }


def _alert_group(payload: AlertPayload, entity: EntityPayload) -> DigestGroup:
    """One entity of an alert, as the digest's group of one article."""
    item: DigestItem = {
        "event": payload["event"],
        "detected_at": payload["detected_at"],
        "article": payload["article"],
        "hits": entity["hits"],
    }
    if "change" in payload:
        item["change"] = payload["change"]
    return {
        "id": entity["id"],
        "label": entity["label"],
        "kind": entity["kind"],
        "priority": "normal",
        "articles": [item],
    }


@lru_cache(maxsize=1)
def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("d24watch", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    return env


def render_text(payload: Payload) -> str:
    return _templates().get_template("digest.txt").render(**digest_view(payload))


def render_html(payload: Payload) -> str:
    return _templates().get_template("digest.html").render(**digest_view(payload))


def email_message(payload: Payload, sender: str, recipients: list[str]) -> EmailMessage:
    """One multipart/alternative message; its Message-ID is stable for the delivery id, so a
    message resent after a lost acknowledgement can be recognised by mail clients."""
    message = EmailMessage()
    message["Subject"] = subject_for(payload)
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    created = parse_time(payload_time(payload))
    if created is not None:
        message["Date"] = format_datetime(created)
    message["Message-ID"] = f"<{payload['delivery_id']}@d24watch>"
    message["X-D24Watch-Delivery"] = payload["delivery_id"]
    message.set_content(render_text(payload), charset="utf-8")
    message.add_alternative(render_html(payload), subtype="html", charset="utf-8")
    return message


def file_sender() -> str:
    return formataddr(("d24watch", "d24watch@localhost"))
