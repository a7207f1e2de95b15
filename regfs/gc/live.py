"""Evidence that a registry may be writing to the storage right now.

Three checks: unfinished uploads started within ``--min-age`` (from the plan); on Linux,
processes holding a file or working directory under the root, or a registry process whose
configuration names this root (from ``/proc``); and, with ``--registry-url``, a registry
that accepts an upload (a read-only registry answers 405).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterable


def _ancestors_of_self() -> set[int]:
    out = {os.getpid()}
    pid = os.getpid()
    for _ in range(64):
        try:
            with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            pid = int(fields[1])
        except (OSError, ValueError, IndexError):
            break
        if pid <= 1:
            break
        out.add(pid)
    return out


def _comm(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return "?"


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


_ROOTDIR_RE = re.compile(r"rootdirectory\"?\s*:\s*\"?([^\"\s,}]+)")


def _config_root(argv: list[str]) -> str | None:
    for arg in reversed(argv[1:]):
        if arg.startswith("-") or not os.path.isfile(arg):
            continue
        try:
            with open(arg, encoding="utf-8", errors="replace") as f:
                text = f.read(1 << 20)
        except OSError:
            return None
        try:
            d = json.loads(text)
            value = d["storage"]["filesystem"]["rootdirectory"]
            return str(value)
        except (ValueError, KeyError, TypeError):
            m = _ROOTDIR_RE.search(text)
            return m.group(1) if m else None
    return None


def process_holders(root: str, proc: str = "/proc") -> list[str]:
    """Processes (other than this one and its parents) using files under ``root``."""
    root = os.path.realpath(root)
    mine = _ancestors_of_self()
    out: list[str] = []
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return out
    for pid in pids:
        if int(pid) in mine:
            continue
        why = _holds(pid, root, proc)
        if why:
            out.append(f"pid {pid} ({_comm(pid)}) {why}")
    return out


def _holds(pid: str, root: str, proc: str) -> str | None:
    base = f"{proc}/{pid}"
    try:
        cwd = os.readlink(f"{base}/cwd")
        if _under(cwd, root):
            return f"has its working directory in {cwd}"
    except OSError:
        pass
    try:
        fds = os.listdir(f"{base}/fd")
    except OSError:
        fds = []
    for fd in fds:
        try:
            target = os.readlink(f"{base}/fd/{fd}")
        except OSError:
            continue
        if _under(target, root):
            return f"has {target} open"
    try:
        with open(f"{base}/cmdline", "rb") as f:
            argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return None
    if argv and "registry" in os.path.basename(argv[0]) and "serve" in argv:
        cfg_root = _config_root(argv)
        if cfg_root:
            served = os.path.realpath(cfg_root)
            if _under(served, root) or _under(root, served):
                return f"is a registry serving {cfg_root}"
    return None


def probe_registry(url: str, repositories: Iterable[str], timeout: float = 10.0) -> str | None:
    """None when the registry at ``url`` refuses uploads with 405 (read-only), else why not."""
    import urllib.error  # here: the HTTP client costs 20 ms of every run's start otherwise
    import urllib.request

    repo = next(iter(repositories), "regfs-probe")
    target = f"{url.rstrip('/')}/v2/{repo}/blobs/uploads/"
    req = urllib.request.Request(target, data=b"", method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status = resp.status
            location = resp.headers.get("Location")
    except urllib.error.HTTPError as exc:
        if exc.code == 405:
            return None
        return f"{target} answered {exc.code}, not 405: the registry is not in read-only mode"
    except (urllib.error.URLError, OSError) as exc:
        return f"cannot reach {target}: {exc}"
    if location:  # cancel the upload we just started (2.8.2 keeps its empty folder)
        loc = location if "://" in location else url.rstrip("/") + location
        with contextlib.suppress(urllib.error.URLError, OSError):
            urllib.request.urlopen(urllib.request.Request(loc, method="DELETE"), timeout=timeout)
    return f"{target} accepted an upload ({status}): the registry is writable"
