"""The ``regfs`` command line: parse arguments, call one library function, render, exit.

Exit codes: 0 ok; 1 problems found; 2 bad input (unusable ROOT, bad argument, unknown target,
no confirmation); 3 refused for safety (incomplete graph, live registry, lock held);
4 a deletion step failed part-way.

Conventions every command follows (tested in tests/test_cli.py):

* ROOT is the first positional argument and may be omitted (``$REGFS_ROOT``, else
  ``/var/lib/registry``); an empty ROOT is an error. For ``rm`` and ``restore``, which take
  more positionals, see :func:`regfs.rootargs.split_root`.
* Results go to stdout, warnings, errors, progress and prompts to stderr.
* A live progress display is stopped before anything is printed on stderr or asked.
* Text output is wrapped to the terminal's width (``$COLUMNS`` or 80 when stdout is not a
  terminal) at spaces only: an identifier is never cut or shortened.

Modules: :mod:`~regfs.cli.app` (the application, commands registered in order),
:mod:`~regfs.cli.options` (shared options), :mod:`~regfs.cli.console` (output, progress,
questions, errors to exit codes), one module per command group (:mod:`~regfs.cli.inspect`,
:mod:`~regfs.cli.gc`, :mod:`~regfs.cli.trash`), :mod:`~regfs.cli.helpfmt` and
:mod:`~regfs.cli.completion`, and :mod:`~regfs.cli.main` (the console script).
"""

from __future__ import annotations

from regfs.cli.app import app
from regfs.cli.main import _exit_status, main

__all__ = ["_exit_status", "app", "main"]
