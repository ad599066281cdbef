"""Argument parsing only: each sub-command calls into app and turns errors into one sentence on
stderr and the exit status SPEC section 2 gives."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from d24watch import __version__, commands
from d24watch.app import App
from d24watch.config import load_config, resolve_config_path
from d24watch.deliver.dispatch import DeliveryReport
from d24watch.deliver.render.email import render_text
from d24watch.errors import ConfigError, ConfigErrors, D24WatchError, NotFoundError, StorageError
from d24watch.logs import setup_logging
from d24watch.models import SourceReport
from d24watch.records import evidence_bundle
from d24watch.secret import redact
from d24watch.store import parse_iso
from d24watch.watchlist import load_watchlist

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
T = TypeVar("T")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"d24watch: {message} (see d24watch --help)\n")
        raise SystemExit(EXIT_CONFIG)


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--config",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="config file (default: $D24WATCH_CONFIG or config/d24watch.toml)",
    )
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="verbose logs and tracebacks")
    parser = _Parser(
        prog="d24watch", description="Media monitoring for Directive 24 and Vietnamese detainees.", parents=[common]
    )
    parser.add_argument("--version", action="version", version=f"d24watch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def add(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, description=text, parents=[common])

    add("init", "create or migrate the database and import the seed corpus")
    poll = add("poll", "poll every enabled source now, store and match, deliver immediate alerts")
    poll.add_argument("--source", metavar="NAME", help="poll only this source")
    add("deliver", "retry pending deliveries whose back-off has passed")
    digest = add("digest", "send one digest of everything matched and not yet digested")
    digest.add_argument("--dry-run", action="store_true", help="print the plain-text digest; mark nothing")
    run = add(
        "run", "the daemon: sources on their intervals, the digest on its schedule, the workspace, /healthz, /metrics"
    )
    run.add_argument(
        "--listen", metavar="HOST:PORT", help="where the workspace and /healthz answer (default: server.listen)"
    )
    serve = add("serve", "the workspace alone, without polling or sending (for browsing a copy of the database)")
    serve.add_argument("--listen", metavar="HOST:PORT", help="where it answers (default: server.listen)")
    add("status", "a table of sources and deliveries")
    search = add("search", "full-text search of the stored corpus, newest first")
    search.add_argument("query", nargs="+", help="words to find (diacritics and case are ignored)")
    search.add_argument("--limit", type=int, default=20)
    export = add("export", "stored articles as JSON Lines on stdout, oldest first")
    export.add_argument("--since", metavar="ISO", help="only articles fetched since this date")
    rematch = add("rematch", "run the current watchlist over stored articles and alert new entities")
    rematch.add_argument("--since", metavar="ISO", help="only articles fetched since this date")
    add("check-config", "validate the config and the watchlist")
    add("recheck", "fetch again the articles with hits whose re-check is due; alert edits and takedowns")
    evidence = add("evidence", "write one article's WARC records, text revisions and hits into a folder")
    evidence.add_argument("url", help="the article's URL (as stored, or its canonical URL)")
    evidence.add_argument("--out", metavar="DIR", type=Path, required=True, help="folder to write into")
    verify = add("verify", "check an evidence bundle: files, WARC digests, timestamp tokens, the custody chain")
    verify.add_argument("path", type=Path, help="the folder `d24watch evidence` wrote")
    verify.add_argument("--tsa-ca", metavar="PEM", type=Path, help="the TSA's CA certificate(s), to check who signed")
    explain = add("explain", "why an article did or did not alert: extraction, dedupe, and every watchlist rule")
    which = explain.add_mutually_exclusive_group(required=True)
    which.add_argument("url", nargs="?", help="a stored article's URL (as stored, or its canonical URL)")
    which.add_argument("--fetch", metavar="URL", help="fetch this page now, through the same guards; store nothing")
    which.add_argument("--file", metavar="PATH", type=Path, help="a saved page")
    explain.add_argument("--json", action="store_true", help="one JSON object instead of lines")
    demo = add("demo", "a full cycle on bundled sample feeds served on loopback, with no network")
    demo.add_argument("--keep", metavar="DIR", type=Path, help="keep the demo's config and state in DIR")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    debug = bool(getattr(args, "debug", False))
    config_path = resolve_config_path(getattr(args, "config", None))
    handler = COMMANDS[args.command]
    try:
        return handler(args, config_path, debug)
    except ConfigErrors as exc:
        for problem in exc.problems:
            sys.stderr.write(f"d24watch: config error: {redact(str(problem))}\n")
        return EXIT_CONFIG
    except ConfigError as exc:
        sys.stderr.write(f"d24watch: config error: {redact(str(exc))}\n")
        return EXIT_CONFIG
    except NotFoundError as exc:
        sys.stderr.write(f"d24watch: {redact(str(exc))}\n")
        return EXIT_CONFIG
    except StorageError as exc:
        if debug:
            raise
        sys.stderr.write(f"d24watch: {redact(str(exc))}\n")
        return EXIT_FAILED
    except D24WatchError as exc:
        if debug:
            raise
        sys.stderr.write(f"d24watch: {redact(str(exc))}\n")
        return EXIT_FAILED
    except KeyboardInterrupt:
        sys.stderr.write("d24watch: interrupted\n")
        return 130
    except Exception as exc:
        if debug:
            raise
        sys.stderr.write(
            f"d24watch: unexpected error: {redact(type(exc).__name__ + ': ' + str(exc))} (run with --debug for details)\n"
        )
        return EXIT_FAILED


def _app(config_path: Path, debug: bool, level: str = "warning") -> App:
    app = App.load(config_path)
    setup_logging(app.config.log_format, level if not debug else "debug", debug=debug)
    return app


def cmd_init(args: argparse.Namespace, config_path: Path, debug: bool) -> int:
    app = _app(config_path, debug)
    version, seeds = commands.init(app)
    print(f"database {app.config.database} at schema version {version}; {seeds} seed documents imported")
    return EXIT_OK


def cmd_poll(args: argparse.Namespace, config_path: Path, debug: bool) -> int:
    app = _app(config_path, debug)

    def progress(report: SourceReport) -> None:
        print(summary_line(report), flush=True)

    reports, delivered = commands.poll(app, args.source, progress=progress)
    failed = sum(1 for r in reports if not r.ok)
    new = sum(r.new for r in reports)
    print(f"polled {len(reports)} sources: {new} new articles, {failed} sources failed")
    print_deliveries(delivered)
    print_stamps(app)
    return EXIT_OK


def print_stamps(app: App) -> None:
    """Timestamp what was archived, after the poll (when a TSA is configured), and say so."""
    if not app.config.tsa_url:
        return
    report = commands.stamp(app)
    if report.stamped or report.failed or report.waiting:
        print(f"timestamps: {report.stamped} records stamped, {report.waiting} waiting for the TSA")


def print_deliveries(report: DeliveryReport) -> None:
    """The delivery line, when anything was tried."""
    if report.sent or report.failed or report.deferred:
        print(delivery_line(report))


def delivery_line(report: DeliveryReport) -> str:
    line = f"deliveries: {report.sent} sent"
    if report.failed or report.deferred:
        line += f", {report.failed + report.deferred} kept for a retry ({'; '.join(dict.fromkeys(report.errors))})"
    return line


def cmd_deliver(args: argparse.Namespace, config_path: Path, debug: bool) -> int:
    app = _app(config_path, debug)
    report, failing = commands.deliver(app)
    print(delivery_line(report))
    if failing:
        print(f"{failing} deliveries are failing and wait for a retry; see `d24watch status`", file=sys.stderr)
    return EXIT_FAILED if report.failed or failing else EXIT_OK


def cmd_digest(args: argparse.Namespace, config_path: Path, debug: bool) -> int:
    app = _app(config_path, debug)
    if args.dry_run:
        previews = commands.preview_digests(app)
        if not previews:
            print("nothing new to digest", file=sys.stderr)
        for index, (channel, payload) in enumerate(previews):
            if len(previews) > 1:
                print(("\n" if index else "") + f"# channel {channel}")
            sys.stdout.write(render_text(payload))
        return EXIT_OK
    report = commands.digest(app)
    if not report.sent and not report.failed and not report.deferred:
        print("nothing new to digest")
        return EXIT_OK
    print(f"digests: {report.sent} sent" + (f", {report.failed} failed" if report.failed else ""))
    for error in dict.fromkeys(report.errors):
        print(f"d24watch: digest not accepted: {error}; it stays pending", file=sys.stderr)
    return EXIT_FAILED if report.failed or report.deferred else EXIT_OK


def _print_table(table: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for r in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())


def cmd_status(args: argparse.Namespace, config_path: Path, debug: bool) -> int:
    app = _app(config_path, debug)
    state = commands.status(app)
    header = ("source", "last success", "last error", "items", "next poll")
    table: list[tuple[str, ...]] = [header]
    for source in app.config.sources:
        row = state.sources.get(source.name)
        error = (row.last_error or "") if row else ""
        if error and row and row.consecutive_errors:
            error = f"{error} (x{row.consecutive_errors})"
        elif error:
            error = ""
        table.append(
            (
                source.name + ("" if source.enabled else " (disabled)"),
                (row.last_success_at if row else None) or "never",
                redact(error)[:70],
                str(row.items_seen if row else 0),
                ((row.next_check_at if row else None) or "now")
                + (f" ({row.next_reason})" if row and row.next_reason else ""),
            )
        )
    _print_table(table)
    print()
    kinds: list[tuple[str, ...]] = [("kind", "sources", "items found", "links resolved", "unresolved", "failed polls")]
    for kind in sorted({s.kind for s in app.config.sources}):
        rows = [state.sources[s.name] for s in app.config.sources if s.kind == kind and s.name in state.sources]
        count = sum(1 for s in app.config.sources if s.kind == kind)
        kinds.append(
            (
                kind,
                str(count),
                str(sum(r.items_seen for r in rows)),
                str(sum(r.resolved for r in rows)),
                str(sum(r.unresolved for r in rows)),
                str(sum(r.errors for r in rows)),
            )
        )
    _print_table(kinds)
    counts = state.deliveries
    print(
        f"\n{state.articles} articles, {state.duplicates} duplicates; deliveries: "
        f"{counts.sent} sent, {counts.pending} pending, {counts.failing} failing"
    )
    stamped, waiting = state.timestamps
    if app.config.tsa_url or stamped or waiting:
        print(f"timestamps: {stamped} records stamped, {waiting} waiting for the TSA")
    for failing in state.failing[:20]:
        print(
            f"  failing: {failing.channel} {failing.event} after {failing.attempts} attempts: "
            f"{redact(failing.last_error or '')[:100]}; next try {failing.next_attempt_at}"
        )
    return EXIT_OK


def cmd_search(args: argparse.Namespace, config_path: Path, debug: bool) -> int:
    app = _app(config_path, debug)
    with app.store() as store:
        rows = store.search(" ".join(args.query), limit=args.limit)
    for row in rows:
        when = (row.published_at or row.fetched_at or "")[:10]
        print(f"{when}  {row.title or '(untitled)'}\n    {row.url}\n    {row.excerpt}")
    if not rows:
        print("no matches", file=sys.stderr)
    return EXIT_OK


def cmd_export(args: argparse.Namespace, config_path: Path, debug: bool) -> int:
    app = _app(config_path, debug)
    count = commands.export(app, sys.stdout, parse_since(args.since), _counter("articles written"))
    if sys.stderr.isatty():
        print(f"\rexported {count} articles", file=sys.stderr)
    return EXIT_OK


def _counter(what: str) -> Callable[[int], None] | None:
    """A running count on stderr when it is a terminal (nothing in scripts and logs)."""
    if not sys.stderr.isatty():
        return None

    def show(done: int) -> None:
        print(f"\r{done} {what}", end="", file=sys.stderr, flush=True)

    return show


@contextmanager
def _progress_bar(what: str) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr when it is a terminal (nothing in scripts and logs)."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(f"[bold]{what}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True) as bar:
        task = bar.add_task(what, total=None)

        def show(done: int, total: int) -> None:
            bar.update(task, completed=done, total=max(total, done))

        yield show


def cmd_rematch(args: argparse.Namespace, config_path: Path, debug: bool) -> int:
    app = _app(config_path, debug)
    since = parse_since(args.since)

    with _progress_bar("rematching") as progress:
        read, changed, delivered = commands.rematch(app, since, progress)
    print(f"rematched {read} articles: {changed} with entities they did not match before")
    print_deliveries(delivered)
    return EXIT_OK


def _collect(load: Callable[[Path], T], path: Path, problems: list[ConfigError]) -> T | None:
    """`load(path)`, or None with its problems added to `problems`."""
    try:
        return load(path)
    except ConfigErrors as exc:
        problems.extend(exc.problems)
    except ConfigError as exc:
        problems.append(exc)
    return None


def cmd_check_config(args: argparse.Namespace, config_path: Path, debug: bool) -> int:
    problems: list[ConfigError] = []
    config = _collect(load_config, config_path, problems)
    watchlist = _collect(load_watchlist, config.watchlist, problems) if config else None
    for problem in problems:
        sys.stderr.write(f"d24watch: config error: {redact(str(problem))}\n")
    if problems:
        return EXIT_CONFIG
    assert config is not None and watchlist is not None
    print(
        f"{config_path}: valid: {len(config.sources)} sources ({sum(s.enabled for s in config.sources)} enabled), "
        f"{len(config.channels)} channels ({', '.join(f'{c.name}:{c.mode}' for c in config.channels)}), "
        f"{len(watchlist.entities)} watchlist entities"
    )
    return EXIT_OK


def cmd_recheck(args: argparse.Namespace, config_path: Path, debug: bool) -> int:
    app = _app(config_path, debug)
    report, delivered = commands.recheck(app)
    print(
        f"rechecked {report.checked} articles: {report.unchanged} unchanged, {report.changed} changed, "
        f"{report.removed} removed, {report.failed} could not be fetched (tried again later)"
    )
    print_deliveries(delivered)
    print_stamps(app)
    return EXIT_OK


def cmd_verify(args: argparse.Namespace, config_path: Path, debug: bool) -> int:
    """Needs no config and no database: a bundle is checked on its own."""
    from d24watch.verify import verify_bundle

    checks = verify_bundle(args.path, args.tsa_ca)
    for check in checks:
        print(check.line())
    failed = [c for c in checks if not c.ok]
    print(f"{len(checks) - len(failed)} checks hold, {len(failed)} fail")
    return EXIT_FAILED if failed else EXIT_OK


def cmd_evidence(args: argparse.Namespace, config_path: Path, debug: bool) -> int:
    app = _app(config_path, debug)
    written = evidence_bundle(app, args.url, args.out)
    print(f"{written.url}: {written.snapshots} snapshots; wrote {', '.join(written.files)} to {args.out}")
    return EXIT_OK


def cmd_explain(args: argparse.Namespace, config_path: Path, debug: bool) -> int:
    from d24watch import explain  # reads pages in this process: loaded only for this command

    app = _app(config_path, debug)
    if args.fetch:
        report = explain.explain_fetched(app, args.fetch)
    elif args.file:
        report = explain.explain_file(app, args.file)
    else:
        report = explain.explain_stored(app, args.url)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        sys.stdout.write(explain.render(report))
    return EXIT_OK


def cmd_run(args: argparse.Namespace, config_path: Path, debug: bool) -> int:
    from d24watch.daemon import Daemon  # the scheduler is only loaded by the daemon

    app = App.load(config_path)
    setup_logging(app.config.log_format, app.config.log_level, debug=debug)
    commands.init(app)
    return Daemon(app, listen=args.listen).run()


def cmd_serve(args: argparse.Namespace, config_path: Path, debug: bool) -> int:
    import signal
    import threading

    from d24watch.web import WebServer, create_app

    app = App.load(config_path)
    setup_logging(app.config.log_format, app.config.log_level, debug=debug)
    with app.store():
        pass  # the database must exist and be at this schema version
    listen = args.listen or app.config.listen
    server = WebServer(create_app(app, listen=listen), listen).start()
    print(f"d24watch workspace at {server.address}/ (Ctrl-C to stop)", flush=True)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not stop.wait(0.5) and server.thread.is_alive():
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.stop()
    return EXIT_OK


def cmd_demo(args: argparse.Namespace, config_path: Path, debug: bool) -> int:
    from d24watch.demo import run_demo

    setup_logging("text", "error", debug=debug)
    return run_demo(sys.stdout, args.keep)


def parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = parse_iso(value)
    except ValueError:
        raise ConfigError("--since", "", f"{value!r} is not an ISO date or time (e.g. 2024-05-01)") from None
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def summary_line(report: SourceReport) -> str:
    """What one source's update did, in one line."""
    if not report.ok:
        return f"{report.name}: failed: {report.error}"
    if report.not_modified:
        return f"{report.name}: unchanged (304)"
    parts = [f"{report.new} new", f"{report.duplicates} duplicate{'s' if report.duplicates != 1 else ''}"]
    if report.revisions:
        parts.append(f"{report.revisions} revised")
    if report.page_errors:
        parts.append(f"{report.page_errors} page{'s' if report.page_errors != 1 else ''} kept from the feed")
    line = f"{report.name}: " + ", ".join(parts)
    if report.matched_entities:
        line += f"; matched {', '.join(report.matched_entities)}"
    return line


COMMANDS: dict[str, Callable[[argparse.Namespace, Path, bool], int]] = {
    "init": cmd_init,
    "poll": cmd_poll,
    "status": cmd_status,
    "search": cmd_search,
    "export": cmd_export,
    "rematch": cmd_rematch,
    "check-config": cmd_check_config,
    "deliver": cmd_deliver,
    "digest": cmd_digest,
    "run": cmd_run,
    "serve": cmd_serve,
    "verify": cmd_verify,
    "demo": cmd_demo,
    "recheck": cmd_recheck,
    "evidence": cmd_evidence,
    "explain": cmd_explain,
}


logging.captureWarnings(True)
