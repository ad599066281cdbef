"""Matching cost per article at 10, 1,000 and 10,000 watchlist names, beside a regex alternation
of the same names (the naive way), over 1,000 articles of about 5,000 characters."""

from __future__ import annotations

import random
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.prose import prose

from d24watch.match import Matcher
from d24watch.watchlist import load_watchlist

SURNAMES = [
    "Nguyễn",
    "Trần",
    "Lê",
    "Phạm",
    "Hoàng",
    "Huỳnh",
    "Phan",
    "Vũ",
    "Võ",
    "Đặng",
    "Bùi",
    "Đỗ",
    "Hồ",
    "Ngô",
    "Dương",
    "Lý",
]
MIDDLE = [
    "Văn",
    "Thị",
    "Đức",
    "Minh",
    "Hữu",
    "Quốc",
    "Ngọc",
    "Thanh",
    "Xuân",
    "Đình",
    "Công",
    "Bá",
    "Tường",
    "Duy",
    "Chí",
]
GIVEN = [
    "Bình",
    "Hùng",
    "Nhiên",
    "Thắng",
    "Thụy",
    "Nhất",
    "Bách",
    "Trang",
    "Hồng",
    "Khanh",
    "Lợi",
    "Dương",
    "Lượng",
    "Thức",
    "Dũng",
    "Tuấn",
    "Thành",
    "Thêu",
    "Phương",
    "Tâm",
    "Hạnh",
    "Thái",
    "San",
    "Triển",
    "Tuyến",
    "Tiến",
    "Quỳnh",
    "Hóa",
    "Lâm",
    "Đài",
    "Thạch",
    "Vinh",
]


def names(count: int, rng: random.Random) -> list[str]:
    out: set[str] = set()
    while len(out) < count:
        out.add(f"{rng.choice(SURNAMES)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)} {rng.choice(GIVEN)}"[:40])
    return sorted(out)


def watchlist_file(folder: Path, people: list[str]) -> Path:
    path = folder / f"wl{len(people)}.toml"
    entries = [
        f'[[entity]]\nid = "p{i}"\nlabel = "{n}"\nkind = "person"\nterms = ["{n}"]\n' for i, n in enumerate(people)
    ]
    path.write_text("\n".join(entries), "utf-8")
    return path


def articles(count: int, people: list[str], rng: random.Random) -> list[str]:
    out = []
    for i in range(count):
        text = " ".join(prose(i, 800))[:5000]
        if i % 10 == 0:
            cut = rng.randrange(len(text))
            text = text[:cut] + " " + rng.choice(people) + " " + text[cut:]
        out.append(text)
    return out


def main() -> None:
    import tempfile

    rng = random.Random(24)
    folder = Path(tempfile.mkdtemp())
    print(
        f"{'names':>7} {'automaton ms/article':>21} {'regex ms/article':>17} {'compile s':>10} {'articles matched':>17}"
    )
    for count in (10, 1000, 10000):
        people = names(count, rng)
        docs = articles(1000, people, rng)
        started = time.perf_counter()
        matcher = Matcher(load_watchlist(watchlist_file(folder, people)))
        compile_s = time.perf_counter() - started
        started = time.perf_counter()
        matched = sum(bool(matcher.match("", d)) for d in docs)
        ours = (time.perf_counter() - started) * 1000 / len(docs)
        pattern = re.compile("|".join(re.escape(p) for p in people), re.IGNORECASE)
        sample = docs[:100]
        started = time.perf_counter()
        for d in sample:
            pattern.findall(d)
        naive = (time.perf_counter() - started) * 1000 / len(sample)
        print(f"{count:>7} {ours:>21.3f} {naive:>17.3f} {compile_s:>10.2f} {matched:>17}")


if __name__ == "__main__":
    main()
