"""Payloads to messages: the webhook JSON, Slack Block Kit, and the email (plain text and HTML from
Jinja2 templates). Pure: no I/O, no clock. Every article-derived string is escaped for its medium."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from functools import lru_cache
from typing import Any
from urllib.parse import quote

import jinja2

from d24watch.watchlist import Watchlist

Payload = dict[str, Any]

SLACK_MAX_BLOCKS = 50
SLACK_MAX_TEXT = 3000
SLACK_HITS_PER_ENTITY = 3
DIGEST_HITS_PER_ARTICLE = 3


# -- building payloads --------------------------------------------------------------------------


def article_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """The `article` object of a payload, from an articles row."""
    return {
        "url": row["url"],
        "canonical_url": row["canonical_url"],
        "title": row["title"],
        "source": row["source"],
        "published": row["published_at"],
        "language": row["language"],
    }


def entities_payload(watchlist: Watchlist, hits: Mapping[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The `entities` list of a payload: each entity with its label, kind and hits, by id."""
    out = []
    for entity_id, entity_hits in sorted(hits.items()):
        entity = watchlist.get(entity_id)
        out.append(
            {
                "id": entity_id,
                "label": entity.label if entity else entity_id,
                "kind": entity.kind if entity else "topic",
                "hits": entity_hits,
            }
        )
    return out


def alert_payload(
    event: str,
    delivery_id: str,
    detected_at: str,
    article: dict[str, Any],
    entities: list[dict[str, Any]],
    change: dict[str, Any] | None = None,
) -> Payload:
    """SPEC section 6's payload; `changed` and `removed` events add `change` (the revision and a
    short diff, or the reason and HTTP status of the removal)."""
    payload = {
        "event": event,
        "delivery_id": delivery_id,
        "detected_at": detected_at,
        "article": article,
        "entities": entities,
    }
    if change is not None:
        payload["change"] = change
    return payload


def change_lines(event: str, change: dict[str, Any] | None) -> list[str]:
    """What a reader sees of an edit or a takedown, a line each."""
    if not change:
        return []
    if event == "removed":
        return [f"Taken down: {change.get('reason', '')}"]
    lines = [line for line in str(change.get("diff", "")).splitlines() if line]
    gone = change.get("entities_gone") or []
    if gone:
        lines.insert(0, "No longer named: " + ", ".join(gone))
    return lines[:13]


def digest_payload(
    delivery_id: str,
    created_at: str,
    watchlist: Watchlist,
    lines: Iterable[tuple[str, str, dict[str, Any], list[dict[str, Any]], dict[str, Any] | None]],
    failing_sources: list[dict[str, Any]],
) -> Payload:
    """One digest: `lines` are (event, detected_at, article, entities, change) with one entity each,
    grouped here by entity (high priority first, then by label), newest article first."""
    groups: dict[str, dict[str, Any]] = {}
    urls: set[str] = set()
    for event, detected_at, article, entities, change in lines:
        urls.add(article["canonical_url"])
        for entity in entities:
            group = groups.setdefault(
                entity["id"],
                {
                    "id": entity["id"],
                    "label": entity["label"],
                    "kind": entity["kind"],
                    "priority": _priority(watchlist, entity["id"]),
                    "articles": [],
                },
            )
            item = {"event": event, "detected_at": detected_at, "article": article, "hits": entity["hits"]}
            if change is not None:
                item["change"] = change
            group["articles"].append(item)
    for group in groups.values():
        group["articles"].sort(key=lambda a: a["article"]["published"] or a["detected_at"] or "", reverse=True)
    ordered = sorted(groups.values(), key=lambda g: (g["priority"] != "high", g["label"].casefold()))
    return {
        "event": "digest",
        "delivery_id": delivery_id,
        "created_at": created_at,
        "count": len(urls),
        "entities": ordered,
        "failing_sources": failing_sources,
    }


def _priority(watchlist: Watchlist, entity_id: str) -> str:
    entity = watchlist.get(entity_id)
    return entity.priority if entity else "normal"


def webhook_body(payload: Payload) -> bytes:
    """The exact bytes POSTed, and signed: compact JSON in UTF-8."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# -- shared helpers ----------------------------------------------------------------------------


def is_web_link(url: str | None) -> bool:
    return bool(url) and str(url).lower().startswith(("http://", "https://"))


def body_hits(hits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The hits worth a snippet: those in the text, as the title is shown anyway (title hits only
    when there is nothing else)."""
    return [h for h in hits if h.get("field", "text") != "title"] or hits


def highlight(snippet: str, matched: str) -> tuple[str, str, str]:
    """The snippet split around the first occurrence of the matched text (as it stood), so a
    renderer can mark the hit; the whole snippet first when it cannot be found."""
    spaced = " ".join(matched.split())
    at = snippet.find(spaced)
    if at < 0 or not spaced:
        return snippet, "", ""
    return snippet[:at], spaced, snippet[at + len(spaced) :]


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def day(value: str | None) -> str:
    """`2024-05-06 08:00 UTC` from an ISO time, or "" when there is none."""
    if not value:
        return ""
    try:
        moment = parse_time(value)
    except ValueError:
        return value[:16]
    if moment is None:
        return ""
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%d %H:%M")
    if moment.utcoffset() == timedelta(0):
        return moment.strftime("%Y-%m-%d %H:%M UTC")
    return moment.isoformat(" ", "minutes")


def subject_for(payload: Payload) -> str:
    if payload["event"] == "digest":
        return f"d24watch: {payload['count']} new mentions"
    labels = ", ".join(e["label"] for e in payload["entities"])
    title = payload["article"]["title"] or payload["article"]["url"]
    verb = {"mention": "", "changed": "changed: ", "removed": "removed: "}.get(payload["event"], "")
    return one_line(f"d24watch: {verb}{labels}: {title}", 200)


def one_line(text: str, limit: int) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


# -- email -------------------------------------------------------------------------------------


def digest_view(payload: Payload) -> dict[str, Any]:
    """What the email templates show: a digest as it is, an alert as a digest of one article."""
    if payload["event"] == "digest":
        groups = payload["entities"]
        failing = payload["failing_sources"]
        created = payload["created_at"]
    else:
        groups = [
            {
                "id": e["id"],
                "label": e["label"],
                "kind": e["kind"],
                "articles": [
                    {
                        "event": payload["event"],
                        "detected_at": payload["detected_at"],
                        "article": payload["article"],
                        "hits": e["hits"],
                        "change": payload.get("change"),
                    }
                ],
            }
            for e in payload["entities"]
        ]
        failing = []
        created = payload["detected_at"]
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
        "count": payload.get("count", 1),
        "created": day(created),
        "groups": view_groups,
        "failing": [
            {
                "name": f["name"],
                "url": f["url"],
                "error": f["error"],
                "since": day(f.get("since")),
                "errors": f.get("errors", 1),
            }
            for f in failing
        ],
        "delivery_id": payload["delivery_id"],
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
    created = parse_time(payload.get("created_at") or payload.get("detected_at"))
    if created is not None:
        message["Date"] = format_datetime(created)
    message["Message-ID"] = f"<{payload['delivery_id']}@d24watch>"
    message["X-D24Watch-Delivery"] = payload["delivery_id"]
    message.set_content(render_text(payload), charset="utf-8")
    message.add_alternative(render_html(payload), subtype="html", charset="utf-8")
    return message


def file_sender() -> str:
    return formataddr(("d24watch", "d24watch@localhost"))


# -- Slack -------------------------------------------------------------------------------------

_SLACK_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def slack_escape(text: str) -> str:
    """Inert in Slack mrkdwn: `<!channel>`, `<@U123>` and `<http://x|y>` show as typed."""
    return re.sub(r"[&<>]", lambda m: _SLACK_ESCAPES[m.group(0)], str(text))


def slack_link(url: str | None, label: str) -> str:
    text = slack_escape(one_line(label, 300))
    if not is_web_link(url):
        return text
    safe = quote(str(url), safe=":/?#[]@!$&'()*+,;=%~-._")  # percent-encodes |, <, >, spaces and quotes
    return f"<{slack_escape(safe)}|{text}>"


def _clip(text: str, limit: int = SLACK_MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text)}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(text)}]}


def slack_message(payload: Payload) -> dict[str, Any]:
    """An incoming-webhook message: a plain `text` fallback and at most 50 blocks."""
    if payload["event"] == "digest":
        return _slack_digest(payload)
    article = payload["article"]
    title = article["title"] or article["url"]
    labels = ", ".join(e["label"] for e in payload["entities"])
    verb = {"changed": "Changed", "removed": "Removed"}.get(payload["event"], "New mention")
    fallback = _clip(slack_escape(one_line(f"{verb} of {labels}: {title} ({article['source']})", 1000)))
    when = day(article["published"] or payload["detected_at"])
    blocks: list[dict[str, Any]] = [
        _section(f"*{verb}:* {slack_escape(labels)}"),
        _section(
            f"*{slack_link(article['url'], title)}*\n{slack_escape(article['source'])}" + (f" · {when}" if when else "")
        ),
    ]
    changed = change_lines(payload["event"], payload.get("change"))
    if changed:
        blocks.append(_section("```" + slack_escape("\n".join(changed)) + "```"))
    room = SLACK_MAX_BLOCKS - len(blocks) - 1
    entities = payload["entities"]
    for entity in entities[:room]:
        lines = [f"*{slack_escape(entity['label'])}*"]
        hits = body_hits(entity["hits"])
        for hit in hits[:SLACK_HITS_PER_ENTITY]:
            before, matched, after = highlight(hit["snippet"], hit["text"])
            marked = f"{slack_escape(before)}*{slack_escape(matched)}*{slack_escape(after)}" if matched else ""
            lines.append("> " + (marked or slack_escape(hit["snippet"])))
        more = len(hits) - SLACK_HITS_PER_ENTITY
        if more > 0:
            lines.append(f"_and {more} more_")
        blocks.append(_section("\n".join(lines)))
    footer = f"d24watch · delivery {payload['delivery_id']}"
    if len(entities) > room:
        footer = f"and {len(entities) - room} more entities · " + footer
    blocks.append(_context(footer))
    return {"text": fallback, "blocks": blocks}


def _slack_digest(payload: Payload) -> dict[str, Any]:
    count = payload["count"]
    fallback = f"d24watch: {count} new mentions"
    blocks: list[dict[str, Any]] = [_section(f"*{fallback}*")]
    groups = payload["entities"]
    room = SLACK_MAX_BLOCKS - 2 - (1 if payload["failing_sources"] else 0)
    for group in groups[:room]:
        lines = [f"*{slack_escape(group['label'])}* ({len(group['articles'])})"]
        for item in group["articles"]:
            article = item["article"]
            lines.append(
                f"• {slack_link(article['url'], article['title'] or article['url'])} — "
                f"{slack_escape(article['source'])}"
            )
        text = "\n".join(lines)
        if len(text) > SLACK_MAX_TEXT:
            cut = text.rfind("\n", 0, SLACK_MAX_TEXT - 40)
            shown = text[:cut].count("\n")
            text = text[:cut] + f"\n_and {len(group['articles']) - shown} more_"
        blocks.append(_section(text))
    if payload["failing_sources"]:
        names = ", ".join(slack_escape(f["name"]) for f in payload["failing_sources"])
        blocks.append(_context(f"Failing sources: {names}"))
    footer = f"d24watch · delivery {payload['delivery_id']}"
    if len(groups) > room:
        footer = f"and {len(groups) - room} more entities · " + footer
    blocks.append(_context(footer))
    return {"text": fallback, "blocks": blocks}
