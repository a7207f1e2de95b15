"""Shell completion: ROOT as a folder, ``--repo`` and rm's targets from a folder listing.

Completion never scans: repository and tag names come from listing folders
(:meth:`regfs.api.Registry.repository_names`, :meth:`~regfs.api.Registry.tag_names`), and
any error means no suggestions.
"""

from __future__ import annotations

from collections.abc import MutableMapping

from typer._click.core import Context  # typer 0.29 vendors (a trimmed) click
from typer._click.shell_completion import CompletionItem

from regfs import api
from regfs.errors import RegfsError


def complete_root(incomplete: str) -> list[CompletionItem]:
    """ROOT: let the shell complete a folder."""
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


def complete_repo(ctx: Context, incomplete: str) -> list[str]:
    """Repository names under ROOT (a listing of folders only, no scan)."""
    try:
        names = api.Registry.at(_root_of(_typed(ctx))).repository_names()
    except (RegfsError, OSError):
        return []
    return [n for n in names if n.startswith(incomplete)]


def complete_target(ctx: Context, incomplete: str) -> list[str]:
    """``REPO`` and, after a colon, ``REPO:TAG`` under ROOT."""
    registry = api.Registry.at(_root_of(_typed(ctx)))
    try:
        if ":" in incomplete:
            repo, _, prefix = incomplete.partition(":")
            return [f"{repo}:{t}" for t in registry.tag_names(repo) if t.startswith(prefix)]
        return [n for n in registry.repository_names() if n.startswith(incomplete)]
    except (RegfsError, OSError):
        return []


COMPLETE_VAR = "_REGFS_COMPLETE"
_SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")


def accept_click_completion_style(environ: MutableMapping[str, str]) -> None:
    """Accept click's ``_REGFS_COMPLETE=bash_source`` as well as typer's ``source_bash``.

    Click documents ``{shell}_{instruction}``; typer reads ``{instruction}_{shell}``. Both
    spellings are what admins find in the two projects' documentation, so both work.
    """
    value = environ.get(COMPLETE_VAR, "")
    shell, _, instruction = value.partition("_")
    if shell in _SHELLS and instruction in ("source", "complete"):
        environ[COMPLETE_VAR] = f"{instruction}_{shell}"
