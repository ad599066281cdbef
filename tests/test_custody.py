"""Evidence that holds up, end to end through the command line: every archived record gets an RFC
3161 token from a real TSA on loopback (tests/tsa.py), the bundle carries the tokens and the
custody log, `d24watch verify` accepts it and `openssl ts -verify` accepts each token; one byte
changed anywhere makes `verify` fail naming what; a TSA that is down delays tokens, never a poll."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import article_page, feed_source, rss, write_config
from tests.helpers import d24
from tests.prose import prose
from tests.server import LocalServer
from tests.tsa import TimestampAuthority

BINH = "Police in Hanoi arrested Nguyễn Văn Bình, director of legal affairs at MOLISA, under Article 337."


@pytest.fixture
def tsa(server: LocalServer) -> TimestampAuthority:
    authority = TimestampAuthority()
    server.routes["/tsa"] = authority.handler
    return authority


def _world(tmp_path: Path, server: LocalServer, tsa: TimestampAuthority, capsys: Any) -> tuple[Path, str, Path]:
    url = server.serve("/binh", article_page("Labour official detained", [*prose(5)[:2], BINH, *prose(6)[:2]]))
    server.serve(
        "/feed", rss([{"title": "Labour official detained", "link": url, "guid": "g1"}]), "application/rss+xml"
    )
    ca = tsa.ca_pem(tmp_path / "tsa-ca.pem")
    extra = f'\n[evidence]\noperator = "Test newsroom"\ntsa_url = "{server.url("/tsa")}"\ntsa_ca_file = "tsa-ca.pem"\ntsa_timeout = 2\n'
    config = write_config(tmp_path, feed_source("Local", server.url("/feed")), extra=extra)
    assert d24(capsys, config, "init").code == 0
    return config, url, ca


def _bundle(capsys: Any, config: Path, url: str, out: Path) -> Path:
    result = d24(capsys, config, "evidence", url, "--out", str(out))
    assert result.code == 0, result.err
    return out


def test_records_are_timestamped_and_the_bundle_verifies_with_verify_and_openssl(
    tmp_path: Path, server: LocalServer, tsa: TimestampAuthority, capsys: Any
) -> None:
    config, url, ca = _world(tmp_path, server, tsa, capsys)
    polled = d24(capsys, config, "poll")
    assert polled.code == 0 and "timestamps: 1 records stamped, 0 waiting for the TSA" in polled.out, polled.out
    bundle = _bundle(capsys, config, url, tmp_path / "bundle")
    stamps = json.loads((bundle / "timestamps.json").read_text())
    assert len(stamps) == 1 and (bundle / stamps[0]["token"]).is_file()

    verified = d24(capsys, config, "verify", str(bundle), "--tsa-ca", str(ca))
    assert verified.code == 0, verified.out
    assert "FAIL" not in verified.out and "custody chain: 3 entries" in verified.out
    assert f"signed by a TSA under {ca.name}" in verified.out

    record = (bundle / "records.warc.gz").read_bytes()[stamps[0]["offset"] : stamps[0]["offset"] + stamps[0]["length"]]
    assert hashlib.sha256(record).hexdigest() == stamps[0]["record_sha256"]
    (tmp_path / "record.bin").write_bytes(record)
    openssl = subprocess.run(
        [
            "openssl", "ts", "-verify",
            "-in", str(bundle / stamps[0]["token"]),
            "-data", str(tmp_path / "record.bin"),
            "-CAfile", str(ca),
        ],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert openssl.returncode == 0 and "Verification: OK" in openssl.stdout, openssl.stdout + openssl.stderr

    [package] = bundle.glob("*.wacz")
    checked = d24(capsys, config, "verify", str(package))
    assert checked.code == 0 and "file hashes in datapackage.json: holds" in checked.out, checked.out
    _flip(package, len(package.read_bytes()) // 3)
    assert d24(capsys, config, "verify", str(package)).code == 1

    custody = [json.loads(line) for line in (bundle / "custody.jsonl").read_text().splitlines()]
    assert [c["action"] for c in custody] == ["captured", "timestamped", "exported"]
    assert custody[1]["detail"]["record_sha256"] == stamps[0]["record_sha256"]


def _rewrite_sums(bundle: Path) -> None:
    """What someone who altered a file would do next: make SHA256SUMS agree again."""
    lines = []
    for line in (bundle / "SHA256SUMS").read_text().splitlines():
        name = line.split("  ", 1)[1]
        lines.append(f"{hashlib.sha256((bundle / name).read_bytes()).hexdigest()}  {name}\n")
    (bundle / "SHA256SUMS").write_text("".join(lines))


def _flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("target", "named"),
    [
        ("record", "record "),
        ("revision", "revision-001.txt"),
        ("token", "timestamp of record"),
        ("custody", "custody chain"),
    ],
)
def test_one_byte_changed_makes_verify_fail_naming_it(
    tmp_path: Path, server: LocalServer, tsa: TimestampAuthority, capsys: Any, target: str, named: str
) -> None:
    config, url, ca = _world(tmp_path, server, tsa, capsys)
    assert d24(capsys, config, "poll").code == 0
    original = _bundle(capsys, config, url, tmp_path / "bundle")
    bundle = tmp_path / f"altered-{target}"
    shutil.copytree(original, bundle)
    stamps = json.loads((bundle / "timestamps.json").read_text())
    if target == "record":
        # A byte inside the response record's gzip member (past the warcinfo member).
        _flip(bundle / "records.warc.gz", stamps[0]["offset"] + 40)
    elif target == "revision":
        text = (bundle / "revision-001.txt").read_text("utf-8")
        (bundle / "revision-001.txt").write_text(text.replace("Bình", "Binh", 1), "utf-8")
    elif target == "token":
        token = bundle / stamps[0]["token"]
        _flip(token, len(token.read_bytes()) - 10)
    else:
        lines = (bundle / "custody.jsonl").read_text("utf-8").splitlines()
        entry = json.loads(lines[0])
        entry["detail"]["status"] = 404
        lines[0] = json.dumps(entry, ensure_ascii=False, sort_keys=True)
        (bundle / "custody.jsonl").write_text("\n".join(lines) + "\n", "utf-8")

    plain = d24(capsys, config, "verify", str(bundle), "--tsa-ca", str(ca))
    assert plain.code == 1 and "FAIL" in plain.out  # SHA256SUMS catches it first
    _rewrite_sums(bundle)
    forged = d24(capsys, config, "verify", str(bundle), "--tsa-ca", str(ca))
    assert forged.code == 1, forged.out
    failing = [line for line in forged.out.splitlines() if line.startswith("FAIL")]
    assert failing and any(named in line for line in failing), forged.out


def test_a_tsa_that_is_down_delays_tokens_and_they_are_added_later(
    tmp_path: Path, server: LocalServer, tsa: TimestampAuthority, capsys: Any
) -> None:
    config, url, ca = _world(tmp_path, server, tsa, capsys)
    tsa.down = True
    polled = d24(capsys, config, "poll")
    assert polled.code == 0 and "Local: 1 new" in polled.out
    assert "timestamps: 0 records stamped, 1 waiting for the TSA" in polled.out, polled.out
    waiting = _bundle(capsys, config, url, tmp_path / "waiting")
    assert not (waiting / "timestamps.json").exists()
    assert d24(capsys, config, "verify", str(waiting)).code == 0  # what is there still holds
    assert "timestamps: 0 records stamped, 1 waiting for the TSA" in d24(capsys, config, "status").out

    tsa.down = False
    again = d24(capsys, config, "poll")
    assert "timestamps: 1 records stamped, 0 waiting for the TSA" in again.out, again.out
    bundle = _bundle(capsys, config, url, tmp_path / "bundle")
    assert d24(capsys, config, "verify", str(bundle), "--tsa-ca", str(ca)).code == 0


def test_verify_refuses_what_is_not_a_bundle(tmp_path: Path, capsys: Any) -> None:
    from d24watch.cli import main

    capsys.readouterr()
    assert main(["verify", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"d24watch: {tmp_path} is not an evidence bundle (no SHA256SUMS in it) nor a .wacz file"
