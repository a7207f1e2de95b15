"""How much regfs does at once, decided once (by the CLI, or a script) and passed down.

A :class:`Tuning` says how many processes share CPU-bound work (the local scan's shards, the
digest verification's hashing: small system calls and parsing, which threads cannot overlap
under the GIL), how many threads wait on an I/O-bound backend at once (S3 requests), and how
work is cut into tasks. :meth:`Tuning.for_machine` sizes it from the CPUs this process may
use (:mod:`regfs.parallel.machine`: affinity mask and cgroup quota); ``--jobs N`` /
``REGFS_JOBS`` override the process count, and ``1`` means never fork.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from regfs.parallel.machine import Reader, read_text, usable_cpus

# Threads for an I/O-bound backend: the wait is network latency, not CPU, so the count does
# not follow the cores (the S3 listing measured in benchmarks/README.md used 16).
IO_THREADS = 16


@dataclass(frozen=True, slots=True)
class Tuning:
    """How much runs at once, and how work is cut into tasks.

    Attributes:
        processes: processes for CPU-bound work, this one included (1: never fork).
        threads: threads for an I/O-bound backend (S3 requests); never used to fork.
        scan_min_tasks: below this many repositories plus blob prefixes a scan is not
            sharded (forking costs more than it saves).
        scan_tasks_per_process: scan tasks per process (small enough to balance the load).
        scan_min_repos: repositories per scan task at least (each result is worth a message).
        scan_prefixes: blob prefixes per scan task.
        hash_min_blobs: the digest verification forks from this many blobs...
        hash_min_bytes: ...or this many bytes.
        hash_chunk_files: a hashing task closes at this many files...
        hash_chunk_bytes: ...or this many bytes.
    """

    processes: int = 1
    threads: int = IO_THREADS
    scan_min_tasks: int = 64
    scan_tasks_per_process: int = 16
    scan_min_repos: int = 8
    scan_prefixes: int = 16
    hash_min_blobs: int = 256
    hash_min_bytes: int = 64 << 20
    hash_chunk_files: int = 64
    hash_chunk_bytes: int = 16 << 20

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"Tuning.{f.name} must be a positive integer, not {value!r}")

    @classmethod
    def for_machine(
        cls, jobs: int | None = None, *, read: Reader = read_text, affinity: int | None = None
    ) -> Tuning:
        """One process per CPU this process may use (affinity mask, capped by the cgroup's
        CPU quota), or ``jobs`` when given.

        Args:
            jobs: the process count asked for (``--jobs``); 1 means never fork.
            read: how system files are read (tests describe a machine with it).
            affinity: the affinity mask's CPU count (default: this process's).

        Raises:
            ValueError: ``jobs`` is not a positive integer.
        """
        if jobs is not None:
            return cls(processes=jobs)
        return cls(processes=usable_cpus(read, affinity))

    def with_processes(self, processes: int) -> Tuning:
        """The same tuning with another process count."""
        return dataclasses.replace(self, processes=processes)


# Everything in this process: what a library call gets when its caller passes no tuning.
SERIAL = Tuning()
