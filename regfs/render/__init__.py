"""Rendering: text and JSON from report values. Returns strings; never prints.

Text rules, the same for every command:

* identifiers (repository names, tags, full digests, paths, run ids) are never cut or
  shortened; digests are shortened to 12 hex digits only where the text says so and ``--json``
  has them in full;
* lines are wrapped to ``width`` at spaces only (:func:`wrap_lines`), continuation lines
  indented two more columns, so a long identifier may stand alone on a line but is never split;
* counts go through :func:`plural`, sizes through :func:`size`, kinds of thing through
  :data:`NOUNS` (never an internal step or kind name).
"""

from __future__ import annotations

import json
import re
import shlex
import textwrap
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import humanize
from anytree import Node as ANode
from anytree import RenderTree

from regfs.duration import format_duration
from regfs.gc.plan import Action, GcPlan
from regfs.gc.rm import RmPlan
from regfs.gc.run import GcOutcome, RmOutcome
from regfs.gc.trash import PurgeResult, RestoreResult, TrashRun
from regfs.model.digest import short
from regfs.model.findings import Finding, Kind
from regfs.reports.check import CheckReport
from regfs.reports.du import DuReport
from regfs.reports.orphans import OrphansReport, StaleUpload
from regfs.reports.treeview import Node

SCHEMA_VERSION = 1


# --- small shared pieces ---------------------------------------------------------------------


def size(n: int | None) -> str:
    if n is None:
        return "?"
    text = str(humanize.naturalsize(n, binary=False, format="%.1f"))
    return text.replace(" Bytes", " B").replace(" Byte", " B")


# singular, plural: what each plan step, kept kind and count is called in text.
NOUNS: dict[str, tuple[str, str]] = {
    "tag": ("tag", "tags"),
    "tag_index": ("tag history entry", "tag history entries"),
    "revision": ("manifest", "manifests"),
    "layer_link": ("layer link", "layer links"),
    "upload": ("upload", "uploads"),
    "blob": ("blob", "blobs"),
    "folder": ("folder", "folders"),
    "item": ("item", "items"),
    "run": ("run", "runs"),
    "file": ("file", "files"),
    "repository": ("repository", "repositories"),
    "manifest": ("manifest", "manifests"),
    "problem": ("problem", "problems"),
    "entry": ("entry", "entries"),
}


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """``1 tag``, ``2 tags``, ``3 tag history entries``: the one place plurals are made."""
    one, many = NOUNS.get(noun, (noun, plural_form or noun + "s"))
    if plural_form is not None:
        many = plural_form
    return f"{count} {one if count == 1 else many}"


def noun(kind: str, count: int = 2) -> str:
    """What a step/kind is called in text (``layer_link`` -> ``layer links``)."""
    one, many = NOUNS.get(kind, (kind.replace("_", " "), kind.replace("_", " ") + "s"))
    return one if count == 1 else many


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False, default=str)


def rfc3339(value: datetime | float | None) -> str | None:
    """A UTC RFC 3339 timestamp (``2026-11-29T01:15:00Z``), from a datetime or epoch seconds."""
    if value is None:
        return None
    dt = datetime.fromtimestamp(value, UTC) if isinstance(value, int | float) else value
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def wrap_lines(lines: Iterable[str], width: int) -> list[str]:
    """Wrap each line longer than ``width`` at spaces, never inside a word.

    Continuation lines keep the line's indentation plus two columns. A word longer than the
    room left (a full digest, a long path) stands alone on its line, whole.
    """
    out: list[str] = []
    for line in lines:
        if len(line) <= width:
            out.append(line)
            continue
        body = line.lstrip(" ")
        indent = " " * (len(line) - len(body))
        out.extend(
            textwrap.wrap(
                body,
                width=width,
                initial_indent=indent,
                subsequent_indent=indent + "  ",
                break_long_words=False,
                break_on_hyphens=False,
            )
            or [line]
        )
    return out


def _q(text: str) -> str:
    return shlex.quote(text)


def _text(lines: Iterable[str], width: int) -> str:
    return "\n".join(wrap_lines(lines, width))


_DIGEST_RE = re.compile(r"\b(?:sha256:[0-9a-f]{64}|sha384:[0-9a-f]{96}|sha512:[0-9a-f]{128})\b")


def _short_match(m: re.Match[str]) -> str:
    return short(m.group(0))


# --- findings: one renderer for every command --------------------------------------------------

FINDING_TITLES = {
    Kind.BROKEN_TAG: "tags that cannot be pulled",
    Kind.DIGEST_MISMATCH: "blobs whose data does not match their digest",
    Kind.DANGLING: "references to blobs that are not stored",
    Kind.UNLINKED_BLOB: "references the repository does not link",
    Kind.MISSING_DATA: "blob folders without data",
    Kind.UNPARSEABLE_MANIFEST: "manifests that cannot be parsed",
    Kind.LINK_MISMATCH: "links whose content disagrees with their folder",
    Kind.EMPTY_LINK: "empty link files",
    Kind.BAD_LINK: "link files that cannot be parsed",
    Kind.UNKNOWN_ALGORITHM: "digests of an unknown algorithm",
    Kind.MISSING_LINK: "folders without their link file",
    Kind.EMPTY_BLOB: "empty blob data files",
    Kind.BAD_NAME: "entries whose name is not valid",
    Kind.UNKNOWN_ENTRY: "files and folders the registry does not write",
    Kind.SYMLINK: "symbolic links",
    Kind.UNREADABLE: "entries that cannot be read",
    Kind.BAD_UPLOAD: "unfinished uploads that cannot be read",
    Kind.PARTIAL_INDEX: "indexes missing some platforms (the others pull)",
}
FINDING_ORDER = [Kind.BROKEN_TAG, Kind.DIGEST_MISMATCH, Kind.DANGLING, Kind.UNLINKED_BLOB] + [
    k
    for k in Kind
    if k not in (Kind.BROKEN_TAG, Kind.DIGEST_MISMATCH, Kind.DANGLING, Kind.UNLINKED_BLOB)
]
# Older names, kept for callers.
CHECK_TITLES = FINDING_TITLES
CHECK_ORDER = FINDING_ORDER


def problem_dict(f: Finding) -> dict[str, Any]:
    """The one JSON shape of a problem in every command (every key always present)."""
    return {
        "kind": str(f.kind),
        "path": f.path,
        "message": f.message,
        "digest": f.digest,
        "repository": f.repository,
        "blocks_gc": f.blocks_gc,
    }


def findings_lines(findings: list[Finding], width: int) -> list[str]:
    """Findings grouped by kind (most serious first), each path on its own line and the
    message wrapped under it; digests in messages shortened (``--json`` has them whole)."""
    out: list[str] = []
    for kind in FINDING_ORDER:
        found = [f for f in findings if f.kind is kind]
        if not found:
            continue
        title = FINDING_TITLES.get(kind)
        out.append("")
        out.append(f"{kind} ({len(found)})" + (f": {title}" if title else ""))
        for f in found:
            out.append(f"  {f.path}")
            out.extend(wrap_lines(["    " + _DIGEST_RE.sub(_short_match, f.message)], width))
    return out


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
                mark = f"  [broken: {plural(len(issues), 'problem')}, see `regfs check`]"
        elif node.get("absent_platforms"):
            absent = ", ".join(p or "no platform" for p in node["absent_platforms"])
            mark = f"  [partial: {absent} absent]"
        # The whole tag, always: it is what a user copies (cosign's sha256-<hex>.sig too).
        return f":{node['name']}" + mark
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


def short_type(media_type: str, limit: int = 28) -> str:
    """``application/vnd.dev.cosign.artifact.sig.v1+json`` -> ``dev.cosign.artifact.sig.v1``.

    A decoration (``--json`` has the media type whole), so it may be shortened.
    """
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


# Every key of every node type, with the value it has when the tree builder left it out:
# a script reads ``node["shared"]`` without ``.get`` (regfs/schemas/tree.json).
TREE_KEYS: dict[str, dict[str, Any]] = {
    "registry": {"path": None},
    "repository": {"name": None},
    "tag": {"name": None, "broken": False, "issues": [], "absent_platforms": []},
    "manifest": {
        "digest": None,
        "kind": None,
        "size": None,
        "platform": None,
        "artifact_type": None,
        "missing": False,
        "absent": False,
        "unparseable": None,
        "cycle": False,
    },
    "config": {"digest": None, "size": None, "shared": False, "missing": False, "foreign": False},
    "untagged": {"count": 0},
    "uploads": {"count": 0, "size": 0},
}
TREE_KEYS["referrer"] = TREE_KEYS["manifest"]
TREE_KEYS["layer"] = TREE_KEYS["config"]


def tree_dict(node: Node) -> dict[str, Any]:
    """``node`` with every key of its type present, children likewise, ``children`` last."""
    out: dict[str, Any] = {"type": node["type"]}
    for key, default in TREE_KEYS.get(node["type"], {}).items():
        value = node.get(key, default)
        out[key] = list(value) if isinstance(value, list) else value
    for key, value in node.items():
        if key not in out and key != "children":
            out[key] = value
    out["children"] = [tree_dict(c) for c in node["children"]]
    return out


def tree_json(root: Node) -> str:
    return to_json({"schema": SCHEMA_VERSION, **tree_dict(root)})


# --- orphans --------------------------------------------------------------------------------


def _iso(dt: datetime | None) -> str | None:
    return rfc3339(dt)


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
                "age_seconds": int(u.age),
                "age_from": u.age_from,
            }
            for u in r.stale_uploads
        ],
        "problems": [problem_dict(f) for f in r.problems],
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


def upload_age(s: StaleUpload) -> str:
    """How old a stale upload is and how that is known, in words."""
    ago = f"{humanize.naturaldelta(s.age)} ago"
    if s.age_from == "startedat":
        return f"started {ago} ({_iso(s.started_at)})"
    if s.age_from == "upload_id":
        return f"started {ago} ({_iso(s.started_at)}, from its upload id)"
    return f"no startedat (cancelled); last written {ago}"


def orphans_text(r: OrphansReport, width: int = 80) -> str:
    out: list[str] = []
    out.append(
        f"Orphaned blobs: {len(r.orphaned_blobs)} ({size(r.orphaned_bytes)}), deleted by `regfs gc`"
    )
    for b in r.orphaned_blobs:
        out.append(f"{size(b.size):>8} {b.digest}")
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
        # The missing digest whole, on its own line; where it is referenced below it.
        via = f" of {short(d.referrer)}" if d.referrer else ""
        what = {"tag": "tagged manifest", "revision": "manifest", "child": "index child"}
        out.append(f"  {d.digest}")
        out.append(f"    missing {what.get(d.kind, d.kind)}{via} in {d.repository}")
    out.append(f"Stale uploads: {len(r.stale_uploads)} ({size(r.stale_upload_bytes)})")
    last_repo = None
    for s in r.stale_uploads:
        if s.repository != last_repo:
            out.append(f"  {s.repository}")
            last_repo = s.repository
        out.append(f"    {s.uuid}  {size(s.size)}")
        out.append(f"      {upload_age(s)}")
    out.append(f"Problems: {len(r.problems)}" + (" (digests shortened)" if r.problems else ""))
    lines = wrap_lines(out, width)
    lines.extend(findings_lines(r.problems, width))
    tail: list[str] = []
    if r.undecidable:
        tail.append(
            f"Unknown: {plural(len(r.undecidable), 'blob')} ({size(r.undecidable_bytes)}) "
            "cannot be decided, kept by `regfs gc`: something that could not be read may "
            "reference them"
        )
        reasons: dict[str, list[str]] = {}
        for ub in r.undecidable:
            reasons.setdefault(ub.reason, []).append(ub.digest)
        for reason, digests in sorted(reasons.items()):
            tail.append(f"  {plural(len(digests), 'blob')}: {reason}")
            tail.extend(f"    {d}" for d in digests)
    if r.unread:
        tail.append("Could not read (what gc keeps because of each: README, Safety):")
        tail.extend(f"  {u.describe()} [keeps: {u.scope}]" for u in r.unread)
    lines.extend(wrap_lines(tail, width))
    return "\n".join(lines)


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


def _done_actions(o: GcOutcome) -> list[Action]:
    if o.dry_run or o.executed is None:
        return list(o.plan.actions)
    return [r.action for r in o.executed.results if r.status == "done"]


def gc_dict(o: GcOutcome) -> dict[str, Any]:
    plan = o.plan
    if o.dry_run or o.executed is None:
        skipped: list[dict[str, Any]] = []
        reclaimed = plan.reclaimed_bytes
        status = "refused" if o.would_refuse else "planned"
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
            if r.status in ("skipped", "gone", "failed")
        ]
        reclaimed = ex.reclaimed_bytes
        status = "failed" if ex.failed else ("interrupted" if ex.interrupted else "done")
    by: dict[str, list[Any]] = {s: [] for s in STEP_TITLES}
    for a in _done_actions(o):
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
        "refused": [_refusal_dict(r) for r in o.would_refuse or []],
        "guard": [_refusal_dict(r) for r in o.guard],
        "live_check_skipped": o.live_check_skipped,
    }
    if o.executed is not None:
        out["seconds"] = round(o.executed.seconds, 3)
    return out


def _refusal_dict(reason: Any) -> dict[str, Any]:
    """A refusal reason in the one JSON shape (regfs/schemas/common.json#/$defs/refusal)."""
    given = reason.as_dict() if hasattr(reason, "as_dict") else {"message": str(reason)}
    out: dict[str, Any] = {"kind": given.get("kind", "scan_problem"), "message": given["message"]}
    for key in ("pid", "path", "url", "source"):
        out[key] = given.get(key)
    return out


def _step_lines(actions: list[Action], total: int) -> list[str]:
    counts: dict[str, tuple[int, int]] = {}
    for a in actions:
        n, b = counts.get(a.step, (0, 0))
        counts[a.step] = (n + 1, b + a.size)
    out = []
    for step, title in STEP_TITLES.items():
        if step in counts:
            n, b = counts[step]
            extra = f"  {size(b)}" if b else ""
            out.append(f"  {title:<22}{n:>8}{extra}")
    out.append(f"  {'total reclaimed':<22}{'':>8}  {size(total)}")
    return out


def gc_preview(plan: GcPlan, width: int = 80) -> str:
    """The plan summary shown before a real gc asks for confirmation."""
    verb = "move into the trash" if plan.options.trash else "delete"
    mode = "--delete-untagged" if plan.options.delete_untagged else "default mode"
    lines = [f"regfs gc ({mode}), run {plan.run_id}, will {verb}:"]
    lines.extend(_step_lines(plan.actions, plan.reclaimed_bytes))
    if plan.kept:
        lines.append(f"Kept: {plural(len(plan.kept), 'item')} (see the result for why).")
    return _text(lines, width)


def _kept_lines(plan: GcPlan) -> list[str]:
    kept: dict[tuple[str, str], tuple[int, int]] = {}
    for k in plan.kept:
        n, b = kept.get((k.kind, k.reason), (0, 0))
        kept[(k.kind, k.reason)] = (n + 1, b + k.size)
    out = []
    if kept:
        out.append("Kept:")
        for (kind, reason), (n, b) in sorted(kept.items()):
            what = f"{n} {noun(kind, n)}"
            out.append(f"  {what}: {reason}" + (f" ({size(b)})" if b else ""))
    return out


def _skipped_lines(d: dict[str, Any]) -> list[str]:
    return [
        f"  {s['status']}: {noun(s['step'], 1)} {s['path']}: {s['reason']}" for s in d["skipped"]
    ]


def guard_lines(o: GcOutcome) -> list[str]:
    """What the live-registry guard looked at and let pass, then every reason to refuse:
    one line each (the caller wraps them)."""
    out: list[str] = []
    if o.guard:
        out.append("Live-registry guard:")
        out.extend(f"  {r.message}" for r in o.guard)
    if o.would_refuse:
        if o.dry_run:
            out.append("A real run would refuse (exit 3) because of:")
        else:
            out.append("Refused (exit 3), nothing deleted, because of:")
        out.extend(f"  {r.message}" for r in o.would_refuse)
    return out


def gc_text(o: GcOutcome, width: int = 80) -> str:
    d = gc_dict(o)
    plan = o.plan
    out: list[str] = []
    verb = "Would delete" if o.dry_run or o.would_refuse else "Deleted"
    if plan.options.trash and not o.dry_run:
        verb = "Moved to trash"
    acts = _done_actions(o)
    mode = "--delete-untagged" if plan.options.delete_untagged else "default mode"
    out.append(f"regfs gc ({mode}), run {plan.run_id}" + (" [dry run]" if o.dry_run else ""))
    if not acts:
        out.append("Nothing to delete.")
    else:
        out.append(f"{verb}:")
        out.extend(_step_lines(acts, d["reclaimed_bytes"]))
    out.extend(_kept_lines(plan))
    out.extend(_skipped_lines(d))
    out.extend(guard_lines(o))
    if o.would_refuse:
        pass
    elif plan.blocking:
        out.append(
            f"Proceeding despite {plural(len(plan.blocking), 'problem')} (--force); "
            "everything they might reference was kept."
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
        if plan.options.trash and acts:
            out.append(f"Undo with: regfs restore {_q(plan.v2)} {plan.run_id}")
    if o.executed is not None and acts:
        # Last, so it is what the admin reads.
        out.append(
            "Now restart the registry (its blob cache still believes in deleted "
            "blobs) and take it out of read-only mode."
        )
    return _text(out, width)


# --- check ----------------------------------------------------------------------------------


def check_dict(r: CheckReport) -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "healthy": r.healthy,
        "problems": [problem_dict(f) for f in r.problems],
        "warnings": [problem_dict(f) for f in r.warnings],
        "counts": {str(k): r.count(k) for k in FINDING_ORDER if r.count(k)},
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


def _n(count: int, singular: str, plural_form: str | None = None) -> str:
    return plural(count, singular, plural_form)


def check_text(r: CheckReport, width: int = 80) -> str:
    scope = f" matching {r.repo_glob}" if r.repo_glob else ""
    out = [
        f"Checked {plural(r.repositories, 'repository')}{scope}: "
        f"{plural(r.tags, 'tag')}, {plural(r.manifests, 'manifest')}; "
        f"{plural(r.blobs, 'blob')} in the store."
    ]
    if r.verified:
        speed = r.throughput
        rate = f", {size(int(speed))}/s" if speed is not None else ""
        bad = r.count(Kind.DIGEST_MISMATCH)
        out.append(
            f"Verified {plural(r.verified_blobs, 'blob')} ({size(r.verified_bytes)}) in "
            f"{r.verify_seconds:.1f}s{rate}: "
            + (f"{bad} corrupt." if bad else "all match their digests.")
        )
    else:
        out.append("Blob digests were not verified (--verify-digests re-hashes every blob).")
    if r.healthy:
        warned = f" ({plural(len(r.warnings), 'warning')} below)" if r.warnings else ""
        out.append(f"Healthy: no problems found{warned}.")
    else:
        out.append(
            f"{plural(len(r.problems), 'problem')} (digests shortened; --json has them in full):"
        )
    lines = wrap_lines(out, width) + findings_lines(r.problems, width)
    if r.warnings:
        lines.append("")
        lines.append(f"Warnings ({len(r.warnings)}), not damage:")
        lines.extend(findings_lines(r.warnings, width))
    return "\n".join(lines)


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
            "tags": None,  # with --by tag: one entry per tag
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


_DU_COLUMNS = ("TOTAL", "SHARED", "EXCLUSIVE", "UNTAGGED", "TAGS", "MANIFESTS")


def _table(rows: list[tuple[str, list[str]]], heads: tuple[str, ...], width: int) -> list[str]:
    """A name column and right-aligned number columns. A name too long for the room left
    by the numbers stands on its own line, whole, with its numbers on the next line."""
    widths = [max([len(h)] + [len(cells[i]) for _, cells in rows]) for i, h in enumerate(heads)]
    numbers = sum(w + 3 for w in widths)
    longest = max([len("REPOSITORY")] + [len(name) for name, _ in rows])
    name_w = max(len("REPOSITORY"), min(longest, width - numbers))

    def line(name: str, cells: list[str]) -> str:
        return (
            f"{name:<{name_w}}"
            + "".join(f"   {c:>{w}}" for c, w in zip(cells, widths, strict=True))
        ).rstrip()

    out = [line("REPOSITORY", list(heads))]
    for name, cells in rows:
        if len(name) > name_w:
            out.append(name)
            out.append(line("", cells))
        else:
            out.append(line(name, cells))
    return out


def du_text(r: DuReport, width: int = 80) -> str:
    rows: list[tuple[str, list[str]]] = []
    for row in r.repositories:
        rows.append(
            (
                row.name + (" *" if row.unread else ""),
                [
                    size(row.total_bytes),
                    size(row.shared_bytes),
                    size(row.exclusive_bytes),
                    size(row.untagged_bytes),
                    str(row.tags),
                    str(row.manifests),
                ],
            )
        )
        for t in row.tag_usage or ():
            rows.append(
                (f"  :{t.name}", [size(t.total_bytes), "", size(t.exclusive_bytes)] + [""] * 3)
            )
    for u in r.unreadable_repositories:
        name = u.path.removeprefix("repositories").lstrip("/") or "(every repository)"
        rows.append((f"{name} *", ["?"] * 6))
    out: list[str] = []
    if rows:
        out.extend(_table(rows, _DU_COLUMNS, width))
    else:
        out.append("(no repositories)")
    if r.top is not None and r.top < r.repository_count:
        out.append(
            f"Top {len(r.repositories)} of {plural(r.repository_count, 'repository')} by {r.sort}."
        )
    if r.by == "tag":
        out.append(
            "Tag rows: TOTAL is what the tag reaches, EXCLUSIVE what no other tag or "
            "untagged manifest of its repository reaches."
        )
    without = size(r.repo_total_bytes)
    out.append("")
    out.append(f"Disk:        {size(r.disk_bytes):>10}  in {plural(r.disk_blobs, 'blob')}")
    out.append(
        f"Referenced:  {size(r.referenced_bytes):>10}  dedup ratio {r.dedup_ratio:.2f} "
        f"({without} if nothing were shared)"
    )
    out.append(f"Orphaned:    {size(r.orphaned_bytes):>10}  freed by `regfs gc`")
    if r.undecidable_blobs:
        out.append(
            f"Unknown:     {size(r.undecidable_bytes):>10}  in "
            f"{plural(r.undecidable_blobs, 'blob')} that cannot be decided (kept by `regfs gc`)"
        )
    out.append(
        f"Untagged:    {size(r.untagged_bytes):>10}  also freed by `regfs gc --delete-untagged`"
    )
    if r.unread:
        out.append("")
        out.append("* Incomplete: could not read (the sizes above are lower bounds):")
        out.extend(f"  {u.describe()}" for u in r.unread)
    return _text(out, width)


# --- rm -------------------------------------------------------------------------------------


def _tag_of(a: Action) -> str:
    return a.path.rsplit("/", 1)[1]


def _rm_counts(actions: list[Action]) -> str:
    steps = ("tag", "revision", "tag_index", "layer_link", "upload", "folder")
    counts = {s: sum(1 for a in actions if a.step == s) for s in steps}
    return ", ".join(plural(counts[s], s) for s in steps if counts[s] or s in ("tag", "revision"))


def rm_preview(plan: GcPlan, width: int = 80) -> str:
    """What a removal plan touches, target by target, shown before confirming."""
    verb = "move into the trash" if plan.options.trash else "remove"
    referrers = (
        {(r.repository, r.digest): r for r in plan.referrers} if isinstance(plan, RmPlan) else {}
    )
    lines = [f"regfs rm will {verb}:"]
    for a in plan.actions:
        if a.step == "tag":
            lines.append(f"  tag       {a.repository}:{_tag_of(a)}")
        elif a.step == "revision":
            ref = referrers.get((a.repository or "", a.digest or ""))
            if ref is None:
                lines.append(f"  manifest  {a.repository}@{a.digest}")
            else:
                what = short_type(ref.artifact_type) if ref.artifact_type else "referrer"
                lines.append(
                    f"  referrer  {a.repository}@{a.digest}  {what} of {short(ref.subject)}"
                )
    lines.append(f"  in all: {_rm_counts(plan.actions)}")
    lines.extend(_kept_lines(plan))
    if isinstance(plan, RmPlan):
        for b in plan.breaks:
            lines.append(f"  BREAKS: {_DIGEST_RE.sub(_short_match, b.describe())}")
    return _text(lines, width)


def rm_dict(o: RmOutcome) -> dict[str, Any]:
    removal = gc_dict(o.removal)
    plan = o.removal.plan
    tags = [
        {"repository": a.repository, "tag": _tag_of(a), "digest": a.digest}
        for a in _done_actions(o.removal)
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


def gc_estimate_line(gc: GcOutcome) -> str:
    """What the gc after a removal would reclaim, blobs and uploads counted apart; when it
    is nothing, the grace period that keeps it."""
    plan = gc.plan
    blobs = plan.by_step("blob")
    uploads = plan.by_step("upload")
    parts = [f"{plural(len(blobs), 'blob')} {size(sum(a.size for a in blobs))}"]
    if uploads:
        parts.append(f"{plural(len(uploads), 'upload')} {size(sum(a.size for a in uploads))}")
    if plan.reclaimed_bytes == 0:
        grace = format_duration(plan.options.min_age)
        young = sum(1 for k in plan.kept if k.kind == "blob")
        why = (
            f"{plural(young, 'blob')} kept by the grace period --min-age {grace}"
            if plan.options.min_age > 0
            else "no grace period (--min-age 0)"
        )
        return f"`regfs gc` would reclaim 0 B now ({why}); rerun gc once they are older."
    return (
        f"`regfs gc` would now reclaim {size(plan.reclaimed_bytes)} ({'; '.join(parts)}) "
        f"with --min-age {format_duration(plan.options.min_age)}; run it, or use rm --gc."
    )


def rm_text(o: RmOutcome, width: int = 80) -> str:
    d = rm_dict(o)
    verb = "Would remove" if o.removal.dry_run or o.removal.would_refuse else "Removed"
    lines = [f"{verb}: " + ("; ".join(d["targets"]) or "nothing")]
    lines.append(f"  {_rm_counts(_done_actions(o.removal))}")
    lines.extend(_kept_lines(o.removal.plan))
    for r in d["referrers"]:
        what = short_type(r["artifact_type"]) if r["artifact_type"] else "referrer"
        lines.append(
            f"  with referrer {r['repository']}@{short(r['digest'])} ({what} of "
            f"{short(r['subject'])}): nothing could reach it any more"
        )
    lines.extend(_skipped_lines(d))
    lines.extend(_DIGEST_RE.sub(_short_match, line) for line in guard_lines(o.removal))
    if d["breaks"] and not o.removal.would_refuse:
        lines.append("Breaks (--force):")
        lines.extend(f"  {_DIGEST_RE.sub(_short_match, b['message'])}" for b in d["breaks"])
    if o.removal.executed is not None and o.removal.executed.failed:
        lines.append(f"FAILED: {o.removal.executed.failed.detail}")
    if o.gc is not None and not o.removal.would_refuse:
        notes = o.gc_notes
        if o.gc.dry_run and o.gc.plan.blocking and not o.gc.plan.options.force:
            pass  # it would refuse: the note says why
        elif o.gc.dry_run:
            lines.append(gc_estimate_line(o.gc))
            if o.gc.plan.reclaimed_bytes == 0:  # that line already names the grace period
                notes = [n for n in notes if "--min-age" not in n]
        else:
            lines.extend(gc_text(o.gc, width).splitlines())
        lines.extend(f"  {n}" for n in notes)
    if o.removal.plan.options.trash and o.removal.executed is not None:
        lines.append(f"Undo with: regfs restore {_q(o.removal.plan.v2)} {d['run_id']}")
    return _text(lines, width)


# --- restore and trash ------------------------------------------------------------------------


def restore_dict(res: RestoreResult) -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "run_id": res.run_id,
        "items": res.items,
        "restored": res.restored,
        "already": res.already,
        "refused": res.refused,
        "missing": res.missing,
    }


def restore_text(res: RestoreResult, width: int = 80) -> str:
    lines = [f"Restored {len(res.restored)} of {plural(res.items, 'item')} of run {res.run_id}."]
    if res.already:
        lines.append(f"  {len(res.already)} already in place (restored before, or made again).")
    for p in res.refused:
        lines.append(f"  refused (something is there again): {p}")
    for p in res.missing:
        lines.append(f"  missing from the trash: {p}")
    return _text(lines, width)


def _trash_run_dict(r: TrashRun) -> dict[str, Any]:
    return {
        "run_id": r.run_id,
        "created": rfc3339(r.created),
        "items": r.items,
        "files": r.files,
        "bytes": r.bytes,
    }


def trash_list_dict(runs: list[TrashRun]) -> dict[str, Any]:
    return {"schema": SCHEMA_VERSION, "runs": [_trash_run_dict(r) for r in runs]}


def _trash_run_line(r: TrashRun) -> str:
    return (
        f"  {r.run_id}  made {rfc3339(r.created)}  {plural(r.items, 'item')}, "
        f"{size(r.bytes)} in {plural(r.files, 'file')}"
    )


def trash_list_text(runs: list[TrashRun], width: int = 80) -> str:
    if not runs:
        return "The trash is empty."
    lines = [f"{plural(len(runs), 'run')} in the trash (`regfs restore ROOT RUN-ID`):"]
    lines.extend(_trash_run_line(r) for r in runs)
    return _text(lines, width)


def trash_purge_preview(runs: list[TrashRun], width: int = 80) -> str:
    lines = ["regfs trash purge will delete for good:"]
    lines.extend(_trash_run_line(r) for r in runs)
    return _text(lines, width)


def trash_purge_dict(res: PurgeResult) -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "dry_run": res.dry_run,
        "status": "planned" if res.dry_run else "done",
        "purged": [r.run_id for r in res.runs],
        "runs": [_trash_run_dict(r) for r in res.runs],
        "bytes": sum(r.bytes for r in res.runs),
    }


def trash_purge_text(res: PurgeResult, width: int = 80) -> str:
    total = size(sum(r.bytes for r in res.runs))
    if res.dry_run:
        lines = [f"Would purge {plural(len(res.runs), 'run')} ({total}) [dry run]"]
        lines.extend(_trash_run_line(r) for r in res.runs)
    else:
        lines = [f"Purged {plural(len(res.runs), 'run')} ({total})."]
    return _text(lines, width)
