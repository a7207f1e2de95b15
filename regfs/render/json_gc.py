"""The --json documents of the deleting commands: gc, rm, restore, trash (regfs/schemas/)."""

from __future__ import annotations

from typing import Any

from regfs.gc.outcome import GcOutcome
from regfs.gc.removal import RmOutcome
from regfs.gc.rm import RmPlan
from regfs.gc.steps import Action, Status
from regfs.gc.trash import PurgeResult, RestoreResult, TrashRun
from regfs.layout.folders import parse_folder
from regfs.render.base import SCHEMA_VERSION, rfc3339
from regfs.render.findings import problem_dict

# Each plan step, in plan order, as a heading in text.
STEP_TITLES = {
    "tag": "tags",
    "tag_index": "tag history entries",
    "revision": "untagged manifests",
    "layer_link": "layer links",
    "upload": "stale uploads",
    "blob": "blobs",
    "folder": "empty folders",
}


def done_actions(o: GcOutcome) -> list[Action]:
    """What a run did (a dry run or a run that did not start: what it plans)."""
    if o.dry_run or o.executed is None:
        return list(o.plan.actions)
    return [r.action for r in o.executed.results if r.status is Status.DONE]


def gc_dict(o: GcOutcome) -> dict[str, Any]:
    """The ``regfs gc --json`` document (regfs/schemas/gc.json)."""
    plan = o.plan
    if o.dry_run or o.executed is None:
        skipped: list[dict[str, Any]] = []
        reclaimed = plan.reclaimed_bytes
    else:
        ex = o.executed
        skipped = [
            {
                "step": r.action.step,
                "path": r.action.path,
                "digest": r.action.digest,
                "status": r.status,
                "reason": r.detail,
            }
            for r in ex.results
            if r.status is not Status.DONE
        ]
        reclaimed = ex.reclaimed_bytes
    status = str(o.status)
    by: dict[str, list[Any]] = {s: [] for s in STEP_TITLES}
    for a in done_actions(o):
        by[a.step].append(a)
    manifests = [
        {"repository": a.repository, "digest": a.digest, "path": a.path} for a in by["revision"]
    ]
    out: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "run_id": plan.run_id,
        "dry_run": o.dry_run,
        "status": status,
        "mode": "delete-untagged" if plan.options.delete_untagged else "default",
        "blobs": [{"digest": a.digest, "size": a.size, "path": a.path} for a in by["blob"]],
        "manifests": manifests,
        "tag_index_entries": [
            {"repository": a.repository, "digest": a.digest, "path": a.path}
            for a in by["tag_index"]
        ],
        "layer_links": [
            {"repository": a.repository, "digest": a.digest, "path": a.path}
            for a in by["layer_link"]
        ],
        "uploads": [
            {"repository": a.repository, "path": a.path, "size": a.size} for a in by["upload"]
        ],
        "folders": [a.path for a in by["folder"]],
        "reclaimed_bytes": reclaimed,
        "skipped": skipped,
        "kept": [
            {
                "kind": k.kind,
                "path": k.path,
                "digest": k.digest,
                "repository": k.repository,
                "size": k.size,
                "reason": k.reason,
            }
            for k in plan.kept
        ],
        "problems": [problem_dict(f) for f in plan.blocking],
        "refused": [refusal_dict(r) for r in o.would_refuse or []],
        "guard": [refusal_dict(r) for r in o.guard],
        "live_check_skipped": o.live_check_skipped,
    }
    if o.executed is not None:
        out["seconds"] = round(o.executed.seconds, 3)
    return out


def refusal_dict(reason: Any) -> dict[str, Any]:
    """A refusal reason in the one JSON shape (regfs/schemas/common.json#/$defs/refusal)."""
    given = reason.as_dict() if hasattr(reason, "as_dict") else {"message": str(reason)}
    out: dict[str, Any] = {"kind": given.get("kind", "scan_problem"), "message": given["message"]}
    for key in ("pid", "path", "url", "source"):
        out[key] = given.get(key)
    return out


def tag_of(a: Action) -> str:
    """The tag a ``tag`` step removes, read from its folder through the layout."""
    folder = parse_folder(a.path)
    return folder.tag if folder is not None and folder.tag else a.path.rsplit("/", 1)[1]


def rm_dict(o: RmOutcome) -> dict[str, Any]:
    """The ``regfs rm --json`` document (regfs/schemas/rm.json)."""
    removal = gc_dict(o.removal)
    plan = o.removal.plan
    tags = [
        {"repository": a.repository, "tag": tag_of(a), "digest": a.digest}
        for a in done_actions(o.removal)
        if a.step == "tag"
    ]
    out: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "run_id": removal["run_id"],
        "dry_run": o.removal.dry_run,
        "status": removal["status"],
        "targets": o.selection.describe(),
        "tags": tags,
        "manifests": removal["manifests"],
        "tag_index_entries": removal["tag_index_entries"],
        "layer_links": removal["layer_links"],
        "uploads": removal["uploads"],
        "folders": removal["folders"],
        "skipped": removal["skipped"],
        "kept": removal["kept"],
        "referrers": [
            {
                "repository": r.repository,
                "digest": r.digest,
                "subject": r.subject,
                "artifact_type": r.artifact_type,
            }
            for r in (plan.referrers if isinstance(plan, RmPlan) else [])
        ],
        "breaks": [
            {
                "repository": b.repository,
                "tag": b.tag,
                "still_pulls": b.still_pulls,
                "absent": [
                    {"index": a.index, "digest": a.digest, "platform": a.platform} for a in b.absent
                ],
                "message": b.describe(),
            }
            for b in (plan.breaks if isinstance(plan, RmPlan) else [])
        ],
        "refused": removal["refused"],
        "guard": removal["guard"],
        "live_check_skipped": removal["live_check_skipped"],
        "gc_notes": o.gc_notes,
        "gc": None,
        "gc_reclaimable_bytes": None,
    }
    if o.gc is not None:
        g = gc_dict(o.gc)
        out["gc"] = g
        out["gc_reclaimable_bytes"] = g["reclaimed_bytes"]
    return out


def restore_dict(res: RestoreResult) -> dict[str, Any]:
    """The ``regfs restore --json`` document (regfs/schemas/restore.json)."""
    return {
        "schema": SCHEMA_VERSION,
        "run_id": res.run_id,
        "items": res.items,
        "restored": res.restored,
        "already": res.already,
        "refused": res.refused,
        "missing": res.missing,
    }


def _trash_run_dict(r: TrashRun) -> dict[str, Any]:
    return {
        "run_id": r.run_id,
        "created": rfc3339(r.created),
        "items": r.items,
        "files": r.files,
        "bytes": r.bytes,
    }


def trash_list_dict(runs: list[TrashRun]) -> dict[str, Any]:
    """The ``regfs trash list --json`` document (regfs/schemas/trash-list.json)."""
    return {"schema": SCHEMA_VERSION, "runs": [_trash_run_dict(r) for r in runs]}


def trash_purge_dict(res: PurgeResult) -> dict[str, Any]:
    """The ``regfs trash purge --json`` document (regfs/schemas/trash-purge.json)."""
    return {
        "schema": SCHEMA_VERSION,
        "dry_run": res.dry_run,
        "status": "planned" if res.dry_run else "done",
        "purged": [r.run_id for r in res.runs],
        "runs": [_trash_run_dict(r) for r in res.runs],
        "bytes": sum(r.bytes for r in res.runs),
    }
