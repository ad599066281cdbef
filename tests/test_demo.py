"""`d24watch demo`: the whole cycle on bundled sample news, with no network and no set-up."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from d24watch.cli import main
from tests.conftest import ROOT
from tests.helpers import export, fetched


def test_demo_exits_0_and_its_digest_names_the_directive_and_a_detainee(tmp_path: Path, capsys: Any) -> None:
    """The demo runs init, poll and digest and prints a digest naming Directive 24 and Nguyễn Văn Bình;
    the namesake, the other directive 24 and the syndicated copy are left out."""
    keep = tmp_path / "demo"
    assert main(["demo", "--keep", str(keep)]) == 0
    out = capsys.readouterr().out
    digest = out.split("$ d24watch digest", 1)[1]
    assert "d24watch: 3 new mentions" in digest
    assert "== Directive 24 (3) ==" in digest and "== Nguyễn Văn Bình (1) ==" in digest
    assert "The Example Observer: 4 new, 0 duplicates; matched directive-24, nguyen-van-binh" in out
    assert "Báo Ví Dụ: 2 new, 1 duplicate; matched directive-24" in out
    for left_out in ("top of the table", "Chỉ thị 24/CT-TTg", "Rice exports"):
        assert left_out not in digest
    rows = {r["title"]: r for r in fetched(export(capsys, keep / "d24watch.toml"))}
    assert rows["Bình double sends Hà Nội top of the table"]["entities"] == []
    assert rows["Thủ tướng ban hành Chỉ thị 24/CT-TTg về phòng chống thiên tai"]["entities"] == []
    copies = [r for r in rows.values() if r["duplicate_of"]]
    assert [c["source"] for c in copies] == ["Báo Ví Dụ"]


def test_the_demo_watchlist_is_a_faithful_subset_of_the_shipped_one() -> None:
    """Every entity the demo uses is defined exactly as in config/watchlist.toml."""
    shipped = {e["id"]: e for e in tomllib.loads((ROOT / "config" / "watchlist.toml").read_text("utf-8"))["entity"]}
    demo = tomllib.loads((ROOT / "src" / "d24watch" / "demo_data" / "watchlist.toml").read_text("utf-8"))["entity"]
    assert {"directive-24", "nguyen-van-binh"} <= {e["id"] for e in demo}
    for entity in demo:
        assert entity == shipped[entity["id"]]
