"""``regfs retain``: the preview per repository, the result, and the ``--json`` document
(schema: regfs/schemas/retain.json)."""

from __future__ import annotations

from typing import Any

from regfs.duration import format_duration
from regfs.gc.steps import Action
from regfs.layout import tag_dir
from regfs.model.digest import short, split_digest
from regfs.render.base import SCHEMA_VERSION, plural, quote, rfc3339, size, wrapped
from regfs.render.findings import problem_dict
from regfs.render.json_gc import done_actions, gc_dict
from regfs.render.text_gc import guard_lines, kept_lines, skipped_lines
from regfs.retain.freed import FreedManifest
from regfs.retain.plan import RetainPlan
from regfs.retain.run import RetainOutcome
from regfs.retain.select import RepoSelection, TagDecision


def age(seconds: float) -> str:
    """A compact age: ``45s``, ``12m``, ``5h``, ``30d``."""
    s = max(0.0, seconds)
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= 2 * n or (unit == "m" and s >= n):
            return f"{int(s // n)}{unit}"
    return f"{int(s)}s"


def _tag_status(o: RetainOutcome) -> dict[str, str]:
    """tag folder path -> what happened to it (``planned`` in a dry run)."""
    if o.run.dry_run or o.run.executed is None:
        return {}
    return {r.action.path: r.status for r in o.run.executed.results if r.action.step == "tag"}


def _tag_dict(t: TagDecision, now: float, status: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "tag": t.tag,
        "digest": t.digest,
        "pushed_at": rfc3339(t.pushed_at),
        "pushed_age_seconds": round(max(0.0, now - t.pushed_at), 3),
        "created": rfc3339(t.created),
        "reason": t.reason,
    }
    if status is not None:
        out["status"] = status
    return out


def _freed_by_repo(plan: RetainPlan) -> dict[str, list[FreedManifest]]:
    out: dict[str, list[FreedManifest]] = {}
    for m in plan.freed_manifests:
        out.setdefault(m.repository, []).append(m)
    return out


def _repo_dict(
    r: RepoSelection,
    plan: RetainPlan,
    o: RetainOutcome,
    done: dict[str, str],
    freed: dict[str, list[FreedManifest]],
) -> dict[str, Any]:
    manifests = freed.get(r.name, [])
    return {
        "name": r.name,
        "rules": r.rules,
        "refused": r.refused,
        "kept": [_tag_dict(t, plan.created) for t in r.kept],
        "removed": [
            _tag_dict(
                t,
                plan.created,
                done.get(tag_dir(r.name, t.tag), "planned" if o.run.dry_run else "not_run"),
            )
            for t in r.removed
        ],
        "manifests_freed": len(manifests),
        "freed_bytes": plan.freed_bytes.get(r.name, 0),
    }


def retain_dict(o: RetainOutcome) -> dict[str, Any]:
    """The ``--json`` document."""
    plan = o.plan
    g = gc_dict(o.run)
    roles = {(m.repository, m.digest): m for m in plan.freed_manifests}
    manifests = []
    for m in g["manifests"]:
        fm = roles.get((m["repository"], m["digest"]))
        manifests.append(
            {
                **m,
                "role": fm.role if fm else "tagged",
                "via": fm.via if fm else None,
            }
        )
    done = _tag_status(o)
    freed = _freed_by_repo(plan)
    status = g["status"]
    if status == "done" and o.selection.refused:
        status = "partly_refused"
    return {
        "schema": SCHEMA_VERSION,
        "run_id": plan.run_id,
        "dry_run": o.run.dry_run,
        "status": status,
        "rules": [r.as_dict() for r in o.selection.rules],
        "min_age_seconds": plan.options.min_age,
        "repositories": [_repo_dict(r, plan, o, done, freed) for r in o.selection.repositories],
        "manifests": manifests,
        "blobs": g["blobs"],
        "tag_index_entries": g["tag_index_entries"],
        "layer_links": g["layer_links"],
        "folders": g["folders"],
        "reclaimed_bytes": g["reclaimed_bytes"],
        "skipped": g["skipped"],
        "kept": g["kept"],
        "problems": [problem_dict(f) for f in plan.blocking],
        "refused": g["refused"],
        "refused_repositories": [
            {"name": r.name, "reason": r.refused} for r in o.selection.refused
        ],
        "guard": g["guard"],
        "live_check_skipped": o.run.live_check_skipped,
    }


def _hex(digest: str) -> str:
    """A digest's first 12 hex digits, as the preview shows it (no algorithm)."""
    return split_digest(short(digest))[1]


def _reason(t: TagDecision) -> str:
    return t.reason.removesuffix(" (command line)")


def _tag_line(verb: str, t: TagDecision, now: float, width: int) -> str:
    digest = _hex(t.digest) if t.digest else "?"
    # The time the rules ordered by: created when a rule reads it, else pushed.
    when = f"pushed {age(now - t.pushed_at)} ago"
    if t.created is not None:
        when = f"created {(rfc3339(t.created) or '')[:10]}"
    return f"  {verb:<7}{t.tag:<{width}}  {digest}  {when}: {_reason(t)}"


def _repo_lines(r: RepoSelection, plan: RetainPlan, gone: list[FreedManifest]) -> list[str]:
    lines = []
    head = f"{r.name}: {plural(len(r.removed), 'tag')} removed, {len(r.kept)} kept"
    if r.refused is not None:
        head = f"{r.name}: REFUSED (nothing of it is removed): {r.refused}"
    elif r.removed:
        head += (
            f", {plural(len(gone), 'manifest')} freed, "
            f"{size(plan.freed_bytes.get(r.name, 0))} freed"
        )
    lines.append(head)
    w = max((len(t.tag) for t in r.kept + r.removed), default=0)
    for t in r.removed:
        lines.append(_tag_line("remove", t, plan.created, w))
    for t in r.kept:
        lines.append(_tag_line("keep", t, plan.created, w))
    for m in gone:
        via = {"tagged": "tag", "child": "child of", "referrer": "referrer of"}[m.role]
        target = _hex(m.via) if m.role != "tagged" else m.via
        lines.append(f"  frees  manifest {_hex(m.digest)} ({via} {target})")
    return lines


def _totals(plan: RetainPlan, actions: list[Action], refused: int) -> list[str]:
    by: dict[str, int] = {}
    for a in actions:
        by[a.step] = by.get(a.step, 0) + 1
    reclaimed = sum(a.size for a in actions)
    repos = {a.repository for a in actions if a.step == "tag"}
    line = (
        f"Total: {plural(by.get('tag', 0), 'tag')} in {plural(len(repos), 'repository')}, "
        f"{plural(by.get('revision', 0), 'manifest')}, {plural(by.get('blob', 0), 'blob')}, "
        f"{size(reclaimed)} reclaimed"
    )
    extra = [plural(by[s], s) for s in ("tag_index", "layer_link", "folder") if by.get(s)]
    if extra:
        line += f" (and {', '.join(extra)})"
    out = [line]
    if refused:
        out.append(f"{plural(refused, 'repository')} refused (exit 3): see above.")
    return out


def retain_preview(plan: RetainPlan, width: int = 80) -> str:
    """The plan shown before a real run asks for confirmation."""
    verb = "move into the trash" if plan.options.trash else "remove"
    lines = [f"regfs retain, run {plan.run_id}, will {verb}:"]
    sel = plan.selection
    refused = 0
    freed = _freed_by_repo(plan)
    if sel is not None:
        for r in sel.repositories:
            if r.removed or r.refused:
                lines.extend(_repo_lines(r, plan, freed.get(r.name, [])))
            refused += r.refused is not None
    lines.extend(_totals(plan, plan.actions, refused))
    return wrapped(lines, width)


def retain_text(o: RetainOutcome, width: int = 80) -> str:
    """The result (or, dry, the plan) per repository, then totals."""
    plan = o.plan
    run = o.run
    freed = _freed_by_repo(plan)
    # Only a run that executed has skipped steps: no JSON document of the whole plan else.
    skipped = [] if run.dry_run or run.executed is None else skipped_lines(gc_dict(run))
    lines = [f"regfs retain, run {plan.run_id}" + (" [dry run]" if run.dry_run else "")]
    lines.extend(
        f"Rule: {r.describe()}" + (f"  ({r.origin})" if r.origin != "command line" else "")
        for r in o.selection.rules
    )
    lines.append(f"Grace period: --min-age {format_duration(plan.options.min_age)}")
    if not o.selection.repositories:
        lines.append("No repository matches the rules.")
    for r in o.selection.repositories:
        lines.extend(_repo_lines(r, plan, freed.get(r.name, [])))
    acts = done_actions(run)
    verb = "Would remove" if run.dry_run or run.would_refuse else "Removed"
    if plan.options.trash and not run.dry_run and not run.would_refuse:
        verb = "Moved to trash"
    totals = _totals(plan, acts, len(o.selection.refused))
    lines.append(f"{verb}: " + totals[0].removeprefix("Total: "))
    lines.extend(totals[1:])
    lines.extend(kept_lines(plan))
    lines.extend(skipped)
    lines.extend(guard_lines(run))
    if run.executed is not None:
        if run.executed.failed:
            lines.append(
                f"FAILED: {run.executed.failed.detail}; the run stopped there. Fix the cause "
                "and run regfs retain again."
            )
        if run.executed.interrupted:
            lines.append("Interrupted: stopped between two items. Run regfs retain again.")
        if plan.options.trash and acts:
            lines.append(f"Undo with: regfs restore {quote(plan.v2)} {plan.run_id}")
        if acts:
            lines.append(
                "Now restart the registry (its blob cache still believes in deleted blobs) "
                "and take it out of read-only mode."
            )
    return wrapped(lines, width)
