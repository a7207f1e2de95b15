"""The ``regfs`` command line: parse arguments, call one library function, render, exit.

Exit codes: 0 ok; 1 problems found; 2 bad input (unusable ROOT, bad argument, unknown target,
no confirmation); 3 refused for safety (incomplete graph, live registry, lock held);
4 a deletion step failed part-way.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from regfs import __version__, api, render
from regfs.analysis import DEFAULT_UPLOAD_AGE
from regfs.duration import parse_duration
from regfs.errors import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, RegfsError

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


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """A rich progress bar on stderr when it is a terminal; otherwise no callback."""
    if not enabled or not err.is_terminal:
        yield None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        tasks: dict[str, Any] = {}

        def update(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done, total=total)

        yield update


@contextmanager
def errors() -> Iterator[None]:
    try:
        yield
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


def main() -> None:
    try:
        app()
    except BrokenPipeError:  # e.g. `regfs tree | head`
        sys.stderr.close()
        sys.exit(0)
