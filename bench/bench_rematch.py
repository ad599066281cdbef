"""`d24watch rematch` at archive scale: a store of N articles (default 100,000) built from real
texts (the extraction corpus's pages and the labelled mentions, repeated with random word edits so
that every text is distinct), then the real command run as a child process over all of it, with
the shipped watchlist. Prints wall time, articles per second and the peak memory (PSS) of the
process tree.

    python bench/bench_rematch.py [--articles 100000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.helpers import tree_rss  # noqa: E402

from d24watch.dedupe import text_hash  # noqa: E402
from d24watch.store import Store, iso  # noqa: E402
from d24watch.store.rows import NewArticle  # noqa: E402

CORPORA = ROOT.parent / "shared" / "corpora"


def real_texts() -> list[str]:
    """Pages of the extraction corpus as d24watch extracts them, and the labelled passages."""
    from d24watch.extract import extract_text

    texts = []
    for page in sorted((CORPORA / "extraction").glob("*/html/*.htm*")):
        text = extract_text(page.read_bytes())
        if len(text) > 500:
            texts.append(text)
    dev = CORPORA / "mentions-dev" / "mentions.jsonl"
    if dev.is_file():
        texts += [json.loads(line)["text"] for line in dev.read_text("utf-8").splitlines() if line.strip()]
    if not texts:
        from tests.prose import prose

        texts = ["\n".join(prose(n, 600)) for n in range(50)]
    return texts


def edited(text: str, rng: random.Random, vocabulary: list[str]) -> str:
    words = text.split(" ")
    for _ in range(max(1, len(words) // 50)):
        words[rng.randrange(len(words))] = rng.choice(vocabulary)
    return " ".join(words)


def build(path: Path, count: int) -> float:
    started = time.perf_counter()
    store = Store(path)
    store.migrate()
    texts = real_texts()
    vocabulary = sorted({w for t in texts for w in t.split() if w.isalpha()})
    rng = random.Random(24)
    now = iso(datetime(2026, 1, 1, tzinfo=UTC)) or ""
    done = 0
    while done < count:
        with store.transaction():
            for _ in range(min(2000, count - done)):
                base = texts[done % len(texts)]
                text = edited(base, rng, vocabulary)
                url = f"https://archive.example/{done}"
                row = NewArticle(
                    source="archive",
                    url=url,
                    canonical_url=url,
                    title=f"Story {done}",
                    fetched_at=now,
                    text=text,
                    text_hash=text_hash(text),
                )
                store.insert_article(row, None)
                done += 1
        print(f"\rbuilt {done:,} articles", end="", file=sys.stderr, flush=True)
    store.set_meta("seeds_imported", now)
    store.close()
    print(file=sys.stderr)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="keep the folder (and reuse a store built there before)")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="d24watch-rematch-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        database = folder / "state" / "d24watch.db"
        if not database.exists():
            database.parent.mkdir(parents=True, exist_ok=True)
            built = build(database, args.articles)
            print(f"store: {args.articles:,} articles built in {built:.0f} s ({database.stat().st_size / 1e6:.0f} MB)")
        shutil.copy(ROOT / "config" / "watchlist.toml", folder / "watchlist.toml")
        config = folder / "d24watch.toml"
        config.write_text(
            '[storage]\ndatabase = "state/d24watch.db"\n[watch]\nwatchlist = "watchlist.toml"\n'
            '[notify.file]\nmode = "digest"\ndirectory = "state/outbox"\n',
            "utf-8",
        )
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "d24watch", "--config", str(config), "rematch"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        peak = 0
        while proc.poll() is None:
            peak = max(peak, tree_rss(proc.pid))
            time.sleep(0.05)
        out, err = proc.communicate()
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            print(err, file=sys.stderr)
            return 1
        print(out.strip())
        print("\n| run | articles | wall s | articles/s | peak MB (PSS) |")
        print("|---|---:|---:|---:|---:|")
        print(
            f"| d24watch rematch, shipped watchlist | {args.articles:,} | {wall:.1f} | {args.articles / wall:,.0f} | {peak / 1e6:.0f} |"
        )
        print(f"\ngoal: under 180 s: {wall:.0f} s ({'met' if wall < 180 else 'NOT met'})")
        print(f"goal: under 300 MB: {peak / 1e6:.0f} MB ({'met' if peak < 300e6 else 'NOT met'})")
        return 0
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
