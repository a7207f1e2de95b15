"""The ``regfs`` command line: parse arguments, call one library function, render, exit.

Exit codes: 0 ok; 1 problems found; 2 bad input (unusable ROOT, bad argument, unknown target,
no confirmation); 3 refused for safety (incomplete graph, live registry, lock held);
4 a deletion step failed part-way.

Conventions every command follows (tested in tests/test_cli.py):

* ROOT is the first positional argument and may be omitted (``$REGFS_ROOT``, else
  ``/var/lib/registry``); an empty ROOT is an error. For ``rm`` and ``restore``, which take
  more positionals, see :func:`split_root`.
* Results go to stdout, warnings, errors, progress and prompts to stderr.
* A live progress display is stopped before anything is printed on stderr or asked.
* Text output is wrapped to the terminal's width (``$COLUMNS`` or 80 when stdout is not a
  terminal) at spaces only: an identifier is never cut or shortened.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, MutableMapping, Sequence
from types import TracebackType
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
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.text import Text
from typer._click.core import Context  # typer 0.29 vendors (a trimmed) click
from typer._click.formatting import HelpFormatter
from typer._click.shell_completion import CompletionItem
from typer.core import TyperArgument

from regfs import __version__, api, render
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
from regfs.gc.run import GcOutcome, GcRefused, RmOutcome, collect, command_line, remove
from regfs.gc.trash import TrashRun
from regfs.heap import collector_paused
from regfs.reports.check import VERIFY_PHASE


class _Command(typer.core.TyperCommand):
    """Help that reads like the README: ``[ROOT]``, ``RUN-ID``, no ``<str>`` placeholders."""

    def collect_usage_pieces(self, ctx: Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                pieces.append(_usage_name(param))
        return pieces

    def format_options(self, ctx: Context, formatter: HelpFormatter) -> None:
        args: list[tuple[str, str]] = []
        opts: list[tuple[str, str]] = []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                help_text = getattr(param, "help", None) or ""
                args.append((_usage_name(param), help_text))
            else:
                rv = param.get_help_record(ctx)
                if rv is not None:
                    opts.append(rv)
        if args:
            with formatter.section("Arguments"):
                formatter.write_dl(args)
        if opts:
            with formatter.section("Options"):
                formatter.write_dl(opts)


def _usage_name(param: TyperArgument) -> str:
    # A metavar is written out in full, e.g. "[ROOT] TARGET...".
    name = param.metavar or (param.name or "").upper() + ("..." if param.nargs != 1 else "")
    return name if param.required or name.startswith("[") else f"[{name}]"


EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 problems found; 2 bad input; 3 refused for safety; "
    "4 a deletion step failed part-way; 130 interrupted."
)

app = typer.Typer(
    name="regfs",
    help="Inspect, check and garbage-collect a Docker/OCI registry's storage offline.\n\n"
    "ROOT is the registry's rootdirectory (holding docker/registry/v2) or the v2 folder; "
    "when omitted, $REGFS_ROOT, else /var/lib/registry. Every command has --json (schemas: "
    "regfs/schemas/). Results go to stdout; progress, prompts, warnings and errors to "
    "stderr.\n\n" + EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

err = Console(stderr=True, highlight=False)


def _complete_root(incomplete: str) -> list[CompletionItem]:
    return [CompletionItem(incomplete, type="dir")]


_COMMANDS = {
    "tree",
    "orphans",
    "gc",
    "rm",
    "retain",
    "restore",
    "check",
    "du",
    "trash",
    "list",
    "purge",
}
_VALUED = {
    "--repo",
    "--min-age",
    "--uploads-older-than",
    "--registry-url",
    "--older-than",
    "--by",
    "--tags",
    "--keep-tags",
    "--keep-last",
    "--policy",
    "--sort",
    "--top",
}


def _typed(ctx: Context) -> list[str]:
    """The words typed so far, as far as completion's lenient parse got (it may leave them
    unassigned in ``ctx.args`` when the word being completed is an option's value)."""
    words: list[str] = []
    root = ctx.params.get("root")
    if isinstance(root, str):
        words.append(root)
    words.extend(str(a) for a in ctx.params.get("args") or ())
    words.extend(str(a) for a in ctx.args)
    return words


def _root_of(args: list[str]) -> str | None:
    """ROOT among the words typed so far (for completion): the first positional argument.

    For ``rm`` it is ROOT once something follows it, which is the case when a TARGET is
    being completed; with no positional typed yet, ``$REGFS_ROOT`` (``None``).
    """
    skip = False
    for word in args:
        if skip:
            skip = False
        elif word in _VALUED:
            skip = True
        elif word.startswith("-") or word in _COMMANDS:
            continue
        else:
            return word
    return None


def _complete_repo(ctx: Context, incomplete: str) -> list[str]:
    """Repository names under ROOT (a listing of folders only, no scan)."""
    try:
        names = api.repository_names(_root_of(_typed(ctx)))
    except (RegfsError, OSError):
        return []
    return [n for n in names if n.startswith(incomplete)]


def _complete_target(ctx: Context, incomplete: str) -> list[str]:
    """``REPO`` and, after a colon, ``REPO:TAG`` under ROOT."""
    root = _root_of(_typed(ctx))
    try:
        if ":" in incomplete:
            repo, _, prefix = incomplete.partition(":")
            return [f"{repo}:{t}" for t in api.tag_names(root, repo) if t.startswith(prefix)]
        return [n for n in api.repository_names(root) if n.startswith(incomplete)]
    except (RegfsError, OSError):
        return []


RootArg = Annotated[
    str | None,
    typer.Argument(
        metavar="ROOT",
        help="Registry rootdirectory (holding docker/registry/v2) or the v2 folder. "
        "Default: $REGFS_ROOT, else /var/lib/registry.",
        show_default=False,
        autocompletion=_complete_root,
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print JSON (schema: regfs/schemas/, see README).")
]
RepoOpt = Annotated[
    str | None,
    typer.Option(
        "--repo",
        metavar="GLOB",
        help="Only repositories matching GLOB (* within a path segment, ** across, ?, "
        "[abc]); matching none is an error (exit 2).",
        autocompletion=_complete_repo,
    ),
]
YesOpt = Annotated[
    bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (needed in scripts).")
]
TrashOpt = Annotated[
    bool, typer.Option("--trash", help="Move into ROOT/.regfs/trash/RUN-ID, do not delete.")
]
RegistryUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--registry-url",
        metavar="URL",
        help="Also ask the registry there whether it is read-only (the probe writes nothing).",
    ),
]
SkipLiveOpt = Annotated[
    bool, typer.Option("--skip-live-check", help="Skip every live-registry check (dangerous).")
]


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


# --- shared helpers -------------------------------------------------------------------------


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    err.print(f"regfs: error: {message}", markup=False, soft_wrap=True)
    raise typer.Exit(code)


def warn(message: str) -> None:
    """Warnings go to stderr, in every command."""
    err.print(f"regfs: warning: {message}", markup=False, soft_wrap=True)


def duration(text: str, option: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        fail(f"{option}: {exc}")


def text_width() -> int:
    """The terminal's width on a terminal, else ``$COLUMNS``, else 80 (never below 40)."""
    return max(40, Console().width)


def echo_text(text: str) -> None:
    typer.echo(text)


def interactive() -> bool:
    return sys.stdin.isatty() and err.is_terminal


def require_confirmation_channel(dry_run: bool, yes: bool) -> None:
    """A real deleting run without --yes needs a terminal to ask on (exit 2 otherwise)."""
    if not dry_run and not yes and not interactive():
        fail("a real run needs --yes without a terminal; nothing deleted")


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


class Display:
    """The live progress display on stderr (only when stderr is a terminal).

    Started by the first progress report, stopped (and erased) by :meth:`pause` before
    anything else is written to the terminal: a prompt printed under a live display is
    overwritten by its next refresh. The next report starts a fresh display.
    """

    def __init__(self, enabled: bool, byte_phases: Sequence[str] = ()) -> None:
        self.enabled = enabled and err.is_terminal
        self._byte_phases = tuple(byte_phases)
        self._bar: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._lock = threading.Lock()

    @property
    def callback(self) -> Callable[[str, int, int], None] | None:
        return self.update if self.enabled else None

    def update(self, phase: str, done: int, total: int) -> None:
        with self._lock:
            if self._bar is None:
                self._bar = Progress(
                    TextColumn("{task.description}"),
                    BarColumn(),
                    _AmountColumn(),
                    TimeElapsedColumn(),
                    console=err,
                    transient=True,
                    refresh_per_second=4,  # the redraw thread competes for the GIL
                )
                self._bar.start()
                self._tasks = {}
            if phase not in self._tasks:
                self._tasks[phase] = self._bar.add_task(
                    phase, total=total, bytes=phase in self._byte_phases
                )
            self._bar.update(self._tasks[phase], completed=done, total=total)

    def pause(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.stop()
                self._bar = None
                self._tasks = {}

    def __enter__(self) -> Display:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.pause()


def ask(display: Display, question: str) -> bool:
    """Ask a yes/no question on the terminal (stderr); anything but y/yes is no.

    The answer is read from stdin; nothing is written to stdout (``--json > file`` stays
    clean), and the live display is stopped first so the question stays visible.
    """
    display.pause()
    sys.stderr.write(f"{question} [y/N]: ")
    sys.stderr.flush()
    line = sys.stdin.readline()
    if not line:  # end of input
        sys.stderr.write("\n")
        return False
    return line.strip().lower() in ("y", "yes")


class errors:  # lower case: read as ``with errors(display):``
    """Map RegfsError to its message and exit code; stop the live display first."""

    def __init__(self, display: Display | None = None) -> None:
        self.display = display

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            return
        if self.display is not None and isinstance(exc, RegfsError | KeyboardInterrupt):
            self.display.pause()
        if isinstance(exc, RefusedError):
            _refused(exc)
        if isinstance(exc, RegfsError):
            fail(str(exc), exc.exit_code)
        if isinstance(exc, KeyboardInterrupt):
            fail("interrupted", 130)


def _refused(exc: RefusedError) -> NoReturn:
    lines = render.wrap_lines(
        [f"regfs: refused: {exc}", *(f"  {r}" for r in exc.reasons)], text_width()
    )
    err.print("\n".join(lines), markup=False, soft_wrap=True)
    raise typer.Exit(exc.exit_code)


def _path_like(arg: str) -> bool:
    """Whether an argument can only be a path: ``.``, ``..``, ``/…``, ``./…``, ``~…``, ``…/``.

    No repository name, tag reference or run id looks like this (a name starts with a
    lowercase letter or digit and never ends with ``/``).
    """
    return arg in (".", "..") or arg.startswith(("/", "./", "../", "~")) or arg.endswith("/")


def split_root(
    args: list[str], what: str, *, forms: str = "", single: bool = False
) -> tuple[str | None, list[str]]:
    """ROOT and the rest, for the commands that take more than ROOT (``rm``, ``restore``).

    The rule, decided from the arguments alone (the filesystem is never probed):

    * two or more arguments: the first is ROOT, the rest are ``what``;
    * one argument that looks like a path (:func:`_path_like`): it is ROOT, and ``what`` is
      missing (``regfs rm . --dry-run`` says "no target given");
    * one other argument: it is ``what``; ROOT is ``$REGFS_ROOT``, else ``/var/lib/registry``.

    ``single``: exactly one ``what`` is expected; ``forms`` says what one looks like.
    """
    hint = f"{forms}; " if forms else ""
    if not args:
        fail(f"no {what} given")
    if len(args) == 1:
        if _path_like(args[0]):
            fail(f"no {what} given ({hint}ROOT is {args[0]!r})")
        return None, args
    root, rest = args[0], args[1:]
    if single and len(rest) > 1:
        fail(f"one {what} expected after ROOT, got {len(rest)}: {' '.join(rest)}")
    return root, rest


# --- tree, orphans ----------------------------------------------------------------------------


@app.command("tree", cls=_Command)
def tree_cmd(root: RootArg = None, repo: RepoOpt = None, as_json: JsonOpt = False) -> None:
    """Show repositories, tags, manifests, configs and layers as a tree.

    Untagged manifests are listed under their repository, referrers (signatures, SBOMs) under
    their subject. Names are never shortened; digests are shown as their first 12 hex digits
    (--json has them in full).

    \b
    Example:
      regfs tree /srv/registry --repo 'library/**'
    """
    with Display(not as_json) as display, errors(display):
        data = api.tree(root, repo_glob=repo, progress=display.callback)
    echo_text(render.tree_json(data) if as_json else render.tree_text(data))


@app.command("orphans", cls=_Command)
def orphans_cmd(
    root: RootArg = None,
    uploads_older_than: Annotated[
        str,
        typer.Option(
            "--uploads-older-than",
            metavar="DURATION",
            help="Uploads started before this are stale (0: no age limit, all are).",
        ),
    ] = "168h",
    as_json: JsonOpt = False,
) -> None:
    """Report orphaned blobs, untagged manifests, dangling references, stale uploads and every
    problem the scan met.

    Exit 0 when there is no dangling reference and no problem, 1 when there is.

    \b
    Example:
      regfs orphans /srv/registry --uploads-older-than 7d
    """
    age = duration(uploads_older_than, "--uploads-older-than")
    with Display(not as_json) as display, errors(display):
        report = api.find_orphans(root, uploads_older_than=age, progress=display.callback)
    if as_json:
        echo_text(render.to_json(render.orphans_dict(report)))
    else:
        echo_text(render.orphans_text(report, width=text_width()))
    raise typer.Exit(EXIT_OK if report.healthy else EXIT_FINDINGS)


# --- gc, rm -----------------------------------------------------------------------------------


@app.command("gc", cls=_Command)
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
        str,
        typer.Option(
            "--min-age", metavar="DURATION", help="Grace period: keep anything younger (0: none)."
        ),
    ] = "1h",
    uploads_older_than: Annotated[
        str,
        typer.Option(
            "--uploads-older-than",
            metavar="DURATION",
            help="Delete unfinished uploads started before this (0: no age limit).",
        ),
    ] = "168h",
    trash: TrashOpt = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Proceed despite unreadable items; everything they might use is kept."
        ),
    ] = False,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
    registry_url: RegistryUrlOpt = None,
    skip_live_check: SkipLiveOpt = False,
) -> None:
    """Delete what nothing needs: unreferenced blobs (with --delete-untagged also the manifests
    no tag reaches), dead layer links, stale uploads and the folders left empty.

    A real run shows its plan and asks for confirmation on a terminal; without a terminal it
    needs --yes. Exit codes: 0 done (or planned); 2 bad input or not confirmed; 3 refused
    (incomplete graph, live registry, lock held; a dry run exits 3 when a real run would
    refuse); 4 a deletion failed part-way (fix the cause and run again: gc converges); 130
    interrupted.

    \b
    Example:
      regfs gc /srv/registry --dry-run --delete-untagged
      regfs gc /srv/registry --trash --registry-url http://127.0.0.1:5000
    """
    options = GcOptions(
        delete_untagged=delete_untagged,
        min_age=duration(min_age, "--min-age"),
        uploads_older_than=duration(uploads_older_than, "--uploads-older-than"),
        force=force,
        trash=trash,
    )
    require_confirmation_channel(dry_run, yes)
    if skip_live_check:
        warn("--skip-live-check: not checking whether the registry is live")
    width = text_width()

    with Display(not as_json) as display:

        def confirm(plan: GcPlan) -> bool:
            if yes:
                return True
            display.pause()
            err.print(render.gc_preview(plan, width=width), markup=False, soft_wrap=True)
            verb = "Move" if trash else "Delete"
            where = " into the trash" if trash else ""
            return ask(
                display,
                f"{verb} {render.plural(len(plan.actions), 'item')} "
                f"({render.size(plan.reclaimed_bytes)}){where}?",
            )

        with errors(display):
            try:
                outcome = collect(
                    root,
                    options,
                    dry_run=dry_run,
                    registry_url=registry_url,
                    skip_live_check=skip_live_check,
                    confirm=confirm,
                    progress=display.callback,
                    command=command_line(["regfs", *sys.argv[1:]]),
                )
            except GcRefused as exc:
                assert isinstance(exc.outcome, GcOutcome)
                outcome = exc.outcome
                _refused_line(display, exc)
    if as_json:
        echo_text(render.to_json(render.gc_dict(outcome)))
    else:
        echo_text(render.gc_text(outcome, width=width))
    if outcome.live_check_skipped and not dry_run:
        warn("the live-registry check was skipped (--skip-live-check)")
    if outcome.would_refuse:
        raise typer.Exit(EXIT_REFUSED)
    _exit_for_runs(outcome)


@app.command("rm", cls=_Command)
def rm_cmd(
    args: Annotated[
        list[str],
        typer.Argument(
            metavar="[ROOT] TARGET...",
            help="REPO:TAG, REPO@DIGEST or REPO; globs (* within a path segment, ** across) "
            "are expanded against ROOT and previewed. With two or more arguments the first is "
            "ROOT; a single argument is a TARGET unless it looks like a path (., /..., ./..., "
            "~..., .../).",
            show_default=False,
            autocompletion=_complete_target,
        ),
    ],
    dry_run: Annotated[bool, typer.Option("--dry-run", "-n", help="Show what would go.")] = False,
    yes: YesOpt = False,
    trash: TrashOpt = False,
    run_gc: Annotated[bool, typer.Option("--gc", help="Run `regfs gc` straight after.")] = False,
    min_age: Annotated[
        str,
        typer.Option(
            "--min-age",
            metavar="DURATION",
            help="Grace period of the gc that follows (0: none).",
        ),
    ] = "1h",
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Remove even what a tag that stays needs (a child of a tagged index: says "
            "what breaks), and let the gc proceed despite unreadable items.",
        ),
    ] = False,
    as_json: JsonOpt = False,
    registry_url: RegistryUrlOpt = None,
    skip_live_check: SkipLiveOpt = False,
) -> None:
    """Delete tags, manifests or whole repositories offline; the blobs they leave are for gc.

    REPO@DIGEST removes the manifest, every tag on it and its referrers (signatures, SBOMs);
    DIGEST may be the short form regfs prints (a unique prefix of at least 12 hex digits).
    REPO removes the repository (its folder too when nothing else lives there; child
    repositories stay). Everything a target matches is listed before anything is deleted.
    Exit codes: 0 done; 2 malformed, unknown or ambiguous target, glob matching nothing, not
    confirmed; 3 refused (the removal breaks a tag that stays, the gc of --gc would refuse,
    live registry, lock held; a dry run exits 3 when a real run would refuse); 4 a deletion
    failed part-way.

    \b
    Example:
      regfs rm /srv/registry 'library/python:3.*' --dry-run
      regfs rm /srv/registry team/old --trash --gc
    """
    root, targets = split_root(args, "target", forms="REPO:TAG, REPO@DIGEST or REPO")
    gc_options = GcOptions(min_age=duration(min_age, "--min-age"), trash=trash, force=force)
    require_confirmation_channel(dry_run, yes)
    if skip_live_check:
        warn("--skip-live-check: not checking whether the registry is live")
    width = text_width()

    with Display(not as_json) as display:

        def confirm(plan: GcPlan) -> bool:
            if yes and as_json:
                return True
            display.pause()
            err.print(render.rm_preview(plan, width=width), markup=False, soft_wrap=True)
            return yes or ask(display, "Remove these?")

        with errors(display):
            outcome = _refusal_or(display, remove)(
                root,
                targets,
                dry_run=dry_run,
                trash=trash,
                run_gc=run_gc,
                gc_options=gc_options,
                registry_url=registry_url,
                skip_live_check=skip_live_check,
                confirm=confirm,
                progress=display.callback,
                command=command_line(["regfs", *sys.argv[1:]]),
            )
    if as_json:
        echo_text(render.to_json(render.rm_dict(outcome)))
    else:
        echo_text(render.rm_text(outcome, width=width))
    if outcome.removal.would_refuse or (outcome.gc is not None and outcome.gc.would_refuse):
        raise typer.Exit(EXIT_REFUSED)
    _exit_for_runs(outcome.removal, outcome.gc)


def _refusal_or(display: Display, run: Callable[..., RmOutcome]) -> Callable[..., RmOutcome]:
    """``run``, whose refusal (GcRefused) becomes its outcome, to be rendered and exit 3."""

    def call(*args: Any, **kwargs: Any) -> RmOutcome:
        try:
            return run(*args, **kwargs)
        except GcRefused as exc:
            assert isinstance(exc.outcome, RmOutcome)
            _refused_line(display, exc)
            return exc.outcome

    return call


def _refused_line(display: Display, exc: GcRefused) -> None:
    """The message on stderr of a refused real run (its reasons go with the output),
    wrapped to the terminal like every text output."""
    display.pause()
    lines = render.wrap_lines([f"regfs: refused: {exc}"], text_width())
    err.print("\n".join(lines), markup=False, soft_wrap=True)


def _exit_for_runs(*parts: GcOutcome | None) -> None:
    """Exit 4 when a run's deletion failed part-way, 130 when it was interrupted."""
    for part in parts:
        if part is not None and part.executed is not None:
            if part.executed.failed:
                raise typer.Exit(EXIT_PARTIAL)
            if part.executed.interrupted:
                raise typer.Exit(130)


# --- restore, trash ---------------------------------------------------------------------------


@app.command("restore", cls=_Command)
def restore_cmd(
    args: Annotated[
        list[str],
        typer.Argument(
            metavar="[ROOT] RUN-ID",
            help="The run to put back (see `regfs trash list`). With two arguments the first "
            "is ROOT.",
            show_default=False,
        ),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Put back everything a `regfs gc --trash` (or `rm --trash`) run moved; never overwrites.

    Exit 0 when every item of the run is back in place, 1 when some could not be (something
    is there again, or it is missing from the trash).

    \b
    Example:
      regfs restore /srv/registry 20261129T011500Z-1a2b3c4d
    """
    root, rest = split_root(args, "RUN-ID", single=True)
    with errors():
        res = api.restore(root, rest[0])
    if as_json:
        echo_text(render.to_json(render.restore_dict(res)))
    else:
        echo_text(render.restore_text(res, width=text_width()))
    if res.refused or res.missing:
        raise typer.Exit(EXIT_FINDINGS)


trash_app = typer.Typer(
    help="List and purge the runs kept in the trash (made by gc --trash and rm --trash).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(trash_app, name="trash")


@trash_app.command("list", cls=_Command)
def trash_list_cmd(root: RootArg = None, as_json: JsonOpt = False) -> None:
    """The runs in the trash: when each was made, how many items `regfs restore` would put
    back, and what they hold on disk.

    \b
    Example:
      regfs trash list /srv/registry
    """
    with errors():
        runs = api.trash_runs(root)
    if as_json:
        echo_text(render.to_json(render.trash_list_dict(runs)))
    else:
        echo_text(render.trash_list_text(runs, width=text_width()))


@trash_app.command("purge", cls=_Command)
def trash_purge_cmd(
    root: RootArg = None,
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than",
            metavar="DURATION",
            help="Purge runs made longer ago than this (0: no age limit, every run).",
        ),
    ] = "7d",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", "-n", help="Show what would be purged.")
    ] = False,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete trash runs for good: they can no longer be restored.

    Like every deleting command it lists what it would delete, asks on a terminal, needs
    --yes without one (exit 2) and writes nothing with --dry-run.

    \b
    Example:
      regfs trash purge /srv/registry --older-than 30d --dry-run
    """
    age = duration(older_than, "--older-than")
    require_confirmation_channel(dry_run, yes)
    width = text_width()
    display = Display(False)

    def confirm(runs: list[TrashRun]) -> bool:
        if yes and as_json:
            return True
        err.print(render.trash_purge_preview(runs, width=width), markup=False, soft_wrap=True)
        return yes or ask(
            display,
            f"Purge {render.plural(len(runs), 'run')} "
            f"({render.size(sum(r.bytes for r in runs))}) for good?",
        )

    with errors():
        res = api.purge_trash(root, age, dry_run=dry_run, confirm=confirm)
    if as_json:
        echo_text(render.to_json(render.trash_purge_dict(res)))
    else:
        echo_text(render.trash_purge_text(res, width=width))


# --- check, du --------------------------------------------------------------------------------


@app.command("check", cls=_Command)
def check_cmd(
    root: RootArg = None,
    verify_digests: Annotated[
        bool,
        typer.Option(
            "--verify-digests",
            help="Re-hash every blob's data and compare it with its digest (reads everything).",
        ),
    ] = False,
    repo: RepoOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check the storage (fsck): everything the scanner finds, tags that cannot be pulled,
    dangling and unlinked references; with --verify-digests, corrupt blobs.

    Exit 0 when healthy, 1 when any problem is found, 2 on bad input.

    \b
    Example:
      regfs check /srv/registry --verify-digests
    """
    with Display(True, (VERIFY_PHASE,)) as display, errors(display):
        report = api.check(
            root, repo_glob=repo, verify_digests=verify_digests, progress=display.callback
        )
    if as_json:
        echo_text(render.to_json(render.check_dict(report)))
    else:
        echo_text(render.check_text(report, width=text_width()))
    raise typer.Exit(EXIT_OK if report.healthy else EXIT_FINDINGS)


@app.command("du", cls=_Command)
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
    exclusive (what `regfs rm REPO` followed by `regfs gc` would free), untagged; registry
    totals and the dedup ratio.

    Exit 0, or 1 when part of the storage could not be read (named in the output).

    \b
    Example:
      regfs du /srv/registry --by tag --top 10
    """
    limit: int | None = None
    if top is not None:
        try:
            limit = int(top)
        except ValueError:
            fail(f"--top must be a positive number, not {top!r}")
    with Display(not as_json) as display, errors(display):
        report = api.du(root, by=by, sort=sort, top=limit, progress=display.callback)
    if as_json:
        echo_text(render.to_json(render.du_dict(report)))
    else:
        echo_text(render.du_text(report, width=text_width()))
    if not report.complete:
        # Part of the storage could not be read: the sizes are not the whole truth.
        raise typer.Exit(EXIT_FINDINGS)


# Commands in modules of their own register themselves on ``app`` when imported.
from regfs.cli import retain as _retain  # noqa: E402, F401

# --- entry point ------------------------------------------------------------------------------


def main() -> NoReturn:
    """The console script: run the command, flush, and leave without interpreter teardown.

    A scan of a large store leaves hundreds of MB of small objects; freeing them one by one at
    exit measured as an eighth of ``regfs gc --dry-run``'s wall time on a 200k-file tree. By
    the time the command returns every file, lock and worker pool has been closed by its own
    ``with`` block, so only the standard streams need flushing before ``os._exit``.
    """
    import os

    _accept_click_completion_style(os.environ)
    code: int = EXIT_OK
    try:
        with collector_paused():
            app(prog_name="regfs")
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


COMPLETE_VAR = "_REGFS_COMPLETE"
_SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")


def _accept_click_completion_style(environ: MutableMapping[str, str]) -> None:
    """Accept click's ``_REGFS_COMPLETE=bash_source`` as well as typer's ``source_bash``.

    Click documents ``{shell}_{instruction}``; typer reads ``{instruction}_{shell}``. Both
    spellings are what admins find in the two projects' documentation, so both work.
    """
    value = environ.get(COMPLETE_VAR, "")
    shell, _, instruction = value.partition("_")
    if shell in _SHELLS and instruction in ("source", "complete"):
        environ[COMPLETE_VAR] = f"{instruction}_{shell}"


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
