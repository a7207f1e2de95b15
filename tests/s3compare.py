"""Comparing regfs's reports on a bucket with the same on disk, modulo what a bucket cannot hold.

The documented differences (README "S3", tests/fixtures/README.md "The same scenarios in S3"):

* no empty folders: a blob folder whose ``data`` was deleted is no folder at all in a bucket, so
  its ``missing_data`` finding has no counterpart (the dangling reference is reported alike);
* no symbolic links: the ``symlink`` findings of ``damaged`` have none either;
* an unfinished upload's ``data`` is an open multipart upload, invisible to a listing: its
  size reads 0; upload ids are fresh for each build; nothing can back-date ``LastModified``,
  so an upload aged by its files' mtime (no ``startedat``) is not stale in a bucket; a bucket's
  report also lists the open multipart uploads (``multipart_uploads``), a folder's has none.
"""

from __future__ import annotations

from typing import Any

BUCKET_CANNOT_HOLD = frozenset({"symlink", "missing_data"})


def comparable_orphans(doc: dict[str, Any]) -> dict[str, Any]:
    """An ``orphans --json`` document without what differs between a bucket and a folder by
    nature (see the module docstring)."""
    out = dict(doc)
    out.pop("multipart_uploads", None)
    out["problems"] = [p for p in doc["problems"] if p["kind"] not in BUCKET_CANNOT_HOLD]
    out["stale_uploads"] = sorted(
        (u["repository"], u["started_at"])
        for u in doc["stale_uploads"]
        if u["age_from"] == "startedat"
    )
    totals = dict(doc["totals"])
    for key in ("problems", "stale_uploads", "stale_upload_bytes"):
        totals.pop(key)
    out["totals"] = totals
    return out
