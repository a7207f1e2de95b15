"""Build times for ``--by created``: the image config's ``created`` (an index: its newest child's).

Read on demand, only for the manifests tags point at, through the storage backend. A config
that is missing, unreadable, not JSON or without a parseable ``created`` gives None: the tag
has no build time, and the rules keep it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime

from regfs.layout import blob_data
from regfs.model.snapshot import Snapshot
from regfs.storage.base import Storage

# An image config is a few KiB; a "config" larger than this is not an image's.
CONFIG_READ_LIMIT = 4 * 1024 * 1024
_RFC3339 = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<time>\d{2}:\d{2}:\d{2})(?:\.(?P<frac>\d+))?"
    r"(?P<zone>[Zz]|[+-]\d{2}:\d{2})"
)


def parse_created(raw: bytes) -> float | None:
    """The ``created`` of an image config, as Unix seconds (None when absent or malformed)."""
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    text = doc.get("created") if isinstance(doc, dict) else None
    if not isinstance(text, str) or not text:
        return None
    m = _RFC3339.fullmatch(text.strip())
    if m is None:
        return None
    frac = (m.group("frac") or "")[:6]
    zone = m.group("zone").upper().replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(
            f"{m.group('date')}T{m.group('time')}{'.' + frac if frac else ''}{zone}"
        ).timestamp()
    except ValueError:
        return None


def created_reader(storage: Storage, snap: Snapshot) -> Callable[[str], float | None]:
    """digest -> build time of that manifest (memoised); see the module docstring."""
    configs: dict[str, float | None] = {}
    done: dict[str, float | None] = {}

    def config_time(digest: str) -> float | None:
        if digest not in configs:
            try:
                raw, _size, _mtime = storage.read_file(blob_data(digest), CONFIG_READ_LIMIT)
            except OSError:
                configs[digest] = None
            else:
                configs[digest] = parse_created(raw)
        return configs[digest]

    def created(digest: str, depth: int = 0) -> float | None:
        if digest in done:
            return done[digest]
        m = snap.manifests.get(digest)
        when: float | None = None
        if m is not None and m.is_index and depth < 8:
            times = [t for c in m.children if (t := created(c.digest, depth + 1)) is not None]
            when = max(times) if times else None
        elif m is not None and m.config is not None:
            when = config_time(m.config.digest)
        done[digest] = when
        return when

    return created
