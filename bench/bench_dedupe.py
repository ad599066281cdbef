"""Near-duplicate lookup and insert with 10,000, 100,000 and 1,000,000 articles already stored.

The stored articles' signatures and LSH band keys are synthetic (uniformly random, as MinHash band
hashes are) and written straight into the tables; 100 real articles are then stored through
Store.insert_article (signature, band keys, search index, revision) and looked up again as copies
with 1% of their words changed, and 200 unrelated texts are looked up as misses. Each size is
measured in a fresh child process, whose memory (PSS) is reported.

    python bench/bench_dedupe.py [--sizes 10000,100000,1000000]
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers import tree_rss  # noqa: E402
from tests.prose import prose  # noqa: E402

from d24watch.dedupe import BANDS, PERMUTATIONS, Signature, is_near_duplicate, signature, text_hash  # noqa: E402
from d24watch.store import Store  # noqa: E402
from d24watch.store.rows import NewArticle  # noqa: E402


def fill(path: Path, count: int) -> float:
    """`count` synthetic stored articles: signatures and band keys, written in key order."""
    started = time.perf_counter()
    store = Store(path)
    store.migrate()
    store.close()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = OFF")
    rng = np.random.default_rng(7)
    db.execute("BEGIN")
    chunk = 100_000
    for first in range(1, count + 1, chunk):
        ids = range(first, min(count, first + chunk - 1) + 1)
        values = rng.integers(0, 2**32, size=(len(ids), PERMUTATIONS), dtype=np.uint32)
        db.executemany(
            "INSERT INTO signatures(article_id, shingles, sig) VALUES (?, 300, ?)",
            ((i, values[n].astype("<u4").tobytes()) for n, i in enumerate(ids)),
        )
    keys = rng.integers(-(2**63), 2**63 - 1, size=count * BANDS, dtype=np.int64)
    owners = np.repeat(np.arange(1, count + 1, dtype=np.int64), BANDS)
    order = np.argsort(keys, kind="stable")
    keys, owners = keys[order], owners[order]
    for start in range(0, len(keys), 1_000_000):
        db.executemany(
            "INSERT OR IGNORE INTO lsh(key, article_id) VALUES (?, ?)",
            zip(keys[start : start + 1_000_000].tolist(), owners[start : start + 1_000_000].tolist(), strict=True),
        )
    # Real articles stored later get ids above the synthetic ones.
    db.execute(
        "INSERT INTO articles(id, source, url, canonical_url, title, fetched_at, text, text_hash) "
        "VALUES (?, 'synthetic', 'urn:x', 'urn:x', '', '2024-01-01T00:00:00Z', '', '')",
        (count,),
    )
    db.execute("COMMIT")
    db.close()
    return time.perf_counter() - started


def edit(text: str, share: float, rng: random.Random) -> str:
    words = text.split()
    for _ in range(max(1, int(len(words) * share))):
        words[rng.randrange(len(words))] = rng.choice(["tiger", "lotus", "harbour", "ferry", "cargo"])
    return " ".join(words)


def child(path: str) -> None:
    rng = random.Random(11)
    store = Store(Path(path))
    originals = [" ".join(prose(50_000 + n, words=700)) for n in range(100)]
    inserts = []
    for n, text in enumerate(originals):
        sig = signature(text)
        started = time.perf_counter()
        with store.transaction():
            store.insert_article(
                NewArticle(
                    source="bench",
                    url=f"http://bench.example/{n}",
                    canonical_url=f"http://bench.example/{n}",
                    title=f"Story {n}",
                    fetched_at="2024-05-06T00:00:00Z",
                    language="en",
                    text=text,
                    text_hash=text_hash(text),
                ),
                sig,
            )
        inserts.append(time.perf_counter() - started)

    def near_duplicate(sig: Signature) -> int | None:
        """What the poll does for a new text: the first LSH candidate that is a near-duplicate."""
        return next((i for i, old in store.near_candidates(sig) if is_near_duplicate(sig, old, 0.8)), None)

    hits, found = [], 0
    for text in originals * 2:
        sig = signature(edit(text, 0.01, rng))
        started = time.perf_counter()
        match = near_duplicate(sig)
        hits.append(time.perf_counter() - started)
        found += match is not None
    misses, false = [], 0
    for n in range(200):
        sig = signature(" ".join(prose(90_000 + n, words=700)))
        started = time.perf_counter()
        match = near_duplicate(sig)
        misses.append(time.perf_counter() - started)
        false += match is not None
    store.close()

    def ms(values: list[float], q: float) -> float:
        return sorted(values)[int(len(values) * q) - 1] * 1000

    print(
        json.dumps(
            {
                "insert_ms": statistics.median(inserts) * 1000,
                "hit_ms": statistics.median(hits) * 1000,
                "hit_p95_ms": ms(hits, 0.95),
                "miss_ms": statistics.median(misses) * 1000,
                "miss_p95_ms": ms(misses, 0.95),
                "found": found / len(hits),
                "false": false,
                "pss_mb": tree_rss(__import__("os").getpid()) / 1e6,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000,1000000")
    args = parser.parse_args()
    print(
        "| stored | fill s | insert ms | lookup hit ms (p95) | lookup miss ms (p95) | found | false | process MB | db MB |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="d24dedupe-") as folder:
            path = Path(folder) / "d.db"
            filled = fill(path, size)
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(path)], capture_output=True, text=True, check=True
            ).stdout
            r = json.loads(out)
            db_mb = sum(p.stat().st_size for p in Path(folder).iterdir()) / 1e6
            print(
                f"| {size:,} | {filled:.0f} | {r['insert_ms']:.2f} | {r['hit_ms']:.2f} ({r['hit_p95_ms']:.2f}) | "
                f"{r['miss_ms']:.2f} ({r['miss_p95_ms']:.2f}) | {r['found']:.0%} | {r['false']} | {r['pss_mb']:.0f} | {db_mb:,.0f} |",
                flush=True,
            )
    print("\nStored signatures and band keys are synthetic (uniformly random); the 100 articles looked up are real")
    print("texts stored through Store.insert_article, looked up as copies with 1% of words changed.")
    print("goal: lookup under 5 ms at 1,000,000 stored articles, process under 300 MB")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(sys.argv[2])
    else:
        main()
