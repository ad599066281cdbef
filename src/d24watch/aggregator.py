"""Google News item links to the publisher's URL, as pure functions of what was fetched. Pure.

An item of a Google News RSS feed links to `https://news.google.com/rss/articles/ID?oc=5`, a page
that goes on to the publisher only by script. The ID is URL-safe base64 of a protocol-buffers
message: in links made before mid-2024 the publisher's URL stands in it in plain (field 4, after
the bytes 08 13 22 and a length); newer IDs carry an opaque token (starting `AU_yqL`) instead. For
those, the page holds a signature and a timestamp (`data-n-a-sg`, `data-n-a-ts` on the element
that also carries `data-n-a-id`) with which Google's own `batchexecute` endpoint answers the URL:
a form POST of `f.req=[[["Fbv4je", "[\"garturlreq\",[…],ID,TS,SG]", null, "generic"]]]`, answered
by `)]}'`, a blank line, and a JSON array whose `wrb.fr` entry holds `["garturlres", URL, …]`.
This is the scheme the maintained decoders use (googlenewsdecoder and its ports)."""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

_ID_PATH = re.compile(r"/(?:rss/)?(?:articles|read)/([A-Za-z0-9_-]{8,4000})")
_ATTRIBUTE = re.compile(rb'data-n-a-(sg|ts|id)\s*=\s*"([^"]{1,4000})"')
_PREFIX = b"\x08\x13\x22"
BATCH_PATH = "/_/DotsSplashUi/data/batchexecute"
# The request settings every maintained decoder sends; Google answers without them otherwise.
_SETTINGS = '[["X","X",["X","X"],null,null,1,1,"US:en",null,1,null,null,null,null,null,0,1],"X","X",1,[1,1,1],1,1,null,0,0,null,0]'


def article_id(link: str) -> str | None:
    """The article ID of an aggregator item link (`…/rss/articles/ID`, `…/articles/ID`, `…/read/ID`)."""
    found = _ID_PATH.search(urlsplit(link).path)
    return found.group(1) if found else None


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while at < len(data) and shift < 35:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at += 1
        if not byte & 0x80:
            return value, at
        shift += 7
    raise ValueError("truncated varint")


def decode_id(identifier: str) -> str | None:
    """The publisher's URL when the ID carries it in plain (links made before mid-2024), else None."""
    try:
        data = base64.urlsafe_b64decode(identifier + "=" * (-len(identifier) % 4))
    except (binascii.Error, ValueError):
        return None
    if not data.startswith(_PREFIX):
        return None
    try:
        length, start = _varint(data, len(_PREFIX))
    except ValueError:
        return None
    raw = data[start : start + length]
    if raw.startswith(b"AU_yqL") or len(raw) != length:
        return None
    url = raw.decode("utf-8", "replace")
    return url if publisher_url(url) else None


def publisher_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and " " not in url


@dataclass(frozen=True, slots=True)
class Params:
    """What the interstitial page gives for asking the decoding endpoint."""

    identifier: str
    signature: str
    timestamp: str


def interstitial_params(body: bytes, identifier: str) -> Params | None:
    """The signature and timestamp on the interstitial page, or None when it has none."""
    found: dict[bytes, str] = {}
    for key, value in _ATTRIBUTE.findall(body[:2_000_000]):
        found.setdefault(key, html.unescape(value.decode("utf-8", "replace")))
    signature, timestamp = found.get(b"sg"), found.get(b"ts")
    if not signature or not timestamp or not timestamp.isdigit():
        return None
    return Params(found.get(b"id") or identifier, signature, timestamp)


def batch_request(params: Params) -> bytes:
    """The form body that asks the decoding endpoint for the URL behind an ID."""
    inner = (
        f'["garturlreq",{_SETTINGS},{json.dumps(params.identifier)},{params.timestamp},{json.dumps(params.signature)}]'
    )
    payload = json.dumps([[["Fbv4je", inner, None, "generic"]]], separators=(",", ":"))
    return f"f.req={quote(payload)}".encode()


def batch_url(link: str) -> str:
    parts = urlsplit(link)
    return f"{parts.scheme}://{parts.netloc}{BATCH_PATH}"


def batch_answer(body: bytes) -> str | None:
    """The publisher's URL in the decoding endpoint's answer, or None."""
    text = body.decode("utf-8", "replace")
    start = text.find("[")
    if start < 0:
        return None
    try:
        outer = json.JSONDecoder().raw_decode(text[start:])[0]
    except (ValueError, RecursionError):
        return None
    for entry in outer if isinstance(outer, list) else []:
        if not (isinstance(entry, list) and len(entry) > 2 and entry[0] == "wrb.fr" and isinstance(entry[2], str)):
            continue
        try:
            inner = json.loads(entry[2])
        except (ValueError, RecursionError):
            continue
        if isinstance(inner, list) and len(inner) > 1 and inner[0] == "garturlres" and isinstance(inner[1], str):
            return inner[1] if publisher_url(inner[1]) else None
    return None


def plain_title(title: str, publisher: str | None) -> str:
    """An aggregator's item title without the ` - Publisher` it appends."""
    if publisher and title.endswith(f" - {publisher}"):
        return title[: -len(publisher) - 3].rstrip()
    return title
