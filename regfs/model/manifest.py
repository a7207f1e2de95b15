"""Manifest types: what a parsed manifest is (the parser, :mod:`regfs.manifests`, builds them)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_V1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_V1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"

IMAGE_CONFIG_TYPES = frozenset({OCI_CONFIG, DOCKER_CONFIG})


class ManifestKind(StrEnum):
    """The manifest formats the registry stores (the values are stable JSON strings)."""

    SCHEMA1 = "schema1"
    DOCKER_V2 = "docker-v2"
    DOCKER_LIST = "docker-list"
    OCI_MANIFEST = "oci-manifest"
    OCI_INDEX = "oci-index"


INDEX_KINDS = frozenset({ManifestKind.DOCKER_LIST, ManifestKind.OCI_INDEX})


class ManifestError(ValueError):
    """The bytes are not a manifest distribution can read; the message says why."""


class Descriptor(NamedTuple):
    """A reference from a manifest: a blob or a child manifest (a tuple: cheap to build)."""

    digest: str
    size: int | None
    media_type: str
    urls: tuple[str, ...] = ()
    platform: str | None = None

    @property
    def foreign(self) -> bool:
        """A layer with ``urls`` is fetched from elsewhere and usually not stored locally."""
        return bool(self.urls)


@dataclass(frozen=True, slots=True)
class Manifest:
    """A parsed manifest: what it references (config, layers, index children, subject)."""

    kind: ManifestKind
    media_type: str
    config: Descriptor | None
    layers: tuple[Descriptor, ...]
    children: tuple[Descriptor, ...]
    subject: str | None
    artifact_type: str | None

    @property
    def is_index(self) -> bool:
        """A manifest list or OCI index (it references manifests, not blobs)."""
        return self.kind in INDEX_KINDS

    @property
    def is_artifact(self) -> bool:
        """An OCI 1.1 artifact: ``artifactType`` set, or a config that is not an image config."""
        if self.artifact_type:
            return True
        return (
            self.kind is ManifestKind.OCI_MANIFEST
            and self.config is not None
            and self.config.media_type not in IMAGE_CONFIG_TYPES
        )

    def blob_refs(self) -> tuple[Descriptor, ...]:
        """Config and layers: the blobs a pull of this manifest fetches."""
        return ((self.config,) if self.config else ()) + self.layers

    @property
    def label(self) -> str:
        """What reports call it: image, index, list, artifact or schema1."""
        if self.is_artifact:
            return "artifact"
        return {
            ManifestKind.SCHEMA1: "schema1",
            ManifestKind.DOCKER_V2: "image",
            ManifestKind.OCI_MANIFEST: "image",
            ManifestKind.DOCKER_LIST: "list",
            ManifestKind.OCI_INDEX: "index",
        }[self.kind]
