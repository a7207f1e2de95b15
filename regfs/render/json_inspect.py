"""The --json documents of the reading commands: orphans, check, du (regfs/schemas/)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from regfs.render.base import SCHEMA_VERSION, rfc3339
from regfs.render.findings import FINDING_ORDER, problem_dict
from regfs.reports.check import CheckReport
from regfs.reports.du import DuReport
from regfs.reports.orphans import OrphansReport


def orphans_dict(r: OrphansReport) -> dict[str, Any]:
    """The ``regfs orphans --json`` document (regfs/schemas/orphans.json);
    ``multipart_uploads`` only for a bucket."""
    out = {
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
                "started_at": rfc3339(u.started_at),
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
    if r.multipart_uploads is not None:
        out["multipart_uploads"] = [
            {
                "repository": m.repository,
                "uuid": m.uuid,
                "path": m.path,
                "upload_id": m.upload_id,
                "started_at": rfc3339(datetime.fromtimestamp(m.initiated, UTC)),
                "age_seconds": int(m.age),
                "size": m.size,
                "folder_left": m.has_folder,
            }
            for m in r.multipart_uploads
        ]
    return out


def check_dict(r: CheckReport) -> dict[str, Any]:
    """The ``regfs check --json`` document (regfs/schemas/check.json)."""
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


def du_dict(r: DuReport) -> dict[str, Any]:
    """The ``regfs du --json`` document (regfs/schemas/du.json)."""
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
