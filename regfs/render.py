"""Rendering: text and JSON from report values. Returns strings; never prints."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import humanize
from anytree import Node as ANode
from anytree import RenderTree

from regfs.analysis import OrphansReport
from regfs.digest import short
from regfs.gc.run import GcOutcome
from regfs.treeview import Node

SCHEMA_VERSION = 1


def size(n: int | None) -> str:
    if n is None:
        return "?"
    return str(humanize.naturalsize(n, binary=False, format="%.1f"))


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False, default=str)


# --- tree -----------------------------------------------------------------------------------


def _label(node: Node) -> str:
    t = node["type"]
    flags = [f for f in ("missing", "shared", "foreign", "cycle") if node.get(f)]
    if node.get("unparseable"):
        flags.append("unparseable")
    tail = ("  [" + ", ".join(flags) + "]") if flags else ""
    if t == "registry":
        return str(node["path"])
    if t == "repository":
        return str(node["name"])
    if t == "tag":
        return f":{node['name']}" + (
            "  [broken: no readable current link]" if node.get("broken") else ""
        )
    if t == "untagged":
        return f"(untagged: {node['count']})"
    if t == "uploads":
        return f"(uploads: {node['count']}, {size(node['size'])})"
    if t in ("manifest", "referrer"):
        parts = [short(node["digest"])]
        parts.append(node.get("kind") or "?")
        if node.get("platform"):
            parts.append(node["platform"])
        if node.get("artifact_type"):
            parts.append(node["artifact_type"])
        parts.append(size(node.get("size")))
        prefix = "referrer " if t == "referrer" else ""
        return prefix + "  ".join(parts) + tail
    return f"{t:<6} {short(node['digest'])}  {size(node.get('size'))}{tail}"


def tree_text(root: Node) -> str:
    def build(node: Node, parent: ANode | None) -> ANode:
        a = ANode(_label(node), parent=parent)
        for child in node["children"]:
            build(child, a)
        return a

    top = build(root, None)
    lines = [f"{pre}{n.name}" for pre, _, n in RenderTree(top)]
    if not root["children"]:
        lines.append("(no repositories)")
    return "\n".join(lines)


def tree_json(root: Node) -> str:
    return to_json({"schema": SCHEMA_VERSION, **root})


# --- orphans --------------------------------------------------------------------------------


def _iso(dt: datetime | None) -> str | None:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if dt else None


def orphans_dict(r: OrphansReport) -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "orphaned_blobs": [{"digest": b.digest, "size": b.size} for b in r.orphaned_blobs],
        "untagged_manifests": [
            {
                "repository": u.repository,
                "digest": u.digest,
                "kind": u.kind,
                "size": u.size,
                "exclusive_bytes": u.exclusive_bytes,
                "history_tags": list(u.history_tags),
            }
            for u in r.untagged_manifests
        ],
        "dangling": [d.as_dict() for d in r.dangling],
        "stale_uploads": [
            {
                "repository": u.repository,
                "uuid": u.uuid,
                "path": u.path,
                "started_at": _iso(u.started_at),
                "size": u.size,
            }
            for u in r.stale_uploads
        ],
        "problems": [f.as_dict() for f in r.problems],
        "totals": {
            "orphaned_blobs": len(r.orphaned_blobs),
            "orphaned_bytes": r.orphaned_bytes,
            "untagged_manifests": len(r.untagged_manifests),
            "untagged_bytes": r.untagged_bytes,
            "dangling": len(r.dangling),
            "stale_uploads": len(r.stale_uploads),
            "stale_upload_bytes": r.stale_upload_bytes,
            "problems": len(r.problems),
            "protected_blobs": r.protected_blobs,
        },
    }


def orphans_text(r: OrphansReport) -> str:
    out: list[str] = []
    out.append(
        f"Orphaned blobs: {len(r.orphaned_blobs)} ({size(r.orphaned_bytes)}), deleted by `regfs gc`"
    )
    for b in r.orphaned_blobs:
        out.append(f"  {b.digest}  {size(b.size)}")
    out.append(
        f"Untagged manifests: {len(r.untagged_manifests)}; "
        f"`regfs gc --delete-untagged` would also free {size(r.untagged_bytes)}"
    )
    for u in r.untagged_manifests:
        hist = f"  (was {', '.join(u.history_tags)})" if u.history_tags else ""
        out.append(
            f"  {u.repository}@{short(u.digest)}  {u.kind}  "
            f"{size(u.exclusive_bytes)} exclusive{hist}"
        )
    out.append(f"Dangling references: {len(r.dangling)}")
    for d in r.dangling:
        via = f" from {short(d.referrer)}" if d.referrer else ""
        out.append(f"  {d.repository}: {d.kind} {d.digest} missing{via}")
    out.append(f"Stale uploads: {len(r.stale_uploads)} ({size(r.stale_upload_bytes)})")
    for s in r.stale_uploads:
        out.append(f"  {s.repository}  {s.uuid}  started {_iso(s.started_at)}  {size(s.size)}")
    out.append(f"Problems: {len(r.problems)}")
    for f in r.problems:
        out.append(f"  {f.kind}: {f.path}: {f.message}")
    if r.protected_blobs:
        out.append(
            f"Kept because something unreadable may reference them: {r.protected_blobs} blobs"
        )
    return "\n".join(out)


# --- gc -------------------------------------------------------------------------------------

STEP_TITLES = {
    "tag_index": "tag history entries",
    "revision": "untagged manifests",
    "layer_link": "layer links",
    "upload": "stale uploads",
    "blob": "blobs",
    "folder": "empty folders",
}


def gc_dict(o: GcOutcome) -> dict[str, Any]:
    plan = o.plan
    if o.dry_run or o.executed is None:
        actions = plan.actions
        skipped: list[dict[str, Any]] = []
        reclaimed = plan.reclaimed_bytes
        status = "refused" if o.would_refuse else "planned"
    else:
        ex = o.executed
        actions = [r.action for r in ex.results if r.status == "done"]
        skipped = [
            {
                "step": r.action.step,
                "path": r.action.path,
                "digest": r.action.digest,
                "status": r.status,
                "reason": r.detail,
            }
            for r in ex.results
            if r.status in ("skipped", "gone", "failed")
        ]
        reclaimed = ex.reclaimed_bytes
        status = "failed" if ex.failed else ("interrupted" if ex.interrupted else "done")
    by: dict[str, list[Any]] = {s: [] for s in STEP_TITLES}
    for a in actions:
        by[a.step].append(a)
    manifests = [
        {"repository": a.repository, "digest": a.digest, "path": a.path} for a in by["revision"]
    ]
    return {
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
        "problems": [f.as_dict() for f in plan.blocking],
        "refused": o.would_refuse or [],
        "seconds": round(o.executed.seconds, 3) if o.executed else None,
    }


def gc_text(o: GcOutcome) -> str:
    d = gc_dict(o)
    plan = o.plan
    out: list[str] = []
    verb = "Would delete" if o.dry_run else "Deleted"
    if plan.options.trash and not o.dry_run:
        verb = "Moved to trash"
    counts: dict[str, tuple[int, int]] = {}
    acts = (
        plan.actions
        if o.dry_run or o.executed is None
        else [r.action for r in o.executed.results if r.status == "done"]
    )
    for a in acts:
        n, b = counts.get(a.step, (0, 0))
        counts[a.step] = (n + 1, b + a.size)
    mode = "--delete-untagged" if plan.options.delete_untagged else "default mode"
    out.append(f"regfs gc ({mode}), run {plan.run_id}" + (" [dry run]" if o.dry_run else ""))
    if not acts:
        out.append("Nothing to delete.")
    else:
        out.append(f"{verb}:")
        for step, title in STEP_TITLES.items():
            if step in counts:
                n, b = counts[step]
                extra = f"  {size(b)}" if b else ""
                out.append(f"  {title:<22}{n:>8}{extra}")
        out.append(f"  {'total reclaimed':<22}{'':>8}  {size(d['reclaimed_bytes'])}")
    kept: dict[str, tuple[int, int]] = {}
    for k in plan.kept:
        key = f"{k.kind}: {k.reason}"
        n, b = kept.get(key, (0, 0))
        kept[key] = (n + 1, b + k.size)
    if kept:
        out.append("Kept:")
        for key, (n, b) in sorted(kept.items()):
            out.append(f"  {n} {key}" + (f" ({size(b)})" if b else ""))
    for s in d["skipped"]:
        out.append(f"  {s['status']}: {s['step']} {s['path']}: {s['reason']}")
    if d["refused"]:
        out.append("A real run would refuse (exit 3) because of:")
        out.extend(f"  {r}" for r in d["refused"])
    elif plan.blocking:
        out.append(
            f"Proceeding despite {len(plan.blocking)} problems (--force); everything "
            "they might reference was kept."
        )
    if o.executed is not None:
        out.append(f"Took {o.executed.seconds:.1f}s.")
        if o.executed.failed:
            out.append(
                f"FAILED: {o.executed.failed.detail}; the run stopped there. Fix the "
                "cause and run regfs gc again: it converges."
            )
        if o.executed.interrupted:
            out.append("Interrupted: stopped between two items. Run regfs gc again to finish.")
        if counts:
            out.append(
                "Now restart the registry (its blob cache still believes in deleted "
                "blobs) and take it out of read-only mode."
            )
        if plan.options.trash and counts:
            out.append(f"Undo with: regfs restore {plan.run_id}")
    if o.live_check_skipped:
        out.append("WARNING: the live-registry check was skipped (--skip-live-check).")
    return "\n".join(out)
