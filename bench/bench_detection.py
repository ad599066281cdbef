"""Detection on real text: the shipped watchlist over ../shared/corpora/mentions-dev (passages copied
from real pages, each labelled with the entities it refers to), scored per (passage, entity):
precision and recall overall, by language and by kind, then every miss and every false hit.

    python bench/bench_detection.py [--watchlist config/watchlist.toml] [--set PATH] [--quiet]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from d24watch.match import Matcher  # noqa: E402
from d24watch.watchlist import load_watchlist  # noqa: E402

DEV = ROOT.parent / "shared" / "corpora" / "mentions-dev" / "mentions.jsonl"


def score(rows: list[dict[str, object]], matcher: Matcher) -> dict[str, object]:
    """Counts per group (all, lang:*, kind:*), and the misses and false hits."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # tp, fp, fn
    misses: list[tuple[str, str, str]] = []
    false_hits: list[tuple[str, str, str]] = []
    negatives_hit = 0
    for row in rows:
        labels = set(row["labels"])  # type: ignore[arg-type]
        found = {m.entity_id for m in matcher.match("", str(row["text"]))}
        tp, fp, fn = len(found & labels), len(found - labels), len(labels - found)
        for group in ("all", f"lang:{row['lang']}", f"kind:{row['kind']}"):
            counts[group][0] += tp
            counts[group][1] += fp
            counts[group][2] += fn
        if row["kind"] == "hard-negative" and found:
            negatives_hit += 1
        misses += [(str(row["id"]), e, str(row["text"])) for e in sorted(labels - found)]
        false_hits += [(str(row["id"]), e, str(row["text"])) for e in sorted(found - labels)]
    return {"counts": dict(counts), "misses": misses, "false": false_hits, "negatives_hit": negatives_hit}


def ratio(a: int, b: int) -> str:
    return f"{a / b:.2f}" if b else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watchlist", type=Path, default=ROOT / "config" / "watchlist.toml")
    parser.add_argument("--set", type=Path, default=DEV, help="a JSON Lines file of labelled passages")
    parser.add_argument("--quiet", action="store_true", help="the table only, not the misses")
    args = parser.parse_args()
    if not args.set.is_file():
        print(f"no labelled set at {args.set}: nothing to measure", file=sys.stderr)
        return 0
    rows = [json.loads(line) for line in args.set.read_text("utf-8").splitlines() if line.strip()]
    started = time.perf_counter()
    matcher = Matcher(load_watchlist(args.watchlist))
    result = score(rows, matcher)
    elapsed = time.perf_counter() - started
    counts: dict[str, list[int]] = result["counts"]  # type: ignore[assignment]
    print(f"{len(rows)} passages from {args.set.name}; watchlist {args.watchlist.name}; {elapsed:.2f} s\n")
    print("| group | mentions | found | false hits | precision | recall |")
    print("|---|---:|---:|---:|---:|---:|")
    order = ["all", "lang:en", "lang:vi", "kind:positive", "kind:multi", "kind:hard-positive", "kind:hard-negative"]
    for group in order + sorted(set(counts) - set(order)):
        if group not in counts:
            continue
        tp, fp, fn = counts[group]
        print(f"| {group} | {tp + fn} | {tp} | {fp} | {ratio(tp, tp + fp)} | {ratio(tp, tp + fn)} |")
    pos = [
        sum(x) for x in zip(counts.get("kind:positive", [0, 0, 0]), counts.get("kind:multi", [0, 0, 0]), strict=True)
    ]
    print(
        f"| positive + multi | {pos[0] + pos[2]} | {pos[0]} | {pos[1]} | {ratio(pos[0], pos[0] + pos[1])} | {ratio(pos[0], pos[0] + pos[2])} |"
    )
    print(f"\nhard negatives with any hit: {result['negatives_hit']}")
    if not args.quiet:
        for title, items in (("misses", result["misses"]), ("false hits", result["false"])):
            print(f"\n{title}: {len(items)}")  # type: ignore[arg-type]
            for passage, entity, text in items:  # type: ignore[attr-defined]
                print(f"  {passage} {entity}: {' '.join(text.split())[:160]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
