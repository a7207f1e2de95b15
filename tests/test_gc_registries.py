"""regfs.gc.registries: which storage a registry process serves (the parts that need no
running registry; tests/test_gc_live.py runs the real one)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from regfs.gc import procs
from regfs.gc.registries import RootId, inspect_registry, registry_config_arg, still_running


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ("/usr/bin/docker-registry", "serve", "/etc/docker/registry/config.yml"),
            "/etc/docker/registry/config.yml",
        ),
        (("registry", "serve", "config.yml"), "config.yml"),
        (("registry", "--verbose", "serve"), ""),  # the environment names the config
        (("/bin/registry", "garbage-collect", "c.yml"), None),
        (("/bin/registry",), None),
        (("/usr/bin/python3", "serve", "c.yml"), None),
        ((), None),
    ],
)
def test_registry_config_arg(argv: tuple[str, ...], expected: str | None) -> None:
    p = procs.Proc(1, 0, "x", argv, 0)
    assert registry_config_arg(p) == expected


def test_root_id_contains_rootdirectory_and_v2_by_identity(tmp_path: Path) -> None:
    v2 = tmp_path / "reg" / "docker" / "registry" / "v2"
    (v2 / "blobs").mkdir(parents=True)
    root = RootId(str(v2))
    assert root.contains(str(tmp_path / "reg"))
    assert root.contains(str(v2 / "blobs"))
    assert root.contains(str(v2 / "blobs" / ".." / ".."))  # still inside the rootdirectory
    assert not root.contains(str(tmp_path))
    assert not root.contains(str(tmp_path / "nothing"))
    (tmp_path / "alias").symlink_to(tmp_path / "reg")
    assert root.contains(str(tmp_path / "alias" / "docker"))  # the same folder by another path


def test_a_process_that_exited_is_not_still_running() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        p = procs.read_proc(child.pid)
        assert p is not None and still_running(p, "/proc")
    finally:
        child.kill()
        child.wait()
    assert not still_running(p, "/proc")


def test_a_config_that_cannot_be_read_cannot_vouch(tmp_path: Path) -> None:
    v2 = tmp_path / "reg" / "docker" / "registry" / "v2"
    v2.mkdir(parents=True)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        p = procs.read_proc(child.pid)
        assert p is not None
        served = inspect_registry(p, str(tmp_path / "missing.yml"), RootId(str(v2)), "/proc")
        assert served.doubt is not None and "unreadable" in served.doubt
        assert not served.serves_root and not served.readonly
    finally:
        child.kill()
        child.wait()


def test_a_config_written_after_the_process_started_cannot_vouch(tmp_path: Path) -> None:
    v2 = tmp_path / "reg" / "docker" / "registry" / "v2"
    v2.mkdir(parents=True)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.1 + 2 * procs.clock_tick())
        config = tmp_path / "config.yml"
        config.write_text(
            textwrap.dedent(
                f"""\
                version: 0.1
                storage:
                  filesystem:
                    rootdirectory: {tmp_path / "reg"}
                  maintenance:
                    readonly:
                      enabled: true
                """
            )
        )
        p = procs.read_proc(child.pid)
        assert p is not None
        served = inspect_registry(p, str(config), RootId(str(v2)), "/proc")
        assert served.doubt is not None and "changed after the process started" in served.doubt
    finally:
        child.kill()
        child.wait()
