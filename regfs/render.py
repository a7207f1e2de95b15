"""Rendering: text and JSON from report values. Returns strings; never prints."""

from __future__ import annotations

import io
import json
import re
import textwrap
from datetime import UTC, datetime
from typing import Any

import humanize
from anytree import Node as ANode
from anytree import RenderTree
from rich import box
from rich.console import Console
from rich.table import Table

from regfs.analysis import OrphansReport
from regfs.check import CheckReport
from regfs.digest import short
from regfs.du import DuReport
from regfs.findings import Finding, Kind
from regfs.gc.plan import GcPlan
from regfs.gc.run import GcOutcome, RmOutcome
from regfs.treeview import Node

SCHEMA_VERSION = 1


def size(n: int | None) -> str:
    if n is None:
        return "?"
    text = str(humanize.naturalsize(n, binary=False, format="%.1f"))
    return text.replace(" Bytes", " B").replace(" Byte", " B")


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False, default=str)


# --- tree -----------------------------------------------------------------------------------


# A broken tag's reason is shown in the tree when it is this short (the line stays readable on
# 80 columns); otherwise the tree points at `regfs check`.
_TAG_REASON_WIDTH = 44


def _label(node: Node) -> str:
    t = node["type"]
    flags = [f for f in ("missing", "absent", "shared", "foreign", "cycle") if node.get(f)]
    if node.get("unparseable"):
        flags.append("unparseable")
    tail = ("  [" + ", ".join(flags) + "]") if flags else ""
    if t == "registry":
        return str(node["path"])
    if t == "repository":
        return str(node["name"])
    if t == "tag":
        mark = ""
        if node.get("broken"):
            issues = [_DIGEST_RE.sub(_short_match, i) for i in node.get("issues") or []]
            if not issues:
                mark = "  [broken]"
            elif len(issues) == 1 and len(issues[0]) <= _TAG_REASON_WIDTH:
                mark = f"  [broken: {issues[0]}]"
            else:
                mark = f"  [broken: {_n(len(issues), 'problem')}, see `regfs check`]"
        elif node.get("absent_platforms"):
            absent = ", ".join(p or "no platform" for p in node["absent_platforms"])
            mark = f"  [partial: {absent} absent]"
        return f":{short_tag(node['name'])}" + mark
    if t == "untagged":
        return f"(untagged: {node['count']})"
    if t == "uploads":
        return f"(uploads: {node['count']}, {size(node['size'])})"
    if t in ("manifest", "referrer"):
        parts = [tshort(node["digest"])]
        if node.get("artifact_type"):
            parts.append(short_type(node["artifact_type"]))
        else:
            parts.append(node.get("kind") or "?")
        if node.get("platform"):
            parts.append(node["platform"])
        parts.append(size(node.get("size")))
        prefix = "referrer " if t == "referrer" else ""
        return prefix + "  ".join(parts) + tail
    return f"{t:<6} {tshort(node['digest'])}  {size(node.get('size'))}{tail}"


def tshort(digest: str) -> str:
    """Tree digests: 12 hex digits, the algorithm only when it is not sha256."""
    text = short(digest)
    return text.removeprefix("sha256:")


def short_tag(tag: str, limit: int = 40) -> str:
    """Long tags (cosign's ``sha256-<hex>.sig``) shortened for the tree; JSON keeps them whole."""
    return tag if len(tag) <= limit else tag[:20] + "…" + tag[-8:]


def short_type(media_type: str, limit: int = 28) -> str:
    """``application/vnd.dev.cosign.artifact.sig.v1+json`` -> ``dev.cosign.artifact.sig.v1``."""
    text = media_type.rsplit("/", 1)[-1].removeprefix("vnd.").split("+", 1)[0]
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
        "undecidable_blobs": [
            {"digest": b.digest, "size": b.size, "reason": b.reason} for b in r.undecidable
        ],
        "unread": [u.as_dict() for u in r.unread],
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
            "undecidable_blobs": len(r.undecidable),
            "undecidable_bytes": r.undecidable_bytes,
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
    if r.undecidable:
        out.append(
            f"Unknown: {_n(len(r.undecidable), 'blob')} ({size(r.undecidable_bytes)}) cannot be "
            "decided, kept by `regfs gc`: something that could not be read may reference them"
        )
        reasons: dict[str, list[str]] = {}
        for ub in r.undecidable:
            reasons.setdefault(ub.reason, []).append(ub.digest)
        for reason, digests in sorted(reasons.items()):
            out.append(f"  {_n(len(digests), 'blob')}: {reason}")
            out.extend(f"    {d}" for d in digests)
    if r.unread:
        out.append("Could not read (what gc keeps because of each: README, Safety):")
        out.extend(f"  {u.describe()} [keeps: {u.scope}]" for u in r.unread)
    return "\n".join(out)


# --- gc -------------------------------------------------------------------------------------

STEP_TITLES = {
    "tag": "tags",
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
        if plan.options.trash and counts:
            out.append(f"Undo with: regfs restore {plan.run_id}")
    if o.live_check_skipped:
        out.append("WARNING: the live-registry check was skipped (--skip-live-check).")
    if o.executed is not None and counts:
        # Last, so it is what the admin reads.
        out.append(
            "Now restart the registry (its blob cache still believes in deleted "
            "blobs) and take it out of read-only mode."
        )
    return "\n".join(out)


# --- check ----------------------------------------------------------------------------------

CHECK_TITLES = {
    Kind.BROKEN_TAG: "tags that cannot be pulled",
    Kind.DIGEST_MISMATCH: "blobs whose data does not match their digest",
    Kind.DANGLING: "references to blobs that are not stored",
    Kind.UNLINKED_BLOB: "references the repository does not link",
    Kind.MISSING_DATA: "blob folders without data",
    Kind.UNPARSEABLE_MANIFEST: "manifests that cannot be parsed",
    Kind.LINK_MISMATCH: "links whose content disagrees with their folder",
    Kind.EMPTY_LINK: "empty link files",
    Kind.BAD_LINK: "link files that cannot be parsed",
    Kind.PARTIAL_INDEX: "indexes missing some platforms (the others pull)",
}
CHECK_ORDER = [Kind.BROKEN_TAG, Kind.DIGEST_MISMATCH, Kind.DANGLING, Kind.UNLINKED_BLOB] + [
    k
    for k in Kind
    if k not in (Kind.BROKEN_TAG, Kind.DIGEST_MISMATCH, Kind.DANGLING, Kind.UNLINKED_BLOB)
]


def problem_dict(f: Finding) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": str(f.kind), "path": f.path, "message": f.message}
    if f.digest is not None:
        out["digest"] = f.digest
    out["repository"] = f.repository
    return out


def check_dict(r: CheckReport) -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "healthy": r.healthy,
        "problems": [problem_dict(f) for f in r.problems],
        "warnings": [problem_dict(f) for f in r.warnings],
        "counts": {str(k): r.count(k) for k in CHECK_ORDER if r.count(k)},
        "repo_glob": r.repo_glob,
        "checked": {
            "repositories": r.repositories,
            "tags": r.tags,
            "manifests": r.manifests,
            "blobs": r.blobs,
        },
        "digests_verified": r.verified,
        "verified_blobs": r.verified_blobs,
        "verified_bytes": r.verified_bytes,
        "verify_seconds": round(r.verify_seconds, 3),
    }


def _n(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else (plural or singular + 's')}"


_DIGEST_RE = re.compile(r"\b(?:sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128})\b")


def _short_match(m: re.Match[str]) -> str:
    return short(m.group(0))


def _wrap(text: str, indent: str, width: int) -> list[str]:
    return textwrap.wrap(
        text,
        width=width,
        initial_indent=indent,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    ) or [indent]


def check_text(r: CheckReport, width: int = 80) -> str:
    scope = f" matching {r.repo_glob}" if r.repo_glob else ""
    out = [
        f"Checked {_n(r.repositories, 'repository', 'repositories')}{scope}: "
        f"{_n(r.tags, 'tag')}, {_n(r.manifests, 'manifest')}; "
        f"{_n(r.blobs, 'blob')} in the store."
    ]
    if r.verified:
        speed = r.throughput
        rate = f", {size(int(speed))}/s" if speed is not None else ""
        bad = r.count(Kind.DIGEST_MISMATCH)
        out.append(
            f"Verified {_n(r.verified_blobs, 'blob')} ({size(r.verified_bytes)}) in "
            f"{r.verify_seconds:.1f}s{rate}: "
            + (f"{bad} corrupt." if bad else "all match their digests.")
        )
    else:
        out.append("Blob digests were not verified (--verify-digests re-hashes every blob).")
    if r.healthy:
        warned = f" ({_n(len(r.warnings), 'warning')} below)" if r.warnings else ""
        out.append(f"Healthy: no problems found{warned}.")
    else:
        out.append(
            f"{_n(len(r.problems), 'problem')} (digests shortened; --json has them in full):"
        )
    _check_sections(out, r.problems, width)
    if r.warnings:
        out.append("")
        out.append(f"Warnings ({len(r.warnings)}), not damage:")
        _check_sections(out, r.warnings, width)
    return "\n".join(out)


def _check_sections(out: list[str], findings: list[Finding], width: int) -> None:
    for kind in CHECK_ORDER:
        found = [f for f in findings if f.kind is kind]
        if not found:
            continue
        title = CHECK_TITLES.get(kind)
        out.append("")
        out.append(f"{kind} ({len(found)})" + (f": {title}" if title else ""))
        for f in found:
            out.append(f"  {f.path}")
            out.extend(_wrap(_DIGEST_RE.sub(_short_match, f.message), "    ", width))


# --- du -------------------------------------------------------------------------------------


def du_dict(r: DuReport) -> dict[str, Any]:
    repos = []
    for row in r.repositories:
        item: dict[str, Any] = {
            "name": row.name,
            "total_bytes": row.total_bytes,
            "shared_bytes": row.shared_bytes,
            "exclusive_bytes": row.exclusive_bytes,
            "untagged_bytes": row.untagged_bytes,
            "manifest_count": row.manifests,
            "tag_count": row.tags,
            "blob_count": row.blobs,
            "incomplete": bool(row.unread),
            "unread": list(row.unread),
        }
        if row.tag_usage is not None:
            item["tags"] = [
                {
                    "name": t.name,
                    "digest": t.digest,
                    "total_bytes": t.total_bytes,
                    "exclusive_bytes": t.exclusive_bytes,
                }
                for t in row.tag_usage
            ]
        repos.append(item)
    return {
        "schema": SCHEMA_VERSION,
        "by": r.by,
        "sort": r.sort,
        "top": r.top,
        "repositories": repos,
        "unreadable_repositories": [
            {"path": u.path, "reason": u.reason} for u in r.unreadable_repositories
        ],
        "unread": [u.as_dict() for u in r.unread],
        "complete": r.complete,
        "totals": {
            "disk_bytes": r.disk_bytes,
            "disk_blobs": r.disk_blobs,
            "referenced_bytes": r.referenced_bytes,
            "orphaned_bytes": r.orphaned_bytes,
            "undecidable_bytes": r.undecidable_bytes,
            "undecidable_blobs": r.undecidable_blobs,
            "untagged_bytes": r.untagged_bytes,
            "dedup_ratio": round(r.dedup_ratio, 4),
            "repositories": r.repository_count,
        },
    }


def du_text(r: DuReport, width: int = 80) -> str:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, expand=False)
    table.add_column("REPOSITORY", overflow="fold", ratio=1)
    for title in ("TOTAL", "SHARED", "EXCLUSIVE", "UNTAGGED"):
        table.add_column(title, justify="right", no_wrap=True)
    table.add_column("TAGS", justify="right", no_wrap=True)
    table.add_column("MANIFESTS", justify="right", no_wrap=True)
    for row in r.repositories:
        table.add_row(
            row.name + (" *" if row.unread else ""),
            size(row.total_bytes),
            size(row.shared_bytes),
            size(row.exclusive_bytes),
            size(row.untagged_bytes),
            str(row.tags),
            str(row.manifests),
        )
        for t in row.tag_usage or ():
            table.add_row(f"  :{t.name}", size(t.total_bytes), "", size(t.exclusive_bytes))
    for u in r.unreadable_repositories:
        name = u.path.removeprefix("repositories").lstrip("/") or "(every repository)"
        table.add_row(f"{name} *", "?", "?", "?", "?", "?", "?")
    buf = io.StringIO()
    console = Console(
        file=buf, width=width, color_system=None, highlight=False, force_terminal=False
    )
    out: list[str] = []
    if r.repositories or r.unreadable_repositories:
        console.print(table)
        out.extend(line.rstrip() for line in buf.getvalue().splitlines())
    else:
        out.append("(no repositories)")
    if r.top is not None and r.top < r.repository_count:
        out.append(f"Top {len(r.repositories)} of {r.repository_count} repositories by {r.sort}.")
    if r.by == "tag":
        out.append(
            "Tag rows: TOTAL is what the tag reaches, EXCLUSIVE what no other tag or "
            "untagged manifest of its repository reaches."
        )
    without = size(r.repo_total_bytes)
    out.append("")
    out.append(f"Disk:        {size(r.disk_bytes):>10}  in {_n(r.disk_blobs, 'blob')}")
    out.append(
        f"Referenced:  {size(r.referenced_bytes):>10}  dedup ratio {r.dedup_ratio:.2f} "
        f"({without} if nothing were shared)"
    )
    out.append(f"Orphaned:    {size(r.orphaned_bytes):>10}  freed by `regfs gc`")
    if r.undecidable_blobs:
        out.append(
            f"Unknown:     {size(r.undecidable_bytes):>10}  in "
            f"{_n(r.undecidable_blobs, 'blob')} that cannot be decided (kept by `regfs gc`)"
        )
    out.append(
        f"Untagged:    {size(r.untagged_bytes):>10}  also freed by `regfs gc --delete-untagged`"
    )
    if r.unread:
        out.append("")
        out.append("* Incomplete: could not read (the sizes above are lower bounds):")
        out.extend(f"  {u.describe()}" for u in r.unread)
    return "\n".join(_wrapped_lines(out, width))


def _wrapped_lines(lines: list[str], width: int) -> list[str]:
    out: list[str] = []
    for line in lines:
        if len(line) <= width or line.startswith(" "):
            out.append(line)
        else:
            out.extend(textwrap.wrap(line, width=width, subsequent_indent="  "))
    return out


# --- rm -------------------------------------------------------------------------------------


def rm_preview(plan: GcPlan) -> str:
    """What a removal plan touches, target by target, shown before confirming."""
    lines = ["regfs rm will remove:"]
    for a in plan.actions:
        if a.step == "tag":
            lines.append(f"  tag       {a.repository}:{a.path.rsplit('/', 1)[1]}")
        elif a.step == "revision":
            lines.append(f"  manifest  {a.repository}@{a.digest}")
    layer_links = len(plan.by_step("layer_link"))
    uploads = len(plan.by_step("upload"))
    folders = len(plan.by_step("folder"))
    lines.append(f"  and {layer_links} layer links, {uploads} uploads, {folders} folders")
    return "\n".join(lines)


def rm_dict(o: RmOutcome) -> dict[str, Any]:
    removal = gc_dict(o.removal)
    tags = [
        {"repository": a.repository, "tag": a.path.rsplit("/", 1)[1], "digest": a.digest}
        for a in (
            o.removal.plan.actions
            if o.removal.dry_run or o.removal.executed is None
            else [r.action for r in o.removal.executed.results if r.status == "done"]
        )
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
    }
    if o.gc is not None:
        g = gc_dict(o.gc)
        out["gc"] = g
        out["gc_reclaimable_bytes"] = g["reclaimed_bytes"]
    return out


def rm_text(o: RmOutcome) -> str:
    d = rm_dict(o)
    verb = "Would remove" if o.removal.dry_run else "Removed"
    lines = [f"{verb}: " + ("; ".join(d["targets"]) or "nothing")]
    lines.append(
        f"  {len(d['tags'])} tags, {len(d['manifests'])} manifests, "
        f"{len(d['layer_links'])} layer links, {len(d['uploads'])} uploads, "
        f"{len(d['folders'])} folders"
    )
    for s in d["skipped"]:
        lines.append(f"  {s['status']}: {s['step']} {s['path']}: {s['reason']}")
    if o.removal.executed is not None and o.removal.executed.failed:
        lines.append(f"FAILED: {o.removal.executed.failed.detail}")
    if o.gc is not None:
        if o.gc.dry_run:
            lines.append(
                f"`regfs gc` would now reclaim {size(o.gc.plan.reclaimed_bytes)} "
                f"({len(o.gc.plan.by_step('blob'))} blobs); run it, or use rm --gc."
            )
        else:
            lines.append(gc_text(o.gc))
    if o.removal.plan.options.trash and not o.removal.dry_run:
        lines.append(f"Undo with: regfs restore {o.removal.plan.run_id}")
    return "\n".join(lines)
