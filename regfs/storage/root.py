"""ROOT on a filesystem: from what the user typed to the ``docker/registry/v2`` folder, and
where regfs keeps its state next to it."""

from __future__ import annotations

import os
import stat as stat_mod
from pathlib import Path

from regfs.errors import RootError
from regfs.layout import V2

DEFAULT_ROOT = "/var/lib/registry"
ROOT_ENV = "REGFS_ROOT"
STATE_NAME = ".regfs"


def resolve_root(given: str | os.PathLike[str] | None) -> Path:
    """Resolve ROOT to the ``docker/registry/v2`` folder, or raise :class:`RootError`.

    ROOT may be the registry's ``rootdirectory`` (holding ``docker/registry/v2``) or the
    ``v2`` folder itself; when omitted (``None``), ``$REGFS_ROOT``, else ``/var/lib/registry``.
    An empty ROOT (``regfs gc ""``, an unset shell variable) is an error, never a fallback:
    it must not send a deleting command to the default store.
    """
    if given is None:
        given = os.environ.get(ROOT_ENV) or DEFAULT_ROOT
    elif str(given) == "":
        raise RootError(
            "ROOT is empty (give the registry's storage folder, or omit ROOT to use "
            f"${ROOT_ENV}, else {DEFAULT_ROOT})"
        )
    path = Path(given).expanduser()
    shown = str(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise RootError("no such folder", path=shown) from None
    except PermissionError:
        raise RootError("permission denied", path=shown) from None
    except OSError as exc:
        raise RootError(exc.strerror or str(exc), path=shown) from None
    if not stat_mod.S_ISDIR(st.st_mode):
        raise RootError("not a folder", path=shown)
    if not os.access(path, os.R_OK | os.X_OK):
        raise RootError("folder is not readable", path=shown)
    candidates = [path.joinpath(*V2), path]
    for cand in candidates:
        if _looks_like_v2(cand, is_given=cand == path):
            if not os.access(cand, os.R_OK | os.X_OK):
                raise RootError("folder is not readable", path=str(cand))
            return cand.absolute()
    raise RootError(
        "not a registry storage root (no docker/registry/v2 with blobs/ or repositories/ inside)",
        path=shown,
    )


def _looks_like_v2(cand: Path, *, is_given: bool) -> bool:
    if is_given and cand.name != "v2":
        return False
    try:
        names = set(os.listdir(cand))
    except OSError:
        return False
    return bool(names & {"blobs", "repositories"})


def split_top(v2: str) -> tuple[str, list[str]]:
    """``(top, components)``: the folder a local backend anchors at (the ``rootdirectory``
    holding ``docker/registry/v2``, or a bare ``v2`` folder itself) and the components from
    there down to ``v2``."""
    parts = v2.rstrip("/").split("/")
    if parts[-3:] == list(V2):
        return "/".join(parts[:-3]) or "/", list(V2)
    return v2, []


def state_location(v2: str) -> str:
    """Where regfs keeps its lock, journals and trash: ``<rootdirectory>/.regfs`` (the same
    rule as :func:`regfs.gc.plan.state_dir`)."""
    return os.path.join(split_top(v2)[0], STATE_NAME)
