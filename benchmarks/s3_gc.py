#!/usr/bin/env python3
"""S3 mode: the ``regfs gc --dry-run`` command against the reference ``garbage-collect
--dry-run`` on the same bucket, through a loopback proxy that counts requests and adds
latency (issue 13).

    python benchmarks/s3_gc.py --sizes 500x10 [--latency-ms 0,10] [--reference-latency-ms 0]
                               [--pairs 3] [--via url|config] [--regfs 'CMD'] [--workdir DIR]

For each size: a tree from ``gen_tree.py`` is uploaded into a fresh SeaweedFS (``weed mini``
on 127.0.0.1, tests/s3bed.py); then, for each added latency, ``--pairs`` alternating pairs
(regfs first in odd pairs, the reference first in even ones), each command its own process,
both reaching the bucket only through the proxy of tests/faultproxy.py:

* ``regfs``: the command line as a user runs it, interpreter start, CLI and rendering
  included: ``regfs gc s3://BUCKET/PREFIX --endpoint-url PROXY --dry-run --json --min-age 0``
  (``--via url``, credentials from ``AWS_*`` variables) or ``regfs gc --config CONFIG
  --dry-run --json --min-age 0`` with the reference's own config (``--via config``). The live
  check runs (no registry is up during the run). ``--min-age 0``: the objects were uploaded
  minutes ago and the reference has no grace period. ``--regfs CMD`` names the command
  (default: this checkout, ``python -m regfs`` with ``PYTHONPATH`` set to it);
* ``reference``: ``docker-registry garbage-collect --dry-run CONFIG`` (2.8.2) whose
  ``regionendpoint`` is the proxy.

Per run: requests (total and by S3 operation, as the proxy saw them), wall time, peak memory
(the process's max RSS, GNU ``time``'s ``%M``), the load average before and after, and the
blobs each would delete. Every run of either side must plan the same set (the generated tree
has none of the cases where the reference is wrong): the script exits 1 when one does not, or
when a command fails. Per size and latency: medians of each side and of the per-pair ratios.
The reference is skipped at the latencies not in ``--reference-latency-ms`` (it takes minutes
per size); regfs then runs ``--pairs`` times alone. Prints one JSON document; one progress
line a run on stderr. Nothing talks to anything but 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
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

PREFIX = "bench"


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
    env.pop("REGFS_ROOT", None)
    return env


def regfs_command(args: argparse.Namespace) -> list[str]:
    if args.regfs:
        return shlex.split(args.regfs)
    return ["env", f"PYTHONPATH={HERE.parent}", sys.executable, "-m", "regfs"]


def load() -> float:
    return round(os.getloadavg()[0], 2)


def run_regfs(
    base: list[str],
    via: str,
    weed: s3bed.Weed,
    proxy: faultproxy.FaultProxy,
    cfg: str,
    td: str,
) -> dict[str, Any]:
    where = (
        ["--config", cfg]
        if via == "config"
        else [f"s3://{weed.bucket}/{PREFIX}", "--endpoint-url", proxy.url]
    )
    cmd = [*base, "gc", *where, "--dry-run", "--json", "--min-age", "0"]
    proxy.reset()
    load0 = load()
    code, out, err, wall, rss = measured(cmd, regfs_env(weed), td)
    blobs: list[str] = []
    try:
        doc = json.loads(out)
        blobs = sorted(b["digest"] for b in doc["blobs"])
    except (ValueError, KeyError, TypeError):
        doc = None
    return {
        "command": shlex.join(cmd),
        "exit_code": code,
        "wall_s": round(wall, 3),
        "peak_rss_mib": round(rss / 1024, 1),
        "requests": proxy.total(),
        "by_operation": proxy.counts(),
        "load_before": load0,
        "load_after": load(),
        "blobs": len(blobs),
        "reclaimed_bytes": doc.get("reclaimed_bytes") if doc else None,
        "error": None if doc and code == 0 else err.strip()[-2000:],
        "_digests": blobs,
    }


def run_reference(proxy: faultproxy.FaultProxy, cfg: str, td: str) -> dict[str, Any]:
    bins = rr.require_binaries()
    cmd = [bins[0], "garbage-collect", "--dry-run", cfg]
    proxy.reset()
    load0 = load()
    code, out, err, wall, rss = measured(cmd, rr._clean_env(), td)
    res = rr.parse_gc_output(out, err, code, ["garbage-collect", "--dry-run"])
    return {
        "command": shlex.join(cmd),
        "exit_code": code,
        "wall_s": round(wall, 3),
        "peak_rss_mib": round(rss / 1024, 1),
        "requests": proxy.total(),
        "by_operation": proxy.counts(),
        "load_before": load0,
        "load_after": load(),
        "blobs": len(res.blobs),
        "summary": res.summary,
        "error": res.error,
        "_digests": sorted(res.blobs),
    }


def median(values: list[float]) -> float | None:
    return round(statistics.median(values), 4) if values else None


def summary(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of each side and of the per-pair ratios."""
    out: dict[str, Any] = {}
    for side in ("regfs", "reference"):
        runs = [p[side] for p in pairs if side in p]
        if runs:
            out[side] = {
                "wall_s": median([r["wall_s"] for r in runs]),
                "peak_rss_mib": median([r["peak_rss_mib"] for r in runs]),
                "requests": median([r["requests"] for r in runs]),
                "load": median([r["load_before"] for r in runs]),
            }
    ratios = [p for p in pairs if "reference" in p]
    if ratios:
        out["request_ratio"] = median([p["request_ratio"] for p in ratios])
        out["wall_ratio"] = median([p["wall_ratio"] for p in ratios])
    return out


def one_size(
    args: argparse.Namespace, repos: int, tags: int, latencies: list[float], ref: set[float]
) -> tuple[dict[str, Any], bool]:
    out: dict[str, Any] = {"repos": repos, "tags": tags, "latencies": []}
    ok = True
    base = regfs_command(args)
    with tempfile.TemporaryDirectory(prefix="regfs-s3-gc-bench-", dir=args.workdir) as td:
        root = Path(td) / "tree"
        gen = [sys.executable, str(HERE / "gen_tree.py"), str(root)]
        gen += ["--repos", str(repos), "--tags", str(tags)]
        subprocess.run(gen, check=True, capture_output=True)
        with s3bed.Weed(bucket="bench") as weed, faultproxy.FaultProxy(weed.s3_port) as proxy:
            t0 = time.monotonic()
            out["objects"] = upload_tree(weed, root, PREFIX)
            out["upload_s"] = round(time.monotonic() - t0, 1)
            cfg = rr.write_config(
                None,
                5000,
                s3=weed.registry_storage(PREFIX, endpoint=proxy.url),
                path=os.path.join(td, "gc.yml"),
            )
            plan: list[str] | None = None
            for ms in latencies:
                proxy.latency = ms / 1000
                pairs: list[dict[str, Any]] = []
                for i in range(args.pairs):
                    pair: dict[str, Any] = {"latency_ms": ms}
                    order = ["regfs", "reference"] if i % 2 == 0 else ["reference", "regfs"]
                    for side in order:
                        if side == "regfs":
                            pair[side] = run_regfs(base, args.via, weed, proxy, cfg, td)
                        elif ms in ref:
                            pair[side] = run_reference(proxy, cfg, td)
                    for side in ("regfs", "reference"):
                        run = pair.get(side)
                        if run is None:
                            continue
                        digests = run.pop("_digests")
                        plan = digests if plan is None else plan
                        run["same_plan"] = digests == plan and run["exit_code"] == 0
                        ok = ok and run["same_plan"]
                    if "reference" in pair:
                        ours, theirs = pair["regfs"], pair["reference"]
                        pair["request_ratio"] = round(ours["requests"] / theirs["requests"], 4)
                        pair["wall_ratio"] = round(ours["wall_s"] / theirs["wall_s"], 4)
                    pairs.append(pair)
                    print(json.dumps({"repos": repos, **pair}), file=sys.stderr, flush=True)
                out["latencies"].append(
                    {"latency_ms": ms, "median": summary(pairs), "pairs": pairs}
                )
            out["blobs_planned"] = len(plan or [])
    return out, ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="500x10", help="comma separated REPOSxTAGS")
    ap.add_argument("--latency-ms", default="0,10", help="added per request, comma separated")
    ap.add_argument(
        "--reference-latency-ms",
        default=None,
        help="latencies at which the reference runs too (default: all of --latency-ms)",
    )
    ap.add_argument("--pairs", type=int, default=3, help="alternating pairs per latency")
    ap.add_argument(
        "--via",
        choices=("url", "config"),
        default="url",
        help="regfs names the bucket as s3://BUCKET/PREFIX --endpoint-url (url) "
        "or by the reference's config (config)",
    )
    ap.add_argument("--regfs", default=None, help="the regfs command (default: this checkout)")
    ap.add_argument("--workdir", default=None, help="where the tree is generated")
    args = ap.parse_args(argv)
    latencies = [float(x) for x in args.latency_ms.split(",") if x]
    ref = args.reference_latency_ms
    ref_latencies = set(latencies) if ref is None else {float(x) for x in ref.split(",") if x}
    doc: dict[str, Any] = {"argv": sys.argv[1:], "sizes": []}
    ok = True
    for size in args.sizes.split(","):
        repos, tags = (int(x) for x in size.split("x"))
        result, same = one_size(args, repos, tags, latencies, ref_latencies)
        doc["sizes"].append(result)
        ok = ok and same
    doc["same_plan"] = ok
    json.dump(doc, sys.stdout, indent=2)
    print()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
