"""regfs.manifests: every media type distribution stores, and nothing else."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from builder import (
    COSIGN_SIG,
    DOCKER_FOREIGN_LAYER,
    DOCKER_LAYER,
    OCI_EMPTY,
    OCI_LAYER,
    SBOM_SPDX,
    canonical_json,
    schema1_doc,
    sign_schema1,
    tar_gz,
)
from builder import Blob as BBlob
from hypothesis import example, given, settings
from hypothesis import strategies as st

from regfs.manifests import parse_manifest, schema1_payload
from regfs.model.manifest import (
    DOCKER_CONFIG,
    DOCKER_LIST,
    DOCKER_V1,
    DOCKER_V1_SIGNED,
    DOCKER_V2,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    Manifest,
    ManifestError,
    ManifestKind,
)


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


CONFIG_DATA = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
CONFIG = sha(CONFIG_DATA)
L1_DATA, _ = tar_gz({"a": b"one"})
L2_DATA, _ = tar_gz({"b": b"two"})
L1, L2 = sha(L1_DATA), sha(L2_DATA)


def desc(digest: str, size: int, media_type: str, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "size": size, "digest": digest, **extra}


def docker_v2() -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": DOCKER_V2,
        "config": desc(CONFIG, len(CONFIG_DATA), DOCKER_CONFIG),
        "layers": [
            desc(L1, len(L1_DATA), DOCKER_LAYER),
            desc(L2, len(L2_DATA), DOCKER_LAYER),
        ],
    }


def oci_manifest(**extra: Any) -> dict[str, Any]:
    return {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": desc(CONFIG, len(CONFIG_DATA), OCI_CONFIG),
        "layers": [desc(L1, len(L1_DATA), OCI_LAYER)],
        **extra,
    }


def parse(doc: dict[str, Any]) -> Manifest:
    return parse_manifest(canonical_json(doc))


# --- image manifests --------------------------------------------------------------------------


def test_docker_schema2() -> None:
    data = json.dumps(docker_v2(), indent=3).encode()  # docker pushes pretty JSON
    m = parse_manifest(data)
    assert m.kind is ManifestKind.DOCKER_V2
    assert m.media_type == DOCKER_V2
    assert m.config == Descriptor(CONFIG, len(CONFIG_DATA), DOCKER_CONFIG)
    assert [x.digest for x in m.layers] == [L1, L2]
    assert [x.size for x in m.layers] == [len(L1_DATA), len(L2_DATA)]
    assert m.layers[0].media_type == DOCKER_LAYER
    assert m.children == ()
    assert m.subject is None
    assert m.artifact_type is None
    assert not m.is_index
    assert not m.is_artifact
    assert m.label == "image"
    assert [x.digest for x in m.blob_refs()] == [CONFIG, L1, L2]


def test_oci_manifest() -> None:
    m = parse(oci_manifest(annotations={"org.opencontainers.image.created": "2020"}))
    assert m.kind is ManifestKind.OCI_MANIFEST
    assert m.media_type == OCI_MANIFEST
    assert m.config is not None and m.config.media_type == OCI_CONFIG
    assert [x.digest for x in m.blob_refs()] == [CONFIG, L1]
    assert m.label == "image"
    assert not m.is_artifact


def test_manifest_without_layers_key() -> None:
    doc = oci_manifest()
    del doc["layers"]
    m = parse(doc)
    assert m.layers == ()
    assert [x.digest for x in m.blob_refs()] == [CONFIG]


def test_foreign_layer_with_urls() -> None:
    gz, _ = tar_gz({"base": b"windows"})
    url = f"https://mcr.microsoft.com/v2/windows/blobs/{sha(gz)}"
    doc = docker_v2()
    doc["layers"].insert(0, desc(sha(gz), len(gz), DOCKER_FOREIGN_LAYER, urls=[url]))
    m = parse(doc)
    assert m.layers[0].urls == (url,)
    assert m.layers[0].foreign
    assert m.layers[0].media_type == DOCKER_FOREIGN_LAYER
    assert not m.layers[1].foreign
    assert m.layers[1].urls == ()


def test_descriptor_without_size() -> None:
    doc = oci_manifest()
    del doc["layers"][0]["size"]
    assert parse(doc).layers[0].size is None


# --- indexes ----------------------------------------------------------------------------------


def _children(n: int = 2) -> list[dict[str, Any]]:
    plats = [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux", "variant": "v8"},
        {"architecture": "amd64", "os": "windows", "os.version": "10.0.17763.1"},
    ]
    return [
        desc(sha(f"child {i}".encode()), 400 + i, OCI_MANIFEST, platform=plats[i % 3])
        for i in range(n)
    ]


def test_docker_manifest_list() -> None:
    children = _children(3)
    for c in children:
        c["mediaType"] = DOCKER_V2
    m = parse({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": children})
    assert m.kind is ManifestKind.DOCKER_LIST
    assert m.is_index
    assert m.label == "list"
    assert m.config is None
    assert m.layers == ()
    assert m.blob_refs() == ()
    assert [c.digest for c in m.children] == [c["digest"] for c in children]
    assert [c.platform for c in m.children] == ["linux/amd64", "linux/arm64/v8", "windows/amd64"]
    assert [c.size for c in m.children] == [400, 401, 402]


def test_oci_index_nested() -> None:
    inner = canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": _children()})
    outer = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            desc(sha(inner), len(inner), OCI_INDEX),
            desc(sha(b"x"), 1, OCI_MANIFEST, platform={"os": "linux"}),
            desc(sha(b"y"), 1, OCI_MANIFEST, platform="junk"),
        ],
    }
    m = parse(outer)
    assert m.kind is ManifestKind.OCI_INDEX
    assert m.label == "index"
    assert [c.digest for c in m.children] == [sha(inner), sha(b"x"), sha(b"y")]
    assert [c.media_type for c in m.children] == [OCI_INDEX, OCI_MANIFEST, OCI_MANIFEST]
    assert [c.platform for c in m.children] == [None, "linux", None]
    assert parse_manifest(inner).children[1].platform == "linux/arm64/v8"


def test_index_without_manifests_or_with_null() -> None:
    assert parse({"schemaVersion": 2, "mediaType": OCI_INDEX}).children == ()
    assert parse({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": None}).children == ()


# --- OCI 1.1 artifacts and referrers ----------------------------------------------------------


def test_artifact_with_artifact_type_and_subject() -> None:
    subject = sha(b"the image")
    empty = b"{}"
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": SBOM_SPDX,
        "config": desc(sha(empty), 2, OCI_EMPTY),
        "layers": [desc(sha(b"sbom"), 4, SBOM_SPDX)],
        "subject": desc(subject, 9, OCI_MANIFEST),
        "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
    }
    m = parse(doc)
    assert m.subject == subject
    assert m.artifact_type == SBOM_SPDX
    assert m.is_artifact
    assert m.label == "artifact"
    assert [x.digest for x in m.blob_refs()] == [sha(empty), sha(b"sbom")]


def test_artifact_by_config_media_type_only() -> None:
    doc = oci_manifest()
    doc["config"]["mediaType"] = "application/vnd.cncf.helm.config.v1+json"
    m = parse(doc)
    assert m.artifact_type is None
    assert m.is_artifact
    assert m.label == "artifact"
    # A docker schema2 manifest is never called an artifact.
    d = docker_v2()
    d["config"]["mediaType"] = "application/vnd.cncf.helm.config.v1+json"
    assert not parse(d).is_artifact


def test_index_with_subject_and_artifact_type() -> None:
    subject = sha(b"img")
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "artifactType": COSIGN_SIG,
        "manifests": _children(1),
        "subject": desc(subject, 3, OCI_MANIFEST),
    }
    m = parse(doc)
    assert m.subject == subject
    assert m.artifact_type == COSIGN_SIG
    assert m.label == "artifact"


def test_null_subject_and_empty_artifact_type_are_absent() -> None:
    m = parse(oci_manifest(subject=None, artifactType=""))
    assert m.subject is None
    assert m.artifact_type is None
    assert not m.is_artifact


# --- empty mediaType ----------------------------------------------------------------------------


def test_empty_media_type_with_manifests_is_an_index() -> None:
    m = parse({"schemaVersion": 2, "manifests": _children()})
    assert m.kind is ManifestKind.OCI_INDEX
    assert m.media_type == ""
    assert len(m.children) == 2
    m2 = parse({"schemaVersion": 2, "mediaType": "", "manifests": []})
    assert m2.kind is ManifestKind.OCI_INDEX


def test_empty_media_type_otherwise_is_an_oci_manifest() -> None:
    doc = oci_manifest()
    del doc["mediaType"]
    m = parse(doc)
    assert m.kind is ManifestKind.OCI_MANIFEST
    assert m.media_type == ""
    assert [x.digest for x in m.blob_refs()] == [CONFIG, L1]
    with pytest.raises(ManifestError, match="without config"):
        parse({"schemaVersion": 2, "layers": []})


# --- schema1 ----------------------------------------------------------------------------------


def _layers() -> list[BBlob]:
    return [BBlob(L1, len(L1_DATA), L1_DATA), BBlob(L2, len(L2_DATA), L2_DATA)]


def test_schema1_unsigned() -> None:
    doc = schema1_doc("library/app", "v1", _layers())
    # schema1 repeats the empty layer: each blob counts once.
    doc["fsLayers"].append({"blobSum": L1})
    payload = json.dumps(doc, indent=3).encode()
    m = parse_manifest(payload)
    assert m.kind is ManifestKind.SCHEMA1
    assert m.media_type == DOCKER_V1
    assert [x.digest for x in m.layers] == [L2, L1]
    assert all(x.size is None for x in m.layers)
    assert m.config is None
    assert m.label == "schema1"
    assert schema1_payload(payload) == payload


def test_schema1_signed_jws_and_its_payload() -> None:
    payload = json.dumps(schema1_doc("library/app", "v1", _layers()), indent=3).encode()
    jws = sign_schema1(payload)
    assert b'"signatures"' in jws
    assert jws != payload
    m = parse_manifest(jws)
    assert m.kind is ManifestKind.SCHEMA1
    assert m.media_type == DOCKER_V1_SIGNED
    assert [x.digest for x in m.layers] == [L2, L1]
    # The digest of a signed schema1 manifest is the sha256 of its canonical payload.
    got = schema1_payload(jws)
    assert got == payload
    assert sha(got) != sha(jws)


def test_schema1_payload_with_a_hand_written_protected_header() -> None:
    payload = b'{\n   "schemaVersion": 1,\n   "fsLayers": []\n}'
    length = payload.index(b"[]") + 2
    protected = {"formatLength": length, "formatTail": "Cn0", "time": "2016-01-01T00:00:00Z"}
    b64 = json.dumps(protected).encode()
    import base64

    prot = base64.urlsafe_b64encode(b64).decode().rstrip("=")
    jws = (
        payload[:length]
        + b',\n   "signatures": [{"header": {"alg": "ES256"}, "signature": "AA", "protected": "'
        + prot.encode()
        + b'"}]\n}'
    )
    assert schema1_payload(jws) == payload
    assert parse_manifest(jws).media_type == DOCKER_V1_SIGNED


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        ({"schemaVersion": 1}, "without fsLayers"),
        ({"schemaVersion": 1, "fsLayers": {}}, "without fsLayers"),
        ({"schemaVersion": 1, "fsLayers": ["x"]}, r"fsLayers\[0\]: not an object"),
        ({"schemaVersion": 1, "fsLayers": [{"blobSum": "sha256:abc"}]}, r"fsLayers\[0\]"),
        ({"schemaVersion": 1, "fsLayers": [{}]}, "digest missing"),
    ],
)
def test_bad_schema1(doc: dict[str, Any], match: str) -> None:
    with pytest.raises(ManifestError, match=match):
        parse(doc)


# --- rejections -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "empty manifest"),
        (b"not json", "not JSON"),
        (b"\xff\xfe\x00garbage", "not JSON"),
        (b"[]", "not a JSON object"),
        (b'"string"', "not a JSON object"),
        (b"null", "not a JSON object"),
        (b"{}", "unsupported schemaVersion None"),
        (b'{"schemaVersion": 3}', "unsupported schemaVersion 3"),
        (b'{"schemaVersion": "2"}', "unsupported schemaVersion '2'"),
        (b'{"schemaVersion": true}', "unsupported schemaVersion True"),
        (b'{"schemaVersion": 2, "mediaType": "text/plain"}', "unrecognized manifest media type"),
        (
            b'{"schemaVersion": 2, "mediaType": "application/vnd.oci.artifact.manifest.v1+json"}',
            "unrecognized manifest media type",
        ),
        (b'{"schemaVersion": 2, "mediaType": 5}', "mediaType is not a string"),
        (b'{"schemaVersion": 2, "mediaType": null}', "mediaType is not a string"),
        (b"1" * 5000, "not JSON"),  # past Python's int-digits limit: a ValueError
        (b"[" * 100_000 + b"]" * 100_000, "not JSON"),  # deep nesting: a RecursionError
        (b'{"schemaVersion": 2', "not JSON"),
    ],
)
def test_not_a_manifest(data: bytes, match: str) -> None:
    with pytest.raises(ManifestError, match=match):
        parse_manifest(data)


def _mutated(path: list[Any], value: Any) -> dict[str, Any]:
    doc: Any = oci_manifest(subject=desc(CONFIG, 1, OCI_MANIFEST))
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return dict(doc)


@pytest.mark.parametrize(
    ("path", "value", "match"),
    [
        (["config"], "x", "config: not an object"),
        (["config"], None, "config: not an object"),
        (["layers"], {"0": {}}, "layers is not a list"),
        (["layers", 0, "digest"], "sha256:" + "A" * 64, r"layers\[0\]"),
        (["layers", 0, "digest"], None, r"layers\[0\]: digest missing"),
        (["layers", 0, "digest"], "md5:" + "a" * 32, "unknown digest algorithm"),
        (["layers", 0, "size"], -1, "size is not a non-negative integer"),
        (["layers", 0, "size"], True, "size is not a non-negative integer"),
        (["layers", 0, "size"], 1.5, "size is not a non-negative integer"),
        (["layers", 0, "mediaType"], ["x"], "mediaType is not a string"),
        (["layers", 0, "urls"], "https://x", "urls is not a list"),
        (["layers", 0, "urls"], [1], "urls is not a list"),
        (["subject"], "sha256:" + "a" * 64, "subject: not an object"),
        (["subject", "digest"], "sha256:zz", "subject"),
    ],
)
def test_bad_descriptors(path: list[Any], value: Any, match: str) -> None:
    with pytest.raises(ManifestError, match=match):
        parse(_mutated(path, value))


def test_bad_index() -> None:
    with pytest.raises(ManifestError, match="manifests is not a list"):
        parse({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": "x"})
    with pytest.raises(ManifestError, match=r"manifests\[1\]"):
        parse({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": [*_children(1), 5]})


# --- never anything but ManifestError -----------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)

_KEYS = [
    "schemaVersion",
    "mediaType",
    "config",
    "layers",
    "manifests",
    "subject",
    "artifactType",
    "fsLayers",
    "signatures",
    "digest",
    "size",
    "urls",
    "platform",
    "blobSum",
]
_MEDIA = [DOCKER_V2, DOCKER_LIST, OCI_MANIFEST, OCI_INDEX, DOCKER_V1, "", "x"]


def _descriptorish(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(
        {},
        optional={
            "mediaType": st.sampled_from(_MEDIA) | inner,
            "digest": st.sampled_from([CONFIG, L1, "sha256:", "md5:abc", ""]) | inner,
            "size": st.integers(-2, 5) | inner,
            "urls": st.lists(st.text(max_size=5), max_size=2) | inner,
            "platform": st.fixed_dictionaries({}, optional={"os": inner, "architecture": inner}),
            "blobSum": st.sampled_from([L1, L2]) | inner,
        },
    )


manifestish = st.recursive(
    json_values,
    lambda inner: (
        st.fixed_dictionaries(
            {},
            optional={
                "schemaVersion": st.sampled_from([1, 2, 2.0, True, "2"]) | inner,
                "mediaType": st.sampled_from(_MEDIA) | inner,
                "config": _descriptorish(inner) | inner,
                "layers": st.lists(_descriptorish(inner) | inner, max_size=3) | inner,
                "manifests": st.lists(_descriptorish(inner) | inner, max_size=3) | inner,
                "fsLayers": st.lists(_descriptorish(inner) | inner, max_size=3) | inner,
                "subject": _descriptorish(inner) | inner,
                "artifactType": inner,
                "signatures": inner,
            },
        )
        | st.dictionaries(st.sampled_from(_KEYS), inner, max_size=4)
    ),
    max_leaves=30,
)


def _check(data: bytes) -> None:
    try:
        m = parse_manifest(data)
    except ManifestError as exc:
        assert str(exc)
    else:
        assert isinstance(m, Manifest)
        for d in m.blob_refs() + m.children:
            assert d.digest.startswith(("sha256:", "sha384:", "sha512:"))


@given(st.binary(max_size=300))
@example(b"\x00")
@example(b"\xef\xbb\xbf{}")
@example('{"schemaVersion":2}'.encode("utf-16"))
@example(b'{"schemaVersion": 1e400}')
@example(b'{"schemaVersion": NaN}')
def test_arbitrary_bytes_raise_only_manifest_error(data: bytes) -> None:
    _check(data)


@settings(max_examples=300)
@given(manifestish)
def test_arbitrary_json_raises_only_manifest_error(doc: Any) -> None:
    _check(json.dumps(doc).encode())


@given(st.sampled_from([docker_v2(), oci_manifest()]), st.integers(0, 200))
def test_truncated_manifests_raise_only_manifest_error(doc: dict[str, Any], cut: int) -> None:
    data = canonical_json(doc)
    with pytest.raises(ManifestError):
        parse_manifest(data[: min(cut, len(data) - 1)])


def test_repeated_media_types_and_platforms_share_one_string() -> None:
    """Thousands of descriptors name the same few media types: one copy is kept of each."""
    a = parse_manifest(json.dumps(docker_v2()).encode())
    b = parse_manifest(json.dumps(docker_v2(), indent=2).encode())
    assert a.layers[0].media_type is b.layers[0].media_type
    assert a.layers[0].media_type is a.layers[1].media_type
    assert a.config is not None and b.config is not None
    assert a.config.media_type is b.config.media_type
    child = desc(sha(b"m"), 1, OCI_MANIFEST, platform={"os": "linux", "architecture": "arm64"})
    idx = {"schemaVersion": 2, "mediaType": OCI_INDEX}
    i1 = parse_manifest(json.dumps({**idx, "manifests": [child]}).encode())
    i2 = parse_manifest(json.dumps({**idx, "manifests": [child, child]}).encode())
    assert i1.children[0].platform == "linux/arm64"
    assert i1.children[0].platform is i2.children[1].platform
