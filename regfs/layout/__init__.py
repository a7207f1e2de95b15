"""Path algebra for the registry storage layout, both ways (a port of paths.go as data).

All paths here are POSIX strings relative to the ``docker/registry/v2`` folder, and this is
the only module that builds or parses them. Files: ``path_of(spec)`` builds the path of a
:data:`PathSpec`, ``parse_path(path)`` recognises one. Folders: ``folder_path(folder)`` and
``parse_folder(path)`` (:mod:`regfs.layout.folders`) do the same for every folder of the layout
(what gc removes when empty). Both pairs are inverse on every valid spec, which the property
tests check. What is read back from disk (a plan's paths, a run id) is checked there before it
is used: :func:`~regfs.layout.folders.check_rel`, :func:`~regfs.layout.folders.check_run_id`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from regfs.model.digest import is_hex_for, make_digest, split_digest

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
# Inside a tag's folder: its current link, and its history (``index/<alg>/<hex>/link``).
TAG_CURRENT_LINK = "current/link"
TAG_HISTORY = "index"

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


def safe_name(name: str) -> bool:
    """One path component that names an entry: not empty, ``.``, ``..``, no ``/`` or NUL."""
    return bool(name) and name not in (".", "..") and "/" not in name and "\0" not in name


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
    return f"{tag_dir(repo, tag)}/{TAG_CURRENT_LINK}"


def tag_history_dir(repo: str, tag: str) -> str:
    """A tag's history: ``_manifests/tags/<tag>/index``."""
    return f"{tag_dir(repo, tag)}/{TAG_HISTORY}"


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


def digest_of(alg: str, hexpart: str) -> str | None:
    """The digest a folder pair ``<alg>/<hex>`` names; None when the hex is not valid."""
    return make_digest(alg, hexpart) if is_hex_for(alg, hexpart) else None


def parse_path(path: str) -> PathSpec | None:
    """Recognise a storage path; None when it is not one the registry writes."""
    parts = path.split("/")
    if len(parts) == 5 and parts[0] == "blobs" and parts[4] == "data":
        _, alg, prefix, hexpart, _ = parts
        d = digest_of(alg, hexpart)
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
            d = digest_of(alg, hexpart)
            return LayerLink(repo, d) if d else None
        case ["_manifests", "revisions", alg, hexpart, "link"]:
            d = digest_of(alg, hexpart)
            return RevisionLink(repo, d) if d else None
        case ["_manifests", "tags", tag, "current", "link"] if valid_tag(tag):
            return TagCurrentLink(repo, tag)
        case ["_manifests", "tags", tag, "index", alg, hexpart, "link"] if valid_tag(tag):
            d = digest_of(alg, hexpart)
            return TagIndexLink(repo, tag, d) if d else None
        case ["_uploads", uuid] if safe_name(uuid):
            return UploadDir(repo, uuid)
    return None
