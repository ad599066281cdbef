"""The workspace's feeds out: Atom (RFC 4287) and JSON Feed 1.1 of the mentions not marked not
relevant, for one entity or for all. Ids are stable (`urn:d24watch:mention:ARTICLE:ENTITY`), so a
reader shows each mention once; each entry's content is its snippets. The XML is built with
ElementTree, which escapes every value."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from xml.etree import ElementTree as ET

from d24watch.store.rows import Mention, StoredHit

ATOM = "http://www.w3.org/2005/Atom"


def mention_id(mention: Mention) -> str:
    return f"urn:d24watch:mention:{mention.article_id}:{mention.entity_id}"


def _content_html(hits: Sequence[StoredHit]) -> str:
    """The snippets as HTML paragraphs, the hit in <mark>; every piece escaped."""
    parts = []
    for hit in hits[:3]:
        snippet = hit.snippet
        at = snippet.find(hit.text)
        if at < 0:
            parts.append(f"<p>{_escape(snippet)}</p>")
        else:
            before, after = snippet[:at], snippet[at + len(hit.text) :]
            parts.append(f"<p>{_escape(before)}<mark>{_escape(hit.text)}</mark>{_escape(after)}</p>")
    return "".join(parts)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


@dataclass(frozen=True, slots=True)
class FeedContent:
    """What a feed out carries, whatever its format."""

    feed_id: str
    title: str
    self_url: str
    home_url: str
    mentions: Sequence[Mention]
    hits: Mapping[tuple[int, str], Sequence[StoredHit]]
    labels: Mapping[str, str]
    updated: str


def atom_feed(content: FeedContent) -> bytes:
    feed_id, title, self_url, home_url = content.feed_id, content.title, content.self_url, content.home_url
    mentions, hits, labels, updated = content.mentions, content.hits, content.labels, content.updated
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed")
    ET.SubElement(feed, f"{{{ATOM}}}id").text = feed_id
    ET.SubElement(feed, f"{{{ATOM}}}title").text = title
    ET.SubElement(feed, f"{{{ATOM}}}updated").text = mentions[0].first_seen_at if mentions else updated
    ET.SubElement(feed, f"{{{ATOM}}}link", rel="self", href=self_url, type="application/atom+xml")
    ET.SubElement(feed, f"{{{ATOM}}}link", rel="alternate", href=home_url, type="text/html")
    author = ET.SubElement(feed, f"{{{ATOM}}}author")
    ET.SubElement(author, f"{{{ATOM}}}name").text = "d24watch"
    ET.SubElement(feed, f"{{{ATOM}}}generator").text = "d24watch"
    for mention in mentions:
        entry = ET.SubElement(feed, f"{{{ATOM}}}entry")
        ET.SubElement(entry, f"{{{ATOM}}}id").text = mention_id(mention)
        ET.SubElement(entry, f"{{{ATOM}}}title").text = mention.title or mention.url
        ET.SubElement(entry, f"{{{ATOM}}}updated").text = mention.first_seen_at
        if mention.published_at:
            ET.SubElement(entry, f"{{{ATOM}}}published").text = mention.published_at
        ET.SubElement(entry, f"{{{ATOM}}}link", rel="alternate", href=mention.url)
        ET.SubElement(
            entry, f"{{{ATOM}}}category", term=mention.entity_id, label=labels.get(mention.entity_id, mention.entity_id)
        )
        source = ET.SubElement(entry, f"{{{ATOM}}}author")
        ET.SubElement(source, f"{{{ATOM}}}name").text = mention.source
        body = ET.SubElement(entry, f"{{{ATOM}}}content", type="html")
        body.text = _content_html(hits.get((mention.article_id, mention.entity_id), ()))
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + bytes(ET.tostring(feed, encoding="utf-8"))


def json_feed(content: FeedContent) -> bytes:
    title, self_url, home_url = content.title, content.self_url, content.home_url
    mentions, hits, labels = content.mentions, content.hits, content.labels
    items = []
    for mention in mentions:
        item: dict[str, object] = {
            "id": mention_id(mention),
            "url": mention.url,
            "title": mention.title or mention.url,
            "content_html": _content_html(hits.get((mention.article_id, mention.entity_id), ())),
            "date_modified": mention.first_seen_at,
            "tags": [labels.get(mention.entity_id, mention.entity_id)],
            "authors": [{"name": mention.source}],
        }
        if mention.published_at:
            item["date_published"] = mention.published_at
        if mention.language:
            item["language"] = mention.language
        items.append(item)
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": title,
        "home_page_url": home_url,
        "feed_url": self_url,
        "items": items,
    }
    return json.dumps(feed, ensure_ascii=False, indent=1).encode()
