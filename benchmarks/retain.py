#!/usr/bin/env python3
"""Benchmark `regfs retain --dry-run` against `regfs gc --dry-run` on the same tree.

    python benchmarks/retain.py [--repos 2000] [--tags 10] [--pairs 5] [--warmup 1]
                                [--rule 'keep-last 8'] ... [--json] [--days 300]
                                [--workdir DIR] [--regfs CMD] [--json-out FILE]
                                [--baseline 'gc --delete-untagged']

1. Generates a tree with gen_tree.py (cached in WORKDIR/retain, keyed like bench.py's),
   then spreads the tags' pushed-at times (the mtime of `_manifests/tags/<t>/current/link`)
   over the --days before now, deterministically (a hash of repository and tag); `latest`
   gets the time of its repository's newest tag, as when it is pushed with it. gen_tree.py
   gives every file one mtime, which retain rightly refuses (a copy that lost mtimes).
2. For each --rule (default: keep-last 8, keep-last 3, older-than 90d), runs
   `regfs gc ROOT --dry-run` (--baseline: another gc, e.g. 'gc --delete-untagged', which
   reads the tag links as retain does) and `regfs retain ROOT --<rule> --dry-run`
   alternately (ABBA order), --pairs times each, after --warmup untimed runs of each; text
   output (or --json for both) goes to a file. Every run gets wall time, user and system CPU
   (of the command and its reaped helpers) and peak RSS from os.wait4, through regtools'
   launcher, and the 1-minute load average when it started.
3. Reports, per rule, the medians and the median of the per-pair retain/gc ratios of wall
   time, user CPU and user+system CPU. On a shared machine wall time measures the
   neighbours too: the CPU ratios are the steadier figure.

By default regfs is this checkout (`python -m regfs` with PYTHONPATH set to it); --regfs
'CMD' runs another. Exit status: 0 every run succeeded, 1 a run failed, 2 regfs is missing.
Standard library only; only the local file system is touched.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import statistics
import subprocess
import sys
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import bench  # noqa: E402
import regtools  # noqa: E402
from regtools import Run  # noqa: E402

DEFAULT_RULES = ["keep-last 8", "keep-last 3", "older-than 90d"]
DAY = 86400.0


def log(msg: str) -> None:
    print(msg, flush=True)


def regfs_command(override: str | None) -> tuple[list[str], dict[str, str] | None]:
    """--regfs, else this checkout through `python -m regfs`."""
    env: dict[str, str] | None = None
    if override:
        cmd = shlex.split(override)
    else:
        cmd = [sys.executable, "-m", "regfs"]
        env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    probe = subprocess.run([*cmd, "--help"], env=env, capture_output=True, text=True)
    if probe.returncode != 0:
        tail = (probe.stderr or probe.stdout).strip()[-1500:]
        raise bench.Missing(f"`{shlex.join(cmd)} --help` failed (exit {probe.returncode}):\n{tail}")
    return cmd, env


def spread_pushed_at(root: str, now: float, days: float) -> int:
    """Set every tag's pushed-at time (see the module docstring); returns how many."""
    repos = os.path.join(root, "docker", "registry", "v2", "repositories")
    count = 0
    for dirpath, dirnames, _ in os.walk(repos):
        if not (dirpath.endswith("/_manifests/tags")):
            continue
        repo = os.path.relpath(os.path.dirname(os.path.dirname(dirpath)), repos)
        times: dict[str, float] = {}
        for tag in sorted(dirnames):
            if tag == "latest":
                continue
            h = hashlib.sha256(f"{repo}:{tag}".encode()).digest()
            # At least two hours old: older than the default --min-age.
            times[tag] = now - 2 * 3600 - days * DAY * (int.from_bytes(h[:8], "big") / 2**64)
        if "latest" in dirnames:
            times["latest"] = max(times.values(), default=now - 2 * 3600)
        for tag, when in times.items():
            link = os.path.join(dirpath, tag, "current", "link")
            if os.path.isfile(link):
                os.utime(link, (when, when), follow_symlinks=False)
                count += 1
        dirnames[:] = []  # nothing to find inside the tags
    return count


def load1() -> float:
    return os.getloadavg()[0]


class RetainBench:
    def __init__(self, args: argparse.Namespace, cmd: list[str], env: dict[str, str] | None):
        self.a = args
        self.cmd = cmd
        self.env = env
        self.failures: list[str] = []
        self.loads: dict[str, float] = {}

    def run(self, case: str, label: str, argv: list[str]) -> Run:
        root = os.path.join(case, "root")
        extra = ["--json"] if self.a.json else []
        self.loads[label] = load1()
        run = regtools.run_measured(
            label,
            [*self.cmd, *argv[:1], root, *argv[1:], "--dry-run", *extra],
            os.path.join(case, "out"),
            env=self.env,
        )
        if run.rc != 0:
            self.failures.append(f"{label}: exit {run.rc}: {regtools.read_text(run.stderr)[-800:]}")
            log(f"FAIL: {self.failures[-1]}")
        return run

    def rule(self, case: str, rule: str) -> dict[str, Any]:
        flag, _, value = rule.partition(" ")
        commands = {
            "gc": shlex.split(self.a.baseline),
            "retain": ["retain", f"--{flag}", *value.split()],
        }
        name = rule.replace(" ", "-")
        for k in range(self.a.warmup):
            for tool, argv in commands.items():
                run = self.run(case, f"{tool}[{name}]-warmup#{k + 1}", argv)
                log(f"  {run.label:<34} wall {run.wall:6.2f}s  (untimed)")
        runs: dict[str, list[Run]] = {"gc": [], "retain": []}
        tools = list(commands)
        for i in range(self.a.pairs):
            for tool in tools if i % 2 == 0 else tools[::-1]:
                run = self.run(case, f"{tool}[{name}]#{i + 1}", commands[tool])
                runs[tool].append(run)
                log(
                    f"  {run.label:<34} wall {run.wall:6.2f}s  user {run.user:6.2f}s  "
                    f"sys {run.sys:5.2f}s  rss {run.maxrss_kb / 1024:6.1f} MB  "
                    f"load {self.loads[run.label]:5.2f}  rc {run.rc}"
                )
        return summarize(rule, runs, self.loads)


def ratio(runs: dict[str, list[Run]], attr: str) -> float:
    return float(
        statistics.median(
            getattr(r, attr) / getattr(g, attr)
            for g, r in zip(runs["gc"], runs["retain"], strict=True)
            if getattr(g, attr) > 0
        )
    )


def summarize(rule: str, runs: dict[str, list[Run]], loads: dict[str, float]) -> dict[str, Any]:
    out: dict[str, Any] = {"rule": rule}
    for tool, rs in runs.items():
        out[tool] = {
            "wall": statistics.median(r.wall for r in rs),
            "user": statistics.median(r.user for r in rs),
            "sys": statistics.median(r.sys for r in rs),
            "cpu": statistics.median(r.cpu for r in rs),
            "peak_rss_mb": max(r.maxrss_kb for r in rs) / 1024,
            "runs": [
                {
                    "wall": r.wall,
                    "user": r.user,
                    "sys": r.sys,
                    "maxrss_kb": r.maxrss_kb,
                    "rc": r.rc,
                    "load1": loads[r.label],
                }
                for r in rs
            ],
        }
    out["ratio"] = {k: ratio(runs, k) for k in ("wall", "user", "cpu")}
    every = [loads[r.label] for rs in runs.values() for r in rs]
    out["load1"] = {"min": min(every), "max": max(every)}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repos", type=int, default=2000)
    ap.add_argument("--tags", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2, help="gen_tree writer threads")
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--days", type=float, default=300.0, help="pushed-at spread")
    ap.add_argument("--rule", action="append", help="a retain rule: 'keep-last 8', ...")
    ap.add_argument("--json", action="store_true", help="both commands with --json")
    ap.add_argument("--workdir", default=os.path.join(bench.tempfile.gettempdir(), "regfs-bench"))
    ap.add_argument("--regfs", help="how to run regfs (default: this checkout)")
    ap.add_argument("--json-out", help="write the figures as JSON")
    ap.add_argument(
        "--baseline", default="gc", help="the gc command retain is compared with (default: gc)"
    )
    a = ap.parse_args()
    try:
        cmd, env = regfs_command(a.regfs)
    except bench.Missing as e:
        log(str(e))
        return 2
    case, _expect = bench.ensure_tree(
        os.path.join(a.workdir, "retain"), a.repos, a.tags, a.seed, a.jobs
    )
    now = bench.time.time()
    n = spread_pushed_at(os.path.join(case, "root"), now, a.days)
    log(f"pushed-at of {n} tags spread over the {a.days:g} days before now")
    bench.warm(os.path.join(case, "root"))
    b = RetainBench(a, cmd, env)
    results = [b.rule(case, rule) for rule in a.rule or DEFAULT_RULES]
    log(
        f"\n{a.repos}x{a.tags}, {a.pairs} pairs, output {'--json' if a.json else 'text'}, "
        f"baseline `{a.baseline} --dry-run`; "
        f"regfs: {shlex.join(cmd)}{' (PYTHONPATH=' + REPO_ROOT + ')' if env else ''}"
    )
    log(
        f"{'retain rule':<16}{'gc wall':>9}{'ret wall':>10}{'gc user':>9}{'ret user':>10}"
        f"{'gc RSS':>8}{'ret RSS':>9}{'wall x':>8}{'user x':>8}{'cpu x':>7}{'load':>12}"
    )
    for r in results:
        g, t, x = r["gc"], r["retain"], r["ratio"]
        log(
            f"{r['rule']:<16}{g['wall']:>8.2f}s{t['wall']:>9.2f}s{g['user']:>8.2f}s"
            f"{t['user']:>9.2f}s{g['peak_rss_mb']:>6.0f}MB{t['peak_rss_mb']:>7.0f}MB"
            f"{x['wall']:>8.2f}{x['user']:>8.2f}{x['cpu']:>7.2f}"
            f"{r['load1']['min']:>6.1f}-{r['load1']['max']:<5.1f}"
        )
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump(
                {
                    "repos": a.repos,
                    "tags": a.tags,
                    "pairs": a.pairs,
                    "json": a.json,
                    "baseline": a.baseline,
                    "regfs": cmd,
                    "results": results,
                    "failures": b.failures,
                },
                f,
                indent=1,
            )
            f.write("\n")
    return 1 if b.failures else 0


if __name__ == "__main__":
    sys.exit(main())
