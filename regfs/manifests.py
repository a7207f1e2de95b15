"""Manifest parsing: bytes -> :class:`Manifest`, for every media type distribution stores.

The dispatch mirrors distribution 2.8's ``manifestStore.Get``: ``schemaVersion`` 1 is schema1;
``schemaVersion`` 2 switches on ``mediaType``, and an empty ``mediaType`` is tried as an index
(when it has ``manifests``), else as an OCI image manifest. Anything else raises
:class:`ManifestError`, which the scanner turns into an "unparseable manifest" finding.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from regfs.model.digest import VALIDATED as _KNOWN_DIGESTS
from regfs.model.digest import DigestError, parse_digest
from regfs.model.manifest import (
    DOCKER_LIST,
    DOCKER_V1,
    DOCKER_V1_SIGNED,
    DOCKER_V2,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    Manifest,
    ManifestError,
    ManifestKind,
)


def parse_manifest(data: bytes) -> Manifest:
    """Parse manifest bytes or raise :class:`ManifestError`."""
    if not data:
        raise ManifestError("empty manifest")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        # JSONDecodeError and UnicodeDecodeError are ValueErrors, and so is the int-size limit
        # (a number of more than 4300 digits); deep nesting raises RecursionError.
        raise ManifestError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ManifestError("not a JSON object")
    version = doc.get("schemaVersion")
    if version == 1 and not isinstance(version, bool):
        return _schema1(doc)
    if version != 2 or isinstance(version, bool):
        raise ManifestError(f"unsupported schemaVersion {version!r}")
    media_type = doc.get("mediaType", "")
    if not isinstance(media_type, str):
        raise ManifestError("mediaType is not a string")
    if media_type == DOCKER_V2:
        return _image(doc, ManifestKind.DOCKER_V2, media_type)
    if media_type in (DOCKER_LIST, OCI_INDEX):
        kind = ManifestKind.DOCKER_LIST if media_type == DOCKER_LIST else ManifestKind.OCI_INDEX
        return _index(doc, kind, media_type)
    if media_type == OCI_MANIFEST:
        return _image(doc, ManifestKind.OCI_MANIFEST, media_type)
    if media_type == "":
        if isinstance(doc.get("manifests"), list):
            return _index(doc, ManifestKind.OCI_INDEX, media_type)
        return _image(doc, ManifestKind.OCI_MANIFEST, media_type)
    raise ManifestError(f"unrecognized manifest media type {media_type!r}")


def _digest(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ManifestError(f"{where}: digest missing or not a string")
    try:
        return parse_digest(value)
    except DigestError as exc:
        raise ManifestError(f"{where}: {exc}") from None


_new = tuple.__new__


def _descriptor(obj: Any, where: str | tuple[str, int], *, platform: bool = False) -> Descriptor:
    """Parse a descriptor; ``where`` names it in errors (``("layers", 3)`` -> ``layers[3]``)."""
    if type(obj) is dict and not platform:
        # Fast path: the common, valid shape with a digest already seen.
        digest = obj.get("digest")
        size = obj.get("size")
        media_type = obj.get("mediaType", "")
        if (
            type(digest) is str
            and type(size) is int
            and size >= 0
            and type(media_type) is str
            and not obj.get("urls")
        ):
            known = _KNOWN_DIGESTS.get(digest)
            if known is not None:
                return _new(Descriptor, (known, size, _text(media_type), (), None))
    if not isinstance(where, str):
        where = f"{where[0]}[{where[1]}]"
    if not isinstance(obj, dict):
        raise ManifestError(f"{where}: not an object")
    size = obj.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
        raise ManifestError(f"{where}: size is not a non-negative integer")
    media_type = obj.get("mediaType", "")
    if not isinstance(media_type, str):
        raise ManifestError(f"{where}: mediaType is not a string")
    urls = obj.get("urls") or ()
    if not isinstance(urls, list | tuple) or not all(isinstance(u, str) for u in urls):
        raise ManifestError(f"{where}: urls is not a list of strings")
    plat = _platform(obj.get("platform")) if platform else None
    return Descriptor(_digest(obj.get("digest"), where), size, _text(media_type), tuple(urls), plat)


# Media types and platforms repeat across thousands of descriptors: keep one copy of each.
_TEXTS: dict[str, str] = {}
_TEXTS_MAX = 100_000


def _text(value: str) -> str:
    known = _TEXTS.get(value)
    if known is not None:
        return known
    if len(_TEXTS) < _TEXTS_MAX:
        _TEXTS[value] = value
    return value


def _platform(obj: Any) -> str | None:
    if not isinstance(obj, dict):
        return None
    parts = [obj.get("os"), obj.get("architecture"), obj.get("variant")]
    text = "/".join(p for p in parts if isinstance(p, str) and p)
    return _text(text) if text else None


def _subject(doc: dict[str, Any]) -> str | None:
    if "subject" not in doc or doc["subject"] is None:
        return None
    return _descriptor(doc["subject"], "subject").digest


def _artifact_type(doc: dict[str, Any]) -> str | None:
    value = doc.get("artifactType")
    return value if isinstance(value, str) and value else None


def _image(doc: dict[str, Any], kind: ManifestKind, media_type: str) -> Manifest:
    if "config" not in doc:
        raise ManifestError("image manifest without config")
    config = _descriptor(doc["config"], "config")
    layers_raw = doc.get("layers") or []
    if not isinstance(layers_raw, list):
        raise ManifestError("layers is not a list")
    layers = tuple(_descriptor(x, ("layers", i)) for i, x in enumerate(layers_raw))
    return Manifest(kind, media_type, config, layers, (), _subject(doc), _artifact_type(doc))


def _index(doc: dict[str, Any], kind: ManifestKind, media_type: str) -> Manifest:
    raw = doc.get("manifests")
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise ManifestError("manifests is not a list")
    children = tuple(_descriptor(x, ("manifests", i), platform=True) for i, x in enumerate(raw))
    return Manifest(kind, media_type, None, (), children, _subject(doc), _artifact_type(doc))


def _schema1(doc: dict[str, Any]) -> Manifest:
    fs_layers = doc.get("fsLayers")
    if not isinstance(fs_layers, list):
        raise ManifestError("schema1 manifest without fsLayers")
    layers: list[Descriptor] = []
    seen: set[str] = set()
    for i, layer in enumerate(fs_layers):
        if not isinstance(layer, dict):
            raise ManifestError(f"fsLayers[{i}]: not an object")
        d = _digest(layer.get("blobSum"), f"fsLayers[{i}]")
        if d not in seen:  # schema1 repeats empty layers; each blob counts once
            seen.add(d)
            layers.append(
                Descriptor(d, None, "application/vnd.docker.container.image.rootfs.diff+x-gtar")
            )
    media_type = DOCKER_V1_SIGNED if "signatures" in doc else DOCKER_V1
    return Manifest(ManifestKind.SCHEMA1, media_type, None, tuple(layers), (), None, None)


def schema1_payload(data: bytes) -> bytes:
    """The canonical payload of a signed schema1 manifest, whose sha256 is its digest.

    libtrust's pretty JWS keeps the signed bytes as the first ``formatLength`` bytes of the
    document followed by the base64url-decoded ``formatTail`` of a signature's protected header.
    An unsigned manifest is its own payload.
    """
    doc = json.loads(data)
    sigs = doc.get("signatures") if isinstance(doc, dict) else None
    if not sigs:
        return data
    protected = sigs[0].get("protected", "")
    header = json.loads(_b64url(protected))
    length = int(header["formatLength"])
    tail = _b64url(header["formatTail"])
    return data[:length] + tail


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
