"""The text of the reading commands: orphans, check, du."""

from __future__ import annotations

import humanize

from regfs.model.digest import short
from regfs.model.findings import Kind
from regfs.render.base import plural, rfc3339, size, wrap_lines, wrapped
from regfs.render.findings import findings_lines
from regfs.render.tables import table
from regfs.reports.check import CheckReport
from regfs.reports.du import DuReport
from regfs.reports.multipart import MultipartLeftover
from regfs.reports.orphans import OrphansReport, StaleUpload


def upload_age(s: StaleUpload) -> str:
    """How old a stale upload is and how that is known, in words."""
    ago = f"{humanize.naturaldelta(s.age)} ago"
    if s.age_from == "startedat":
        return f"started {ago} ({rfc3339(s.started_at)})"
    if s.age_from == "upload_id":
        return f"started {ago} ({rfc3339(s.started_at)}, from its upload id)"
    return f"no startedat (cancelled); last written {ago}"


def orphans_text(r: OrphansReport, width: int = 80) -> str:
    """What ``regfs orphans`` prints: each category with its items, then the problems."""
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
    if r.multipart_uploads is not None:
        out.extend(multipart_lines(r.multipart_uploads))
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


def check_text(r: CheckReport, width: int = 80) -> str:
    """What ``regfs check`` prints: what was checked, verified, and every finding."""
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


_DU_COLUMNS = ("TOTAL", "SHARED", "EXCLUSIVE", "UNTAGGED", "TAGS", "MANIFESTS")


def du_text(r: DuReport, width: int = 80) -> str:
    """What ``regfs du`` prints: the usage table, then the registry totals."""
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
        out.extend(table(rows, _DU_COLUMNS, width))
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
    return wrapped(out, width)


def multipart_lines(ups: list[MultipartLeftover]) -> list[str]:
    """The abandoned multipart uploads of a bucket, by repository (``regfs orphans``)."""
    total = sum(m.size for m in ups)
    out = [
        f"Abandoned multipart uploads: {len(ups)} ({size(total)}), invisible to listings and "
        "billed until aborted; aborted by `regfs gc`"
    ]
    last_repo = None
    for m in ups:
        if m.repository != last_repo:
            out.append(f"  {m.repository}")
            last_repo = m.repository
        left = "" if m.has_folder else ", its upload folder already gone"
        out.append(
            f"    {m.uuid}  {size(m.size)}, started {humanize.naturaldelta(m.age)} ago{left}"
        )
    return out
