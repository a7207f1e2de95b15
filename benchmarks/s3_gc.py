#!/usr/bin/env python3
"""S3 mode: ``regfs gc --dry-run`` against the reference ``garbage-collect --dry-run`` on the
same bucket, through a loopback proxy that counts requests and adds latency (issue 13).

    python benchmarks/s3_gc.py --sizes 500x10 [--latency-ms 0,10] [--reference-latency-ms 0,10]

For each size: a tree from ``gen_tree.py`` is uploaded into a fresh SeaweedFS (``weed mini``
on 127.0.0.1, tests/s3bed.py); then, for each added latency, the two commands run one after
the other (regfs first, then the reference; one run each, as every benchmark here), each as
its own process, both talking to the bucket only through the proxy of tests/faultproxy.py:

* ``regfs``: ``regfs gc --dry-run --json --min-age 0 --skip-live-check`` on the bucket
  (``s3_gc_run.py``: the run the command makes, credentials from the environment);
* ``reference``: ``docker-registry garbage-collect --dry-run CONFIG`` (2.8.2) whose
  ``regionendpoint`` is the proxy.

Per run: requests (total and by S3 operation, as the proxy saw them), wall time, peak memory
(the process's max RSS, GNU ``time``'s ``%M``), and the blobs each would delete (they must be
the same set: the generated tree has none of the cases where the reference is wrong). The reference
is skipped at the latencies not in ``--reference-latency-ms`` (it takes minutes per size).
Prints one JSON document; one progress line a run on stderr. Nothing talks to anything but
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
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

import faultproxy  # noqa: E402
import realreg as rr  # noqa: E402
import s3bed  # noqa: E402
from s3_listing import upload_tree  # noqa: E402


def measured(cmd: list[str], env: dict[str, str], cwd: str) -> tuple[int, str, str, float, int]:
    """Run ``cmd``: (exit code, stdout, stderr, wall seconds, peak RSS in KiB).

    The peak is GNU time's ``%M`` (``/usr/bin/time``): the maximum RSS that ``wait4`` reports
    for a process forked straight from this one includes this (large) process's own pages at
    the fork, so it is measured one fork further, from the small ``time`` process."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        rss_file = os.path.join(cwd, "maxrss")
        t0 = time.monotonic()
        p = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", rss_file, *cmd],
            stdout=out,
            stderr=err,
            env=env,
            cwd=cwd,
        )
        wall = time.monotonic() - t0
        out.seek(0)
        err.seek(0)
        with open(rss_file, encoding="utf-8") as f:
            rss = int(f.read().strip().splitlines()[-1])
        return (
            p.returncode,
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
            wall,
            rss,
        )


def regfs_env(weed: s3bed.Weed) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(
        AWS_ACCESS_KEY_ID=weed.ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=weed.SECRET_KEY,
        AWS_DEFAULT_REGION=weed.REGION,
        NO_PROXY="127.0.0.1",
    )
    env.pop("AWS_PROFILE", None)
    return env


def run_regfs(
    weed: s3bed.Weed, proxy: faultproxy.FaultProxy, prefix: str, td: str
) -> dict[str, Any]:
    cmd = [sys.executable, str(HERE / "s3_gc_run.py"), weed.bucket, prefix, proxy.url]
    proxy.reset()
    code, out, err, wall, rss = measured(cmd, regfs_env(weed), td)
    blobs: list[str] = []
    try:
        doc = json.loads(out)
        blobs = sorted(b["digest"] for b in doc["blobs"])
    except (ValueError, KeyError, TypeError):
        doc = None
    return {
        "exit_code": code,
        "wall_s": round(wall, 3),
        "peak_rss_mib": round(rss / 1024, 1),
        "requests": proxy.total(),
        "by_operation": proxy.counts(),
        "blobs": len(blobs),
        "reclaimed_bytes": doc.get("reclaimed_bytes") if doc else None,
        "error": None if doc else err.strip()[-2000:],
        "_digests": blobs,
    }


def run_reference(
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
    code, out, err, wall, rss = measured(
        [bins[0], "garbage-collect", "--dry-run", cfg], rr._clean_env(), td
    )
    res = rr.parse_gc_output(out, err, code, ["garbage-collect", "--dry-run"])
    return {
        "exit_code": code,
        "wall_s": round(wall, 3),
        "peak_rss_mib": round(rss / 1024, 1),
        "requests": proxy.total(),
        "by_operation": proxy.counts(),
        "blobs": len(res.blobs),
        "summary": res.summary,
        "error": res.error,
        "_digests": sorted(res.blobs),
    }


def one_size(repos: int, tags: int, latencies: list[float], ref_latencies: set[float]) -> Any:
    out: dict[str, Any] = {"repos": repos, "tags": tags, "runs": []}
    with tempfile.TemporaryDirectory(prefix="regfs-s3-gc-bench-") as td:
        root = Path(td) / "tree"
        subprocess.run(
            [
                sys.executable,
                str(HERE / "gen_tree.py"),
                str(root),
                "--repos",
                str(repos),
                "--tags",
                str(tags),
            ],
            check=True,
            capture_output=True,
        )
        with s3bed.Weed() as weed, faultproxy.FaultProxy(weed.s3_port) as proxy:
            prefix = "bench"
            t0 = time.monotonic()
            out["objects"] = upload_tree(weed, root, prefix)
            out["upload_s"] = round(time.monotonic() - t0, 1)
            for ms in latencies:
                proxy.latency = ms / 1000
                ours = run_regfs(weed, proxy, prefix, td)
                run: dict[str, Any] = {"latency_ms": ms, "regfs": ours}
                if ms in ref_latencies:
                    ref = run_reference(weed, proxy, prefix, td)
                    run["reference"] = ref
                    run["same_blobs"] = ours["_digests"] == ref["_digests"]
                    run["request_ratio"] = round(ours["requests"] / max(1, ref["requests"]), 4)
                    run["wall_ratio"] = round(ours["wall_s"] / max(1e-9, ref["wall_s"]), 4)
                    ref.pop("_digests")
                ours.pop("_digests")
                out["runs"].append(run)
                print(json.dumps({"repos": repos, **run}), file=sys.stderr, flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="500x10", help="comma separated REPOSxTAGS")
    ap.add_argument("--latency-ms", default="0,10", help="added per request, comma separated")
    ap.add_argument(
        "--reference-latency-ms",
        default=None,
        help="latencies at which the reference runs too (default: all of --latency-ms)",
    )
    args = ap.parse_args(argv)
    latencies = [float(x) for x in args.latency_ms.split(",") if x]
    ref = args.reference_latency_ms
    ref_latencies = set(latencies) if ref is None else {float(x) for x in ref.split(",") if x}
    doc: dict[str, Any] = {"sizes": []}
    for size in args.sizes.split(","):
        repos, tags = (int(x) for x in size.split("x"))
        doc["sizes"].append(one_size(repos, tags, latencies, ref_latencies))
    json.dump(doc, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
