"""Which storage each registry process on this host serves, and whether it is read-only:
worked out the way the registry does (:mod:`regfs.gc.regconfig`: CONFIG parsed as YAML,
resolved against the process's own working directory and root, ``REGISTRY_*`` overrides from
its environment), a folder compared with ROOT by device and inode, a bucket by name and root.
A CONFIG changed after the process started, or one that cannot be read, cannot vouch for it
(``Served.doubt``). Read by the live-registry guard (:mod:`regfs.gc.live`)."""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING

from regfs.gc import procs
from regfs.gc.bucketroot import BucketRoot, served_bucket

if TYPE_CHECKING:
    from regfs.gc.regconfig import Settings

V2_BELOW_ROOT = "docker/registry/v2"
CONFIG_LIMIT = 4 << 20


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


class RootId:
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


def inspect_registry(
    p: procs.Proc, config_arg: str, root: RootId | BucketRoot, proc: str
) -> Served:
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


def still_running(p: procs.Proc, proc: str) -> bool:
    """Whether the process still runs (the same one: same start time; not a zombie)."""
    now = procs.read_proc(p.pid, proc)
    return now is not None and now.start_ticks == p.start_ticks and now.state not in ("Z", "X")


def _doubt(p: procs.Proc, config: str | None, why: str) -> Served:
    return Served(p.pid, p.comm, config, False, False, "", "", doubt=why)
