"""``restore`` and ``trash list`` / ``trash purge``: the runs kept in ROOT/.regfs/trash."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from regfs import api, render
from regfs.cli.console import (
    Display,
    confirmation,
    echo_text,
    errors,
    require_confirmation_channel,
    text_width,
)
from regfs.cli.options import ConfigOpt, EndpointOpt, JsonOpt, RootArg, YesOpt, duration
from regfs.defaults import TRASH_OLDER_THAN_TEXT
from regfs.errors import EXIT_FINDINGS
from regfs.gc.trash import TrashRun
from regfs.rootargs import split_root


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
    config: ConfigOpt = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """Put back everything a `regfs gc --trash` (or `rm --trash`) run moved; never overwrites.

    Exit 0 when every item of the run is back in place, 1 when some could not be (something
    is there again, or it is missing from the trash).

    \b
    Example:
      regfs restore /srv/registry 20261129T011500Z-1a2b3c4d
    """
    with errors():
        root, rest = split_root(args, "RUN-ID", single=True)
    with errors():
        res = api.Registry.at(root, config=config, endpoint_url=endpoint_url).restore(rest[0])
    if as_json:
        echo_text(render.to_json(render.restore_dict(res)))
    else:
        echo_text(render.restore_text(res, width=text_width()))
    if res.refused or res.missing:
        raise typer.Exit(EXIT_FINDINGS)


def trash_list_cmd(
    root: RootArg = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """The runs in the trash: when each was made, how many items `regfs restore` would put
    back, and what they hold on disk.

    \b
    Example:
      regfs trash list /srv/registry
    """
    with errors():
        runs = api.Registry.at(root, config=config, endpoint_url=endpoint_url).trash_runs()
    if as_json:
        echo_text(render.to_json(render.trash_list_dict(runs)))
    else:
        echo_text(render.trash_list_text(runs, width=text_width()))


def trash_purge_cmd(
    root: RootArg = None,
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than",
            metavar="DURATION",
            help="Purge runs made longer ago than this (0: no age limit, every run).",
        ),
    ] = TRASH_OLDER_THAN_TEXT,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", "-n", help="Show what would be purged.")
    ] = False,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    endpoint_url: EndpointOpt = None,
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

    confirm: Callable[[list[TrashRun]], bool] = confirmation(
        display,
        yes=yes,
        preview_with_yes=not as_json,
        preview=lambda runs: render.trash_purge_preview(runs, width=width),
        question=lambda runs: (
            f"Purge {render.plural(len(runs), 'run')} "
            f"({render.size(sum(r.bytes for r in runs))}) for good?"
        ),
    )

    with errors():
        res = api.Registry.at(root, config=config, endpoint_url=endpoint_url).purge_trash(
            age, dry_run=dry_run, confirm=confirm
        )
    if as_json:
        echo_text(render.to_json(render.trash_purge_dict(res)))
    else:
        echo_text(render.trash_purge_text(res, width=width))
