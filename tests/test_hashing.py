"""regfs.reports.hashing on a store that prefers listing (a bucket): blobs are streamed and
hashed in threads, never forked (the fork pool's paths are tested in tests/test_check.py)."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest
from builder import StoreBuilder
from test_storage_listed import Bucketish
from test_storage_memory_gc import to_memory

from regfs.layout import blob_data
from regfs.parallel import pool
from regfs.parallel.tuning import Tuning
from regfs.reports.hashing import hash_blobs


def test_a_bucket_is_hashed_in_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    b = StoreBuilder(tmp_path / "t")
    layers = [b.layer(f"layer {i}" * (i + 1)) for i in range(12)]
    b.image("app", tags=["v1"], layers=layers)
    bucket = Bucketish(to_memory(b.v2))
    items = [(layer.digest, layer.size) for layer in layers]
    bad = layers[3].digest
    node = bucket.fs.node(bucket.abspath(blob_data(bad)))
    node.data = bytes([node.data[0] ^ 1]) + node.data[1:]
    threads: set[str] = set()
    opened = bucket.open_stream

    def tracking(rel: str) -> object:
        threads.add(threading.current_thread().name)
        return opened(rel)

    monkeypatch.setattr(bucket, "open_stream", tracking)

    def no_fork(*_a: object, **_k: object) -> object:
        raise AssertionError("a bucket is never hashed through the fork pool")

    monkeypatch.setattr(pool, "run_noting", no_fork)
    seen: list[int] = []
    suspects = hash_blobs(
        bucket, items, tuning=Tuning(processes=4, threads=4), on_bytes=seen.append
    )
    actual = "sha256:" + hashlib.sha256(node.data).hexdigest()
    assert suspects == [(bad, actual)]
    assert sum(seen) == sum(size for _, size in items)
    assert len(threads) > 1 and threading.current_thread().name not in threads
