"""Errors that end a command, each with the exit code the CLI maps it to.

Exit codes (documented in the README and in ``regfs --help``):

* 0: success, nothing wrong found.
* 1: the command ran and found problems (dangling references, corrupt data, ...).
* 2: bad input: unusable ROOT, malformed argument, unknown target, refused confirmation.
* 3: refused for safety: graph incomplete (fail closed), live registry, lock held.
* 4: a deletion step failed part-way (permission denied, disk full); the journal says where.
* 130: interrupted (Ctrl-C).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_PARTIAL = 4
EXIT_INTERRUPTED = 130  # as a shell reports a command ended by Ctrl-C (128 + SIGINT)


class RegfsError(Exception):
    """Base of every error regfs raises on purpose; carries the exit code."""

    exit_code: int = EXIT_USAGE

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def __str__(self) -> str:
        if self.path is not None:
            return f"{self.path}: {self.message}"
        return self.message


class RootError(RegfsError):
    """ROOT is missing, not a folder, unreadable, or not a registry storage root."""

    exit_code = EXIT_USAGE


class UsageError(RegfsError):
    """A malformed argument, an unknown target, or a glob matching nothing."""

    exit_code = EXIT_USAGE


class RefusedError(RegfsError):
    """An operation that would be unsafe now: incomplete graph, live registry, lock held."""

    exit_code = EXIT_REFUSED

    def __init__(self, message: str, *, path: str | None = None, reasons: list[str] | None = None):
        super().__init__(message, path=path)
        self.reasons = reasons or []


class PartialFailure(RegfsError):
    """A deletion run stopped part-way because a step failed."""

    exit_code = EXIT_PARTIAL
