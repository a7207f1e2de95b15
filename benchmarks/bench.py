#!/usr/bin/env python3
"""Benchmark `regfs gc --dry-run` against the reference `docker-registry garbage-collect`.

    python benchmarks/bench.py [--repos 2000] [--tags 10] [--pairs 3] [--scale-check]
                               [--verify] [--workdir DIR] [--regfs CMD] [--reference-only]

1. Generates a synthetic storage tree with gen_tree.py (cached in the workdir,
   keyed by its parameters and the generator's source).
2. Runs (a) `regfs gc ROOT --dry-run --json --min-age 0` and (b) `docker-registry
   garbage-collect --dry-run CONFIG` alternately (ABBA order), --pairs times each.
   Every run gets wall time, CPU time (user+sys) and peak RSS of the child from
   os.wait4. Both must plan the same blob deletions (regfs: JSON key `blobs`, a
   list of objects with `digest`; reference: `blob eligible for deletion:
   sha256:<hex>` lines); the generator's own expectation is checked too.
3. --scale-check: a tree 5x larger (repos x5), both tools again; reports how
   each one's time and peak memory grow, and the ratio at that size.
4. --verify: `regfs check ROOT --verify-digests` against `sha256sum` over the
   same blob data files as two parallel streams; throughput in MB/s. Twice: on
   the GC tree, whose 48-303 byte layers make it a count of files (the full
   fsck walk dominates), and on a smaller tree with layer-sized blobs
   (--verify-repos x --verify-tags, ~--verify-layer-kib KiB layers, ~1.1 GB by
   default), where hashing dominates as it does on a real registry.

Exit status: 0 all plans agree, 1 a plan differs or a run failed, 2 a
prerequisite (docker-registry, sha256sum/xargs for --verify, regfs) is missing.
The default workdir is $TMPDIR/regfs-bench; on a slow disk, a tmpfs workdir
(e.g. /dev/shm/regfs-bench) makes generation much faster (2000x10 needs ~1.5 GB).
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
import tempfile
import time
from dataclasses import asdict
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import gen_tree  # noqa: E402
import regtools  # noqa: E402
from regtools import Run  # noqa: E402


class Missing(Exception):
    """A prerequisite is not available (exit 2)."""


def log(msg: str) -> None:
    print(msg, flush=True)


# ---- the tool under test ---------------------------------------------------------------
def regfs_command(override: str | None) -> tuple[list[str], dict[str, str] | None]:
    """How to run regfs: --regfs, else the console script, else `python -m regfs`."""
    env = None
    if override:
        cmd = shlex.split(override)
    elif regtools.which("regfs"):
        cmd = [str(regtools.which("regfs"))]
    else:
        cmd = [sys.executable, "-m", "regfs"]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (REPO_ROOT, os.environ.get("PYTHONPATH", "")) if p
        )
        probe = subprocess.run(
            [
                sys.executable,
                "-c",
                "import importlib.util, sys; "
                "sys.exit(0 if importlib.util.find_spec('regfs.__main__') else 3)",
            ],
            env=env,
            capture_output=True,
            text=True,
        )
        if probe.returncode != 0:
            why = (probe.stderr.strip().splitlines() or ["no module regfs.__main__"])[-1]
            raise Missing(
                f"regfs is not importable ({why}).\n"
                f"  needed: the `regfs` console script on PATH (pip install -e {REPO_ROOT}),\n"
                f"  or a regfs package with __main__ importable from {REPO_ROOT};\n"
                f"  or pass --regfs 'CMD' to say how to run it, or --reference-only."
            )
    probe = subprocess.run([*cmd, "--help"], env=env, capture_output=True, text=True)
    if probe.returncode != 0:
        tail = (probe.stderr or probe.stdout).strip()[-1500:]
        raise Missing(f"`{shlex.join(cmd)} --help` failed (exit {probe.returncode}):\n{tail}")
    return cmd, env


def regfs_plan(run: Run) -> set[str]:
    text = regtools.read_text(run.stdout)
    try:
        doc = json.loads(text)
        blobs = doc["blobs"]
        return {str(b["digest"]) for b in blobs}
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(
            f"regfs output is not the expected JSON ({e!r}); stdout starts "
            f"{text[:300]!r}; stderr ends {regtools.read_text(run.stderr)[-500:]!r}"
        ) from None


# ---- trees ------------------------------------------------------------------------------
def generator_fingerprint() -> str:
    h = hashlib.sha256()
    for name in ("gen_tree.py",):
        with open(os.path.join(HERE, name), "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:10]


def ensure_tree(
    workdir: str, repos: int, tags: int, seed: int, jobs: int, layer_kib: int = 0
) -> tuple[str, dict[str, Any]]:
    """Generate (or reuse) a tree; return (case dir, expectation)."""
    size = f"-k{layer_kib}" if layer_kib else ""
    case = os.path.join(workdir, f"tree-r{repos}-t{tags}-s{seed}{size}-{generator_fingerprint()}")
    root = os.path.join(case, "root")
    marker = os.path.join(case, "expect.json")
    if os.path.exists(marker):
        with open(marker) as f:
            expect = json.load(f)
        log(f"tree (cached) {root}: {gen_tree.summary_line(expect)}")
    else:
        os.makedirs(case, exist_ok=True)
        log(f"generating {repos}x{tags}{size} tree in {root} ...")
        expect = gen_tree.generate(
            root, repos, tags, seed, force=True, jobs=jobs, layer_kib=layer_kib
        )
        with open(marker + ".tmp", "w") as f:
            json.dump(expect, f)
        os.replace(marker + ".tmp", marker)  # written last: marks the tree complete
        log(f"generated: {gen_tree.summary_line(expect)}")
    regtools.write_config(os.path.join(case, "registry.yml"), root)
    return case, expect


def warm(root: str) -> None:
    """Bring the whole tree into the page cache, so no tool's first run pays for the disk."""
    t0 = time.perf_counter()
    n = size = 0
    for dirpath, _, files in os.walk(root):
        for fn in files:
            with open(os.path.join(dirpath, fn), "rb") as f:
                while chunk := f.read(1 << 20):
                    size += len(chunk)
            n += 1
    log(f"warm-up: read {n} files ({size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f}s")


# ---- GC comparison ------------------------------------------------------------------------
class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.a = args
        self.failures: list[str] = []
        self.regfs: tuple[list[str], dict[str, str] | None] | None = None
        self.results: dict[str, object] = {}

    def fail(self, msg: str) -> None:
        self.failures.append(msg)
        log(f"FAIL: {msg}")

    def run_regfs_gc(self, case: str, label: str) -> tuple[Run, set[str] | None]:
        assert self.regfs is not None
        cmd, env = self.regfs
        root = os.path.join(case, "root")
        run = regtools.run_measured(
            label,
            [*cmd, "gc", root, "--dry-run", "--json", "--min-age", "0"],
            os.path.join(case, "regfs-gc"),
            env=env,
        )
        plan = None
        try:
            plan = regfs_plan(run)
        except ValueError as e:
            self.fail(f"{label}: {e}")
        if run.rc != 0:
            self.fail(f"{label}: exit {run.rc}: {regtools.read_text(run.stderr)[-800:]}")
        return run, plan

    def run_ref_gc(self, case: str, label: str) -> tuple[Run, set[str] | None]:
        run, gc = regtools.reference_gc(
            os.path.join(case, "registry.yml"), os.path.join(case, "reference-gc"), label
        )
        if run.rc != 0:
            self.fail(f"{label}: exit {run.rc}: {regtools.read_text(run.stderr)[-800:]}")
            return run, None
        if gc.blobs is None or gc.blobs != gc.lines or gc.lines != len(gc.eligible):
            self.fail(
                f"{label}: summary says {gc.blobs} blobs but {gc.lines} lines, "
                f"{len(gc.eligible)} distinct"
            )
        return run, gc.eligible

    def compare(self, case: str, expect: dict[str, Any], pairs: int) -> dict[str, list[Run]]:
        runs: dict[str, list[Run]] = {"regfs": [], "reference": []}
        plans: dict[str, set[str]] = {}
        tools = ["reference"] if self.a.reference_only else ["regfs", "reference"]
        for k in range(self.a.warmup):
            for tool in tools:
                label = f"{tool}-warmup#{k + 1}"
                run, _ = (self.run_regfs_gc if tool == "regfs" else self.run_ref_gc)(case, label)
                log(f"  {label:<13} wall {run.wall:8.2f}s  (untimed)")
        for i in range(pairs):
            order = tools if i % 2 == 0 else tools[::-1]
            for tool in order:
                label = f"{tool}#{i + 1}"
                if tool == "regfs":
                    run, plan = self.run_regfs_gc(case, label)
                else:
                    run, plan = self.run_ref_gc(case, label)
                runs[tool].append(run)
                log(
                    f"  {label:<13} wall {run.wall:8.2f}s  cpu {run.cpu:8.2f}s  "
                    f"rss {run.maxrss_kb / 1024:8.1f} MB  rc {run.rc}  "
                    f"plan {len(plan) if plan is not None else '-'} blobs"
                )
                if plan is None:
                    continue
                if tool in plans and plans[tool] != plan:
                    self.fail(f"{label}: plan differs from the previous {tool} run")
                plans.setdefault(tool, plan)
        want = set(expect["gc_default_eligible"])
        for tool, plan in plans.items():
            if plan != want:
                log(
                    f"note: {tool} plan differs from the generator's expectation: "
                    f"{len(plan - want)} extra, {len(want - plan)} missing"
                )
        if "regfs" in plans and "reference" in plans:
            a, b = plans["regfs"], plans["reference"]
            if a != b:
                self.fail(
                    f"plans differ: regfs {len(a)} blobs, reference {len(b)}; "
                    f"only regfs: {sorted(a - b)[:5]}; only reference: "
                    f"{sorted(b - a)[:5]}"
                )
            else:
                log(f"plans agree: {len(a)} blobs eligible for deletion")
        elif not self.a.reference_only:
            self.fail("no complete pair of plans to compare")
        return runs


def med(runs: list[Run], attr: str) -> float:
    return float(statistics.median(float(getattr(r, attr)) for r in runs))


def table(title: str, groups: dict[str, list[Run]]) -> None:
    log(f"\n{title}")
    log(f"{'run':<18}{'wall s':>10}{'cpu s':>10}{'peak RSS MB':>14}{'rc':>5}")
    for runs in groups.values():
        for r in runs:
            log(f"{r.label:<18}{r.wall:>10.2f}{r.cpu:>10.2f}{r.maxrss_kb / 1024:>14.1f}{r.rc:>5}")
    for name, runs in groups.items():
        if runs:
            log(
                f"{name + ' median':<18}{med(runs, 'wall'):>10.2f}{med(runs, 'cpu'):>10.2f}"
                f"{max(r.maxrss_kb for r in runs) / 1024:>14.1f}"
            )


# ---- digest verification ------------------------------------------------------------------
def _verify_phase(run: Run) -> tuple[int, float] | None:
    """(bytes hashed, seconds) from `regfs check --json` output, when it reports them."""
    try:
        doc = json.loads(regtools.read_text(run.stdout))
        return int(doc["verified_bytes"]), float(doc["verify_seconds"])
    except (ValueError, KeyError, TypeError):
        return None


def blob_files(root: str) -> tuple[list[str], int]:
    base = os.path.join(root, "docker", "registry", "v2", "blobs")
    files, total = [], 0
    for dirpath, _, names in os.walk(base):
        if "data" in names:
            p = os.path.join(dirpath, "data")
            files.append(p)
            total += os.stat(p).st_size
    files.sort()
    return files, total


def sha256sum_two_streams(files: list[str], out_prefix: str, label: str) -> tuple[Run, int]:
    """Two `xargs -0 sha256sum` at once over alternate halves; return run and mismatches."""
    halves = [files[0::2], files[1::2]]
    env = dict(os.environ, LC_ALL="C")
    lists = []
    for k, half in enumerate(halves):
        lists.append(f"{out_prefix}.{k}.list")
        with open(lists[-1], "wb") as f:
            f.write(b"\0".join(os.fsencode(p) for p in half))
    procs = [
        regtools.spawn_measured(
            ["xargs", "-0", "-a", lst, "sha256sum", "--"], f"{out_prefix}.{k}", env
        )
        for k, lst in enumerate(lists)
    ]
    done = [regtools.finish_measured(label, p, f"{out_prefix}.{k}") for k, p in enumerate(procs)]
    runs = [r for r, _ in done]
    raw = [d for _, d in done]
    wall = max(d["end"] for d in raw) - min(d["start"] for d in raw)
    bad = 0
    for r in runs:
        with open(r.stdout, "rb") as f:
            for line in f:
                hx, _, path = line.rstrip(b"\n").partition(b"  ")
                if os.path.basename(os.path.dirname(path)) != hx:
                    bad += 1
    rc = next((r.rc for r in runs if r.rc), 0)
    return Run(
        label,
        rc,
        wall,
        sum(r.cpu for r in runs),
        max(r.maxrss_kb for r in runs),
        runs[0].stdout,
        runs[1].stdout,
    ), bad


def verify_case(b: Bench, case: str, title: str) -> dict[str, Any]:
    """`regfs check --verify-digests` against 2x sha256sum on one tree, --pairs times each."""
    a = b.a
    root = os.path.join(case, "root")
    res: dict[str, Any] = {"title": title}
    files, total = blob_files(root)
    mb = total / 1e6
    log(f"\ndigest verification on {title}: {len(files)} blob data files, {mb:.1f} MB")
    vr: dict[str, list[Run]] = {"regfs": [], "sha256sum": []}
    hashing: list[tuple[int, float]] = []  # regfs's own (bytes, seconds) of the hash phase
    tools = ["sha256sum"] if a.reference_only else ["regfs", "sha256sum"]
    if not a.reference_only:
        assert b.regfs is not None
        for k in range(a.warmup):
            label = f"regfs-warmup#{k + 1}"
            run = regtools.run_measured(
                label,
                [*b.regfs[0], "check", root, "--verify-digests", "--json"],
                os.path.join(case, "regfs-check"),
                env=b.regfs[1],
            )
            log(f"  {label:<13} wall {run.wall:8.2f}s  (untimed)")
    for i in range(a.pairs):
        for tool in tools if i % 2 == 0 else tools[::-1]:
            label = f"{tool}#{i + 1}"
            if tool == "regfs":
                assert b.regfs is not None
                cmd, env = b.regfs
                run = regtools.run_measured(
                    label,
                    [*cmd, "check", root, "--verify-digests", "--json"],
                    os.path.join(case, "regfs-check"),
                    env=env,
                )
                if run.rc != 0:
                    log(
                        f"  note: {label} exit {run.rc}: "
                        f"{regtools.read_text(run.stderr)[-300:].strip()}"
                    )
            else:
                run, bad = sha256sum_two_streams(files, os.path.join(case, "sha256sum"), label)
                if run.rc != 0 or bad:
                    b.fail(f"{label}: exit {run.rc}, {bad} digest mismatches")
            vr[tool].append(run)
            if tool == "regfs":
                phase = _verify_phase(run)
                if phase is not None:
                    hashing.append(phase)
                    log(
                        f"  {label:<13} hashing phase: {phase[0] / 1e6:.1f} MB in "
                        f"{phase[1]:.2f}s = {phase[0] / 1e6 / phase[1]:.1f} MB/s"
                    )
            log(
                f"  {label:<13} wall {run.wall:8.2f}s  {mb / run.wall:8.1f} MB/s  "
                f"{len(files) / run.wall:9.0f} files/s  cpu {run.cpu:7.2f}s"
            )
    table(f"digest verification on {title}", vr)
    res["runs"] = {k: [asdict(r) for r in v] for k, v in vr.items()}
    res["bytes"] = total
    res["files"] = len(files)
    for tool, rs in vr.items():
        if rs:
            log(f"{tool}: median {mb / med(rs, 'wall'):.1f} MB/s")
    if vr["regfs"] and vr["sha256sum"]:
        r = med(vr["sha256sum"], "wall") / med(vr["regfs"], "wall")
        log(f"throughput ratio regfs/sha256sum(2 streams): {r:.3f}  (whole command)")
        res["ratio"] = r
        if hashing:
            rates = sorted(n / t for n, t in hashing if t > 0)
            sha = total / med(vr["sha256sum"], "wall")
            hr = rates[len(rates) // 2] / sha
            log(
                f"hashing-phase throughput ratio regfs/sha256sum(2 streams): {hr:.3f}  "
                "(regfs's verify phase alone, after its full fsck scan)"
            )
            res["hash_phase_ratio"] = hr

    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repos", type=int, default=2000)
    ap.add_argument("--tags", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--pairs", type=int, default=3, help="runs of each tool (default 3)")
    ap.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="untimed runs of each tool before timing (default 1)",
    )
    ap.add_argument(
        "--scale-check",
        action="store_true",
        help="also measure regfs on a tree with 5x the repositories",
    )
    ap.add_argument(
        "--verify",
        action="store_true",
        help="also time `regfs check --verify-digests` against 2x sha256sum",
    )
    ap.add_argument(
        "--verify-repos",
        type=int,
        default=100,
        help="--verify also runs on a tree of this many repositories with layer-sized blobs "
        "(default 100)",
    )
    ap.add_argument("--verify-tags", type=int, default=5, help="its tags per repository")
    ap.add_argument(
        "--verify-layer-kib",
        type=int,
        default=2048,
        help="its average layer size in KiB (default 2048)",
    )
    ap.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "regfs-bench"))
    ap.add_argument(
        "--regfs",
        metavar="CMD",
        help="how to run regfs (default: `regfs` on PATH, else python -m regfs)",
    )
    ap.add_argument(
        "--reference-only",
        action="store_true",
        help="skip regfs (to test the harness and the reference side)",
    )
    ap.add_argument("--jobs", type=int, default=4, help="generator writer threads")
    ap.add_argument("--json-out", metavar="FILE", help="write all measurements as JSON")
    a = ap.parse_args(argv)
    if a.pairs < 1:
        ap.error("--pairs must be at least 1")

    b = Bench(a)
    try:
        if not regtools.which(regtools.REFERENCE):
            raise Missing(
                "needs `docker-registry` on PATH (Debian package docker-registry, "
                "distribution 2.8.2)"
            )
        if a.verify:
            for tool in ("sha256sum", "xargs"):
                if not regtools.which(tool):
                    raise Missing(f"--verify needs `{tool}` on PATH (coreutils/findutils)")
        if not a.reference_only:
            b.regfs = regfs_command(a.regfs)
            log(f"regfs: {shlex.join(b.regfs[0])}")
    except Missing as e:
        print(f"bench: {e}", file=sys.stderr)
        return 2

    os.makedirs(a.workdir, exist_ok=True)
    case, expect = ensure_tree(a.workdir, a.repos, a.tags, a.seed, a.jobs)
    root = os.path.join(case, "root")
    warm(root)
    log(f"\nGC dry-run, {a.pairs} pair(s), {a.repos}x{a.tags}:")
    runs = b.compare(case, expect, a.pairs)
    table(
        f"GC dry-run on {a.repos}x{a.tags} "
        f"({expect['counts']['blobs']} blobs, {expect['counts']['files']} files)",
        runs,
    )
    res: dict[str, object] = {
        "tree": expect["counts"],
        "gc": {k: [asdict(r) for r in v] for k, v in runs.items()},
    }
    if runs["regfs"] and runs["reference"]:
        per_pair = [r.wall / f.wall for r, f in zip(runs["regfs"], runs["reference"], strict=True)]
        ratio = statistics.median(per_pair)
        cpu_ratio = med(runs["regfs"], "cpu") / med(runs["reference"], "cpu")
        rss_ratio = max(r.maxrss_kb for r in runs["regfs"]) / max(
            r.maxrss_kb for r in runs["reference"]
        )
        log(
            f"median wall-time ratio regfs/reference: {ratio:.3f}  "
            f"(cpu {cpu_ratio:.3f}, peak RSS {rss_ratio:.3f})"
        )
        res["ratio"] = {"wall_median_per_pair": ratio, "cpu": cpu_ratio, "rss": rss_ratio}

    if a.scale_check:
        tools = ["reference"] if a.reference_only else ["regfs", "reference"]
        big_repos = a.repos * 5
        bcase, bexpect = ensure_tree(a.workdir, big_repos, a.tags, a.seed, a.jobs)
        warm(os.path.join(bcase, "root"))
        log(f"\nscale check: {' and '.join(tools)} on {big_repos}x{a.tags}:")
        big: dict[str, list[Run]] = {tool: [] for tool in tools}
        want = set(bexpect["gc_default_eligible"])
        for k in range(a.warmup):
            for tool in tools:
                label = f"{tool}-5x-warmup#{k + 1}"
                run, _ = (b.run_regfs_gc if tool == "regfs" else b.run_ref_gc)(bcase, label)
                log(f"  {label:<22} wall {run.wall:8.2f}s  (untimed)")
        for i in range(a.pairs):
            for tool in tools if i % 2 == 0 else tools[::-1]:
                label = f"{tool}-5x#{i + 1}"
                run, plan = (b.run_regfs_gc if tool == "regfs" else b.run_ref_gc)(bcase, label)
                big[tool].append(run)
                log(
                    f"  {label:<22} wall {run.wall:8.2f}s  cpu {run.cpu:8.2f}s  "
                    f"rss {run.maxrss_kb / 1024:8.1f} MB"
                )
                if plan is not None and plan != want:
                    b.fail(
                        f"{label}: plan differs from the generator's expectation "
                        f"({len(plan - want)} extra, {len(want - plan)} missing)"
                    )
        size_ratio = bexpect["counts"]["files"] / expect["counts"]["files"]
        scale: dict[str, Any] = {"files_ratio": size_ratio}
        for tool in tools:
            small, large = runs[tool], big[tool]
            t_ratio = med(large, "wall") / med(small, "wall")
            c_ratio = med(large, "cpu") / med(small, "cpu")
            m_ratio = max(r.maxrss_kb for r in large) / max(r.maxrss_kb for r in small)
            log(
                f"scale x{big_repos / a.repos:.0f} repos (x{size_ratio:.2f} files): {tool} wall "
                f"x{t_ratio:.2f}, cpu x{c_ratio:.2f}, peak RSS x{m_ratio:.2f}"
            )
            scale[tool] = {
                "wall_ratio": t_ratio,
                "cpu_ratio": c_ratio,
                "rss_ratio": m_ratio,
                "runs": [asdict(r) for r in large],
            }
        if len(tools) == 2:
            per_pair = [
                r.wall / f.wall for r, f in zip(big["regfs"], big["reference"], strict=True)
            ]
            scale["ratio"] = statistics.median(per_pair)
            log(
                f"median wall-time ratio regfs/reference on {big_repos}x{a.tags}: "
                f"{scale['ratio']:.3f}"
            )
        res["scale"] = scale

    if a.verify:
        res["verify"] = verify_case(b, case, f"the {a.repos}x{a.tags} tree")
        vcase, _ = ensure_tree(
            a.workdir, a.verify_repos, a.verify_tags, a.seed, a.jobs, a.verify_layer_kib
        )
        warm(os.path.join(vcase, "root"))
        res["verify_large_blobs"] = verify_case(
            b,
            vcase,
            f"{a.verify_repos}x{a.verify_tags} with ~{a.verify_layer_kib} KiB layers",
        )

    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump(res, f, indent=1)
    if b.failures:
        log(f"\n{len(b.failures)} failure(s):")
        for msg in b.failures:
            log(f"  {msg}")
        return 1
    log("\nOK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
