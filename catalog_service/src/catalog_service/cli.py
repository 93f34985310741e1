"""The ``catalog-service`` command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from . import lint, logs, memory
from .errors import CatalogError
from .settings import Settings, SettingsError

# Each command imports what it needs when it runs: `lint` and `diff` need no web
# server, no database and no collector, and start in half the time without them.

log = logging.getLogger("catalog_service")

TOKEN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@contextlib.contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    """``DATABASE_URL`` when set, else an embedded server kept in ``CATALOG_DATA_DIR``."""
    from .embedded import EmbeddedPostgres

    if settings.database_url:
        yield settings.database_url
        return
    with EmbeddedPostgres(settings.data_dir) as url:
        yield url


async def _migrate(url: str) -> list[str]:
    import asyncpg

    from .store.db import migrate

    conn = await asyncpg.connect(url)
    try:
        return await migrate(conn)
    finally:
        await conn.close()


async def _create_token(url: str, name: str, admin: bool) -> str:
    import asyncpg

    from .store import tokens
    from .store.db import migrate

    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        return await tokens.create_token(conn, name=name, admin=admin)
    finally:
        await conn.close()


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvloop
    from aiohttp import web

    from .api.problems import answer_unparseable_requests_with_problems
    from .app import create_app

    host = args.host or settings.host
    port = args.port if args.port is not None else settings.port
    memory.limit_arenas()  # before any thread starts
    answer_unparseable_requests_with_problems()
    with database_url(settings) as url:
        app = create_app(dataclasses.replace(settings, database_url=url, host=host, port=port))
        memory.freeze_startup()
        web.run_app(
            app,
            host=host,
            port=port,
            # Called once the socket listens: say so once, in the log's own format.
            print=lambda _: log.info("listening on http://%s:%s", host, port),
            access_log=logs.ACCESS,
            access_log_class=logs.AccessLogger,
            header_timeout=settings.header_timeout,
            # uvloop: the same asyncio, with the event loop and its sockets in C.
            loop=uvloop.new_event_loop(),
        )
    return 0


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    with database_url(settings) as url:
        applied = asyncio.run(_migrate(url))
    print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
    return 0


def cmd_token_create(settings: Settings, args: argparse.Namespace) -> int:
    if not TOKEN_NAME.match(args.name) or args.name == "admin":
        print(
            "error: a token name is 1-64 letters, digits, '.', '_' or '-', and not 'admin'"
            " (that name is CATALOG_ADMIN_TOKEN's)",
            file=sys.stderr,
        )
        return 2
    with database_url(settings) as url:
        token = asyncio.run(_create_token(url, args.name, args.admin))
    print(token)
    return 0


async def _collect(settings: Settings, url: str, names: list[str], every: bool) -> int:
    from .collector.service import open_collector
    from .metrics import Metrics
    from .store import projects
    from .store.db import create_pool, migrate

    pool = await create_pool(url, max_size=4)
    failed = 0
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
        if every:
            names = await projects.all_names(pool)
        async with open_collector(pool, settings, Metrics()) as collector:
            for name in names:
                try:
                    result = await collector.collect_named(name, trigger="cli")
                except CatalogError as exc:
                    print(f"{name}: error: {exc.detail}")
                    failed += 1
                    continue
                if result is None:
                    print(f"{name}: busy: another replica is collecting it right now")
                    failed += 1
                    continue
                line = f"{name}: {result.outcome} ({result.status})"
                print(line + (f": {result.error}" if result.error else ""), flush=True)
                failed += result.status != "valid"
    finally:
        await pool.close()
    return 1 if failed else 0


def cmd_collect(settings: Settings, args: argparse.Namespace) -> int:
    if not args.names and not args.all:
        print("error: name one or more projects, or pass --all", file=sys.stderr)
        return 2
    with database_url(settings) as url:
        return asyncio.run(_collect(settings, url, list(args.names), args.all))


def cmd_lint(settings: Settings, args: argparse.Namespace) -> int:
    """The API design rules report on local files, as the catalog would make it: no
    database, no network. 1 when a file has an error-level finding, 2 when one cannot
    be read."""
    from .collector import analyze

    ruleset = lint.load(settings.lint_ruleset)
    worst = 0
    for path in args.files:
        try:
            raw = Path(path).read_bytes()
            document, _ = analyze.parse(analyze.decode(raw))
            spec_format = analyze.spec_format_of(document)
        except (OSError, analyze.Rejected) as exc:
            print(f"{path}: cannot be read: {exc}", file=sys.stderr)
            worst = 2
            continue
        errors = analyze.validation_errors(document, spec_format)
        report = (
            analyze.lint_report(
                document, spec_format, errors, ruleset, settings.lint_timeout, max_findings=None
            )
            or {}
        )
        if args.format == "json":
            print(json.dumps({"file": path, **report}, ensure_ascii=False))
        elif "unfinished" in report:
            print(f"{path}: {report['unfinished']} (CATALOG_LINT_TIMEOUT)")
            worst = 2
        elif "findings" not in report:
            print(f"{path}: the rules apply to OpenAPI 3.x; this is {spec_format}: not applicable")
        else:
            _print_findings(path, report)
        if any(finding["severity"] == "error" for finding in report.get("findings", [])):
            worst = max(worst, 1)
    return worst


LEVELS = ("breaking", "possibly-breaking", "info")


def cmd_diff(settings: Settings, args: argparse.Namespace) -> int:
    """What changed from one local document to another, as the catalog judges it (no
    database, no network). 1 when a change is at least as grave as --fail-on, 2 when a
    file cannot be read or is not a valid document."""
    from .collector import analyze
    from .compare import by_operation, diff

    documents = []
    for path in (args.base, args.revision):
        try:
            document, _ = analyze.parse(analyze.decode(Path(path).read_bytes()))
            spec_format = analyze.spec_format_of(document)
        except (OSError, analyze.Rejected) as exc:
            print(f"{path}: cannot be read: {exc}", file=sys.stderr)
            return 2
        errors = analyze.validation_errors(document, spec_format)
        if errors:
            first = errors[0]
            print(
                f"{path}: not a valid document ({len(errors)} error(s); first: {first['message']} "
                f"at {first['path'] or '/'}): only valid versions are compared",
                file=sys.stderr,
            )
            return 2
        documents.append(document)
    changes = diff(documents[0], documents[1])
    if args.format == "json":
        print(
            json.dumps({"base": args.base, "revision": args.revision, "changes": changes}, ensure_ascii=False)
        )
    else:
        counts = {level: sum(c["level"] == level for c in changes) for level in LEVELS}
        summary = ", ".join(f"{n} {level.replace('-', ' ')}" for level, n in counts.items())
        print(
            f"{args.base} -> {args.revision}: {len(changes)} change{'s' if len(changes) != 1 else ''} ({summary})"
        )
        for about, items in by_operation(changes):
            print(about or "The whole API")
            for change in items:
                print(f"  {change['level']:<17} {change['id']:<45} {change['message']}")
    if args.fail_on == "never":
        return 0
    grave = LEVELS[: LEVELS.index(args.fail_on) + 1]
    return 1 if any(change["level"] in grave for change in changes) else 0


def _print_findings(path: str, report: dict[str, Any]) -> None:
    print(path)
    for finding in report["findings"]:
        print(
            f"  {finding['severity']:<8} {finding['rule']:<40} {finding['path'] or '/'}  {finding['message']}"
        )
    counts = dict.fromkeys(("error", "warning", "info", "hint"), 0)
    for finding in report["findings"]:
        counts[finding["severity"]] += 1
    summary = ", ".join(
        f"{count} {severity}{'s' if count != 1 else ''}" for severity, count in counts.items()
    )
    total = len(report["findings"])
    print(
        f"{total} finding{'s' if total != 1 else ''} ({summary}); score {report['score']} ({report['ruleset']})"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="catalog-service", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the API, the collector and the scheduler")
    serve.add_argument("--host", help="listen address (default: CATALOG_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default: CATALOG_PORT or 8080)")
    serve.set_defaults(run=cmd_serve)

    migrate_cmd = commands.add_parser("migrate", help="apply pending migrations and exit")
    migrate_cmd.set_defaults(run=cmd_migrate)

    token = commands.add_parser("token", help="manage write tokens")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    create = token_commands.add_parser("create", help="print a new bearer token once")
    create.add_argument("name")
    create.add_argument("--admin", action="store_true", help="may change every project")
    create.set_defaults(run=cmd_token_create)

    collect = commands.add_parser("collect", help="collect now, one line per project; non-zero if any failed")
    collect.add_argument("names", nargs="*", metavar="NAME")
    collect.add_argument("--all", action="store_true", help="every registered project")
    collect.set_defaults(run=cmd_collect)

    lint_cmd = commands.add_parser(
        "lint", help="the API design rules report on OpenAPI files; non-zero if any has an error"
    )
    lint_cmd.add_argument("files", nargs="+", metavar="FILE")
    lint_cmd.add_argument("--format", choices=("text", "json"), default="text")
    lint_cmd.set_defaults(run=cmd_lint)

    diff_cmd = commands.add_parser(
        "diff",
        help="what changed from one OpenAPI file to another, and what breaks clients; non-zero on a breaking change",
    )
    diff_cmd.add_argument("base", metavar="BASE", help="the version clients use now")
    diff_cmd.add_argument("revision", metavar="REVISION", help="the version to publish")
    diff_cmd.add_argument("--format", choices=("text", "json"), default="text")
    diff_cmd.add_argument(
        "--fail-on",
        choices=("breaking", "possibly-breaking", "never"),
        default="breaking",
        help="exit 1 when a change is this grave or graver (default: breaking)",
    )
    diff_cmd.set_defaults(run=cmd_diff)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_format)
    try:
        return int(args.run(settings, args))
    except CatalogError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 1
    except Exception as exc:
        import asyncpg

        if not isinstance(exc, OSError | asyncpg.PostgresError):
            raise
        print(f"error: the database cannot be reached ({type(exc).__name__})", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
