#!/usr/bin/env python3
"""S3 mode, first half: what regfs's S3 backend spends to read a registry's metadata, against
the reference ``garbage-collect --dry-run`` on the same bucket (issue 13).

    python benchmarks/s3_listing.py --repos 500 --tags 10 [--latency-ms 0,10] [--workers 16]

Steps: a tree from ``gen_tree.py`` is uploaded into a fresh SeaweedFS (``weed mini`` on
127.0.0.1, tests/s3bed.py); then, through the loopback fault proxy (tests/faultproxy.py),
which counts every request and adds the chosen latency to each:

* ``regfs-read``: :class:`regfs.storage.s3.S3Storage` lists the whole v2 prefix (parallel
  shards), checks every revision link by its ETag (a GET only for those not proven), and GETs
  every distinct manifest once (16 in flight) -- everything the mark phase needs to read;
* ``reference``: ``docker-registry garbage-collect --dry-run CONFIG`` (2.8.2) with its
  ``regionendpoint`` at the proxy.

It measures the read side only: regfs's scan and planner do not run on S3 yet, so the GC
plans are not compared here. Prints one JSON document. Nothing talks to anything but
127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent))

import faultproxy  # noqa: E402
import realreg as rr  # noqa: E402
import s3bed  # noqa: E402

from regfs.storage.base import ListError  # noqa: E402
from regfs.storage.s3 import S3Storage, proves_revision_link  # noqa: E402
from regfs.storage.s3client import Retry, make_client  # noqa: E402


def upload_tree(weed: s3bed.Weed, root: Path, prefix: str) -> int:
    client = weed.client()
    files = [p for p in root.rglob("*") if p.is_file()]

    def put(p: Path) -> None:
        key = f"{prefix}/{p.relative_to(root).as_posix()}"
        client.put_object(Bucket=weed.bucket, Key=key, Body=p.read_bytes())

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(put, files))
    return len(files)


def regfs_read(
    weed: s3bed.Weed, proxy: faultproxy.FaultProxy, prefix: str, workers: int
) -> dict[str, Any]:
    client = make_client(
        endpoint_url=proxy.url,
        region=weed.REGION,
        access_key=weed.ACCESS_KEY,
        secret_key=weed.SECRET_KEY,
        pool=max(32, workers * 2),
    )
    storage = S3Storage(client, weed.bucket, prefix, workers=workers, retry=Retry())
    proxy.reset()
    t0 = time.monotonic()
    objects = []
    errors = 0
    for item in storage.list_prefix(""):
        if isinstance(item, ListError):
            errors += 1
        else:
            objects.append(item)
    t_list = time.monotonic() - t0
    revisions = [
        o for o in objects if "/_manifests/revisions/" in o.path and o.path.endswith("/link")
    ]
    unproven = [o for o in revisions if not proves_revision_link(o)]
    digests = sorted({f"{o.path.split('/')[-3]}:{o.path.split('/')[-2]}" for o in revisions})

    def get_manifest(d: str) -> int:
        alg, hx = d.split(":")
        data, _size, _ = storage.read_file(f"blobs/{alg}/{hx[:2]}/{hx}/data", 16 << 20)
        return len(data)

    def get_link(rel: str) -> int:
        return len(storage.read_file(rel, 4096)[0])

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(get_link, [o.path for o in unproven]))
        sizes = list(pool.map(get_manifest, digests))
    wall = time.monotonic() - t0
    return {
        "wall_s": round(wall, 3),
        "list_s": round(t_list, 3),
        "requests": proxy.total(),
        "by_operation": proxy.counts(),
        "objects": len(objects),
        "list_errors": errors,
        "revision_links": len(revisions),
        "revision_links_read": len(unproven),
        "manifests_read": len(digests),
        "manifest_bytes": sum(sizes),
    }


def reference(
    weed: s3bed.Weed, proxy: faultproxy.FaultProxy, prefix: str, td: str
) -> dict[str, Any]:
    bins = rr.require_binaries()
    cfg = rr.write_config(
        None,
        5000,
        s3=weed.registry_storage(prefix, endpoint=proxy.url),
        path=os.path.join(td, "gc.yml"),
    )
    proxy.reset()
    t0 = time.monotonic()
    p = subprocess.run(
        [bins[0], "garbage-collect", "--dry-run", cfg],
        capture_output=True,
        text=True,
        env=rr._clean_env(),
        cwd=td,
        timeout=3600,
    )
    wall = time.monotonic() - t0
    res = rr.parse_gc_output(p.stdout, p.stderr, p.returncode, ["garbage-collect", "--dry-run"])
    return {
        "wall_s": round(wall, 3),
        "requests": proxy.total(),
        "by_operation": proxy.counts(),
        "exit_code": res.exit_code,
        "summary": res.summary,
        "error": res.error,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repos", type=int, default=500)
    ap.add_argument("--tags", type=int, default=10)
    ap.add_argument("--latency-ms", default="0,10", help="comma separated, added per request")
    ap.add_argument("--workers", type=int, default=16)
    args = ap.parse_args(argv)
    out: dict[str, Any] = {
        "repos": args.repos,
        "tags": args.tags,
        "workers": args.workers,
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="regfs-s3-bench-") as td:
        root = Path(td) / "tree"
        subprocess.run(
            [
                sys.executable,
                str(HERE / "gen_tree.py"),
                str(root),
                "--repos",
                str(args.repos),
                "--tags",
                str(args.tags),
            ],
            check=True,
            capture_output=True,
        )
        with s3bed.Weed() as weed, faultproxy.FaultProxy(weed.s3_port) as proxy:
            prefix = "bench"
            t0 = time.monotonic()
            out["uploaded_objects"] = upload_tree(weed, root, prefix)
            out["upload_s"] = round(time.monotonic() - t0, 1)
            for ms in (float(x) for x in args.latency_ms.split(",") if x):
                proxy.latency = ms / 1000
                ours = regfs_read(weed, proxy, prefix, args.workers)
                ref = reference(weed, proxy, prefix, td)
                run = {
                    "latency_ms": ms,
                    "regfs_read": ours,
                    "reference_dry_run": ref,
                    "request_ratio": round(ours["requests"] / max(1, ref["requests"]), 4),
                    "wall_ratio": round(ours["wall_s"] / max(1e-9, ref["wall_s"]), 4),
                }
                out["runs"].append(run)
                print(json.dumps(run), file=sys.stderr, flush=True)  # progress: one line a run
    json.dump(out, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
