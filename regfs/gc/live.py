"""The live-registry guard: can anything write to ROOT while gc deletes?

It looks at, and explains in one line each:

* unfinished uploads started within ``--min-age`` (from the plan): a push in progress;
* on Linux, every ``registry``/``docker-registry`` ``serve CONFIG`` process on this host (in a
  container too): which storage it serves and whether it is read-only, worked out the way the
  registry does (:mod:`regfs.gc.regconfig`: CONFIG parsed as YAML, resolved against the
  process's own working directory and root, ``REGISTRY_*`` overrides from its environment),
  the folder compared with ROOT by device and inode. A CONFIG changed after the process
  started, or one that cannot be read, cannot vouch for it: then only ``--registry-url``
  proving read-only lets the run proceed;
* on Linux, every other process with a file under ROOT open for writing (refused); readers and
  working directories are reported, not refused;
* with ``--registry-url``, the registry's own answer (:mod:`regfs.gc.probe`).

What it cannot see: a registry on another host sharing the storage (NFS, a cluster volume);
only ``--registry-url`` detects that one.

ROOT in a bucket (``s3://BUCKET/PREFIX/docker/registry/v2``, :class:`BucketRoot`): a registry
process serves ROOT when its config (with its environment) names the ``s3`` driver, the same
bucket and the same ``rootdirectory`` (the endpoint is not compared: a registry on the same
bucket name elsewhere is refused too, the safe side). Open files say nothing about a bucket:
that part is not looked at.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from regfs.gc import procs
from regfs.gc.bucketroot import BucketRoot, served_bucket
from regfs.gc.probe import ProbeResult, probe

if TYPE_CHECKING:
    from regfs.gc.regconfig import Settings

__all__ = ["BucketRoot", "Reason", "Verdict", "guard", "inspect_registry"]

V2_BELOW_ROOT = "docker/registry/v2"
CONFIG_LIMIT = 4 << 20


@dataclass(frozen=True, slots=True)
class Reason:
    """One refusal, or one thing the guard looked at (a note), as one line plus its facts."""

    kind: str
    message: str
    pid: int | None = None
    path: str | None = None
    url: str | None = None
    source: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """``kind`` and ``message``, and each of ``pid``, ``path``, ``url``, ``source`` that is
        set: what :func:`regfs.render.json_gc.refusal_dict` turns into a JSON refusal."""
        out: dict[str, Any] = {"kind": self.kind, "message": self.message}
        for key in ("pid", "path", "url", "source"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


@dataclass(slots=True)
class Verdict:
    """What :func:`guard` concluded: any ``refusals`` and a real run does not go on (exit 3).

    ``notes`` are what the guard looked at and let pass (a read-only registry, one serving
    something else, not Linux, ...), for the report.
    """

    refusals: list[Reason] = field(default_factory=list)
    notes: list[Reason] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Served:
    """What one registry process serves, as far as its config and environment tell."""

    pid: int
    comm: str
    config: str | None
    serves_root: bool
    readonly: bool
    how: str  # where the root and read-only facts came from
    what: str  # the storage it serves, for the message
    doubt: str | None = None  # why its config cannot vouch for it


def registry_config_arg(p: procs.Proc) -> str | None:
    """CONFIG of a ``registry serve CONFIG`` process ("" when only the environment names it),
    None when the process is not a registry server."""
    if not p.argv or "registry" not in os.path.basename(p.argv[0]):
        return None
    args = [a for a in p.argv[1:] if not a.startswith("-")]
    if not args or args[0] != "serve":
        return None
    return args[1] if len(args) > 1 else ""


class _Root:
    """ROOT's identity: the rootdirectory and v2 folders by device and inode."""

    def __init__(self, v2: str) -> None:
        st = os.stat(v2)
        self.v2 = (st.st_dev, st.st_ino)
        parent = os.path.normpath(os.path.join(v2, "..", "..", ".."))
        if os.path.abspath(v2).endswith("/" + V2_BELOW_ROOT):
            st = os.stat(parent)
            self.rootdir = (st.st_dev, st.st_ino)
        else:
            self.rootdir = self.v2
        devices = {self.v2[0], self.rootdir[0]}
        for sub in ("blobs", "repositories"):
            with contextlib.suppress(OSError):
                devices.add(os.stat(os.path.join(v2, sub)).st_dev)
        self.devices = devices

    def contains(self, path: str) -> bool:
        """Whether an openable ``path`` is ROOT's rootdirectory or v2, or inside either,
        following ``..`` physically (the path may run through ``/proc/PID/root``)."""
        try:
            st = os.stat(path)
            if not stat.S_ISDIR(st.st_mode):
                path = os.path.dirname(path)
                st = os.stat(path)
        except OSError:
            return False
        seen = set()
        cur = path
        for _ in range(128):
            ident = (st.st_dev, st.st_ino)
            if ident in (self.v2, self.rootdir):
                return True
            if ident in seen:
                return False
            seen.add(ident)
            cur = cur + "/.."
            try:
                st = os.stat(cur)
            except OSError:
                return False
        return False


def inspect_registry(p: procs.Proc, config_arg: str, root: _Root | BucketRoot, proc: str) -> Served:
    """Which storage registry process ``p`` serves, and whether it is read-only."""
    # Here: the YAML parser costs 25 ms of every run's start otherwise.
    from regfs.gc.regconfig import ConfigError, resolve

    try:
        env = procs.environ(p.pid, proc)
    except OSError as exc:
        return _doubt(p, None, f"its environment is unreadable ({exc.strerror})")
    config = config_arg or env.get("REGISTRY_CONFIGURATION_PATH", "")
    if not config:
        return _doubt(p, None, "names no CONFIG")
    try:
        path = procs.resolve_in(p.pid, config, proc)
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            text = f.read(CONFIG_LIMIT).decode("utf-8", "replace")
    except OSError as exc:
        return _doubt(p, config, f"config {config} is unreadable ({exc.strerror or exc})")
    started = procs.start_time(p)
    changed = max(st.st_mtime, st.st_ctime)
    # The start time is known to one clock tick (and file times lag by up to one tick).
    if changed > started + 2 * procs.clock_tick():
        return _doubt(
            p, config, f"config {config} changed after the process started, so cannot vouch for it"
        )
    try:
        s = resolve(text, env)
    except ConfigError as exc:
        return _doubt(p, config, f"config {config}: {exc}")
    if isinstance(root, BucketRoot):
        return _serves_bucket(p, config, text, env, s, root)
    if s.driver != "filesystem" or s.rootdirectory is None:
        what = f"{s.driver} storage"
        return Served(p.pid, p.comm, config, False, s.readonly, f"config {config}", what)
    root_how = f"config {config}" if s.root_source in ("config", "default") else s.root_source
    try:
        served = procs.resolve_in(p.pid, os.path.join(s.rootdirectory, V2_BELOW_ROOT), proc)
        st_v2 = os.stat(served)
        same = (st_v2.st_dev, st_v2.st_ino) == root.v2
    except OSError:
        same = False
    if not same:
        try:
            same = root.contains(procs.resolve_in(p.pid, s.rootdirectory, proc))
        except OSError:
            same = False
    ro_how = f"config {config}" if s.readonly_source in ("config", "default") else s.readonly_source
    if s.proxy:
        how = f"{root_how}; proxy.remoteurl is set: a pull-through cache writes on every pull"
    elif not s.readonly:
        how = f"{root_how}; storage.maintenance.readonly.enabled is not true"
    elif ro_how != root_how:
        how = f"{root_how}; read-only from {ro_how}"
    else:
        how = root_how
    return Served(p.pid, p.comm, config, same, s.readonly and not s.proxy, how, s.rootdirectory)


def _serves_bucket(
    p: procs.Proc, config: str, text: str, env: dict[str, str], s: Settings, root: BucketRoot
) -> Served:
    """What a registry serves, compared with ROOT in a bucket: same bucket, same root."""
    from regfs.gc.regconfig import ConfigError

    if s.driver != "s3":
        what = s.rootdirectory if s.driver == "filesystem" else f"{s.driver} storage"
        return Served(p.pid, p.comm, config, False, s.readonly, f"config {config}", what or "")
    try:
        theirs, where = served_bucket(text, env)
    except ConfigError as exc:
        return _doubt(p, config, f"config {config}: {exc}")
    how = f"config {config}: {theirs.describe()}{where}"
    if s.proxy:
        how += "; proxy.remoteurl is set: a pull-through cache writes on every pull"
    elif not s.readonly:
        how += "; storage.maintenance.readonly.enabled is not true"
    return Served(
        p.pid,
        p.comm,
        config,
        theirs == root,
        s.readonly and not s.proxy,
        how,
        theirs.describe() + where,
    )


def _still_running(p: procs.Proc, proc: str) -> bool:
    """Whether the process still runs (the same one: same start time; not a zombie)."""
    now = procs.read_proc(p.pid, proc)
    return now is not None and now.start_ticks == p.start_ticks and now.state not in ("Z", "X")


def _doubt(p: procs.Proc, config: str | None, why: str) -> Served:
    return Served(p.pid, p.comm, config, False, False, "", "", doubt=why)


def _who(pid: int, comm: str) -> str:
    return f"pid {pid} ({comm})"


def guard(
    v2: str,
    *,
    young_uploads: list[str],
    registry_url: str | None,
    proc: str = "/proc",
    linux: bool | None = None,
) -> Verdict:
    """Every reason to believe something may write to ROOT now, and what was looked at.

    ``registry_url`` must have been checked by :func:`regfs.gc.probe.check_url`.
    """
    v = Verdict()
    for path in young_uploads:
        v.refusals.append(
            Reason("young_upload", f"unfinished upload started within --min-age: {path}", path=path)
        )
    probed: ProbeResult | None = probe(registry_url) if registry_url else None
    if probed is not None:
        if probed.readonly:
            v.notes.append(Reason("probe", probed.message, url=registry_url))
        else:
            kind = "probe" if probed.reachable else "probe_unreachable"
            v.refusals.append(Reason(kind, probed.message, url=registry_url))
    proved = probed is not None and probed.readonly
    linux = sys.platform.startswith("linux") if linux is None else linux
    if not linux:
        v.notes.append(Reason("not_linux", "not Linux: processes on this host were not checked"))
        return v
    bucket = BucketRoot.parse(v2)
    root: _Root | BucketRoot = bucket if bucket is not None else _Root(v2)
    everyone = procs.processes(proc)
    mine = procs.kin_of_self(everyone) if proc == "/proc" else set()
    registries: set[int] = set()
    serving = 0
    for p in everyone:
        if p.pid in mine:
            continue
        cfg = registry_config_arg(p)
        if cfg is None:
            continue
        s = inspect_registry(p, cfg, root, proc)
        if s.doubt is not None and not _still_running(p, proc):
            continue  # it exited while being looked at: nothing of it can write any more
        registries.add(p.pid)
        who = _who(p.pid, p.comm)
        if s.doubt is not None:
            serving += 1
            if proved:
                v.notes.append(
                    Reason(
                        "registry_unverified",
                        f"{who}: {s.doubt}; --registry-url proved read-only",
                        pid=p.pid,
                        path=s.config,
                    )
                )
            else:
                v.refusals.append(
                    Reason(
                        "registry_unverified",
                        f"{who}: {s.doubt}; cannot tell whether it serves ROOT writable: "
                        "give --registry-url of that registry (or stop it)",
                        pid=p.pid,
                        path=s.config,
                    )
                )
        elif not s.serves_root:
            msg = f"{who} serves {s.what}, not ROOT"
            v.notes.append(Reason("registry_other", msg, pid=p.pid, path=s.config))
        elif s.readonly:
            serving += 1
            v.notes.append(
                Reason(
                    "registry_readonly",
                    f"{who} serves ROOT read-only ({s.how})",
                    pid=p.pid,
                    path=s.config,
                    source=s.how,
                )
            )
        else:
            serving += 1
            v.refusals.append(
                Reason(
                    "registry_writable",
                    f"{who} serves ROOT writable ({s.how}); set "
                    "storage.maintenance.readonly.enabled: true in its config and restart it, "
                    "or stop it",
                    pid=p.pid,
                    path=s.config,
                    source=s.how,
                )
            )
    if not serving:
        v.notes.append(
            Reason(
                "no_registry",
                "no registry process on this host serves ROOT; a registry on another host "
                "sharing the storage is only detected with --registry-url",
            )
        )
    if isinstance(root, _Root):
        _other_processes(v, everyone, mine, registries, root, proc)
    return v


def _other_processes(
    v: Verdict,
    everyone: list[procs.Proc],
    mine: set[int],
    registries: set[int],
    root: _Root,
    proc: str,
) -> None:
    """Writers under ROOT refuse; readers and working directories are noted."""
    for p in everyone:
        if p.pid in mine:
            continue
        writing: list[str] = []
        reading: list[str] = []
        cwd: str | None = None
        for use in procs.uses(p.pid, root.devices, proc):
            if not _inside(root, p.pid, use.path, proc):
                continue
            if use.mode == "w":
                writing.append(use.path)
            elif use.mode == "r":
                reading.append(use.path)
            else:
                cwd = use.path
        who = _who(p.pid, p.comm)
        if writing:
            more = f" (and {len(writing) - 1} more)" if len(writing) > 1 else ""
            v.refusals.append(
                Reason(
                    "writer",
                    f"{who} has {writing[0]}{more} open for writing",
                    pid=p.pid,
                    path=writing[0],
                )
            )
        if p.pid in registries:
            continue  # what a registry reads is said by its own line
        if reading:
            more = f" (and {len(reading) - 1} more)" if len(reading) > 1 else ""
            v.notes.append(
                Reason(
                    "reader",
                    f"{who} reads {reading[0]}{more}: a reader, not refused",
                    pid=p.pid,
                    path=reading[0],
                )
            )
        if cwd is not None:
            v.notes.append(
                Reason(
                    "cwd",
                    f"{who} has its working directory in {cwd}: not a writer, not refused",
                    pid=p.pid,
                    path=cwd,
                )
            )


def _inside(root: _Root, pid: int, path: str, proc: str) -> bool:
    if not path.startswith("/"):
        return False
    return root.contains(path) or root.contains(f"{proc}/{pid}/root{path}")
