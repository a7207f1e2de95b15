"""``regfs retain``: parse the rule flags or the policy file, run, render, exit."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated

import typer

from regfs import api
from regfs.cli.completion import complete_repo
from regfs.cli.console import (
    Display,
    confirmation,
    echo_text,
    errors,
    fail,
    refused_lines,
    require_confirmation_channel,
    text_width,
    warn,
)
from regfs.cli.gc import exit_for
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
from regfs.defaults import MIN_AGE_TEXT
from regfs.errors import EXIT_REFUSED, UsageError
from regfs.gc.plan import GcPlan
from regfs.gc.run import command_line
from regfs.render import plural, size, to_json
from regfs.render.retain import retain_dict, retain_preview, retain_text
from regfs.retain.plan import RetainPlan
from regfs.retain.policy import Rule, make_rule, read_policy
from regfs.retain.run import RetainOutcome, RetainRefused


def retain_cmd(
    root: RootArg = None,
    repo: Annotated[
        list[str] | None,
        typer.Option(
            "--repo",
            metavar="GLOB",
            help="Repositories the rule covers (repeatable; * within a segment, ** across). "
            "Default: every repository.",
            autocompletion=complete_repo,
        ),
    ] = None,
    tags: Annotated[
        str | None,
        typer.Option(
            "--tags",
            metavar="REGEX",
            help="Candidates: tags whose whole name matches (default: every tag).",
        ),
    ] = None,
    keep_tags: Annotated[
        str | None,
        typer.Option(
            "--keep-tags",
            metavar="REGEX",
            help="Tags whose whole name matches are never removed (default: latest; '' for "
            "none). Keep always wins.",
        ),
    ] = None,
    keep_last: Annotated[
        int | None,
        typer.Option(
            "--keep-last", metavar="N", help="The N candidates pushed most recently survive."
        ),
    ] = None,
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            metavar="DURATION",
            help="Only candidates pushed before now - DURATION may go.",
        ),
    ] = None,
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            metavar="pushed|created",
            help="Order and age by the tag link's mtime (pushed, default) or the image "
            "config's created time.",
        ),
    ] = None,
    policy: Annotated[
        str | None,
        typer.Option(
            "--policy",
            metavar="FILE",
            help="TOML file with one [[rule]] table per rule (instead of the rule flags).",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", "-n", help="Build and show the plan; write nothing.")
    ] = False,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
    trash: TrashOpt = False,
    min_age: Annotated[
        str,
        typer.Option(
            "--min-age",
            metavar="DURATION",
            help="Tags pushed (and blobs written) within this are never removed (0: none).",
        ),
    ] = MIN_AGE_TEXT,
    registry_url: RegistryUrlOpt = None,
    skip_live_check: SkipLiveOpt = False,
    jobs: JobsOpt = None,
    config: ConfigOpt = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """Remove tags by retention rules (keep the last N, drop what is older, by pattern),
    with the manifests they leave untagged and exactly the blobs nothing needs any more.

    Per repository matching --repo, the candidates are the tags whose whole name matches
    --tags and not --keep-tags; --keep-last N keeps the N pushed most recently, --older-than
    D lets only those pushed before now - D go; both: a tag goes only when it is outside the
    newest N and older than D. Neither: refused (exit 2). One plan, one run id, one journal;
    --trash makes it undoable with `regfs restore`. Exit codes: 0 done (or planned); 2 bad
    rule, policy or input, not confirmed; 3 refused (a repository whose tags all share one
    pushed-at second or cannot be read: it is left untouched and named; or, for the whole
    run, as gc: incomplete graph, live registry, lock held); 4 a deletion failed part-way.

    \b
    Example:
      regfs retain /srv/registry --repo 'team/*' --keep-last 10 --older-than 30d --dry-run
      regfs retain /srv/registry --policy retention.toml --trash
    """
    tune = tuning_from(jobs)
    rules = _rules(repo, tags, keep_tags, keep_last, older_than, by, policy)
    grace = duration(min_age, "--min-age")
    require_confirmation_channel(dry_run, yes)
    if skip_live_check:
        warn("--skip-live-check: not checking whether the registry is live")
    width = text_width()

    with Display(not as_json) as display:
        confirm: Callable[[GcPlan], bool] = confirmation(
            display,
            yes=yes,
            preview_with_yes=False,
            preview=_preview(width),
            question=lambda plan: (
                f"{'Move' if trash else 'Delete'} {plural(len(plan.actions), 'item')} "
                f"({size(plan.reclaimed_bytes)}){' into the trash' if trash else ''}?"
            ),
        )

        with errors(display):
            try:
                outcome: RetainOutcome = api.Registry.at(
                    root, tune, config=config, endpoint_url=endpoint_url
                ).retain(
                    rules,
                    dry_run=dry_run,
                    trash=trash,
                    min_age=grace,
                    registry_url=registry_url,
                    skip_live_check=skip_live_check,
                    confirm=confirm,
                    progress=display.callback,
                    command=command_line(["regfs", *sys.argv[1:]]),
                )
            except RetainRefused as exc:
                outcome = exc.result
                display.pause()
                refused_lines(str(exc))
    if as_json:
        echo_text(to_json(retain_dict(outcome)))
    else:
        echo_text(retain_text(outcome, width=width))
    if outcome.run.live_check_skipped and not dry_run:
        warn("the live-registry check was skipped (--skip-live-check)")
    exit_for(outcome.run)
    if outcome.selection.refused:
        raise typer.Exit(EXIT_REFUSED)


def _preview(width: int) -> Callable[[GcPlan], str]:
    """The retain plan's preview (per repository) shown before asking."""

    def preview(plan: GcPlan) -> str:
        assert isinstance(plan, RetainPlan)
        return retain_preview(plan, width=width)

    return preview


def _rules(
    repo: list[str] | None,
    tags: str | None,
    keep_tags: str | None,
    keep_last: int | None,
    older_than: str | None,
    by: str | None,
    policy: str | None,
) -> list[Rule]:
    """The policy file's rules, or the one rule the flags form (exit 2 when malformed)."""
    flags = {
        "--repo": repo,
        "--tags": tags,
        "--keep-tags": keep_tags,
        "--keep-last": keep_last,
        "--older-than": older_than,
        "--by": by,
    }
    try:
        if policy is not None:
            given = [f for f, v in flags.items() if v is not None]
            if given:
                fail(
                    f"--policy and {', '.join(given)}: write the rule into the policy file "
                    "(the flags form one rule only when there is no policy)"
                )
            return read_policy(policy)
        return [
            make_rule(
                repos=repo,
                tags=tags,
                keep_tags=keep_tags,
                keep_last=keep_last,
                older_than=older_than,
                by=by,
            )
        ]
    except UsageError as exc:
        fail(str(exc), exc.exit_code)
