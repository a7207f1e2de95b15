"""The layout's folders, both ways, and the checks for what is read back from disk.

``folder_path(folder)`` builds the path of a :class:`Folder` (every folder level of the
registry layout, what gc removes when it is empty); ``parse_folder(path)`` recognises one. The
checks (:func:`check_rel`, :func:`check_run_id`) stand between a path or run id read from a
plan, a journal or an argument and any use of it on disk.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from regfs.errors import UsageError
from regfs.layout import (
    BLOBS,
    LAYERS,
    MANIFESTS,
    REPO_PARTS,
    REPOSITORIES,
    UPLOADS,
    blob_alg_dir,
    blob_dir,
    blob_prefix_dir,
    digest_of,
    layer_dir,
    layers_dir,
    manifests_dir,
    parse_path,
    repo_dir,
    revision_dir,
    revisions_dir,
    safe_name,
    tag_current_dir,
    tag_dir,
    tag_history_dir,
    tag_index_dir,
    tags_dir,
    upload_dir,
    uploads_dir,
)
from regfs.model.digest import ALGORITHMS


class Level(Enum):
    """Every kind of folder in the layout (what gc may remove when it is empty)."""

    BLOBS = "blobs"  # blobs
    BLOB_ALG = "blob_alg"  # blobs/<alg>
    BLOB_PREFIX = "blob_prefix"  # blobs/<alg>/<xx>
    BLOB = "blob"  # blobs/<alg>/<xx>/<hex>
    REPOSITORIES = "repositories"  # repositories
    NAMESPACE = "namespace"  # repositories/<name>: a repository, or a folder of them
    LAYERS = "layers"  # <repo>/_layers
    LAYER_ALG = "layer_alg"  # <repo>/_layers/<alg>
    LAYER = "layer"  # <repo>/_layers/<alg>/<hex>
    MANIFESTS = "manifests"  # <repo>/_manifests
    REVISIONS = "revisions"  # <repo>/_manifests/revisions
    REVISION_ALG = "revision_alg"  # <repo>/_manifests/revisions/<alg>
    REVISION = "revision"  # <repo>/_manifests/revisions/<alg>/<hex>
    TAGS = "tags"  # <repo>/_manifests/tags
    TAG = "tag"  # <repo>/_manifests/tags/<tag>
    TAG_CURRENT = "tag_current"  # <repo>/_manifests/tags/<tag>/current
    TAG_HISTORY = "tag_history"  # <repo>/_manifests/tags/<tag>/index
    TAG_INDEX_ALG = "tag_index_alg"  # <repo>/_manifests/tags/<tag>/index/<alg>
    TAG_INDEX = "tag_index"  # <repo>/_manifests/tags/<tag>/index/<alg>/<hex>
    UPLOADS = "uploads"  # <repo>/_uploads
    UPLOAD = "upload"  # <repo>/_uploads/<id>
    UPLOAD_PART = "upload_part"  # <repo>/_uploads/<id>/<part>[/<part>...]


@dataclass(frozen=True, slots=True)
class Folder:
    """A folder of the layout: its level and the names that place it.

    ``repo``: the repository (or namespace) name; ``tag``; ``alg`` (folders per algorithm);
    ``digest`` (digest folders); ``prefix`` (a blob prefix folder); ``upload``: the upload id;
    ``part``: the path inside an upload folder.
    """

    level: Level
    repo: str = ""
    tag: str = ""
    alg: str = ""
    digest: str = ""
    prefix: str = ""
    upload: str = ""
    part: str = ""


def folder_path(f: Folder) -> str:
    """The path of a layout folder (the inverse of :func:`parse_folder`)."""
    lv = f.level
    simple = {
        Level.BLOBS: lambda: BLOBS,
        Level.BLOB_ALG: lambda: blob_alg_dir(f.alg),
        Level.BLOB_PREFIX: lambda: blob_prefix_dir(f.alg, f.prefix),
        Level.BLOB: lambda: blob_dir(f.digest),
        Level.REPOSITORIES: lambda: REPOSITORIES,
        Level.NAMESPACE: lambda: repo_dir(f.repo),
        Level.LAYERS: lambda: layers_dir(f.repo),
        Level.LAYER_ALG: lambda: f"{layers_dir(f.repo)}/{f.alg}",
        Level.LAYER: lambda: layer_dir(f.repo, f.digest),
        Level.MANIFESTS: lambda: manifests_dir(f.repo),
        Level.REVISIONS: lambda: revisions_dir(f.repo),
        Level.REVISION_ALG: lambda: f"{revisions_dir(f.repo)}/{f.alg}",
        Level.REVISION: lambda: revision_dir(f.repo, f.digest),
        Level.TAGS: lambda: tags_dir(f.repo),
        Level.TAG: lambda: tag_dir(f.repo, f.tag),
        Level.TAG_CURRENT: lambda: tag_current_dir(f.repo, f.tag),
        Level.TAG_HISTORY: lambda: tag_history_dir(f.repo, f.tag),
        Level.TAG_INDEX_ALG: lambda: f"{tag_history_dir(f.repo, f.tag)}/{f.alg}",
        Level.TAG_INDEX: lambda: tag_index_dir(f.repo, f.tag, f.digest),
        Level.UPLOADS: lambda: uploads_dir(f.repo),
        Level.UPLOAD: lambda: upload_dir(f.repo, f.upload),
        Level.UPLOAD_PART: lambda: f"{upload_dir(f.repo, f.upload)}/{f.part}",
    }
    return simple[lv]()


def _digest_folder(rest: list[str], level: Level, alg_level: Level, **kw: str) -> Folder | None:
    """``[]`` / ``[alg]`` / ``[alg, hex]`` below a folder of digest folders."""
    match rest:
        case [alg] if alg in ALGORITHMS:
            return Folder(alg_level, alg=alg, **kw)
        case [alg, hexpart]:
            d = digest_of(alg, hexpart)
            return Folder(level, alg=alg, digest=d, **kw) if d else None
    return None


def parse_folder(path: str) -> Folder | None:
    """Recognise a folder of the layout; None when it is not one.

    Repository names and tags are taken as the registry's folders hold them (a name the
    registry would refuse is still a folder of the layout, reported by the scan); every
    component must be a :func:`safe_name`, and digests must be valid for their algorithm.
    """
    parts = path.split("/")
    if not all(safe_name(p) for p in parts):
        return None
    if parts[0] == BLOBS:
        match parts[1:]:
            case []:
                return Folder(Level.BLOBS)
            case [alg] if alg in ALGORITHMS:
                return Folder(Level.BLOB_ALG, alg=alg)
            case [alg, prefix] if alg in ALGORITHMS and _is_prefix(prefix):
                return Folder(Level.BLOB_PREFIX, alg=alg, prefix=prefix)
            case [alg, prefix, hexpart] if hexpart[:2] == prefix:
                d = digest_of(alg, hexpart)
                return Folder(Level.BLOB, alg=alg, digest=d) if d else None
        return None
    if parts[0] != REPOSITORIES:
        return None
    if len(parts) == 1:
        return Folder(Level.REPOSITORIES)
    i = next((k for k in range(1, len(parts)) if parts[k].startswith("_")), len(parts))
    if i == 1:
        return None
    repo = "/".join(parts[1:i])
    rest = parts[i:]
    match rest:
        case []:
            return Folder(Level.NAMESPACE, repo=repo)
        case [part] if part in REPO_PARTS:
            return Folder(_PART_LEVEL[part], repo=repo)
        case ["_layers", *sub]:
            return _digest_folder(sub, Level.LAYER, Level.LAYER_ALG, repo=repo)
        case ["_manifests", "revisions"]:
            return Folder(Level.REVISIONS, repo=repo)
        case ["_manifests", "revisions", *sub]:
            return _digest_folder(sub, Level.REVISION, Level.REVISION_ALG, repo=repo)
        case ["_manifests", "tags"]:
            return Folder(Level.TAGS, repo=repo)
        case ["_manifests", "tags", tag]:
            return Folder(Level.TAG, repo=repo, tag=tag)
        case ["_manifests", "tags", tag, "current"]:
            return Folder(Level.TAG_CURRENT, repo=repo, tag=tag)
        case ["_manifests", "tags", tag, "index"]:
            return Folder(Level.TAG_HISTORY, repo=repo, tag=tag)
        case ["_manifests", "tags", tag, "index", *sub]:
            return _digest_folder(sub, Level.TAG_INDEX, Level.TAG_INDEX_ALG, repo=repo, tag=tag)
        case ["_uploads", upload]:
            return Folder(Level.UPLOAD, repo=repo, upload=upload)
        case ["_uploads", upload, *sub]:
            return Folder(Level.UPLOAD_PART, repo=repo, upload=upload, part="/".join(sub))
    return None


_PART_LEVEL = {LAYERS: Level.LAYERS, MANIFESTS: Level.MANIFESTS, UPLOADS: Level.UPLOADS}


def _is_prefix(name: str) -> bool:
    return len(name) == 2 and all(c in "0123456789abcdef" for c in name)


# --- what is read back from disk -----------------------------------------------------------


class LayoutError(UsageError):
    """A path or run id read back from disk (a plan, a journal, an argument) that the layout
    does not recognise: it is never joined to ROOT or the state folder."""


RUN_ID_RE = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}")


def check_run_id(text: str) -> str:
    """``text`` when it is a run id (``YYYYmmddTHHMMSSZ-<8 hex>``); else :class:`LayoutError`."""
    if not RUN_ID_RE.fullmatch(text):
        raise LayoutError(f"not a regfs run id: {text!r}")
    return text


def check_rel(path: str) -> str:
    """``path`` when it is a file or folder of the layout (:func:`parse_path` or
    :func:`parse_folder` recognises it); else :class:`LayoutError`. What a plan or journal
    holds goes through this before it is joined to ROOT."""
    if parse_folder(path) is None and parse_path(path) is None:
        raise LayoutError(f"not a path of the registry storage layout: {path!r}")
    return path
