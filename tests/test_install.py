"""The install the Dockerfile performs: the project built as a wheel and installed (not editable)
into a fresh virtual environment, whose `d24watch` entry point then runs the demo and the daemon
from another folder. Dependencies come from the test environment, so no network is needed."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import site
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bin/ of a fresh venv holding the built wheel."""
    folder = tmp_path_factory.mktemp("install")
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(folder / "dist"),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if built.returncode != 0 and "setuptools" in built.stderr and "version" in built.stderr.lower():
        pytest.skip(f"the build backend is not installed offline here: {built.stderr.strip()[-200:]}")
    assert built.returncode == 0, built.stderr
    [wheel] = (folder / "dist").glob("d24watch-*.whl")
    venv = folder / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = next((venv / "lib").glob("python3*/site-packages"))
    # Plain paths in a .pth: the dependencies are found, the test environment's own (editable)
    # d24watch is not, because .pth files inside those folders are not processed.
    (purelib / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n", "utf-8")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
    )
    return venv / "bin"


def test_the_wheel_carries_the_seeds_templates_and_demo(installed: Path, tmp_path: Path) -> None:
    """The installed entry point runs the demo from an unrelated folder, importing the installed copy."""
    where = subprocess.run(
        [str(installed / "python"), "-c", "import d24watch; print(d24watch.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(installed.parent) in where
    demo = subprocess.run(
        [str(installed / "d24watch"), "demo"], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert demo.returncode == 0, demo.stderr
    assert "Directive 24" in demo.stdout
    assert "5 seed documents imported" in demo.stdout


def test_the_installed_daemon_is_healthy_with_the_shipped_config_and_no_network(
    installed: Path, tmp_path: Path
) -> None:
    """As in the container: the shipped config copied beside a state folder, `d24watch run`; every
    source fails (no network here), /healthz answers 200, SIGTERM stops it with status 0."""
    shutil.copytree(ROOT / "config", tmp_path / "config")
    shipped = tmp_path / "config" / "d24watch.toml"
    # Hosts under .invalid never resolve (RFC 2606): every source fails as it would offline, on any machine.
    shipped.write_text(re.sub(r'(url = "https?://[^/"]+)', r"\1.invalid", shipped.read_text("utf-8")), "utf-8")
    log = (tmp_path / "run.log").open("w")
    env = {
        **os.environ,
        "D24WATCH_CONFIG": str(tmp_path / "config" / "d24watch.toml"),
        "HTTPS_PROXY": "http://127.0.0.1:9",
    }
    proc = subprocess.Popen(
        [str(installed / "d24watch"), "run", "--listen", "127.0.0.1:0"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=log,
        env=env,
        start_new_session=True,
    )
    try:
        base = None
        deadline = time.monotonic() + 60
        while base is None and time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "run.log").read_text()
            for line in (tmp_path / "run.log").read_text().splitlines():
                if '"daemon_started"' in line:
                    base = json.loads(line)["listen"]
            time.sleep(0.1)
        assert base is not None
        health: dict[str, object] = {}
        while not health.get("cycles") and time.monotonic() < deadline:
            with urllib.request.urlopen(base + "/healthz", timeout=10) as response:
                assert response.status == 200
                health = json.loads(response.read())
            time.sleep(0.1)
        assert health["status"] == "ok" and health["cycles"] == 1
        assert (tmp_path / "state" / "d24watch.db").exists()
        status = subprocess.run(
            [str(installed / "d24watch"), "status"], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
        ).stdout
        assert status.count(".invalid") == 0 and "connection failed" in status
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        code = proc.wait(timeout=15)
        log.close()
    assert code == 0
