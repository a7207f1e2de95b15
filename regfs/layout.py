"""Path algebra for the registry storage layout, both ways (a port of paths.go as data).

All paths here are POSIX strings relative to the ``docker/registry/v2`` folder, and this is
the only module that builds or parses them. Files: ``path_of(spec)`` builds the path of a
:data:`PathSpec`, ``parse_path(path)`` recognises one. Folders: ``folder_path(folder)`` and
``parse_folder(path)`` do the same for every folder of the layout (what gc removes when empty).
Both pairs are inverse on every valid spec, which the property tests check. What is read back
from disk (a plan's paths, a run id) is checked here before it is used: :func:`check_rel`,
:func:`check_run_id`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from regfs.errors import UsageError
from regfs.model.digest import ALGORITHMS, is_hex_for, make_digest, split_digest

V2 = ("docker", "registry", "v2")
BLOBS = "blobs"
REPOSITORIES = "repositories"
LAYERS = "_layers"
MANIFESTS = "_manifests"
UPLOADS = "_uploads"
# The reserved folders that make a folder under ``repositories`` a repository.
REPO_PARTS = (MANIFESTS, LAYERS, UPLOADS)
LINK = "link"
DATA = "data"
STARTEDAT = "startedat"

# distribution/reference: path components and tags. Its separator is ``[._]|__|[-]*``; an
# empty separator only joins two alphanumeric runs, so ``-+`` accepts the same names without
# the ambiguity that makes a backtracking engine exponential (Go's RE2 is linear; Python's
# took minutes on 30 alphanumerics followed by one character it refuses).
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REPO_NAME_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
# ASCII: Go's \w is [0-9A-Za-z_]; Python's would also accept any Unicode letter.
TAG_RE = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
# Repository names are limited to 255 characters by distribution.
REPO_NAME_MAX = 255


def valid_repo_name(name: str) -> bool:
    """A repository name the registry accepts (distribution/reference)."""
    return len(name) <= REPO_NAME_MAX and REPO_NAME_RE.fullmatch(name) is not None


def valid_tag(tag: str) -> bool:
    """A tag name the registry accepts."""
    return TAG_RE.fullmatch(tag) is not None


@dataclass(frozen=True, slots=True)
class BlobData:
    """A blob's ``data`` file."""

    digest: str


@dataclass(frozen=True, slots=True)
class LayerLink:
    """A repository's layer link: ``_layers/<alg>/<hex>/link``."""

    repo: str
    digest: str


@dataclass(frozen=True, slots=True)
class RevisionLink:
    """A manifest revision link: ``_manifests/revisions/<alg>/<hex>/link``."""

    repo: str
    digest: str


@dataclass(frozen=True, slots=True)
class TagCurrentLink:
    """What a tag points to: ``_manifests/tags/<tag>/current/link``."""

    repo: str
    tag: str


@dataclass(frozen=True, slots=True)
class TagIndexLink:
    """An entry of a tag's history: ``_manifests/tags/<tag>/index/<alg>/<hex>/link``."""

    repo: str
    tag: str
    digest: str


@dataclass(frozen=True, slots=True)
class UploadDir:
    """An unfinished upload's folder: ``_uploads/<id>``."""

    repo: str
    uuid: str


PathSpec = BlobData | LayerLink | RevisionLink | TagCurrentLink | TagIndexLink | UploadDir


def join(folder: str, name: str) -> str:
    """The path of an entry ``name`` listed in ``folder`` (``""``: the v2 folder itself)."""
    return f"{folder}/{name}" if folder else name


def link_file(folder: str) -> str:
    """The ``link`` file of a digest folder or of a tag's ``current`` folder."""
    return f"{folder}/{LINK}"


def data_file(folder: str) -> str:
    """The ``data`` file of a blob folder or of an upload folder."""
    return f"{folder}/{DATA}"


def blob_alg_dir(alg: str) -> str:
    """``blobs/<alg>``."""
    return f"{BLOBS}/{alg}"


def blob_prefix_dir(alg: str, prefix: str) -> str:
    """``blobs/<alg>/<two hex digits>``."""
    return f"{BLOBS}/{alg}/{prefix}"


def blob_dir(digest: str) -> str:
    """A blob's folder: ``blobs/<alg>/<hex[:2]>/<hex>``."""
    alg, hexpart = split_digest(digest)
    return f"{BLOBS}/{alg}/{hexpart[:2]}/{hexpart}"


def blob_prefix_of(digest: str) -> str:
    """The prefix folder a digest's blob folder is in: ``blobs/<alg>/<hex[:2]>``."""
    alg, hexpart = split_digest(digest)
    return blob_prefix_dir(alg, hexpart[:2])


def blob_data(digest: str) -> str:
    """A blob's ``data`` file."""
    return data_file(blob_dir(digest))


def repo_dir(repo: str) -> str:
    """A repository's folder (also a namespace folder: ``repositories/<a>/<b>``)."""
    return f"{REPOSITORIES}/{repo}" if repo else REPOSITORIES


def _alg_hex(digest: str) -> str:
    """``sha256:<hex>`` -> ``sha256/<hex>``."""
    return digest.replace(":", "/", 1)


def digest_dir(folder: str, digest: str) -> str:
    """``<folder>/<alg>/<hex>``: a digest's folder in ``_layers``, ``revisions`` or a tag's
    ``index``."""
    return f"{folder}/{_alg_hex(digest)}"


def layers_dir(repo: str) -> str:
    """``repositories/<repo>/_layers``."""
    return f"{REPOSITORIES}/{repo}/{LAYERS}"


def manifests_dir(repo: str) -> str:
    """``repositories/<repo>/_manifests``."""
    return f"{REPOSITORIES}/{repo}/{MANIFESTS}"


def revisions_dir(repo: str) -> str:
    """``repositories/<repo>/_manifests/revisions``."""
    return f"{manifests_dir(repo)}/revisions"


def tags_dir(repo: str) -> str:
    """``repositories/<repo>/_manifests/tags``."""
    return f"{manifests_dir(repo)}/tags"


def uploads_dir(repo: str) -> str:
    """``repositories/<repo>/_uploads``."""
    return f"{REPOSITORIES}/{repo}/{UPLOADS}"


def layer_dir(repo: str, digest: str) -> str:
    """A layer link's folder: ``_layers/<alg>/<hex>``."""
    return digest_dir(layers_dir(repo), digest)


def revision_dir(repo: str, digest: str) -> str:
    """A revision link's folder: ``_manifests/revisions/<alg>/<hex>``."""
    return digest_dir(revisions_dir(repo), digest)


def tag_dir(repo: str, tag: str) -> str:
    """A tag's folder: ``_manifests/tags/<tag>``."""
    return f"{tags_dir(repo)}/{tag}"


def tag_current_dir(repo: str, tag: str) -> str:
    """``_manifests/tags/<tag>/current``."""
    return f"{tag_dir(repo, tag)}/current"


def tag_current_link(repo: str, tag: str) -> str:
    """``_manifests/tags/<tag>/current/link``."""
    return link_file(tag_current_dir(repo, tag))


def tag_history_dir(repo: str, tag: str) -> str:
    """A tag's history: ``_manifests/tags/<tag>/index``."""
    return f"{tag_dir(repo, tag)}/index"


def tag_index_dir(repo: str, tag: str, digest: str) -> str:
    """An entry of a tag's history: ``_manifests/tags/<tag>/index/<alg>/<hex>``."""
    return digest_dir(tag_history_dir(repo, tag), digest)


def upload_dir(repo: str, uuid: str) -> str:
    """An upload's folder: ``_uploads/<id>``."""
    return f"{uploads_dir(repo)}/{uuid}"


def path_of(spec: PathSpec) -> str:
    """The path of a spec: a ``link`` or ``data`` file, or an upload folder."""
    match spec:
        case BlobData(digest):
            return blob_data(digest)
        case LayerLink(repo, digest):
            return link_file(layer_dir(repo, digest))
        case RevisionLink(repo, digest):
            return link_file(revision_dir(repo, digest))
        case TagCurrentLink(repo, tag):
            return tag_current_link(repo, tag)
        case TagIndexLink(repo, tag, digest):
            return link_file(tag_index_dir(repo, tag, digest))
        case UploadDir(repo, uuid):
            return upload_dir(repo, uuid)
    raise TypeError(f"not a path spec: {spec!r}")  # pragma: no cover


def _digest_of(alg: str, hexpart: str) -> str | None:
    return make_digest(alg, hexpart) if is_hex_for(alg, hexpart) else None


def parse_path(path: str) -> PathSpec | None:
    """Recognise a storage path; None when it is not one the registry writes."""
    parts = path.split("/")
    if len(parts) == 5 and parts[0] == "blobs" and parts[4] == "data":
        _, alg, prefix, hexpart, _ = parts
        d = _digest_of(alg, hexpart)
        if d is not None and hexpart[:2] == prefix:
            return BlobData(d)
        return None
    if len(parts) < 4 or parts[0] != "repositories":
        return None
    # The repository name ends at the first reserved (underscore) component.
    for i in range(1, len(parts)):
        if parts[i].startswith("_"):
            break
    else:
        return None
    repo = "/".join(parts[1:i])
    if not valid_repo_name(repo):
        return None
    rest = parts[i:]
    match rest:
        case ["_layers", alg, hexpart, "link"]:
            d = _digest_of(alg, hexpart)
            return LayerLink(repo, d) if d else None
        case ["_manifests", "revisions", alg, hexpart, "link"]:
            d = _digest_of(alg, hexpart)
            return RevisionLink(repo, d) if d else None
        case ["_manifests", "tags", tag, "current", "link"] if valid_tag(tag):
            return TagCurrentLink(repo, tag)
        case ["_manifests", "tags", tag, "index", alg, hexpart, "link"] if valid_tag(tag):
            d = _digest_of(alg, hexpart)
            return TagIndexLink(repo, tag, d) if d else None
        case ["_uploads", uuid] if safe_name(uuid):
            return UploadDir(repo, uuid)
    return None


# --- folders, both ways ---------------------------------------------------------------------


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


def safe_name(name: str) -> bool:
    """One path component that names an entry: not empty, ``.``, ``..``, no ``/`` or NUL."""
    return bool(name) and name not in (".", "..") and "/" not in name and "\0" not in name


def _digest_folder(rest: list[str], level: Level, alg_level: Level, **kw: str) -> Folder | None:
    """``[]`` / ``[alg]`` / ``[alg, hex]`` below a folder of digest folders."""
    match rest:
        case [alg] if alg in ALGORITHMS:
            return Folder(alg_level, alg=alg, **kw)
        case [alg, hexpart]:
            d = _digest_of(alg, hexpart)
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
                d = _digest_of(alg, hexpart)
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
