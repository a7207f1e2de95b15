"""The live-registry guard: can anything write to ROOT while gc deletes?

It looks at, and explains in one line each:

* unfinished uploads started within ``--min-age`` (from the plan): a push in progress;
* on Linux, every ``registry``/``docker-registry`` ``serve CONFIG`` process on this host (in a
  container too): which storage it serves and whether it is read-only
  (:mod:`regfs.gc.registries`, worked out the way the registry does), the folder compared
  with ROOT by device and inode. A CONFIG changed after the process
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

import sys
from dataclasses import dataclass, field
from typing import Any

from regfs.gc import procs
from regfs.gc.bucketroot import BucketRoot
from regfs.gc.probe import ProbeResult, probe
from regfs.gc.registries import RootId, inspect_registry, registry_config_arg, still_running

__all__ = ["BucketRoot", "Reason", "Verdict", "guard", "inspect_registry"]


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
    root: RootId | BucketRoot = bucket if bucket is not None else RootId(v2)
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
        if s.doubt is not None and not still_running(p, proc):
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
    if isinstance(root, RootId):
        _other_processes(v, everyone, mine, registries, root, proc)
    return v


def _other_processes(
    v: Verdict,
    everyone: list[procs.Proc],
    mine: set[int],
    registries: set[int],
    root: RootId,
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


def _inside(root: RootId, pid: int, path: str, proc: str) -> bool:
    if not path.startswith("/"):
        return False
    return root.contains(path) or root.contains(f"{proc}/{pid}/root{path}")
