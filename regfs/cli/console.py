"""The terminal side of every command: stdout and stderr, the live progress display, questions,
and the mapping of errors to a message and an exit code.

Results go to stdout (:func:`echo_text`); warnings, errors, progress and prompts to stderr
(:data:`err`). A live progress display is stopped before anything is printed on stderr or
asked. The display is redrawn by the progress reports themselves, never by a thread of its
own: the scan and the hashing fork helpers, and a process must not fork while another of its
threads runs (:mod:`regfs.parallel.pool` refuses to).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import NoReturn, TypeVar

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

from regfs import render
from regfs.errors import EXIT_INTERRUPTED, EXIT_USAGE, RefusedError, RegfsError

# stderr: warnings, errors, progress and questions (tests swap it for a captured console).
err = Console(stderr=True, highlight=False)

T = TypeVar("T")


def say(text: str) -> None:
    """Write ``text`` on stderr as it is (no markup, no re-wrapping)."""
    err.print(text, markup=False, soft_wrap=True)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """End the command: ``regfs: error: MESSAGE`` on stderr and exit ``code``."""
    say(f"regfs: error: {message}")
    raise typer.Exit(code)


def warn(message: str) -> None:
    """Warnings go to stderr, in every command."""
    say(f"regfs: warning: {message}")


def text_width() -> int:
    """The terminal's width on a terminal, else ``$COLUMNS``, else 80 (never below 40)."""
    return max(40, Console().width)


def echo_text(text: str) -> None:
    """A command's result, on stdout."""
    typer.echo(text)


def interactive() -> bool:
    """Whether there is a terminal to ask on (stdin and stderr both terminals)."""
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
        """The amount column of one task: bytes and speed, or done/total."""
        if task.fields.get("bytes"):
            return Text.assemble(self._bytes.render(task), "  ", self._speed.render(task))
        return self._count.render(task)


# Redraws per second at most (each costs the GIL a terminal write).
REDRAW = 4


class Display:
    """The live progress display on stderr (only when stderr is a terminal).

    Started by the first progress report, stopped (and erased) by :meth:`pause` before
    anything else is written to the terminal: a prompt printed under a live display is
    overwritten by its next refresh. The next report starts a fresh display.

    Redrawn by the reports, at most :data:`REDRAW` times a second, with no refresh thread
    (rich's ``auto_refresh`` is off): forking helpers while a thread runs is what the pool
    refuses. Between two reports the display stands still.
    """

    def __init__(self, enabled: bool, byte_phases: Sequence[str] = ()) -> None:
        self.enabled = enabled and err.is_terminal
        self._byte_phases = tuple(byte_phases)
        self._bar: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._lock = threading.Lock()
        self._drawn = 0.0

    @property
    def callback(self) -> Callable[[str, int, int], None] | None:
        """The progress callback to pass to the library (None when the display is off)."""
        return self.update if self.enabled else None

    def update(self, phase: str, done: int, total: int) -> None:
        """Show ``done`` of ``total`` for ``phase`` (a bar per phase)."""
        with self._lock:
            if self._bar is None:
                self._bar = Progress(
                    TextColumn("{task.description}"),
                    BarColumn(),
                    _AmountColumn(),
                    TimeElapsedColumn(),
                    console=err,
                    transient=True,
                    auto_refresh=False,  # no redraw thread: see the class docstring
                )
                self._bar.start()
                self._tasks = {}
                self._drawn = 0.0
            new = phase not in self._tasks
            if new:
                self._tasks[phase] = self._bar.add_task(
                    phase, total=total, bytes=phase in self._byte_phases
                )
            self._bar.update(self._tasks[phase], completed=done, total=total)
            now = time.monotonic()
            if new or done >= total or now - self._drawn >= 1 / REDRAW:
                self._drawn = now
                self._bar.refresh()

    def pause(self) -> None:
        """Stop and erase the display until the next report."""
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


def confirmation(
    display: Display,
    *,
    yes: bool,
    preview: Callable[[T], str],
    question: Callable[[T], str],
    preview_with_yes: bool,
) -> Callable[[T], bool]:
    """The confirmation rule of every deleting command, as the callback the library calls
    with what it is about to delete (after the safety checks, before the first deletion).

    Without ``--yes`` the preview goes to stderr and the question is asked on the terminal
    (:func:`require_confirmation_channel` has made sure there is one). With ``--yes`` nothing
    is asked; the preview is still shown when ``preview_with_yes`` (``rm`` and ``trash purge``
    in text mode, whose result does not list every target; ``gc``'s result has the same
    summary as its preview, so it passes False).
    """

    def confirm(subject: T) -> bool:
        if yes and not preview_with_yes:
            return True
        display.pause()
        say(preview(subject))
        return yes or ask(display, question(subject))

    return confirm


def refused_lines(message: str, reasons: Sequence[str] = ()) -> None:
    """``regfs: refused: MESSAGE`` and each reason, on stderr, wrapped to the terminal."""
    lines = render.wrap_lines(
        [f"regfs: refused: {message}", *(f"  {r}" for r in reasons)], text_width()
    )
    say("\n".join(lines))


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
            refused_lines(str(exc), exc.reasons)
            raise typer.Exit(exc.exit_code)
        if isinstance(exc, RegfsError):
            fail(str(exc), exc.exit_code)
        if isinstance(exc, KeyboardInterrupt):
            fail("interrupted", EXIT_INTERRUPTED)
