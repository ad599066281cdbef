"""The command line as users and scripts meet it: exit codes, one-sentence errors, search, init."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from d24watch.cli import build_parser
from tests.conftest import ROOT, article_page, feed_source, rss, write_config
from tests.helpers import d24, export
from tests.prose import prose
from tests.server import LocalServer


def test_every_command_has_help() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name in ("init", "poll", "status", "search", "export", "rematch", "check-config"):
        assert name in sub.choices  # type: ignore[attr-defined]
        assert sub.choices[name].format_help()  # type: ignore[attr-defined]


def test_the_shipped_config_is_valid(capsys: Any) -> None:
    result = d24(capsys, ROOT / "config" / "d24watch.toml", "check-config")
    assert result.code == 0, result.err
    assert "58 watchlist entities" in result.out or "watchlist entities" in result.out


def test_init_twice_changes_nothing(tmp_path: Path, capsys: Any) -> None:
    """init imports the five seed documents once; again, it imports none."""
    config = write_config(tmp_path, "")
    assert "5 seed documents imported" in d24(capsys, config, "init").out
    assert "0 seed documents imported" in d24(capsys, config, "init").out
    rows = export(capsys, config)
    assert len(rows) == 5 and all(r["source"] == "seed" for r in rows)


BAD_CONFIGS = [
    ("[fetch]\ntimeout = 'x'\n", "fetch.timeout: must be a"),
    ("[fetch]\nbogus = 1\n", "fetch.bogus: unknown key"),
    ("nonsense = [\n", "invalid TOML"),
    (
        "[[sources]]\nname = 'a'\nurl = 'http://x.example/'\ninterval = '5x'\n",
        "sources[0].interval: '5x' is not a duration",
    ),
    ("[[sources]]\nname = 'a'\nurl = 'ftp://x'\n", "sources[0].url"),
    (
        "[[sources]]\nname = 'a'\nurl = 'http://x.example/'\n[[sources]]\nname = 'a'\nurl = 'http://y.example/'\n",
        "sources[1].name: 'a' is used by another source",
    ),
    ("[digest]\nschedule = '61 * * * *'\n", "digest.schedule"),
    ("[digest]\ntimezone = 'Mars/Olympus'\n", "digest.timezone"),
    (
        "[notify.slack]\nmode = 'immediate'\nwebhook_url_env = 'D24_TEST_UNSET_VARIABLE'\n",
        "D24_TEST_UNSET_VARIABLE is not set",
    ),
    ("[notify.email]\nmode = 'sometimes'\nsmtp_host = 'h'\nfrom = 'a@b'\nto = ['c@d']\n", "notify.email.mode"),
    ("[digest]\nschedule = 'every morning'\n", "digest.schedule"),
    ("[digest]\nschedule = '0 7 * *'\n", "digest.schedule"),
    ("[[sources]]\nname = 'a'\nurl = 'http://x.example/'\ninterval = 30\n", "sources[0].interval"),
    ("[[sources]]\nname = 'a'\nurl = 'http://x.example/'\nkind = 'newsletter'\n", "sources[0].kind"),
    ("[[sources]]\nname = 'a'\nurl = 'http://x.example/'\nenabled = 'yes'\n", "sources[0].enabled"),
    ("[watch]\nwatchlist = 'no-such-watchlist.toml'\n", "no-such-watchlist.toml"),
    ("[server]\nlisten = 'everywhere'\n", "server.listen"),
    ("[delivery]\nretry_initial = '-1m'\n", "delivery.retry_initial"),
    ("[fetch]\nmax_bytes = -5\n", "fetch.max_bytes"),
    ("[surprise]\nx = 1\n", "surprise"),
    ("[notify.webhook]\nmode = 'immediate'\n", "notify.webhook.url"),
    ("[notify.email]\nsmtp_host = 'h'\nfrom = 'a@b'\nto = ['c@d']\nsecurity = 'ssl'\n", "notify.email.security"),
]


@pytest.mark.parametrize(("text", "message"), BAD_CONFIGS)
def test_bad_config_gives_exit_2_and_names_file_and_key(tmp_path: Path, capsys: Any, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    for command in ("check-config", "poll", "status"):
        result = d24(capsys, path, command)
        assert result.code == 2, command
        assert message in result.err and str(path) in result.err
        assert "Traceback" not in result.err


BAD_WATCHLISTS = [
    ("[[entity]]\nid = 'a'\nterms = []\n", "entity[0].terms: needs at least one term"),
    ("[[entity]]\nid = 'a'\nterms = ['!!']\n", "entity[0].terms[0]"),
    ("[[entity]]\nid = 'a'\nterms = ['x']\n[[entity]]\nid = 'a'\nterms = ['y']\n", "entity[1].id: 'a' is also"),
    ("[[entity]]\nid = 'Not A Slug'\nterms = ['x']\n", "entity[0].id"),
    ("[[entity]]\nid = 'a'\nterms = ['x']\ncolour = 'red'\n", "entity[0].colour: unknown key"),
    ("[[entity]]\nid = 'a'\nterms = 'x'\n", "entity[0].terms: must be a list of strings"),
]


@pytest.mark.parametrize(("text", "message"), BAD_WATCHLISTS)
def test_bad_watchlist_gives_exit_2(tmp_path: Path, capsys: Any, text: str, message: str) -> None:
    config = write_config(tmp_path, "", watchlist=text)
    result = d24(capsys, config, "check-config")
    assert result.code == 2 and message in result.err and "watchlist.toml" in result.err


def test_missing_config_file_is_one_sentence(tmp_path: Path, capsys: Any) -> None:
    result = d24(capsys, tmp_path / "nope.toml", "status")
    assert result.code == 2 and result.err.count("\n") == 1 and "file not found" in result.err


def test_uninitialised_database_is_a_clear_error(tmp_path: Path, capsys: Any) -> None:
    config = write_config(tmp_path, "")
    result = d24(capsys, config, "export")
    assert result.code == 1 and "run `d24watch init`" in result.err


def test_config_option_after_the_command(tmp_path: Path, capsys: Any) -> None:
    from d24watch.cli import main

    config = write_config(tmp_path, "")
    assert main(["check-config", "--config", str(config)]) == 0


def test_search_ignores_diacritics_including_dj(tmp_path: Path, capsys: Any) -> None:
    """`dang dinh bach` finds Đặng Đình Bách; quoted punctuation is no syntax error."""
    config = write_config(tmp_path, "")
    d24(capsys, config, "init")
    result = d24(capsys, config, "search", "dang", "dinh", "bach")
    assert result.code == 0 and "urn:d24watch:seed:003" in result.out
    assert "[dang dinh bach]" in result.out
    assert d24(capsys, config, "search", "ĐẶNG ĐÌNH BÁCH").out == result.out
    assert d24(capsys, config, "search", 'COVID-19 "x" OR (').code == 0


def test_rematch_finds_a_newly_added_person_in_stored_articles(
    tmp_path: Path, server: LocalServer, capsys: Any
) -> None:
    """After the watchlist gains a person, rematch records hits for past coverage once."""
    server.serve("/a", article_page("Profile", [*prose(50), "Activist Trần Văn Mới was arrested in Huế."]))
    server.serve("/feed", rss([{"title": "Profile", "link": server.url("/a")}]), "application/rss+xml")
    config = write_config(tmp_path, feed_source("Local", server.url("/feed")))
    d24(capsys, config, "init")
    d24(capsys, config, "poll")
    wl = tmp_path / "watchlist.toml"
    wl.write_text(
        wl.read_text()
        + '\n[[entity]]\nid = "tran-van-moi"\nlabel = "Trần Văn Mới"\nkind = "person"\npriority = "high"\nterms = ["Trần Văn Mới"]\n'
    )
    assert "1 with entities they did not match before" in d24(capsys, config, "rematch").out
    assert "0 with entities" in d24(capsys, config, "rematch").out
    row = next(r for r in export(capsys, config) if r["source"] == "Local")
    assert row["entities"][0]["id"] == "tran-van-moi"
    assert json.loads(json.dumps(row))["entities"][0]["hits"][0]["text"] == "Trần Văn Mới"
