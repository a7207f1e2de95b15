"""The reading commands: ``tree``, ``orphans``, ``check``, ``du``.

Each one scans, builds its report, renders it as text or JSON and exits 0, or 1 when the
report says something is wrong (:attr:`healthy`, :attr:`complete`).
"""

from __future__ import annotations

from typing import Annotated

import typer

from regfs import api, render
from regfs.cli.console import Display, echo_text, errors, fail, text_width
from regfs.cli.options import (
    ConfigOpt,
    EndpointOpt,
    JobsOpt,
    JsonOpt,
    RepoOpt,
    RootArg,
    duration,
    tuning_from,
)
from regfs.defaults import UPLOADS_OLDER_THAN_TEXT
from regfs.errors import EXIT_FINDINGS, EXIT_OK
from regfs.reports.check import VERIFY_PHASE


def tree_cmd(
    root: RootArg = None,
    repo: RepoOpt = None,
    as_json: JsonOpt = False,
    jobs: JobsOpt = None,
    config: ConfigOpt = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """Show repositories, tags, manifests, configs and layers as a tree.

    Untagged manifests are listed under their repository, referrers (signatures, SBOMs) under
    their subject. Names are never shortened; digests are shown as their first 12 hex digits
    (--json has them in full).

    \b
    Example:
      regfs tree /srv/registry --repo 'library/**'
    """
    tune = tuning_from(jobs)
    with Display(not as_json) as display, errors(display):
        data = api.Registry.at(root, tune, config=config, endpoint_url=endpoint_url).tree(
            repo_glob=repo, progress=display.callback
        )
    echo_text(render.tree_json(data) if as_json else render.tree_text(data))


def orphans_cmd(
    root: RootArg = None,
    uploads_older_than: Annotated[
        str,
        typer.Option(
            "--uploads-older-than",
            metavar="DURATION",
            help="Uploads started before this are stale (0: no age limit, all are).",
        ),
    ] = UPLOADS_OLDER_THAN_TEXT,
    as_json: JsonOpt = False,
    jobs: JobsOpt = None,
    config: ConfigOpt = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """Report orphaned blobs, untagged manifests, dangling references, stale uploads and every
    problem the scan met.

    Exit 0 when there is no dangling reference and no problem, 1 when there is.

    \b
    Example:
      regfs orphans /srv/registry --uploads-older-than 7d
    """
    tune = tuning_from(jobs)
    age = duration(uploads_older_than, "--uploads-older-than")
    with Display(not as_json) as display, errors(display):
        report = api.Registry.at(root, tune, config=config, endpoint_url=endpoint_url).orphans(
            uploads_older_than=age, progress=display.callback
        )
    if as_json:
        echo_text(render.to_json(render.orphans_dict(report)))
    else:
        echo_text(render.orphans_text(report, width=text_width()))
    raise typer.Exit(EXIT_OK if report.healthy else EXIT_FINDINGS)


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
    jobs: JobsOpt = None,
    config: ConfigOpt = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """Check the storage (fsck): everything the scanner finds, tags that cannot be pulled,
    dangling and unlinked references; with --verify-digests, corrupt blobs.

    Exit 0 when healthy, 1 when any problem is found, 2 on bad input.

    \b
    Example:
      regfs check /srv/registry --verify-digests
    """
    tune = tuning_from(jobs)
    with Display(True, (VERIFY_PHASE,)) as display, errors(display):
        report = api.Registry.at(root, tune, config=config, endpoint_url=endpoint_url).check(
            repo_glob=repo, verify_digests=verify_digests, progress=display.callback
        )
    if as_json:
        echo_text(render.to_json(render.check_dict(report)))
    else:
        echo_text(render.check_text(report, width=text_width()))
    raise typer.Exit(EXIT_OK if report.healthy else EXIT_FINDINGS)


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
    jobs: JobsOpt = None,
    config: ConfigOpt = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """Disk usage per repository (and per tag): total, shared with other repositories,
    exclusive (what `regfs rm REPO` followed by `regfs gc` would free), untagged; registry
    totals and the dedup ratio.

    Exit 0, or 1 when part of the storage could not be read (named in the output).

    \b
    Example:
      regfs du /srv/registry --by tag --top 10
    """
    tune = tuning_from(jobs)
    limit: int | None = None
    if top is not None:
        try:
            limit = int(top)
        except ValueError:
            fail(f"--top must be a positive number, not {top!r}")
    with Display(not as_json) as display, errors(display):
        report = api.Registry.at(root, tune, config=config, endpoint_url=endpoint_url).du(
            by=by, sort=sort, top=limit, progress=display.callback
        )
    if as_json:
        echo_text(render.to_json(render.du_dict(report)))
    else:
        echo_text(render.du_text(report, width=text_width()))
    if not report.complete:
        # Part of the storage could not be read: the sizes are not the whole truth.
        raise typer.Exit(EXIT_FINDINGS)
