"""Render a sample email digest in headless Chromium at phone and desktop widths, to PNGs under
docs/. Not part of `make test`: it needs Debian's `chromium` package.

    python scripts/render_digest.py [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from d24watch.deliver.payload import digest_payload
from d24watch.deliver.render.email import render_html
from d24watch.watchlist import load_watchlist

ROOT = Path(__file__).resolve().parents[1]
WIDTHS = {"phone": (390, 1560), "desktop": (1280, 1080)}


def hit(text: str, snippet: str) -> dict[str, object]:
    return {"text": text, "start": 0, "end": len(text), "snippet": snippet}


def sample() -> dict[str, object]:
    """A digest of the kind a morning brings: English and Vietnamese articles, one article under
    two entities, a title with markup in it, and a failing source. The outlets and articles are
    made up for the picture."""
    watchlist = load_watchlist(ROOT / "config" / "watchlist.toml")
    rfa = {
        "url": "https://tin-mau.example/thoi-su/chi-thi-24-xa-hoi-dan-su",
        "canonical_url": "https://tin-mau.example/thoi-su/chi-thi-24-xa-hoi-dan-su",
        "title": "Chỉ thị 24 của Bộ Chính trị: “xã hội dân sự” là mối đe dọa an ninh",
        "source": "Tin Mẫu (sample)",
        "published": "2024-05-06T08:00:00Z",
        "language": "vi",
    }
    hrw = {
        "url": "https://rights-monitor.example/2024/05/free-labor-ministry-official",
        "canonical_url": "https://rights-monitor.example/2024/05/free-labor-ministry-official",
        "title": "Vietnam: Free Labor Ministry Official <Nguyen Van Binh> & End Directive 24 Crackdown",
        "source": "Rights Monitor (sample)",
        "published": "2024-05-06T04:30:00Z",
        "language": "en",
    }
    vne = {
        "url": "https://bao-mau.example/phap-luat/khoi-to-vu-truong-phap-che",
        "canonical_url": "https://bao-mau.example/phap-luat/khoi-to-vu-truong-phap-che",
        "title": "Khởi tố nguyên Vụ trưởng Vụ Pháp chế Bộ Lao động Nguyễn Văn Bình",
        "source": "Báo Mẫu (sample)",
        "published": "2024-05-05T23:10:00Z",
        "language": "vi",
    }
    binh_en = "…the arrest of Nguyen Van Binh, a senior official at the Ministry of Labour, Invalids and Social Affairs (MOLISA), under Article 337 of the penal code…"
    binh_vi = "…Cơ quan An ninh điều tra Bộ Công an đã khởi tố bị can Nguyễn Văn Bình, nguyên Vụ trưởng Vụ Pháp chế, Bộ Lao động – Thương binh và Xã hội, về tội…"
    d24_en = "…leaked Directive 24, issued by the Politburo in July 2023, describes foreign-funded civil society groups and independent unions as threats to national security…"
    d24_vi = "…Chỉ thị 24-CT/TW ngày 13/7/2023 của Bộ Chính trị yêu cầu các cơ quan cảnh giác với “xã hội dân sự” và công đoàn độc lập…"
    lines = [
        (
            "mention",
            "2024-05-06T08:05:00Z",
            rfa,
            [_entity(watchlist, "directive-24", [hit("Chỉ thị 24-CT/TW", d24_vi)])],
        ),
        ("mention", "2024-05-06T04:40:00Z", hrw, [_entity(watchlist, "directive-24", [hit("Directive 24", d24_en)])]),
        (
            "mention",
            "2024-05-06T04:40:00Z",
            hrw,
            [_entity(watchlist, "nguyen-van-binh", [hit("Nguyen Van Binh", binh_en)])],
        ),
        (
            "mention",
            "2024-05-05T23:15:00Z",
            vne,
            [_entity(watchlist, "nguyen-van-binh", [hit("Nguyễn Văn Bình", binh_vi)])],
        ),
    ]
    failing = [
        {
            "name": "Example Daily (sample)",
            "url": "https://daily.example/rss",
            "error": "fetch: HTTP 503",
            "since": "2024-05-06T06:00:00Z",
            "errors": 4,
        }
    ]
    full = [(*line, None) for line in lines]  # no change: these are all first mentions
    return digest_payload("3f9c2a7e5b1d4c6e8a0b2d4f6a8c0e1f", "2024-05-06T00:00:00Z", watchlist, full, failing)


def _entity(watchlist: object, entity_id: str, hits: list[dict[str, object]]) -> dict[str, object]:
    entity = watchlist.get(entity_id)  # type: ignore[attr-defined]
    return {"id": entity_id, "label": entity.label, "kind": entity.kind, "hits": hits}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    if not Path(args.chromium).exists():
        print(f"render_digest: no Chromium at {args.chromium} (apt-get install chromium)", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        page = Path(folder) / "digest.html"
        page.write_text(render_html(sample()), "utf-8")
        for name, (width, height) in WIDTHS.items():
            target = args.out / f"digest-{name}.png"
            subprocess.run(
                [
                    args.chromium,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--hide-scrollbars",
                    "--force-device-scale-factor=1",
                    f"--window-size={width},{height}",
                    f"--screenshot={target}",
                    page.as_uri(),
                ],
                check=True,
                capture_output=True,
                timeout=60,
            )
            print(f"{target.relative_to(ROOT)}: {width} px wide")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
