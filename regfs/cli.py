"""The ``regfs`` command line: parse arguments, call one library function, render, exit.

Exit codes: 0 ok; 1 problems found; 2 bad input (unusable ROOT, bad argument, unknown target,
no confirmation); 3 refused for safety (incomplete graph, live registry, lock held);
4 a deletion step failed part-way.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from regfs import __version__, api, render
from regfs.analysis import DEFAULT_UPLOAD_AGE
from regfs.check import VERIFY_PHASE
from regfs.duration import parse_duration
from regfs.errors import (
    EXIT_FINDINGS,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_REFUSED,
    EXIT_USAGE,
    RefusedError,
    RegfsError,
)
from regfs.gc.plan import GcOptions, GcPlan
from regfs.gc.run import GcOutcome, collect, command_line, remove
from regfs.heap import collector_paused
from regfs.storage import resolve_root

EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 problems found; 2 bad input; 3 refused for safety; "
    "4 a deletion step failed part-way."
)

app = typer.Typer(
    name="regfs",
    help="Inspect, check and garbage-collect a Docker/OCI registry's storage offline.\n\n"
    + EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

err = Console(stderr=True, highlight=False)

RootArg = Annotated[
    str | None,
    typer.Argument(
        help="Registry rootdirectory (holding docker/registry/v2) or the v2 folder. "
        "Default: $REGFS_ROOT, else /var/lib/registry.",
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (stable schema, see README).")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"regfs {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Inspect, check and garbage-collect a Docker/OCI registry's storage offline."""


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    err.print(f"regfs: error: {message}", markup=False, soft_wrap=True)
    raise typer.Exit(code)


def duration(text: str, option: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        fail(f"{option}: {exc}")


def progress_bar(enabled: bool) -> AbstractContextManager[Callable[[str, int, int], None] | None]:
    """A rich progress bar on stderr when it is a terminal (counts); otherwise no callback."""
    return transfer_progress_bar(enabled, ())


@contextmanager
def errors() -> Iterator[None]:
    try:
        yield
    except RefusedError as exc:
        _refused(exc)
    except RegfsError as exc:
        fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        fail("interrupted", 130)


@app.command("tree")
def tree_cmd(
    root: RootArg = None,
    repo: Annotated[
        str | None, typer.Option("--repo", help="Only repositories matching this glob.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show repositories, tags, manifests, configs and layers as a tree."""
    with errors(), progress_bar(True) as cb:
        data = api.tree(root, repo_glob=repo, progress=cb)
    typer.echo(render.tree_json(data) if as_json else render.tree_text(data))


@app.command("orphans")
def orphans_cmd(
    root: RootArg = None,
    uploads_older_than: Annotated[
        str,
        typer.Option(
            "--uploads-older-than", help="Uploads started before this are stale (0: none)."
        ),
    ] = "168h",
    as_json: JsonOpt = False,
) -> None:
    """Report orphaned blobs, untagged manifests, dangling references, stale uploads, problems.

    Exit 0 when there is no dangling reference and no problem, 1 when there is.
    """
    age = (
        duration(uploads_older_than, "--uploads-older-than")
        if uploads_older_than
        else DEFAULT_UPLOAD_AGE
    )
    with errors(), progress_bar(True) as cb:
        report = api.find_orphans(root, uploads_older_than=age, progress=cb)
    if as_json:
        typer.echo(render.to_json(render.orphans_dict(report)))
    else:
        typer.echo(render.orphans_text(report))
    raise typer.Exit(EXIT_OK if report.healthy else EXIT_FINDINGS)


def _refused(exc: RefusedError) -> NoReturn:
    err.print(f"regfs: refused: {exc}", markup=False, soft_wrap=True)
    for r in exc.reasons:
        err.print(f"  {r}", markup=False, soft_wrap=True)
    raise typer.Exit(exc.exit_code)


@app.command("gc")
def gc_cmd(
    root: RootArg = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", "-n", help="Build and show the plan; write nothing.")
    ] = False,
    delete_untagged: Annotated[
        bool,
        typer.Option(
            "--delete-untagged",
            help="Also delete manifests no tag reaches (children of live indexes and "
            "referrers of live manifests stay).",
        ),
    ] = False,
    min_age: Annotated[
        str, typer.Option("--min-age", help="Grace period: keep anything younger (0: none).")
    ] = "1h",
    uploads_older_than: Annotated[
        str,
        typer.Option("--uploads-older-than", help="Delete unfinished uploads started before this."),
    ] = "168h",
    trash: Annotated[
        bool,
        typer.Option("--trash", help="Move into ROOT/.regfs/trash/RUN-ID, not delete."),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Proceed despite unreadable items; everything they might use is kept."
        ),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    as_json: JsonOpt = False,
    registry_url: Annotated[
        str | None,
        typer.Option(
            "--registry-url", help="Check the registry there refuses uploads (read-only mode)."
        ),
    ] = None,
    skip_live_check: Annotated[
        bool, typer.Option("--skip-live-check", help="Skip every live-registry check (dangerous).")
    ] = False,
) -> None:
    """Delete what nothing needs: blobs, and with --delete-untagged untagged manifests; plus
    dead layer links, stale uploads and empty folders.

    Exit codes: 0 done (or planned); 2 bad input or not confirmed; 3 refused (incomplete graph,
    live registry, lock held; a dry run exits 3 when a real run would refuse); 4 a deletion
    failed part-way (run again after fixing the cause: gc converges); 130 interrupted.
    """
    options = GcOptions(
        delete_untagged=delete_untagged,
        min_age=duration(min_age, "--min-age"),
        uploads_older_than=duration(uploads_older_than, "--uploads-older-than"),
        force=force,
        trash=trash,
    )
    interactive = sys.stdin.isatty() and err.is_terminal
    if not dry_run and not yes and not interactive:
        fail("a real run needs --yes when there is no terminal to confirm on; nothing deleted")
    if skip_live_check and not dry_run:
        err.print("regfs: WARNING: --skip-live-check: not checking whether the registry is live")

    def confirm(plan: GcPlan) -> bool:
        if yes:
            return True
        n = len(plan.actions)
        return typer.confirm(
            f"Delete {n} items ({render.size(plan.reclaimed_bytes)})"
            + (" into the trash" if trash else "")
            + "?",
            err=True,
        )

    with errors(), progress_bar(not as_json) as cb:
        outcome = collect(
            root,
            options,
            dry_run=dry_run,
            registry_url=registry_url,
            skip_live_check=skip_live_check,
            confirm=confirm,
            progress=cb,
            command=command_line(["regfs", *sys.argv[1:]]),
        )
    typer.echo(render.to_json(render.gc_dict(outcome)) if as_json else render.gc_text(outcome))
    if outcome.would_refuse:
        raise typer.Exit(EXIT_REFUSED)
    _exit_for_runs(outcome)


@app.command("restore")
def restore_cmd(
    run_id: Annotated[str, typer.Argument(help="The run to put back (see `regfs trash list`).")],
    root: RootArg = None,
    as_json: JsonOpt = False,
) -> None:
    """Put back everything a `regfs gc --trash` (or `rm --trash`) run moved; never overwrites."""
    with errors():
        res = api.restore(root, run_id)
    if as_json:
        typer.echo(
            render.to_json(
                {
                    "schema": render.SCHEMA_VERSION,
                    "run_id": res.run_id,
                    "restored": res.restored,
                    "refused": res.refused,
                    "missing": res.missing,
                }
            )
        )
    else:
        typer.echo(f"Restored {len(res.restored)} items of run {res.run_id}.")
        for p in res.refused:
            typer.echo(f"  refused (something is there again): {p}")
        for p in res.missing:
            typer.echo(f"  missing from the trash: {p}")
    if res.refused or res.missing:
        raise typer.Exit(EXIT_FINDINGS)


trash_app = typer.Typer(help="List and purge runs kept in the trash.", no_args_is_help=True)
app.add_typer(trash_app, name="trash")


@trash_app.command("list")
def trash_list_cmd(root: RootArg = None, as_json: JsonOpt = False) -> None:
    """Runs in the trash, with their size."""
    with errors():
        runs = api.trash_runs(root)
    if as_json:
        typer.echo(
            render.to_json(
                {
                    "schema": render.SCHEMA_VERSION,
                    "runs": [
                        {
                            "run_id": r.run_id,
                            "created": r.created,
                            "files": r.items,
                            "bytes": r.bytes,
                        }
                        for r in runs
                    ],
                }
            )
        )
        return
    if not runs:
        typer.echo("The trash is empty.")
    for r in runs:
        typer.echo(f"{r.run_id}  {r.items} files  {render.size(r.bytes)}")


@trash_app.command("purge")
def trash_purge_cmd(
    root: RootArg = None,
    older_than: Annotated[
        str, typer.Option("--older-than", help="Purge runs older than this (0: all).")
    ] = "7d",
    as_json: JsonOpt = False,
) -> None:
    """Delete trash runs older than --older-than for good."""
    age = duration(older_than, "--older-than")
    with errors():
        gone = api.purge_trash(root, age)
    if as_json:
        typer.echo(
            render.to_json(
                {
                    "schema": render.SCHEMA_VERSION,
                    "purged": [r.run_id for r in gone],
                    "bytes": sum(r.bytes for r in gone),
                }
            )
        )
    else:
        typer.echo(f"Purged {len(gone)} runs ({render.size(sum(r.bytes for r in gone))}).")


# --- check and du ---------------------------------------------------------------------------


class _AmountColumn(ProgressColumn):
    """Bytes (with a transfer speed) for the digest verification, counts for the rest."""

    def __init__(self) -> None:
        super().__init__()
        self._bytes = DownloadColumn(binary_units=False)
        self._speed = TransferSpeedColumn()
        self._count = MofNCompleteColumn()

    def render(self, task: Task) -> Text:
        if task.fields.get("bytes"):
            return Text.assemble(self._bytes.render(task), "  ", self._speed.render(task))
        return self._count.render(task)


@contextmanager
def transfer_progress_bar(
    enabled: bool, byte_phases: tuple[str, ...] = (VERIFY_PHASE,)
) -> Iterator[Callable[[str, int, int], None] | None]:
    """Like :func:`progress_bar`, showing bytes and throughput for ``byte_phases``."""
    if not enabled or not err.is_terminal:
        yield None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        _AmountColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        refresh_per_second=4,  # the redraw thread competes for the GIL with the scan
    ) as bar:
        tasks: dict[str, Any] = {}

        def update(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total, bytes=phase in byte_phases)
            bar.update(tasks[phase], completed=done, total=total)

        yield update


@app.command("check")
def check_cmd(
    root: RootArg = None,
    verify_digests: Annotated[
        bool,
        typer.Option(
            "--verify-digests",
            help="Re-hash every blob's data and compare it with its digest (reads everything).",
        ),
    ] = False,
    repo: Annotated[
        str | None,
        typer.Option("--repo", help="Only check repositories matching this glob."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the storage: everything the scanner finds, tags that cannot be pulled, dangling
    and unlinked references; with --verify-digests, corrupt blobs.

    Exit 0 when healthy, 1 when any problem is found, 2 on bad input.
    """
    with errors(), transfer_progress_bar(True) as cb:
        report = api.check(root, repo_glob=repo, verify_digests=verify_digests, progress=cb)
    if as_json:
        typer.echo(render.to_json(render.check_dict(report)))
    else:
        typer.echo(render.check_text(report, width=_text_width()))
    raise typer.Exit(EXIT_OK if report.healthy else EXIT_FINDINGS)


@app.command("du")
def du_cmd(
    root: RootArg = None,
    by: Annotated[
        str, typer.Option("--by", metavar="repo|tag", help="One row per repository, or per tag.")
    ] = "repo",
    sort: Annotated[
        str,
        typer.Option(
            "--sort",
            metavar="FIELD",
            help="name, total, shared, exclusive or untagged (sizes sort largest first).",
        ),
    ] = "exclusive",
    top: Annotated[
        str | None,
        typer.Option(
            "--top", metavar="N", help="Only the first N repositories.", show_default=False
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Disk usage per repository (and per tag): total, shared with other repositories,
    exclusive (what `regfs rm REPO` + `regfs gc` would free), untagged; registry totals.

    Exit 0, or 1 when part of the storage could not be read (named in the output).
    """
    limit: int | None = None
    if top is not None:
        try:
            limit = int(top)
        except ValueError:
            fail(f"--top must be a positive number, not {top!r}")
    with errors(), progress_bar(True) as cb:
        report = api.du(root, by=by, sort=sort, top=limit, progress=cb)
    if as_json:
        typer.echo(render.to_json(render.du_dict(report)))
    else:
        typer.echo(render.du_text(report, width=_text_width()))
    if not report.complete:
        # Part of the storage could not be read: the sizes are not the whole truth.
        raise typer.Exit(EXIT_FINDINGS)


def _text_width() -> int:
    """The terminal's width on a terminal (at least 80), else 80."""
    out = Console()
    return max(80, out.width) if out.is_terminal else 80


@app.command("rm")
def rm_cmd(
    args: Annotated[
        list[str],
        typer.Argument(
            help="[ROOT] TARGET...: REPO:TAG, REPO@DIGEST or REPO (globs allowed). The first "
            "argument is ROOT when it is an existing registry storage folder.",
            show_default=False,
        ),
    ],
    dry_run: Annotated[bool, typer.Option("--dry-run", "-n", help="Show what would go.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    trash: Annotated[
        bool, typer.Option("--trash", help="Move into ROOT/.regfs/trash/RUN-ID, not delete.")
    ] = False,
    run_gc: Annotated[bool, typer.Option("--gc", help="Run `regfs gc` straight after.")] = False,
    min_age: Annotated[
        str, typer.Option("--min-age", help="Grace period of the gc that follows (0: none).")
    ] = "1h",
    as_json: JsonOpt = False,
    registry_url: Annotated[
        str | None,
        typer.Option("--registry-url", help="Check the registry there refuses uploads."),
    ] = None,
    skip_live_check: Annotated[
        bool, typer.Option("--skip-live-check", help="Skip every live-registry check (dangerous).")
    ] = False,
) -> None:
    """Delete tags, manifests or whole repositories offline (blobs are left to gc).

    Exit codes: 0 done; 2 malformed or unknown target, glob matching nothing, not confirmed;
    3 refused (live registry, lock held); 4 a deletion failed part-way.
    """
    root, targets = _split_root(args)
    if not targets:
        fail("no target given (REPO:TAG, REPO@DIGEST or REPO)")
    interactive = sys.stdin.isatty() and err.is_terminal
    if not dry_run and not yes and not interactive:
        fail("a real run needs --yes when there is no terminal to confirm on; nothing deleted")

    def confirm(plan: GcPlan) -> bool:
        if not as_json:
            err.print(render.rm_preview(plan), markup=False, soft_wrap=True)
        return yes or typer.confirm("Remove these?", err=True)

    with errors(), progress_bar(not as_json) as cb:
        outcome = remove(
            root,
            targets,
            dry_run=dry_run,
            trash=trash,
            run_gc=run_gc,
            gc_options=GcOptions(min_age=duration(min_age, "--min-age"), trash=trash),
            registry_url=registry_url,
            skip_live_check=skip_live_check,
            confirm=confirm,
            progress=cb,
            command=command_line(["regfs", *sys.argv[1:]]),
        )
    typer.echo(render.to_json(render.rm_dict(outcome)) if as_json else render.rm_text(outcome))
    _exit_for_runs(outcome.removal, outcome.gc)


def _exit_for_runs(*parts: GcOutcome | None) -> None:
    """Exit 4 when a run's deletion failed part-way, 130 when it was interrupted."""
    for part in parts:
        if part is not None and part.executed is not None:
            if part.executed.failed:
                raise typer.Exit(EXIT_PARTIAL)
            if part.executed.interrupted:
                raise typer.Exit(130)


def _split_root(args: list[str]) -> tuple[str | None, list[str]]:
    """ROOT is the first argument when more follow and it names a registry storage folder."""
    if len(args) >= 2 and os.path.isdir(args[0]):
        try:
            resolve_root(args[0])
        except RegfsError:
            return None, args
        return args[0], args[1:]
    return None, args


def main() -> NoReturn:
    """The console script: run the command, flush, and leave without interpreter teardown.

    A scan of a large store leaves hundreds of MB of small objects; freeing them one by one at
    exit measured as an eighth of ``regfs gc --dry-run``'s wall time on a 200k-file tree. By
    the time the command returns every file, lock and worker pool has been closed by its own
    ``with`` block, so only the standard streams need flushing before ``os._exit``.
    """
    code: int = EXIT_OK
    try:
        with collector_paused():
            app()
    except SystemExit as exc:
        code = _exit_status(exc.code)
    except BrokenPipeError:  # e.g. `regfs tree | head`
        code = EXIT_OK
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # reader gone, or stream already closed
            pass
        except OSError:
            code = code or _FLUSH_FAILED
    os._exit(code)


# What CPython itself exits with when flushing the standard streams fails at shutdown.
_FLUSH_FAILED = 120


def _exit_status(value: object) -> int:
    """What ``sys.exit(value)`` would make the process exit with."""
    if value is None:
        return EXIT_OK
    if isinstance(value, int):
        return value & 0xFF
    print(value, file=sys.stderr)
    return 1
