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
