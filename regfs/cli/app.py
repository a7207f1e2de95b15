"""The ``regfs`` typer application: its help, ``--version``, and every command in order.

The commands live in one module per group (:mod:`~regfs.cli.inspect`,
:mod:`~regfs.cli.gc`, :mod:`~regfs.cli.trash`, :mod:`~regfs.cli.retain`); they are
registered here, in the order
``regfs --help`` lists them.
"""

from __future__ import annotations

from typing import Annotated

import typer

from regfs import __version__
from regfs.cli import gc, inspect, retain, trash
from regfs.cli.helpfmt import EXIT_CODES_HELP, Command

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

trash_app = typer.Typer(
    help="List and purge the runs kept in the trash (made by gc --trash and rm --trash).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


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


app.command("tree", cls=Command)(inspect.tree_cmd)
app.command("orphans", cls=Command)(inspect.orphans_cmd)
app.command("gc", cls=Command)(gc.gc_cmd)
app.command("rm", cls=Command)(gc.rm_cmd)
app.command("restore", cls=Command)(trash.restore_cmd)
app.add_typer(trash_app, name="trash")
trash_app.command("list", cls=Command)(trash.trash_list_cmd)
trash_app.command("purge", cls=Command)(trash.trash_purge_cmd)
app.command("check", cls=Command)(inspect.check_cmd)
app.command("du", cls=Command)(inspect.du_cmd)
app.command("retain", cls=Command)(retain.retain_cmd)
