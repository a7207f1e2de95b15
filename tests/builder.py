"""A tmp-path storage builder for unit tests.

It writes trees in exactly the format distribution 2.8.2's filesystem driver writes:

* ``blobs/sha256/<2hex>/<hex>/data`` for every blob (layers, configs, manifests);
* ``repositories/<name>/_layers/sha256/<hex>/link`` for every blob pushed to (or mounted in) a
  repository (never for manifests);
* ``repositories/<name>/_manifests/revisions/sha256/<hex>/link`` for every manifest;
* ``repositories/<name>/_manifests/tags/<tag>/current/link`` and
  ``.../tags/<tag>/index/sha256/<hex>/link`` for every tag;
* ``repositories/<name>/_uploads/<uuid>/{data,startedat,hashstates/sha256/<offset>}`` for an
  unfinished upload.

Link files hold exactly ``sha256:<hex>``, no newline. Manifests are serialized the way the usual
clients do it (compact JSON, key order of the spec), with real media types and sizes.

Usage::

    b = StoreBuilder(tmp_path)
    layer = b.layer("hello")
    img = b.image("app", tags=["v1"], layers=[layer])
    idx = b.index("app", children=[img, img2], tags=["latest"],
                  platforms=["linux/amd64", "linux/arm64/v8"])
    sig = b.referrer("app", subject=img, artifact_type="application/vnd.dev.cosign...")
    b.delete_manifest("app", img.digest)
    snap = b.scan()
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import uuid as uuid_mod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from regfs.scan import Snapshot, scan
from regfs.storage.local import LocalStorage

OCI = "oci"
DOCKER = "docker"

DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_EMPTY_DATA = b"{}"

COSIGN_SIG = "application/vnd.dev.cosign.artifact.sig.v1+json"
SBOM_SPDX = "application/spdx+json"

EMPTY_SHA256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def hexof(digest: str) -> str:
    return digest.partition(":")[2]


def canonical_json(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def tar_gz(files: dict[str, bytes]) -> tuple[bytes, bytes]:
    """A reproducible layer: (gzip-compressed tar, uncompressed tar)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mtime = 0
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(content))
    raw = buf.getvalue()
    return gzip.compress(raw, mtime=0), raw


@dataclass(frozen=True)
class Blob:
    """A blob: its bytes, digest and size, and the media type a descriptor gives it."""

    digest: str
    size: int
    data: bytes
    media_type: str = "application/octet-stream"
    diff_id: str | None = None
    urls: tuple[str, ...] = ()

    def descriptor(self, media_type: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": media_type or self.media_type,
            "size": self.size,
            "digest": self.digest,
        }
        if self.urls:
            out["urls"] = list(self.urls)
        return out


@dataclass(frozen=True)
class Pushed:
    """A manifest stored in a repository."""

    repo: str
    digest: str
    size: int
    media_type: str
    data: bytes
    config: Blob | None = None
    layers: tuple[Blob, ...] = ()
    children: tuple[Pushed, ...] = ()
    subject: str | None = None
    artifact_type: str | None = None
    doc: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "size": self.size, "digest": self.digest}

    @property
    def blob_digests(self) -> set[str]:
        """The manifest's own blob, its config and its layers."""
        out = {self.digest}
        if self.config is not None:
            out.add(self.config.digest)
        out.update(b.digest for b in self.layers)
        return out


def _platform(text: str) -> dict[str, str]:
    parts = text.split("/")
    out = {"architecture": parts[1], "os": parts[0]}
    if len(parts) > 2:
        out["variant"] = parts[2]
    return out


class StoreBuilder:
    """Writes a registry storage tree under ``root`` (the registry's ``rootdirectory``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.v2 = self.root / "docker" / "registry" / "v2"
        (self.v2 / "blobs").mkdir(parents=True, exist_ok=True)
        (self.v2 / "repositories").mkdir(parents=True, exist_ok=True)
        self._counter = 0

    # --- raw files -------------------------------------------------------------------------

    def path(self, rel: str) -> Path:
        return self.v2 / rel

    def write(self, rel: str, data: bytes) -> Path:
        p = self.path(rel)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        return p

    def write_link(self, rel: str, digest: str) -> Path:
        return self.write(rel, digest.encode("ascii"))

    def storage(self) -> LocalStorage:
        return LocalStorage(self.v2)

    def scan(self, **kwargs: Any) -> Snapshot:
        return scan(self.storage(), **kwargs)

    # --- blobs -----------------------------------------------------------------------------

    def blob(self, data: bytes, media_type: str = "application/octet-stream") -> Blob:
        """Store blob bytes (no repository link: a pushed layer also needs ``link_layer``)."""
        d = sha256(data)
        self.write(f"blobs/sha256/{hexof(d)[:2]}/{hexof(d)}/data", data)
        return Blob(d, len(data), data, media_type)

    def absent(self, data: bytes, media_type: str = "application/octet-stream") -> Blob:
        """A descriptor for bytes that are not stored (to build dangling references)."""
        return Blob(sha256(data), len(data), data, media_type)

    def layer(self, content: str | bytes | None = None, *, store: bool = True) -> Blob:
        """A gzip-compressed tar layer with one file; ``store=False`` leaves it unwritten."""
        if content is None:
            self._counter += 1
            content = f"layer {self._counter}"
        if isinstance(content, str):
            content = content.encode()
        gz, raw = tar_gz({"file.txt": content})
        blob = Blob(sha256(gz), len(gz), gz, OCI_LAYER, diff_id=sha256(raw))
        if store:
            self.blob(gz)
        return blob

    def foreign_layer(self, content: str = "windows base") -> Blob:
        """A non-distributable layer with ``urls``: referenced, never stored locally."""
        gz, raw = tar_gz({"base.txt": content.encode()})
        return Blob(
            sha256(gz),
            len(gz),
            gz,
            DOCKER_FOREIGN_LAYER,
            diff_id=sha256(raw),
            urls=(f"https://mcr.example.com/blobs/{sha256(gz)}",),
        )

    def orphan_blob(self, data: bytes | None = None, *, repo: str | None = None) -> Blob:
        """A blob no manifest references; linked into ``repo``'s _layers when given (2.8 never
        removes layer links, so that is what a deleted image leaves behind)."""
        if data is None:
            self._counter += 1
            data = f"orphan {self._counter}".encode()
        blob = self.blob(data)
        if repo is not None:
            self.link_layer(repo, blob.digest)
        return blob

    def remove_blob(self, digest: str, *, keep_folder: bool = False) -> None:
        """Lose a blob's data (or its whole folder), leaving references to it dangling."""
        folder = self.path(f"blobs/sha256/{hexof(digest)[:2]}/{hexof(digest)}")
        if keep_folder:
            (folder / "data").unlink()
        else:
            shutil.rmtree(folder)

    def link_layer(self, repo: str, digest: str) -> Path:
        return self.write_link(f"repositories/{repo}/_layers/sha256/{hexof(digest)}/link", digest)

    # --- manifests -------------------------------------------------------------------------

    def push_manifest(
        self, repo: str, data: bytes, tags: Iterable[str] = (), *, digest: str | None = None
    ) -> str:
        """Store raw manifest bytes as the registry does on ``PUT /v2/<repo>/manifests/<ref>``:
        the blob, the revision link and each tag. Returns the digest."""
        stored = self.blob(data)
        d = digest or stored.digest
        self.write_link(f"repositories/{repo}/_manifests/revisions/sha256/{hexof(d)}/link", d)
        for t in tags:
            self.tag(repo, t, d)
        return d

    def tag(self, repo: str, tag: str, digest: str) -> None:
        base = f"repositories/{repo}/_manifests/tags/{tag}"
        self.write_link(f"{base}/current/link", digest)
        self.write_link(f"{base}/index/sha256/{hexof(digest)}/link", digest)

    def config_blob(
        self,
        layers: Sequence[Blob] = (),
        *,
        media_type: str = OCI,
        platform: str = "linux/amd64",
        label: str | None = None,
    ) -> Blob:
        plat = _platform(platform)
        doc: dict[str, Any] = {
            "architecture": plat["architecture"],
            "os": plat["os"],
            "config": {"Env": ["PATH=/usr/bin:/bin"], "Labels": {"name": label or "test"}},
            "rootfs": {"type": "layers", "diff_ids": [ly.diff_id or ly.digest for ly in layers]},
            "history": [{"created_by": f"layer {i}"} for i in range(len(layers))],
        }
        if "variant" in plat:
            doc["variant"] = plat["variant"]
        data = canonical_json(doc)
        blob = self.blob(data)
        mt = OCI_CONFIG if media_type == OCI else DOCKER_CONFIG
        return Blob(blob.digest, blob.size, data, mt)

    def image(
        self,
        repo: str,
        *,
        tags: Iterable[str] = (),
        layers: Sequence[Blob] | None = None,
        config: Blob | None = None,
        media_type: str = OCI,
        platform: str = "linux/amd64",
        subject: Pushed | str | None = None,
        artifact_type: str | None = None,
        annotations: dict[str, str] | None = None,
        label: str | None = None,
    ) -> Pushed:
        """Push an image: link its config and layers into ``repo``, store the manifest, tag it.

        ``media_type`` is ``OCI`` or ``DOCKER`` (schema2). A blob built with ``absent`` or
        removed later is referenced without being stored or linked.
        """
        if layers is None:
            layers = [self.layer(f"{repo} {label or ''} {platform} {self._next()}")]
        if config is None:
            config = self.config_blob(layers, media_type=media_type, platform=platform, label=label)
        for blob in [config, *layers]:
            if not blob.urls and self._stored(blob.digest):
                self.link_layer(repo, blob.digest)
        if media_type == OCI:
            mt = OCI_MANIFEST
            layer_mt = OCI_LAYER
        elif media_type == DOCKER:
            mt = DOCKER_V2
            layer_mt = DOCKER_LAYER
        else:
            raise ValueError(f"media_type must be OCI or DOCKER, not {media_type!r}")
        doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": mt}
        if artifact_type:
            doc["artifactType"] = artifact_type
        cfg_mt = config.media_type
        if cfg_mt == "application/octet-stream":
            cfg_mt = OCI_CONFIG if media_type == OCI else DOCKER_CONFIG
        doc["config"] = config.descriptor(cfg_mt)
        doc["layers"] = [
            ly.descriptor(
                ly.media_type
                if ly.urls or ly.media_type not in (OCI_LAYER, "application/octet-stream")
                else layer_mt
            )
            for ly in layers
        ]
        subject_digest = None
        if subject is not None:
            if isinstance(subject, Pushed):
                doc["subject"] = subject.descriptor()
                subject_digest = subject.digest
            else:
                doc["subject"] = {"mediaType": OCI_MANIFEST, "size": 1, "digest": subject}
                subject_digest = subject
        if annotations:
            doc["annotations"] = annotations
        data = canonical_json(doc)
        d = self.push_manifest(repo, data, tags)
        return Pushed(
            repo,
            d,
            len(data),
            mt,
            data,
            config,
            tuple(layers),
            (),
            subject_digest,
            artifact_type,
            doc,
        )

    def index(
        self,
        repo: str,
        *,
        children: Sequence[Pushed | Blob],
        tags: Iterable[str] = (),
        platforms: Sequence[str | None] | None = None,
        media_type: str = OCI,
        subject: Pushed | None = None,
        artifact_type: str | None = None,
    ) -> Pushed:
        """Push an index (OCI) or manifest list (DOCKER) of ``children`` (pushed manifests, or
        ``absent`` blobs for children that are not stored)."""
        if platforms is None:
            platforms = [None] * len(children)
        if len(platforms) != len(children):
            raise ValueError("one platform per child")
        mt = OCI_INDEX if media_type == OCI else DOCKER_LIST
        entries = []
        for child, plat in zip(children, platforms, strict=True):
            if isinstance(child, Pushed):
                desc = child.descriptor()
            else:
                desc = child.descriptor(OCI_MANIFEST if media_type == OCI else DOCKER_V2)
            if plat is not None:
                desc["platform"] = _platform(plat)
            elif media_type == DOCKER:
                desc["platform"] = {"architecture": "amd64", "os": "linux"}
            entries.append(desc)
        doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": mt}
        if artifact_type:
            doc["artifactType"] = artifact_type
        doc["manifests"] = entries
        if subject is not None:
            doc["subject"] = subject.descriptor()
        data = canonical_json(doc)
        d = self.push_manifest(repo, data, tags)
        kids = tuple(c for c in children if isinstance(c, Pushed))
        return Pushed(
            repo,
            d,
            len(data),
            mt,
            data,
            None,
            (),
            kids,
            subject.digest if subject else None,
            artifact_type,
            doc,
        )

    def referrer(
        self,
        repo: str,
        *,
        subject: Pushed,
        artifact_type: str = COSIGN_SIG,
        payload: bytes | None = None,
        tags: Iterable[str] = (),
    ) -> Pushed:
        """An OCI 1.1 referrer (signature, SBOM, attestation): an artifact manifest with the
        empty config, one payload layer and ``subject``; pushed untagged by default."""
        if payload is None:
            payload = canonical_json(
                {
                    "critical": {"image": {"docker-manifest-digest": subject.digest}},
                    "type": artifact_type,
                    "n": self._next(),
                }
            )
        empty = self.blob(OCI_EMPTY_DATA)
        config = Blob(empty.digest, empty.size, empty.data, OCI_EMPTY)
        layer = self.blob(payload)
        layer = Blob(layer.digest, layer.size, layer.data, artifact_type)
        return self.image(
            repo,
            tags=tags,
            layers=[layer],
            config=config,
            subject=subject,
            artifact_type=artifact_type,
        )

    def schema1(
        self, repo: str, *, layers: Sequence[Blob], tags: Iterable[str] = (), name: str = ""
    ) -> Pushed:
        """A schema1 manifest as 2.8.2 stores it: the canonical (unsigned) payload, whose
        sha256 is the manifest digest."""
        for ly in layers:
            if self._stored(ly.digest):
                self.link_layer(repo, ly.digest)
        doc = schema1_doc(name or repo, next(iter(tags), "") or "latest", layers)
        data = json.dumps(doc, indent=3).encode()
        d = self.push_manifest(repo, data, list(tags))
        return Pushed(
            repo,
            d,
            len(data),
            "application/vnd.docker.distribution.manifest.v1+json",
            data,
            None,
            tuple(layers),
            doc=doc,
        )

    # --- registry operations ---------------------------------------------------------------

    def delete_manifest(self, repo: str, digest: str) -> None:
        """What ``DELETE /v2/<repo>/manifests/<digest>`` does in 2.8.2: remove the revision's
        link file (its folder stays, empty) and every tag whose current link names it."""
        rev = self.path(f"repositories/{repo}/_manifests/revisions/sha256/{hexof(digest)}/link")
        rev.unlink()
        tags = self.path(f"repositories/{repo}/_manifests/tags")
        if tags.is_dir():
            for t in sorted(tags.iterdir()):
                cur = t / "current" / "link"
                if cur.is_file() and cur.read_bytes() == digest.encode():
                    shutil.rmtree(t)

    def upload(
        self,
        repo: str,
        *,
        started_at: datetime | str | None = None,
        data: bytes = b"partial",
        uuid: str | None = None,
        mtime: float | None = None,
        startedat_file: bool = True,
    ) -> str:
        """An unfinished upload: ``data``, ``startedat`` (RFC 3339, no newline) and a hash
        state at the current offset. Returns its uuid."""
        uid = uuid or str(uuid_mod.UUID(int=self._next(), version=4))
        base = f"repositories/{repo}/_uploads/{uid}"
        if started_at is None:
            started_at = datetime.now(UTC)
        if isinstance(started_at, datetime):
            started_at = started_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        files = [self.write(f"{base}/data", data)]
        if startedat_file:
            files.append(self.write(f"{base}/startedat", started_at.encode()))
        files.append(self.write(f"{base}/hashstates/sha256/{len(data)}", b"\x00sha-state"))
        if mtime is not None:
            for f in files:
                os.utime(f, (mtime, mtime))
        return uid

    def finished_upload(self, repo: str) -> None:
        """What a finished upload leaves: an empty ``_uploads`` folder."""
        self.path(f"repositories/{repo}/_uploads").mkdir(parents=True, exist_ok=True)

    # --- helpers ---------------------------------------------------------------------------

    def _next(self) -> int:
        self._counter += 1
        return self._counter

    def _stored(self, digest: str) -> bool:
        return self.path(f"blobs/sha256/{hexof(digest)[:2]}/{hexof(digest)}/data").is_file()

    def revision_link(self, repo: str, digest: str) -> str:
        return f"repositories/{repo}/_manifests/revisions/sha256/{hexof(digest)}/link"

    def layer_link(self, repo: str, digest: str) -> str:
        return f"repositories/{repo}/_layers/sha256/{hexof(digest)}/link"


def schema1_doc(name: str, tag: str, layers: Sequence[Blob]) -> dict[str, Any]:
    """An (unsigned) schema1 manifest body, newest layer first, with one history entry each."""
    fs_layers = [{"blobSum": ly.digest} for ly in reversed(layers)]
    history = [
        {"v1Compatibility": json.dumps({"id": f"{i:064x}", "created": "2020-01-01T00:00:00Z"})}
        for i in range(len(layers), 0, -1)
    ]
    return {
        "schemaVersion": 1,
        "name": name,
        "tag": tag,
        "architecture": "amd64",
        "fsLayers": fs_layers,
        "history": history,
    }


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def sign_schema1(payload: bytes) -> bytes:
    """Wrap a pretty-printed schema1 payload in a libtrust-style pretty JWS.

    libtrust cuts the payload before its final closing brace (``formatLength``), keeps that
    brace and anything after it as ``formatTail``, and splices a ``"signatures"`` array in.
    """
    close = payload.rindex(b"}")
    # formatLength ends after the last non-whitespace byte before the closing brace.
    length = len(payload[:close].rstrip())
    tail = payload[length:]
    protected = {
        "formatLength": length,
        "formatTail": b64url(tail),
        "time": "2020-01-01T00:00:00Z",
    }
    sig = {
        "header": {"jwk": {"crv": "P-256", "kty": "EC", "x": "AAAA", "y": "BBBB"}, "alg": "ES256"},
        "signature": b64url(b"\x01" * 64),
        "protected": b64url(json.dumps(protected).encode()),
    }
    sigs = json.dumps([sig], indent=3).encode()
    return payload[:length] + b',\n   "signatures": ' + sigs + tail
