"""What every view shows alike: one-line text, dates, the hits worth a snippet, a hit marked in
its snippet, the subject line, and an edit or takedown as lines. Pure."""

from __future__ import annotations

from datetime import datetime, timedelta

from d24watch.deliver.payload import Change, HitPayload, Payload


def is_web_link(url: str | None) -> bool:
    return bool(url) and str(url).lower().startswith(("http://", "https://"))


def body_hits(hits: list[HitPayload]) -> list[HitPayload]:
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


def change_lines(event: str, change: Change | None) -> list[str]:
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
