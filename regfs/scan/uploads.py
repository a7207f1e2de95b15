"""A repository's ``_uploads`` folder: one :class:`Upload` per upload folder holding a file."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from regfs.layout import STARTEDAT, data_file, join, uploads_dir
from regfs.model.findings import Kind
from regfs.model.snapshot import Repository, Upload
from regfs.scan.out import Out
from regfs.scan.walk import list_entries, symlink
from regfs.storage.base import DIR, SYMLINK, Entry, Storage

_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_started_at(text: str) -> datetime:
    """Parse a registry ``startedat`` value (RFC 3339, possibly with nanoseconds)."""
    cleaned = _FRACTION.sub(r"\1", text.strip())
    value = datetime.fromisoformat(cleaned.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def scan_uploads(storage: Storage, repo: Repository, out: Out) -> None:
    """Every ``_uploads/<id>`` folder that holds a file is one upload.

    The registry writes ``startedat`` first (its own clock), then ``data`` and
    ``hashstates/<alg>/<offset>``. A cancelled upload (DELETE of the upload; also what a
    ``--registry-url`` probe of a writable 2.8.2 registry left) keeps only ``hashstates/...``:
    no ``startedat``, an upload all the same, aged by its id or its files (see
    :attr:`Upload.started`). Folders inside an upload are not reported as empty folders: the
    upload goes, or stays, as a whole. A folder holding no file at all is not an upload but
    what an interrupted removal leaves (the registry never leaves one, and answers 404 for
    its id): its folders are reported empty, and gc removes them as such.
    """
    base = uploads_dir(repo.name)
    entries = list_entries(storage, base, out, repo=repo.name, blocks=False)
    if entries is None:
        return
    for e in entries:
        rel = join(base, e.name)
        if e.kind == SYMLINK:
            symlink(out, rel, repo.name)
            continue
        if e.kind != DIR:
            out.add(Kind.UNKNOWN_ENTRY, rel, "unexpected file among uploads", repo=repo.name)
            continue
        inner = Out()
        files = _walk_upload(storage, rel, inner, repo.name)
        out.findings.extend(inner.findings)
        if inner.findings:
            continue  # not all of it could be read: what was reported keeps it
        if not files:
            out.empty.extend(inner.empty)
            continue
        size, mtime, started = 0, 0.0, None
        for frel, entry in files:
            mtime = max(mtime, entry.mtime)
            if frel == data_file(rel):
                size = entry.size
        started_file = join(rel, STARTEDAT)
        if any(frel == started_file for frel, _ in files):
            try:
                raw, _, _ = storage.read_file(started_file, 256)
                started = parse_started_at(raw.decode("ascii"))
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                out.add(
                    Kind.BAD_UPLOAD,
                    started_file,
                    f"unreadable start time ({exc}); aged as an upload without one",
                    repo=repo.name,
                )
        repo.uploads[e.name] = Upload(e.name, started, size, mtime)


def _walk_upload(storage: Storage, rel: str, out: Out, repo: str) -> list[tuple[str, Entry]]:
    """Every entry below ``rel`` that is not a folder."""
    files: list[tuple[str, Entry]] = []
    stack = [rel]
    while stack:
        cur = stack.pop()
        entries = list_entries(storage, cur, out, repo=repo, blocks=False)
        for e in entries or ():
            erel = join(cur, e.name)
            if e.kind == DIR:
                stack.append(erel)
            elif e.kind == SYMLINK:
                symlink(out, erel, repo)
            else:
                files.append((erel, e))
    return files
