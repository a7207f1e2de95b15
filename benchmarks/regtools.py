"""Helpers shared by the benchmark scripts: the reference registry and measured runs.

Standard library only. Nothing here talks to anything but 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

REFERENCE = "docker-registry"

# What `docker-registry garbage-collect --dry-run` (2.8.2) prints, all on stdout:
#   <repo>
#   <repo>: marking manifest sha256:<hex>␠        (note the trailing space)
#   <repo>: marking blob sha256:<hex>
#   (blank line)
#   N blobs marked, M blobs and K manifests eligible for deletion
#   blob eligible for deletion: sha256:<hex>      (one per blob, in map order)
ELIGIBLE_RE = re.compile(r"^blob eligible for deletion: (sha256:[0-9a-f]{64})\s*$", re.M)
SUMMARY_RE = re.compile(
    r"^(\d+) blobs marked, (\d+) blobs and (\d+) manifests eligible for deletion\s*$", re.M
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(path: str, rootdir: str, port: int | None = None) -> str:
    """A registry config (JSON is YAML) for ROOTDIR; port only matters for `serve`."""
    cfg = {
        "version": "0.1",
        "log": {"level": "error", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": os.path.abspath(rootdir)},
            "delete": {"enabled": True},
            "maintenance": {
                "uploadpurging": {
                    "enabled": False,
                    "age": "168h",
                    "interval": "24h",
                    "dryrun": False,
                }
            },
        },
        "http": {"addr": f"127.0.0.1:{port or free_port()}"},
    }
    with open(path, "w") as f:
        json.dump(cfg, f, indent=1)
        f.write("\n")
    return path


def config_port(path: str) -> int:
    with open(path) as f:
        return int(json.load(f)["http"]["addr"].rsplit(":", 1)[1])


@dataclass
class GCResult:
    eligible: set[str]
    lines: int  # number of "blob eligible" lines (duplicates included)
    marked: int | None
    blobs: int | None
    manifests: int | None


def parse_gc_output(text: str) -> GCResult:
    found = ELIGIBLE_RE.findall(text)
    m = SUMMARY_RE.search(text)
    nums = [int(x) for x in m.groups()] if m else [None, None, None]
    return GCResult(set(found), len(found), nums[0], nums[1], nums[2])


@contextlib.contextmanager
def serve(config: str, timeout: float = 20.0) -> Iterator[str]:
    """Run `docker-registry serve CONFIG` on 127.0.0.1; yield its base URL."""
    port = config_port(config)
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [REFERENCE, "serve", config], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RuntimeError(f"registry exited with {proc.returncode}: {err[-2000:]}")
            try:
                with urllib.request.urlopen(base + "/v2/", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("registry did not answer GET /v2/ in time")
            time.sleep(0.1)
        yield base
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr:
            proc.stderr.close()


@dataclass
class Run:
    label: str
    rc: int
    wall: float  # seconds
    cpu: float  # user + sys seconds of the command and its reaped descendants
    maxrss_kb: int  # peak RSS of the largest process in the command's tree
    stdout: str  # path of captured stdout
    stderr: str  # path of captured stderr
    user: float = 0.0  # user CPU seconds (part of cpu)
    sys: float = 0.0  # system CPU seconds (part of cpu)


# Measured commands are started by this tiny launcher, not by the benchmark process
# itself: Linux keeps, in a child's ru_maxrss, the high-water mark of the memory it had
# before exec, and a child spawned from a big Python process shares that memory until
# then. Spawned from the ~10 MB launcher instead, the floor is the launcher's size.
_LAUNCHER = r"""
import json, os, sys, time
res, cmd = sys.argv[1], sys.argv[2:]
start = time.time(); t0 = time.perf_counter()
try:
    pid = os.posix_spawnp(cmd[0], cmd, os.environ)
except OSError as e:
    print(f"cannot run {cmd[0]}: {e}", file=sys.stderr)
    rc, user, system, rss = 127, 0.0, 0.0, 0
else:
    _, status, ru = os.wait4(pid, 0)
    rc, user, system, rss = (os.waitstatus_to_exitcode(status), ru.ru_utime, ru.ru_stime,
                             ru.ru_maxrss)
wall = time.perf_counter() - t0
with open(res, "w") as f:
    json.dump({"rc": rc, "wall": wall, "cpu": user + system, "user": user, "sys": system,
               "maxrss_kb": rss, "start": start, "end": start + wall}, f)
"""


def spawn_measured(
    cmd: Sequence[str], out_prefix: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start CMD under the launcher; stdout/stderr go to OUT_PREFIX.out/.err."""
    with open(out_prefix + ".out", "wb") as fo, open(out_prefix + ".err", "wb") as fe:
        return subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _LAUNCHER, out_prefix + ".res", *cmd],
            stdin=subprocess.DEVNULL,
            stdout=fo,
            stderr=fe,
            env=env,
        )


def finish_measured(
    label: str, proc: subprocess.Popen[bytes], out_prefix: str
) -> tuple[Run, dict[str, float]]:
    proc.wait()
    try:
        with open(out_prefix + ".res") as f:
            r = json.load(f)
        os.unlink(out_prefix + ".res")
    except (OSError, ValueError):
        r = {
            "rc": proc.returncode or 127,
            "wall": 0.0,
            "cpu": 0.0,
            "maxrss_kb": 0,
            "start": 0.0,
            "end": 0.0,
        }
    return (
        Run(
            label,
            int(r["rc"]),
            float(r["wall"]),
            float(r["cpu"]),
            int(r["maxrss_kb"]),
            out_prefix + ".out",
            out_prefix + ".err",
            float(r.get("user", 0.0)),
            float(r.get("sys", 0.0)),
        ),
        r,
    )


def run_measured(
    label: str, cmd: Sequence[str], out_prefix: str, env: dict[str, str] | None = None
) -> Run:
    """Run CMD to completion with output to files; wall, CPU and peak RSS from wait4."""
    proc = spawn_measured(cmd, out_prefix, env)
    return finish_measured(label, proc, out_prefix)[0]


def read_text(path: str) -> str:
    with open(path, "rb") as f:
        return f.read().decode(errors="replace")


def reference_gc(config: str, out_prefix: str, label: str = "reference") -> tuple[Run, GCResult]:
    run = run_measured(label, [REFERENCE, "garbage-collect", "--dry-run", config], out_prefix)
    text = read_text(run.stdout) + "\n" + read_text(run.stderr)
    return run, parse_gc_output(text)


def which(name: str) -> str | None:
    return shutil.which(name)
