"""The text of ``regfs restore`` and ``regfs trash``."""

from __future__ import annotations

from regfs.gc.trash import PurgeResult, RestoreResult, TrashRun
from regfs.render.base import plural, rfc3339, size, wrapped


def restore_text(res: RestoreResult, width: int = 80) -> str:
    """What ``regfs restore`` prints: how much of the run is back, and what is not."""
    lines = [f"Restored {len(res.restored)} of {plural(res.items, 'item')} of run {res.run_id}."]
    if res.already:
        lines.append(f"  {len(res.already)} already in place (restored before, or made again).")
    for p in res.refused:
        lines.append(f"  refused (something is there again): {p}")
    for p in res.missing:
        lines.append(f"  missing from the trash: {p}")
    return wrapped(lines, width)


def _trash_run_line(r: TrashRun) -> str:
    return (
        f"  {r.run_id}  made {rfc3339(r.created)}  {plural(r.items, 'item')}, "
        f"{size(r.bytes)} in {plural(r.files, 'file')}"
    )


def trash_list_text(runs: list[TrashRun], width: int = 80) -> str:
    """What ``regfs trash list`` prints: one line per run."""
    if not runs:
        return "The trash is empty."
    lines = [f"{plural(len(runs), 'run')} in the trash (`regfs restore ROOT RUN-ID`):"]
    lines.extend(_trash_run_line(r) for r in runs)
    return wrapped(lines, width)


def trash_purge_preview(runs: list[TrashRun], width: int = 80) -> str:
    """The runs a purge deletes, shown before it asks."""
    lines = ["regfs trash purge will delete for good:"]
    lines.extend(_trash_run_line(r) for r in runs)
    return wrapped(lines, width)


def trash_purge_text(res: PurgeResult, width: int = 80) -> str:
    """What ``regfs trash purge`` prints."""
    total = size(sum(r.bytes for r in res.runs))
    if res.dry_run:
        lines = [f"Would purge {plural(len(res.runs), 'run')} ({total}) [dry run]"]
        lines.extend(_trash_run_line(r) for r in res.runs)
    else:
        lines = [f"Purged {plural(len(res.runs), 'run')} ({total})."]
    return wrapped(lines, width)
