"""WACZ packages (WACZ 1.1.1, the Webrecorder format ReplayWeb.page opens) of an article's records,
made and validated by the `wacz` package, the only import of it: the WARC file, its CDXJ index,
`pages/pages.jsonl` naming the article, `datapackage.json` with each file's SHA-256 and
`datapackage-digest.json`. The package prints as it works; that is kept off d24watch's output."""

from __future__ import annotations

import contextlib
import gc
import io
import json
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@contextlib.contextmanager
def _quietly() -> Iterator[None]:
    """The package's printing kept off d24watch's output, and the files it leaves open closed
    here (collected while their ResourceWarning is muted) rather than at some later moment."""
    with (
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
    ):
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            yield
        finally:
            gc.collect()


@dataclass(frozen=True, slots=True)
class WaczCheck:
    name: str
    ok: bool


def write_wacz(warc: Path, out: Path, *, url: str, ts: str, title: str) -> None:
    """Package the records in `warc` as `out`, with the article at `url` (captured at `ts`) as its page."""
    from wacz.main import main as wacz_main

    with tempfile.TemporaryDirectory(prefix="d24watch-wacz-") as folder:
        pages = Path(folder) / "pages.jsonl"
        header = {"format": "json-pages-1.0", "id": "pages", "title": "Pages"}
        page = {"id": "article", "url": url, "ts": ts, "title": title or url}
        pages.write_text(json.dumps(header) + "\n" + json.dumps(page, ensure_ascii=False) + "\n", "utf-8")
        args = ["create", "-o", str(out), "-p", str(pages), "--hash-type", "sha256", "--url", url]
        args += ["--title", title or url, str(warc)]
        with _quietly():
            code = wacz_main(args)
    if code not in (0, None) or not out.is_file():
        raise OSError(f"the WACZ package {out} could not be written")


def validate_wacz(path: Path) -> list[WaczCheck]:
    """The `wacz` package's own validation of a WACZ 1.1.1 file, check by check."""
    import zipfile

    from wacz.validate import Validation

    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        return [WaczCheck(f"a readable zip file ({str(exc)[:120]})", False)]
    if damaged is not None:
        return [WaczCheck(f"a readable zip file ({damaged} is damaged)", False)]
    with _quietly():
        validation = Validation(str(path))
        try:
            if validation.version != "1.1.1":
                return [WaczCheck(f"WACZ version 1.1.1 (found {validation.version})", False)]
            out = []
            for name, test in (
                ("required files", validation.check_required_contents),
                ("datapackage.json schema", validation.frictionless_validate),
                ("file paths one folder deep and listed", validation.check_file_paths),
                ("file hashes in datapackage.json", validation.check_file_hashes),
                ("datapackage-digest.json", validation.check_data_package_hash_and_sig),
            ):
                try:
                    out.append(WaczCheck(name, test() is not False))
                except Exception:  # the package raises anything at all on damaged content
                    out.append(WaczCheck(name, False))
            return out
        finally:
            validation.dir.cleanup()  # the package leaves its extraction folder behind


def wacz_records(path: Path) -> bytes:
    """The WARC data a WACZ holds (every archive/*.warc.gz, concatenated)."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        return b"".join(archive.read(n) for n in sorted(archive.namelist()) if n.startswith("archive/"))
