"""The buffer a scan task records its findings and empty folders in (plain data, no I/O)."""

from __future__ import annotations

from regfs.model.findings import Finding, Kind


class Out:
    """Per-task result buffer (findings and empty folders), merged by the main process."""

    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self.empty: list[str] = []

    def add(
        self,
        kind: Kind,
        path: str,
        message: str,
        *,
        digest: str | None = None,
        repo: str | None = None,
        blocks: bool = False,
    ) -> None:
        """Record one finding."""
        self.findings.append(Finding(kind, path, message, digest, repo, blocks))
