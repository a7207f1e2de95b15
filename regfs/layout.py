"""Path algebra for the registry storage layout, both ways (a port of paths.go as data).

All paths here are POSIX strings relative to the ``docker/registry/v2`` folder.
``path_of(spec)`` builds the path of a spec; ``parse_path(path)`` recognises one. The two are
inverse on every valid spec, which the property tests check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from regfs.model.digest import is_hex_for, make_digest, split_digest

V2 = ("docker", "registry", "v2")

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
    return len(name) <= REPO_NAME_MAX and REPO_NAME_RE.fullmatch(name) is not None


def valid_tag(tag: str) -> bool:
    return TAG_RE.fullmatch(tag) is not None


@dataclass(frozen=True, slots=True)
class BlobData:
    digest: str


@dataclass(frozen=True, slots=True)
class LayerLink:
    repo: str
    digest: str


@dataclass(frozen=True, slots=True)
class RevisionLink:
    repo: str
    digest: str


@dataclass(frozen=True, slots=True)
class TagCurrentLink:
    repo: str
    tag: str


@dataclass(frozen=True, slots=True)
class TagIndexLink:
    repo: str
    tag: str
    digest: str


@dataclass(frozen=True, slots=True)
class UploadDir:
    repo: str
    uuid: str


PathSpec = BlobData | LayerLink | RevisionLink | TagCurrentLink | TagIndexLink | UploadDir


def blob_dir(digest: str) -> str:
    alg, hexpart = split_digest(digest)
    return f"blobs/{alg}/{hexpart[:2]}/{hexpart}"


def blob_data(digest: str) -> str:
    return blob_dir(digest) + "/data"


def repo_dir(repo: str) -> str:
    return f"repositories/{repo}"


def _alg_hex(digest: str) -> str:
    """``sha256:<hex>`` -> ``sha256/<hex>``."""
    return digest.replace(":", "/", 1)


def layer_dir(repo: str, digest: str) -> str:
    return f"repositories/{repo}/_layers/{_alg_hex(digest)}"


def revision_dir(repo: str, digest: str) -> str:
    return f"repositories/{repo}/_manifests/revisions/{_alg_hex(digest)}"


def tag_dir(repo: str, tag: str) -> str:
    return f"repositories/{repo}/_manifests/tags/{tag}"


def tag_index_dir(repo: str, tag: str, digest: str) -> str:
    return f"{tag_dir(repo, tag)}/index/{_alg_hex(digest)}"


def upload_dir(repo: str, uuid: str) -> str:
    return f"repositories/{repo}/_uploads/{uuid}"


# RFC 9562 UUIDv7: version nibble 7, variant bits 10 (8, 9, a or b).
def path_of(spec: PathSpec) -> str:
    """The path of a spec: a ``link`` or ``data`` file, or an upload folder."""
    match spec:
        case BlobData(digest):
            return blob_data(digest)
        case LayerLink(repo, digest):
            return layer_dir(repo, digest) + "/link"
        case RevisionLink(repo, digest):
            return revision_dir(repo, digest) + "/link"
        case TagCurrentLink(repo, tag):
            return tag_dir(repo, tag) + "/current/link"
        case TagIndexLink(repo, tag, digest):
            return tag_index_dir(repo, tag, digest) + "/link"
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
        case ["_uploads", uuid] if uuid and "/" not in uuid:
            return UploadDir(repo, uuid)
    return None
