"""The text of the deleting commands: gc and rm results, their previews, the guard."""

from __future__ import annotations

from typing import Any

from regfs.duration import format_duration
from regfs.gc.finish import left_paths
from regfs.gc.outcome import GcOutcome
from regfs.gc.plan import GcPlan
from regfs.gc.removal import RmOutcome
from regfs.gc.rm import RmPlan
from regfs.gc.steps import Action, Step
from regfs.model.digest import short
from regfs.render.base import noun, plural, quote, short_type, shorten_digests, size, wrapped
from regfs.render.json_gc import STEP_TITLES, done_actions, gc_dict, rm_dict, tag_of


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
    return wrapped(lines, width)


def kept_lines(plan: GcPlan) -> list[str]:
    """What the plan keeps and why, one line per kind and reason (count and size)."""
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


def skipped_lines(d: dict[str, Any]) -> list[str]:
    """The steps a run skipped, found gone or failed, from its JSON document."""
    return [
        f"  {s['status']}: {noun(s['step'], 1)} {s['path']}: {s['reason']}" for s in d["skipped"]
    ]


# --trash on a bucket, in one line (README, S3).
S3_TRASH = (
    "--trash on S3: each object is copied to .regfs/trash/<run-id>/ in the bucket, then "
    "deleted (S3 has no rename: not atomic; an object whose copy failed is not deleted)."
)


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
    """What ``regfs gc`` prints: what it deleted (or would), kept, skipped, and why."""
    d = gc_dict(o)
    plan = o.plan
    out: list[str] = []
    verb = "Would delete" if o.dry_run or o.would_refuse else "Deleted"
    if plan.options.trash and not o.dry_run:
        verb = "Moved to trash"
    acts = done_actions(o)
    mode = "--delete-untagged" if plan.options.delete_untagged else "default mode"
    out.append(f"regfs gc ({mode}), run {plan.run_id}" + (" [dry run]" if o.dry_run else ""))
    if plan.options.trash and plan.v2.startswith("s3://"):
        out.append(S3_TRASH)
    if not acts:
        out.append("Nothing to delete.")
    else:
        out.append(f"{verb}:")
        out.extend(_step_lines(acts, d["reclaimed_bytes"]))
    out.extend(kept_lines(plan))
    out.extend(skipped_lines(d))
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
            left = left_paths(plan, o.executed)
            out.append(
                f"Not done: {plural(len(left), 'step')} of {len(plan.actions)}; the run "
                f"journal's result.json names each ({plan.run_id})."
            )
        if o.executed.interrupted:
            out.append("Interrupted: stopped between two items. Run regfs gc again to finish.")
        if plan.options.trash and acts:
            out.append(f"Undo with: regfs restore {quote(plan.v2)} {plan.run_id}")
    if o.executed is not None and acts:
        # Last, so it is what the admin reads.
        out.append(
            "Now restart the registry (its blob cache still believes in deleted "
            "blobs) and take it out of read-only mode."
        )
    return wrapped(out, width)


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
            lines.append(f"  tag       {a.repository}:{tag_of(a)}")
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
    lines.extend(kept_lines(plan))
    if isinstance(plan, RmPlan):
        for b in plan.breaks:
            lines.append(f"  BREAKS: {shorten_digests(b.describe())}")
    return wrapped(lines, width)


def gc_estimate_line(gc: GcOutcome) -> str:
    """What the gc after a removal would reclaim, blobs and uploads counted apart; when it
    is nothing, the grace period that keeps it."""
    plan = gc.plan
    blobs = plan.by_step(Step.BLOB)
    uploads = plan.by_step(Step.UPLOAD)
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
    """What ``regfs rm`` prints: what it removed (or would), then what gc reclaims."""
    d = rm_dict(o)
    verb = "Would remove" if o.removal.dry_run or o.removal.would_refuse else "Removed"
    lines = [f"{verb}: " + ("; ".join(d["targets"]) or "nothing")]
    lines.append(f"  {_rm_counts(done_actions(o.removal))}")
    lines.extend(kept_lines(o.removal.plan))
    for r in d["referrers"]:
        what = short_type(r["artifact_type"]) if r["artifact_type"] else "referrer"
        lines.append(
            f"  with referrer {r['repository']}@{short(r['digest'])} ({what} of "
            f"{short(r['subject'])}): nothing could reach it any more"
        )
    lines.extend(skipped_lines(d))
    lines.extend(shorten_digests(line) for line in guard_lines(o.removal))
    if d["breaks"] and not o.removal.would_refuse:
        lines.append("Breaks (--force):")
        lines.extend(f"  {shorten_digests(b['message'])}" for b in d["breaks"])
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
        lines.append(f"Undo with: regfs restore {quote(o.removal.plan.v2)} {d['run_id']}")
    return wrapped(lines, width)
