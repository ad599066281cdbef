"""The decisions of a poll and a re-check as tables: new, copy or revision; which text to keep;
duplicate of what; when to poll next; what counts as a takedown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from d24watch.aggregator import article_id, batch_answer, decode_id, interstitial_params, plain_title
from d24watch.decide import (
    Candidate,
    DuplicateOf,
    Hints,
    backoff,
    boilerplate,
    cache_hints,
    candidates,
    copy_candidates,
    duplicate_of,
    is_home_page,
    jitter,
    next_poll,
    original_first,
    page_canonical,
    plan_items,
    retry_wait,
    revision_reason,
    takedown_reason,
    text_to_keep,
)
from d24watch.dedupe import signature
from d24watch.models import ArticleText, FeedEntry, KnownArticle
from tests.doubles import new_id, old_id
from tests.prose import prose

NOW = datetime(2026, 5, 6, 10, 0, tzinfo=UTC)


def _entry(link: str | None = "http://x.example/a", guid: str | None = None, **kw: object) -> FeedEntry:
    values: dict[str, object] = {"title": "T", "summary": "S", "published_at": None, "updated_marker": None}
    values.update(kw)
    return FeedEntry(guid, link, **values)  # type: ignore[arg-type]


def _known(
    article_id: int = 1, *, pending: bool = False, marker: str | None = None, copy_of: int | None = None
) -> KnownArticle:
    return KnownArticle(article_id, "http://x.example/a", "h1", pending, marker, 1, copy_of)


# -- feed items --------------------------------------------------------------------------------


def test_candidates_drop_empty_entries_and_repeated_guids_or_urls() -> None:
    """Of two entries with one GUID or one URL the first stands; an entry with nothing is dropped."""
    entries = [
        _entry("http://x.example/a?utm_source=rss", "g1"),
        _entry("http://x.example/b", "g1"),  # same GUID
        _entry("http://x.example/a?utm_source=rss", "g2"),  # same URL
        _entry(None, None, title="", summary=""),  # nothing in it
        _entry(None, "g3", title="No link"),
    ]
    found = candidates("http://x.example/feed", entries)
    assert [c.entry.guid for c in found] == ["g1", "g3"]
    assert found[0].canonical == "http://x.example/a"
    assert found[1].url.startswith("http://x.example/feed#item-")
    assert candidates("http://x.example/feed", [entries[4]])[0].url == found[1].url  # stable placeholder


@pytest.mark.parametrize(
    ("seen", "original", "entry", "action"),
    [
        pytest.param(None, None, _entry(), "new", id="unseen"),
        pytest.param(None, _known(5), _entry(), "duplicate", id="known-canonical"),
        pytest.param(_known(), None, _entry(), None, id="seen-unchanged"),
        pytest.param(_known(pending=True), None, _entry(), "revise", id="page-was-pending"),
        pytest.param(_known(pending=True), None, _entry(link=None, guid="g"), None, id="pending-without-link"),
        pytest.param(_known(marker="v1"), None, _entry(updated_marker="v2"), "revise", id="feed-says-updated"),
        pytest.param(_known(marker="v1"), None, _entry(updated_marker="v1"), None, id="same-marker"),
        pytest.param(_known(marker=None), None, _entry(updated_marker="v2"), None, id="no-earlier-marker"),
        pytest.param(_known(pending=True, copy_of=3), None, _entry(), None, id="a-copy-is-never-revised"),
    ],
)
def test_plan_items(
    seen: KnownArticle | None, original: KnownArticle | None, entry: FeedEntry, action: str | None
) -> None:
    """What each entry becomes, given how it was stored before and the original under its URL."""
    candidate = Candidate(entry, entry.link or "http://x.example/feed#item-1", "http://x.example/a")
    intents = plan_items([(candidate, seen, original)])
    assert [i.action for i in intents] == ([action] if action else [])


def test_a_second_copy_in_one_batch_is_a_duplicate_of_the_first() -> None:
    """Two URLs with one canonical form in one feed: the first is new, the second waits for it."""
    a = Candidate(_entry("http://x.example/a?utm_source=x"), "http://x.example/a?utm_source=x", "http://x.example/a")
    b = Candidate(_entry("http://x.example/a#top"), "http://x.example/a#top", "http://x.example/a")
    intents = plan_items([(a, None, None), (b, None, None)])
    assert [(i.action, i.known) for i in intents] == [("new", None), ("duplicate", None)]


# -- text --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("page_chars", "summary_chars", "keeps_page"),
    [(100, 150, True), (100, 200, True), (99, 200, False), (0, 0, True), (0, 3, False), (5000, 100, True)],
)
def test_the_page_is_kept_unless_it_gives_less_than_half_the_feed(
    page_chars: int, summary_chars: int, keeps_page: bool
) -> None:
    """A paywall or a script-only page: the feed's own text stands, with the page's canonical link."""
    page = ArticleText("p" * page_chars, "Page", None, None, "vi", "http://x.example/canonical")
    kept = text_to_keep(_entry(summary="s" * summary_chars), "en", page)
    if keeps_page:
        assert kept is None
    else:
        assert kept is not None and kept.text == "s" * summary_chars
        assert (kept.canonical_url, kept.language, kept.title) == ("http://x.example/canonical", "vi", "T")


@pytest.mark.parametrize(
    ("known", "new_hash", "text", "failed", "reason"),
    [
        (_known(), "h1", "same text", False, None),
        (_known(), "h2", "new text", False, "edited"),
        (_known(pending=True), "h2", "the page at last", False, "page"),
        (_known(pending=True), "h3", "", True, None),
        (_known(pending=True), "h3", "feed text", True, "page"),
    ],
)
def test_revision_reason(known: KnownArticle, new_hash: str, text: str, failed: bool, reason: str | None) -> None:
    assert revision_reason(known, new_hash, text, page_failed=failed) == reason


def test_the_pages_own_canonical_link_wins() -> None:
    assert page_canonical("http://x.example/a", None) == "http://x.example/a"
    assert page_canonical("http://x.example/a", "HTTP://X.example:80/b?utm_medium=x") == "http://x.example/b"


# -- duplicates --------------------------------------------------------------------------------


def test_copy_candidates_come_in_rule_order_canonical_hash_near() -> None:
    """The order of the rules, an empty text never a copy by hash, and only true near-duplicates."""
    text = " ".join(prose(1, words=300))
    sig = signature(text)
    near = [(9, signature(text.replace("the", "a", 1)))]
    far = [(8, signature(" ".join(prose(2, words=300))))]

    def found(canonical: KnownArticle | None, by_hash: KnownArticle | None, nearby: list) -> list[DuplicateOf]:  # type: ignore[type-arg]
        return copy_candidates(by_canonical=canonical, by_hash=by_hash, near=nearby, sig=sig, text=text, threshold=0.8)

    assert found(_known(3), _known(4), far + near) == [
        DuplicateOf(3, "canonical"),
        DuplicateOf(4, "text"),
        DuplicateOf(9, "near"),
    ]
    assert found(None, None, far) == []
    blank = copy_candidates(by_canonical=None, by_hash=_known(4), near=[], sig=signature(""), text="  ", threshold=0.8)
    assert blank == []


@pytest.mark.parametrize(
    ("names", "named", "copy_of"),
    [
        pytest.param(set(), {3: set()}, 3, id="names-nobody"),
        pytest.param({"binh"}, {3: {"binh"}}, 3, id="same-names"),
        pytest.param({"binh"}, {3: {"binh", "hong"}}, 3, id="original-names-more"),
        pytest.param({"binh", "hong"}, {3: {"binh"}}, None, id="adds-a-detainee"),
        pytest.param({"hong"}, {3: {"binh"}, 4: {"hong"}}, 4, id="another-candidate-names-them"),
        pytest.param({"binh"}, {}, None, id="candidate-names-nobody"),
    ],
)
def test_a_duplicate_never_hides_a_mention(names: set[str], named: dict[int, set[str]], copy_of: int | None) -> None:
    """A text is a copy only of a stored text that names every entity it names."""
    candidates = [DuplicateOf(3, "near"), DuplicateOf(4, "near")]
    found = duplicate_of(candidates, frozenset(names), {k: frozenset(v) for k, v in named.items()})
    assert (found.article_id if found else None) == copy_of


def test_the_original_is_the_earliest_then_the_self_canonical_then_the_first_fetched() -> None:
    early = datetime(2024, 5, 1, tzinfo=UTC)
    late = datetime(2024, 5, 2, tzinfo=UTC)

    def item(url: str, published: datetime | None, canonical: str | None) -> tuple[FeedEntry, str, ArticleText]:
        return (_entry(url, published_at=published), url, ArticleText("t", None, None, None, None, canonical))

    batch = [
        item("http://x.example/amp/story", None, "http://x.example/story"),
        item("http://x.example/story", None, "http://x.example/story"),
        item("http://y.example/reprint", late, None),
        item("http://z.example/first", early, None),
    ]
    assert original_first(batch) == [3, 2, 1, 0]
    assert original_first([item("http://a.example/1", None, None), item("http://a.example/2", None, None)]) == [0, 1]


# -- when to poll next -------------------------------------------------------------------------


def test_next_poll_is_the_interval_plus_a_stable_jitter_of_at_most_a_tenth() -> None:
    interval = timedelta(minutes=30)
    spread = {jitter(f"source {n}", interval) for n in range(50)}
    assert all(timedelta(0) <= j <= interval / 10 for j in spread) and len(spread) > 40
    bounds = (interval / 2, interval * 4)
    due, _ = next_poll("a", NOW, interval, bounds, Hints(), [])
    assert due == next_poll("a", NOW, interval, bounds, Hints(), [])[0]
    assert NOW + interval <= due <= NOW + interval * 1.1


@pytest.mark.parametrize(
    ("errors", "retry_after_s", "wait"),
    [
        (0, None, timedelta(minutes=30)),
        (1, None, timedelta(hours=1)),
        (3, None, timedelta(hours=4)),
        (10, None, timedelta(days=1)),
        (200, None, timedelta(days=1)),
        (0, 7200, timedelta(hours=2)),
        (3, 60, timedelta(hours=4)),
        (0, 10 * 86400, timedelta(days=1)),
    ],
)
def test_a_failed_source_backs_off_and_honours_retry_after_up_to_a_day(
    errors: int, retry_after_s: float | None, wait: timedelta
) -> None:
    assert retry_wait(timedelta(minutes=30), errors, retry_after_s) == wait
    assert backoff(timedelta(minutes=30), errors) <= timedelta(days=1)


# -- re-checks ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "final", "text", "reason"),
    [
        ("http://x.example/news/a", "http://x.example/", None, "redirected to the home page http://x.example/"),
        ("http://x.example/news/a", "http://x.example", "text", "redirected to the home page http://x.example"),
        ("http://x.example/", "http://x.example/", "text", None),
        ("http://x.example/news/a", "http://x.example/news/a-2", "text", None),
        ("http://x.example/news/a", "http://x.example/news/a", " \n", "the article's text is gone"),
        ("http://x.example/news/a", "http://x.example/news/a", None, None),
    ],
)
def test_takedown_reason(url: str, final: str, text: str | None, reason: str | None) -> None:
    assert takedown_reason(url, final, text) == reason
    assert is_home_page(url, final) == (reason is not None and reason.startswith("redirected"))


@pytest.mark.parametrize(
    ("stored", "batch", "site"),
    [
        pytest.param({}, {}, set(), id="nothing-known"),
        pytest.param({1: 3}, {}, {1}, id="on-three-stored-pages"),
        pytest.param({1: 2}, {1: 1}, set(), id="two-stored-and-this-page"),
        pytest.param({1: 2}, {1: 2}, {1}, id="two-stored-and-one-more-in-the-batch"),
        pytest.param({}, {1: 4, 2: 1}, {1}, id="learnt-from-the-batch-alone"),
    ],
)
def test_a_block_is_the_sites_when_it_is_on_three_other_pages(
    stored: dict[int, int], batch: dict[int, int], site: set[int]
) -> None:
    """Stored pages of the site count, and pages of the same batch (which count this page too)."""
    assert boilerplate([1, 2, 3], stored, batch) == site


# -- the source's own schedule -------------------------------------------------------------------


T0 = datetime(2024, 12, 2, 8, 0, tzinfo=UTC)
HALF_HOUR = timedelta(minutes=30)
BOUNDS = (timedelta(minutes=15), timedelta(hours=2))


def _wait(hints: Hints, recent: list[int], bounds: tuple[timedelta, timedelta] = BOUNDS) -> tuple[timedelta, str]:
    due, reason = next_poll("src", T0, HALF_HOUR, bounds, hints, recent)
    return due - T0, reason


def test_next_poll_is_the_interval_when_the_source_says_nothing() -> None:
    wait, reason = _wait(Hints(), [1, 0, 2])
    assert HALF_HOUR <= wait <= HALF_HOUR * 1.1 and reason == "interval 30m"


def test_busy_sources_are_polled_sooner_and_quiet_ones_later_within_bounds() -> None:
    busy, why = _wait(Hints(), [3, 1, 2])
    assert timedelta(minutes=15) <= busy < timedelta(minutes=17) and why == "15m: new items in each of the last 3 polls"
    quiet, why = _wait(Hints(), [0] * 6)
    assert timedelta(hours=1) <= quiet < timedelta(minutes=67) and why == "1h: no new item in 6 polls"
    held, why = _wait(Hints(), [0] * 6, (timedelta(minutes=15), timedelta(minutes=40)))
    assert timedelta(minutes=40) <= held < timedelta(minutes=45) and why.endswith("held to max_interval 40m")


def test_the_publishers_word_is_a_floor_and_the_longest_one_counts() -> None:
    wait, why = _wait(Hints(ttl_s=3600, max_age_s=600), [1, 1, 1])
    assert timedelta(hours=1) <= wait < timedelta(minutes=67) and why == "1h: the feed's ttl 1h"
    short, why = _wait(Hints(max_age_s=60), [])
    assert short >= HALF_HOUR and why == "interval 30m"  # a short lifetime never makes polls more frequent
    period, why = _wait(Hints(update_period_s=1800 * 3), [])
    assert period >= timedelta(minutes=90) and why == "90m: the feed's sy:updatePeriod 90m"


def test_cache_hints_read_max_age_then_expires_and_ignore_no_cache() -> None:
    assert cache_hints({"cache-control": "public, max-age=900"}, T0).max_age_s == 900
    assert cache_hints({"cache-control": "no-cache, max-age=900"}, T0).max_age_s is None
    expires = cache_hints({"expires": "Mon, 02 Dec 2024 09:00:00 GMT", "date": "Mon, 02 Dec 2024 08:30:00 GMT"}, T0)
    assert expires.expires_s == 1800
    assert cache_hints({"expires": "0"}, T0) == Hints()


# -- aggregator links ----------------------------------------------------------------------------


def test_old_ids_carry_the_publishers_url_and_new_ones_do_not() -> None:
    url = "https://www.reuters.com/world/asia-pacific/vietnam-arrests-2024-12-02/"
    assert decode_id(old_id(url)) == url
    assert decode_id(new_id("opaque")) is None
    assert decode_id("not base64 at all!") is None
    assert article_id(f"https://news.google.com/rss/articles/{old_id(url)}?oc=5") == old_id(url)
    assert article_id("https://news.google.com/topics/abc") is None


def test_interstitial_and_answer_parsing() -> None:
    page = (
        b'<c-wiz><div jscontroller="x" data-n-a-id="ID1" data-n-a-ts="1733000000" data-n-a-sg="S&amp;G"></div></c-wiz>'
    )
    params = interstitial_params(page, "ID0")
    assert params is not None and (params.identifier, params.timestamp, params.signature) == (
        "ID1",
        "1733000000",
        "S&G",
    )
    assert interstitial_params(b"<html>nothing</html>", "ID0") is None
    answer = b')]}\'\n\n[["wrb.fr","Fbv4je","[\\"garturlres\\",\\"https://apnews.com/article/x\\",1]",null,null,null,"generic"]]'
    assert batch_answer(answer) == "https://apnews.com/article/x"
    assert batch_answer(b')]}\'\n\n[["wrb.fr","Fbv4je","[\\"garturlres\\",\\"javascript:alert(1)\\",1]"]]') is None
    assert plain_title("Lawyer still jailed - AP News", "AP News") == "Lawyer still jailed"
    assert plain_title("A - B", None) == "A - B"
