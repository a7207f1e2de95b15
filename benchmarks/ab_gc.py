"""Two regfs checkouts' ``gc --dry-run`` on one tree, alternating (ABBA), with each run's wall
time and ``wait4`` rusage (user, system CPU, peak RSS): whether a change moved gc's cost.

    python benchmarks/ab_gc.py TREE OLD_CHECKOUT NEW_CHECKOUT [PAIRS]

TREE is a registry root (e.g. one ``gen_tree.py`` wrote); each checkout is a folder holding a
``regfs`` package (``git archive REV | tar -x -C DIR``). One untimed run of each first, then
PAIRS pairs (default 12) in ABBA order; prints each side's medians and the median of the
per-pair NEW/OLD ratios. Standard library only; runs ``python -m regfs`` with PYTHONPATH set.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

KEYS = ("wall", "user", "sys", "rss_mb")


def run(tree: str, checkout: str) -> dict[str, float]:
    """One ``regfs gc TREE --dry-run --min-age 0 --json --skip-live-check``, output discarded."""
    argv = [sys.executable, "-m", "regfs", "gc", tree, "--dry-run", "--min-age", "0"]
    argv += ["--json", "--skip-live-check"]
    env = dict(os.environ, PYTHONPATH=checkout)
    quiet = [
        (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0),
    ]
    start = time.monotonic()
    pid = os.posix_spawn(sys.executable, argv, env, file_actions=quiet)
    _, status, usage = os.wait4(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"ab_gc: regfs from {checkout} exited {status}")
    return {
        "wall": time.monotonic() - start,
        "user": usage.ru_utime,
        "sys": usage.ru_stime,
        "rss_mb": usage.ru_maxrss / 1024,
    }


def main() -> None:
    """Parse the arguments, run the pairs, print the medians and ratios."""
    if len(sys.argv) not in (4, 5):
        raise SystemExit(__doc__)
    tree, old, new = sys.argv[1:4]
    pairs = int(sys.argv[4]) if len(sys.argv) == 5 else 12
    runs: dict[str, list[dict[str, float]]] = {old: [], new: []}
    for side in (old, new):
        run(tree, side)
    for i in range(pairs):
        for side in (old, new) if i % 2 == 0 else (new, old):
            runs[side].append(run(tree, side))
    for side, rs in runs.items():
        medians = {k: round(statistics.median(r[k] for r in rs), 3) for k in KEYS}
        print(f"{side}: {medians}")
    for k in KEYS:
        ratio = statistics.median(b[k] / a[k] for a, b in zip(runs[old], runs[new], strict=True))
        print(f"{k}: median per-pair ratio new/old = {ratio:.3f}")
    print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
