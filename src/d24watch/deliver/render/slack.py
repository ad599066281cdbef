"""The Slack view: an incoming-webhook message in Block Kit, every article-derived string escaped so
that `<!channel>`, `<@U123>` or `<http://x|y>` stay inert, within Slack's limits. Pure."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from d24watch.deliver.payload import DigestPayload, Payload
from d24watch.deliver.render.common import body_hits, change_lines, day, highlight, is_web_link, one_line

SLACK_MAX_BLOCKS = 50
SLACK_MAX_TEXT = 3000
SLACK_HITS_PER_ENTITY = 3

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


def _slack_digest(payload: DigestPayload) -> dict[str, Any]:
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
