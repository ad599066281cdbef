"""The workspace as a researcher uses it, in a real headless Chromium (Debian's, driven by
Playwright) against a real `d24watch serve` process over a polled loopback world: log in, triage a
footballer namesake, see the digest leave it out, open an article and download its evidence
bundle; screenshots of the inbox, an entity page and an article page at phone and desktop widths.

Set D24WATCH_SCREENSHOTS=DIR to keep the screenshots (docs/ holds the ones the README shows)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import d24
from tests.receiver import free_port
from tests.server import LocalServer
from tests.workspace_world import World, build_world

TRIAGE = "triage-token-for-the-browser-test"
CHROMIUM = next((p for p in (shutil.which("chromium"), "/usr/bin/chromium") if p and Path(p).exists()), None)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not installed (apt-get install chromium; `make test` does it as root)",
)


@pytest.fixture
def served(tmp_path: Path, server: LocalServer, capsys: Any) -> Iterator[tuple[World, str]]:
    world = build_world(tmp_path, server, capsys)
    port = free_port()
    env = {**os.environ, "D24WATCH_TRIAGE_TOKEN": TRIAGE, "D24WATCH_READ_TOKEN": "read-token-for-the-browser"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "d24watch", "--config", str(world.config), "serve", "--listen", f"127.0.0.1:{port}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1)
            break
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read() if proc.stderr else "serve exited") from None
            time.sleep(0.1)
    try:
        yield world, base
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err  # SIGTERM ends `serve` cleanly
    assert TRIAGE not in out + err


def test_log_in_triage_a_namesake_and_download_evidence_in_chromium(
    served: tuple[World, str], tmp_path: Path, capsys: Any
) -> None:
    from playwright.sync_api import sync_playwright

    world, base = served
    shots = Path(os.environ.get("D24WATCH_SCREENSHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
            errors: list[str] = []
            page = context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

            page.goto(base + "/")
            assert page.url.startswith(base + "/login")
            page.fill("input[name=token]", TRIAGE)
            page.click("form.login button")
            page.wait_for_load_state()
            assert page.url == base + "/", page.content()
            assert page.locator("h1").inner_text().startswith("Inbox")
            assert page.locator("article.mention").count() == 3
            cookie = next(c for c in context.cookies() if c["name"] == "d24watch_session")
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
            _shoot(page, shots, "inbox")

            striker = page.locator("article.mention", has_text="Striker scores twice")
            striker.locator("select[name=reason]").select_option("namesake")
            striker.locator("input[name=note]").fill("Hanoi FC striker")
            striker.locator("button.no").click()
            page.wait_for_load_state()
            assert page.locator("article.mention", has_text="Striker scores twice").count() == 0
            assert page.locator("article.mention").count() == 2

            digest = d24(capsys, world.config, "digest", "--dry-run")
            assert digest.code == 0 and "Labour official arrested" in digest.out
            assert "Striker scores twice" not in digest.out

            page.click("text=Nguyễn Văn Bình >> nth=0")
            page.wait_for_url(base + "/entity/nguyen-van-binh")
            assert "1 not relevant" in page.inner_text("p.counts")
            assert "Hanoi FC" in page.inner_text("div.proposal")
            assert page.locator("figure.chart svg rect").count() >= 1
            _shoot(page, shots, "entity")

            page.click("text=Labour official arrested")
            page.wait_for_url(f"{base}/article/*")
            assert page.locator("div.text mark").first.inner_text() == "Nguyễn Văn Bình"
            with page.expect_download() as info:
                page.click("text=Download the evidence bundle")
            saved = tmp_path / "bundle.zip"
            info.value.save_as(saved)
            names = zipfile.ZipFile(saved).namelist()
            assert any(n.endswith("SHA256SUMS") for n in names) and any(n.endswith(".warc.gz") for n in names)
            _shoot(page, shots, "article")
            assert not errors, errors  # the strict CSP refused nothing the pages need
        finally:
            browser.close()
    for name in ("inbox", "entity", "article"):
        for width in (390, 1280):
            data = (shots / f"workspace-{name}-{width}.png").read_bytes()
            assert data[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(data[16:20], "big") == width


def _shoot(page: Any, folder: Path, name: str) -> None:
    """The page at desktop width, then at a phone's, then back."""
    for width, height in ((1280, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(folder / f"workspace-{name}-{width}.png"), full_page=False)
    page.set_viewport_size({"width": 1280, "height": 900})
