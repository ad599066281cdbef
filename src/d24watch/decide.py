"""The decisions of a poll and a re-check, as pure functions of what was fetched and what the store
knows: which feed items are new, copies or revisions; which text to keep; whether a text is a
duplicate and of what; when a source is polled next; whether a re-check found a takedown. No I/O,
no clock: the caller passes `now` and what it looked up."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Literal
from urllib.parse import urlsplit

from d24watch.dedupe import Signature, canonical_url, is_near_duplicate
from d24watch.models import ArticleText, FeedEntry, KnownArticle

DAY = timedelta(days=1)
BACKOFF_CAP = DAY

# -- feed items --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Candidate:
    """A feed entry worth looking up: its URL (or a stable placeholder when it has no link)."""

    entry: FeedEntry
    url: str
    canonical: str


def candidates(source_url: str, entries: Iterable[FeedEntry]) -> list[Candidate]:
    """The entries of one feed, each once: entries with nothing in them are dropped, and of two
    with one GUID or one URL the first stands."""
    out: list[Candidate] = []
    seen_guids: set[str] = set()
    seen_urls: set[str] = set()
    for entry in entries:
        if not entry.link and not entry.guid and not entry.title and not entry.summary:
            continue
        if entry.guid and entry.guid in seen_guids:
            continue
        url = entry.link or placeholder_url(source_url, entry)
        if url in seen_urls:
            continue
        seen_guids.add(entry.guid or entry.link or "")
        seen_urls.add(url)
        out.append(Candidate(entry, url, canonical_url(url)))
    return out


def placeholder_url(source_url: str, entry: FeedEntry) -> str:
    """A stable URL for an entry without a link, from its GUID or its text."""
    key = entry.guid or hashlib.sha256((entry.title + entry.summary).encode()).hexdigest()[:16]
    return f"{source_url}#item-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


Action = Literal["new", "duplicate", "revise"]


@dataclass(frozen=True, slots=True)
class Intent:
    """What to do with one candidate: store it as new, as a copy of `known`, or revise `known`."""

    candidate: Candidate
    action: Action
    known: KnownArticle | None = None


def plan_items(looked_up: Iterable[tuple[Candidate, KnownArticle | None, KnownArticle | None]]) -> list[Intent]:
    """From each candidate with the article its item was stored as (same GUID or URL) and the
    original under its canonical URL, in feed order: an item seen before is revised when its page
    is still pending or its feed marks it updated, and otherwise skipped (a copy always is); an
    unseen item with a known canonical URL, or one earlier in this batch, is a duplicate."""
    intents: list[Intent] = []
    planned: set[str] = set()  # canonical URLs of this batch's new items
    for candidate, seen, original in looked_up:
        if seen is not None:
            if seen.duplicate_of is None and is_revision(candidate.entry, seen):
                intents.append(Intent(candidate, "revise", seen))
            continue
        if original is not None or candidate.canonical in planned:
            # A copy of an item earlier in this batch is resolved once that one is stored.
            intents.append(Intent(candidate, "duplicate", original))
        else:
            planned.add(candidate.canonical)
            intents.append(Intent(candidate, "new"))
    return intents


def is_revision(entry: FeedEntry, known: KnownArticle) -> bool:
    """Whether a stored item is worth fetching again: its page failed last time, or the feed
    says it was updated since."""
    edited = bool(entry.updated_marker and known.updated_marker and entry.updated_marker != known.updated_marker)
    return bool(known.page_pending and entry.link) or edited


# -- text ------------------------------------------------------------------------------------


def feed_text(entry: FeedEntry, language: str | None) -> ArticleText:
    """The feed's own text for an entry, when there is no page to read."""
    return ArticleText(entry.summary, entry.title or None, entry.author, entry.published_at, language, None)


def text_to_keep(entry: FeedEntry, language: str | None, page: ArticleText) -> ArticleText | None:
    """The feed's text, with the page's canonical link and language, when the page gave less than
    half of what the feed itself holds (a paywall, a script-only page); None to keep the page's."""
    if len(page.text) >= len(entry.summary) // 2:
        return None
    return replace(feed_text(entry, language), canonical_url=page.canonical_url, language=page.language or language)


def revision_reason(
    known: KnownArticle, text_hash: str, text: str, *, page_failed: bool
) -> Literal["page", "edited"] | None:
    """Why a fetched item is a new revision of `known` (`page`: its page could be read at last;
    `edited`: it changed), or None when nothing new was read."""
    if text_hash == known.text_hash or (page_failed and not text):
        return None
    return "page" if known.page_pending else "edited"


# -- duplicates --------------------------------------------------------------------------------


DuplicateReason = Literal["url", "canonical", "text", "near"]


@dataclass(frozen=True, slots=True)
class DuplicateOf:
    article_id: int
    reason: DuplicateReason


BOILERPLATE_PAGES = 3  # a block on this many other pages of one site is the site's, not the article's


def boilerplate(blocks: Sequence[int], stored_pages: Mapping[int, int], batch_pages: Mapping[int, int]) -> set[int]:
    """The blocks of a new text that recur on the site: on at least BOILERPLATE_PAGES other pages of
    its host, stored (`stored_pages`, within the window) or in the same batch (`batch_pages`
    counts this page too). Left out of the near-duplicate comparison, they neither make two
    articles of one site copies nor keep a reprint on a site with a leaky template from being one."""
    return {b for b in blocks if stored_pages.get(b, 0) + max(0, batch_pages.get(b, 0) - 1) >= BOILERPLATE_PAGES}


def page_canonical(feed_canonical: str, page_canonical_url: str | None) -> str:
    """The canonical URL of an article: the page's own `<link rel="canonical">` once fetched."""
    return canonical_url(page_canonical_url) if page_canonical_url else feed_canonical


def copy_candidates(
    *,
    by_canonical: KnownArticle | None,
    by_hash: KnownArticle | None,
    near: Sequence[tuple[int, Signature]],
    sig: Signature,
    text: str,
    threshold: float,
) -> list[DuplicateOf]:
    """The stored texts a new one may copy, in the order the rules are tried: the original under
    the canonical URL the page names (`by_canonical`, looked up only when it differs from the
    feed's), then one with the same text hash (never for an empty text), then every near-duplicate
    among the LSH candidates `near`."""
    out: list[DuplicateOf] = []
    if by_canonical is not None:
        out.append(DuplicateOf(by_canonical.id, "canonical"))
    if by_hash is not None and text.strip():
        out.append(DuplicateOf(by_hash.id, "text"))
    out.extend(
        DuplicateOf(article_id, "near") for article_id, stored in near if is_near_duplicate(sig, stored, threshold)
    )
    return out


def duplicate_of(
    candidates: Sequence[DuplicateOf], names: frozenset[str], named: Mapping[int, frozenset[str]]
) -> DuplicateOf | None:
    """The first candidate that names every entity the new text names (`named` holds what each
    candidate names): a duplicate never hides a mention. None when there is no such candidate,
    and the text is an original."""
    return next((c for c in candidates if names <= named.get(c.article_id, frozenset())), None)


def original_first(items: Sequence[tuple[FeedEntry, str, ArticleText]]) -> list[int]:
    """The order in which to store one batch's new items, (entry, its URL, its text) each, so that
    of several copies the original is stored first: the earliest published, then the one whose
    canonical link names itself, then the first fetched."""

    def key(position: int) -> tuple[bool, datetime, bool, int]:
        entry, url, article = items[position]
        published = entry.published_at or article.published_at
        names_itself = bool(article.canonical_url) and canonical_url(article.canonical_url or "") == canonical_url(url)
        return (published is None, published or datetime.max.replace(tzinfo=UTC), not names_itself, position)

    return sorted(range(len(items)), key=key)


# -- when to poll next -------------------------------------------------------------------------


def jitter(name: str, interval: timedelta) -> timedelta:
    """A stable spread of up to a tenth of the interval, so sources with one interval drift apart."""
    fraction = int(hashlib.sha256(name.encode()).hexdigest()[:4], 16) / 0xFFFF
    return interval * 0.1 * fraction


@dataclass(frozen=True, slots=True)
class Hints:
    """What a source says of its own schedule, in seconds, each None when it says nothing."""

    ttl_s: int | None = None  # RSS <ttl>
    update_period_s: int | None = None  # sy:updatePeriod / sy:updateFrequency
    max_age_s: int | None = None  # Cache-Control: max-age (or s-maxage)
    expires_s: int | None = None  # Expires, from the answer's Date (or now)


def cache_hints(headers: Mapping[str, str], now: datetime) -> Hints:
    """The HTTP caching lifetime an answer declares: `Cache-Control: max-age`, else `Expires`."""
    max_age: int | None = None
    control = headers.get("cache-control", "").lower()
    if "no-store" not in control and "no-cache" not in control:
        for part in control.split(","):
            key, _, value = part.strip().partition("=")
            if key in ("max-age", "s-maxage") and value.strip('" ').isdigit():
                max_age = max(max_age or 0, int(value.strip('" ')))
    expires: int | None = None
    if max_age is None and headers.get("expires"):
        when, date = _http_date(headers.get("expires")), _http_date(headers.get("date"))
        if when is not None:
            expires = max(0, int((when - (date or now)).total_seconds()))
    return Hints(max_age_s=max_age, expires_s=expires)


def _http_date(value: str | None) -> datetime | None:
    from email.utils import parsedate_to_datetime

    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


QUIET_POLLS = 6  # polls in a row without a new item before a source is polled less often
BUSY_POLLS = 3  # polls in a row with new items before it is polled more often


def describe(delta: timedelta) -> str:
    """`90s`, `30m`, `2h`, `1d`, or `1h30m`: how durations are written in the config."""
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60}m"
    return f"{seconds // 60}m{seconds % 60}s" if seconds >= 60 and seconds % 60 else f"{seconds}s"


def next_poll(
    name: str,
    started: datetime,
    interval: timedelta,
    bounds: tuple[timedelta, timedelta],
    hints: Hints,
    recent_new: Sequence[int],
) -> tuple[datetime, str]:
    """When a source that just answered is polled next, and why. From the interval, the observed
    rate (`recent_new`: new items of the latest polls, this one first) halves the wait after
    BUSY_POLLS polls in a row with new items and doubles it after QUIET_POLLS without; the
    publisher's own word (the feed's ttl or syndication period, the answer's caching lifetime) is
    a floor, since asking sooner gets the same answer; the source's bounds have the last word."""
    wait, reason = interval, f"interval {describe(interval)}"
    if len(recent_new) >= BUSY_POLLS and all(n > 0 for n in recent_new[:BUSY_POLLS]):
        wait, reason = interval / 2, f"new items in each of the last {BUSY_POLLS} polls"
    elif len(recent_new) >= QUIET_POLLS and not any(recent_new[:QUIET_POLLS]):
        wait, reason = interval * 2, f"no new item in {QUIET_POLLS} polls"
    said = [
        (seconds, label)
        for seconds, label in (
            (hints.ttl_s, "the feed's ttl"),
            (hints.update_period_s, "the feed's sy:updatePeriod"),
            (hints.max_age_s, "Cache-Control max-age"),
            (hints.expires_s, "Expires"),
        )
        if seconds is not None
    ]
    if said:
        seconds, label = max(said)
        if timedelta(seconds=seconds) > wait:
            wait, reason = timedelta(seconds=seconds), f"{label} {describe(timedelta(seconds=seconds))}"
    low, high = bounds
    if wait < low:
        wait, reason = low, f"{reason}, held to min_interval {describe(low)}"
    elif wait > high:
        wait, reason = high, f"{reason}, held to max_interval {describe(high)}"
    if wait != interval or not reason.startswith("interval"):
        reason = f"{describe(wait)}: {reason}"
    return started + wait + jitter(name, wait), reason


def backoff(interval: timedelta, errors: int, *, cap: timedelta = BACKOFF_CAP) -> timedelta:
    """The wait after `errors` earlier consecutive failures: the interval doubled each time, at most `cap`."""
    wait: timedelta = interval * (2 ** min(errors, 20))
    return min(cap, wait)


def retry_wait(interval: timedelta, errors: int, retry_after_s: float | None) -> timedelta:
    """How long a source that just failed waits: its back-off, or the server's Retry-After when
    longer (at most a day). `errors` counts the failures before this one."""
    wait = backoff(interval, errors)
    if retry_after_s is not None:
        wait = max(wait, min(DAY, timedelta(seconds=retry_after_s)))
    return wait


# -- re-checks ---------------------------------------------------------------------------------


def is_home_page(original: str, final: str) -> bool:
    """A redirect from an article to its site's front page (how some sites take articles down)."""
    before, after = urlsplit(original), urlsplit(final)
    return after.path in ("", "/") and before.path not in ("", "/")


GONE = frozenset({404, 410})  # the statuses that say an article was taken down


def takedown_reason(url: str, final_url: str, text: str | None) -> str | None:
    """Why a re-checked article that answered counts as taken down (a redirect to the home page,
    its text gone), or None. `text` is None while the page is not yet read."""
    if is_home_page(url, final_url):
        return f"redirected to the home page {final_url}"
    if text is not None and not text.strip():
        return "the article's text is gone"
    return None
