"""The arguments and options several commands share, defined once (help text included)."""

from __future__ import annotations

from typing import Annotated

import typer

from regfs.cli.completion import complete_repo, complete_root
from regfs.cli.console import fail
from regfs.duration import parse_duration
from regfs.parallel.tuning import Tuning

RootArg = Annotated[
    str | None,
    typer.Argument(
        metavar="ROOT",
        help="Registry rootdirectory (holding docker/registry/v2), the v2 folder, or "
        "s3://BUCKET/PREFIX. Default: $REGFS_ROOT, else /var/lib/registry.",
        show_default=False,
        autocompletion=complete_root,
    ),
]
ConfigOpt = Annotated[
    str | None,
    typer.Option(
        "--config",
        metavar="CONFIG.yml",
        help="Instead of ROOT: the store the registry's own configuration names (filesystem "
        "or s3 storage, REGISTRY_* environment overrides applied as the registry does).",
        show_default=False,
    ),
]
EndpointOpt = Annotated[
    str | None,
    typer.Option(
        "--endpoint-url",
        metavar="URL",
        help="The S3-compatible server of an s3:// ROOT (or instead of the config's "
        "regionendpoint). Credentials: the usual AWS chain.",
        show_default=False,
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
        autocompletion=complete_repo,
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
JobsOpt = Annotated[
    str | None,
    typer.Option(
        "--jobs",
        metavar="N",
        envvar="REGFS_JOBS",
        show_envvar=False,
        help="Processes for the scan and for hashing (--verify-digests); 1: never fork. "
        "Default: $REGFS_JOBS, else the CPUs regfs may use (affinity and cgroup quota).",
        show_default=False,
    ),
]
SkipLiveOpt = Annotated[
    bool, typer.Option("--skip-live-check", help="Skip every live-registry check (dangerous).")
]


def duration(text: str, option: str) -> float:
    """``text`` as seconds (``90s``, ``1h``, ``7d``, ``0``); a malformed one ends the command
    with exit 2, naming ``option``."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        fail(f"{option}: {exc}")


def tuning_from(jobs: str | None) -> Tuning:
    """The :class:`Tuning` of a command run: ``--jobs N`` (or ``$REGFS_JOBS``) processes, else
    one per CPU this process may use; a malformed N ends the command with exit 2."""
    if jobs is None:
        return Tuning.for_machine()
    text = jobs.strip()
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        fail(f"--jobs (or REGFS_JOBS): expected a whole number of processes, 1 or more: {jobs!r}")
    return Tuning.for_machine(int(text))
