"""The deleting commands: ``gc`` and ``rm``.

Each parses its options, calls one library function with a confirmation callback and a
progress callback, renders the outcome, and exits with the code its status maps to (3
refused, 4 a deletion failed part-way, 130 interrupted).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated, TypeVar

import typer

from regfs import api, render
from regfs.cli.completion import complete_target
from regfs.cli.console import (
    Display,
    confirmation,
    echo_text,
    errors,
    refused_lines,
    require_confirmation_channel,
    text_width,
    warn,
)
from regfs.cli.options import (
    ConfigOpt,
    EndpointOpt,
    JobsOpt,
    JsonOpt,
    RegistryUrlOpt,
    RootArg,
    SkipLiveOpt,
    TrashOpt,
    YesOpt,
    duration,
    tuning_from,
)
from regfs.defaults import MIN_AGE_TEXT, UPLOADS_OLDER_THAN_TEXT
from regfs.errors import EXIT_INTERRUPTED, EXIT_PARTIAL, EXIT_REFUSED
from regfs.gc.outcome import GcOutcome, GcRefused, RunStatus
from regfs.gc.plan import GcOptions, GcPlan
from regfs.gc.removal import RmOutcome
from regfs.gc.run import command_line
from regfs.rootargs import split_root


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
    ] = MIN_AGE_TEXT,
    uploads_older_than: Annotated[
        str,
        typer.Option(
            "--uploads-older-than",
            metavar="DURATION",
            help="Delete unfinished uploads started before this (0: no age limit).",
        ),
    ] = UPLOADS_OLDER_THAN_TEXT,
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
    jobs: JobsOpt = None,
    config: ConfigOpt = None,
    endpoint_url: EndpointOpt = None,
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
    tune = tuning_from(jobs)
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
        confirm: Callable[[GcPlan], bool] = confirmation(
            display,
            yes=yes,
            preview_with_yes=False,
            preview=lambda plan: render.gc_preview(plan, width=width),
            question=lambda plan: (
                f"{'Move' if trash else 'Delete'} {render.plural(len(plan.actions), 'item')} "
                f"({render.size(plan.reclaimed_bytes)}){' into the trash' if trash else ''}?"
            ),
        )

        with errors(display):
            outcome = _outcome_of_refusal(
                display,
                GcOutcome,
                lambda: api.Registry.at(root, tune, config=config, endpoint_url=endpoint_url).gc(
                    options,
                    dry_run=dry_run,
                    registry_url=registry_url,
                    skip_live_check=skip_live_check,
                    confirm=confirm,
                    progress=display.callback,
                    command=command_line(["regfs", *sys.argv[1:]]),
                ),
            )
    if as_json:
        echo_text(render.to_json(render.gc_dict(outcome)))
    else:
        echo_text(render.gc_text(outcome, width=width))
    if outcome.live_check_skipped and not dry_run:
        warn("the live-registry check was skipped (--skip-live-check)")
    exit_for(outcome)


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
            autocompletion=complete_target,
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
    ] = MIN_AGE_TEXT,
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
    jobs: JobsOpt = None,
    config: ConfigOpt = None,
    endpoint_url: EndpointOpt = None,
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
    tune = tuning_from(jobs)
    with errors():
        root, targets = split_root(args, "target", forms="REPO:TAG, REPO@DIGEST or REPO")
    gc_options = GcOptions(min_age=duration(min_age, "--min-age"), trash=trash, force=force)
    require_confirmation_channel(dry_run, yes)
    if skip_live_check:
        warn("--skip-live-check: not checking whether the registry is live")
    width = text_width()

    with Display(not as_json) as display:
        confirm: Callable[[GcPlan], bool] = confirmation(
            display,
            yes=yes,
            preview_with_yes=not as_json,
            preview=lambda plan: render.rm_preview(plan, width=width),
            question=lambda plan: "Remove these?",
        )

        with errors(display):
            outcome = _outcome_of_refusal(
                display,
                RmOutcome,
                lambda: api.Registry.at(root, tune, config=config, endpoint_url=endpoint_url).rm(
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
                ),
            )
    if as_json:
        echo_text(render.to_json(render.rm_dict(outcome)))
    else:
        echo_text(render.rm_text(outcome, width=width))
    exit_for(outcome)


Outcome = TypeVar("Outcome", GcOutcome, RmOutcome)


def _outcome_of_refusal(
    display: Display, kind: type[Outcome], run: Callable[[], Outcome]
) -> Outcome:
    """``run()``; a real run's refusal (GcRefused) becomes its outcome, to be rendered
    (with every reason) and exit 3, after ``regfs: refused: ...`` on stderr."""
    try:
        return run()
    except GcRefused as exc:
        assert isinstance(exc.outcome, kind)
        display.pause()
        refused_lines(str(exc))
        return exc.outcome


# The exit code of each way a run can end that is not success.
EXIT_FOR_STATUS = {
    RunStatus.REFUSED: EXIT_REFUSED,
    RunStatus.FAILED: EXIT_PARTIAL,
    RunStatus.INTERRUPTED: EXIT_INTERRUPTED,
}


def exit_for(outcome: GcOutcome | RmOutcome) -> None:
    """Exit 3 when refused (a dry run: a real run would be), 4 when a deletion failed
    part-way, 130 when interrupted; return (exit 0) otherwise."""
    code = EXIT_FOR_STATUS.get(outcome.status)
    if code is not None:
        raise typer.Exit(code)
