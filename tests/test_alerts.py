"""The alert rule as a table: for every occasion, which hits are recorded and what is queued, to
which channels, under which delivery ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from d24watch.alerts import AlertPlan, Occasion, delivery_id, plan_alerts
from d24watch.channels import ChannelConfig, FileChannel, WebhookChannel
from d24watch.models import MENTION, EntityMatch, EventRef, Hit
from d24watch.watchlist import Entity, Watchlist

WATCHLIST = Watchlist(
    Path("watchlist.toml"),
    (
        Entity("binh", "Nguyễn Văn Bình", "person", "high", ("Nguyễn Văn Bình",)),
        Entity("hong", "Hoàng Thị Minh Hồng", "person", "high", ("Hoàng Thị Minh Hồng",)),
        Entity("rice", "Rice prices", "topic", "normal", ("rice",)),
    ),
)
HOOK = WebhookChannel("hook", "immediate", "http://127.0.0.1:9/hook")
FILE = FileChannel("file", "digest", Path("outbox"))
CHANNELS: tuple[ChannelConfig, ...] = (HOOK, FILE)
CHANGED = EventRef("changed", 17)
REMOVED = EventRef("removed", 18)


def _match(entity_id: str) -> EntityMatch:
    return EntityMatch(entity_id, (Hit(entity_id, entity_id, 0, len(entity_id), entity_id),))


def _plan(
    occasion: Occasion, matched: list[str], had: set[str], *, event: EventRef = MENTION, seed: bool = False
) -> AlertPlan:
    return plan_alerts(
        occasion,
        article_id=7,
        matches=[_match(e) for e in matched],
        had=frozenset(had),
        channels=CHANNELS,
        watchlist=WATCHLIST,
        event=event,
        is_seed=seed,
    )


# (occasion, matched now, named before, event, seed) -> (hits recorded, entities alerted, as)
TABLE = [
    pytest.param(
        "new", ["binh", "rice"], set(), MENTION, False, ["binh", "rice"], ["binh", "rice"], "mention", id="new"
    ),
    pytest.param("new", [], set(), MENTION, False, [], [], "mention", id="new-nothing"),
    pytest.param("new", ["binh"], set(), MENTION, True, ["binh"], [], "mention", id="seed-never-alerts"),
    pytest.param(
        "revision",
        ["binh", "hong"],
        {"binh"},
        MENTION,
        False,
        ["binh", "hong"],
        ["hong"],
        "mention",
        id="revision-new-entity",
    ),
    pytest.param("revision", ["binh"], {"binh"}, MENTION, False, ["binh"], [], "mention", id="revision-same"),
    pytest.param("revision", [], {"binh"}, MENTION, False, [], [], "mention", id="revision-drops-name"),
    pytest.param(
        "rematch", ["binh", "hong"], {"binh"}, MENTION, False, ["hong"], ["hong"], "mention", id="rematch-only-new"
    ),
    pytest.param("rematch", ["binh"], {"binh"}, MENTION, False, [], [], "mention", id="rematch-nothing-new"),
    pytest.param("rematch", ["hong"], set(), MENTION, True, ["hong"], [], "mention", id="rematch-seed"),
    pytest.param("baseline", ["binh"], set(), MENTION, False, ["binh"], [], "mention", id="watched-baseline"),
    pytest.param(
        "changed",
        ["binh"],
        {"binh", "hong"},
        CHANGED,
        False,
        ["binh"],
        ["binh", "hong"],
        "changed:17",
        id="changed-all",
    ),
    pytest.param(
        "changed", ["rice"], {"binh"}, CHANGED, False, ["rice"], ["binh", "rice"], "changed:17", id="changed-adds"
    ),
    pytest.param(
        "removed", [], {"binh", "rice"}, REMOVED, False, [], ["binh", "rice"], "removed:18", id="removed-takedown"
    ),
    pytest.param(
        "removed", ["rice"], {"binh", "rice"}, REMOVED, False, [], ["binh"], "removed:18", id="removed-watched"
    ),
    pytest.param("removed", ["binh"], {"binh"}, REMOVED, False, [], [], "removed:18", id="removed-nothing-gone"),
]


@pytest.mark.parametrize(("occasion", "matched", "had", "event", "seed", "recorded", "alerted", "as_"), TABLE)
def test_the_alert_rule(
    occasion: Occasion,
    matched: list[str],
    had: set[str],
    event: EventRef,
    seed: bool,
    recorded: list[str],
    alerted: list[str],
    as_: str,
) -> None:
    """Each occasion records and alerts what the rule's table in alerts.py says."""
    plan = _plan(occasion, matched, had, event=event, seed=seed)
    assert [m.entity_id for m in plan.hits] == recorded
    assert list(plan.entities) == alerted
    assert sorted({line.entity_id for line in plan.digest}) == alerted
    assert all(line.event.key == as_ and line.channel == "file" for line in plan.digest)
    high = [e for e in alerted if e != "rice"]
    if high:
        [delivery] = plan.deliveries
        assert (delivery.channel, delivery.event.key, list(delivery.entity_ids)) == ("hook", as_, high)
    else:
        assert plan.deliveries == ()


def test_entities_found_together_go_out_together_and_normal_ones_only_to_the_digest() -> None:
    """Two high entities share one immediate message; a normal one is digest-only."""
    plan = _plan("new", ["hong", "rice", "binh"], set())
    [delivery] = plan.deliveries
    assert delivery.entity_ids == ("binh", "hong")
    assert [(d.channel, d.entity_id) for d in plan.digest] == [("file", "binh"), ("file", "hong"), ("file", "rice")]


def test_delivery_ids_are_stable_and_differ_by_channel_article_event_and_entities() -> None:
    """The same alert planned twice has the same id (a re-run adds nothing); any difference changes it."""
    first = _plan("new", ["binh"], set()).deliveries[0].delivery_id
    assert _plan("new", ["binh"], set()).deliveries[0].delivery_id == first
    assert delivery_id("hook", 7, MENTION, ["binh"]) == first
    others = {
        delivery_id("other", 7, MENTION, ["binh"]),
        delivery_id("hook", 8, MENTION, ["binh"]),
        delivery_id("hook", 7, CHANGED, ["binh"]),
        delivery_id("hook", 7, MENTION, ["binh", "hong"]),
    }
    assert first not in others and len(others) == 4


def test_an_entity_no_longer_in_the_watchlist_is_recorded_but_not_sent_immediately() -> None:
    """A stored entity that the watchlist dropped has no priority: it goes to the digest only."""
    plan = _plan("changed", [], {"gone"}, event=CHANGED)
    assert plan.entities == ("gone",) and plan.deliveries == ()
    assert [d.entity_id for d in plan.digest] == ["gone"]


def test_no_channels_means_nothing_queued_but_hits_recorded() -> None:
    plan = plan_alerts("new", article_id=1, matches=[_match("binh")], had=frozenset(), channels=(), watchlist=WATCHLIST)
    assert [m.entity_id for m in plan.hits] == ["binh"] and plan.entities == ("binh",)
    assert plan.deliveries == () and plan.digest == ()


def test_event_keys_round_trip() -> None:
    """`changed:17` in the outbox is EventRef("changed", 17) and back; a mention has no id."""
    for ref in (MENTION, CHANGED, REMOVED):
        assert EventRef.from_key(ref.key) == ref
    assert MENTION.key == "mention" and CHANGED.key == "changed:17"
    with pytest.raises(ValueError):
        EventRef.from_key("digest")
