"""The real-registry harness (tests/realreg.py) and the stored fixtures agree with the registry."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import pytest
import realreg as rr

FIXTURES = rr.ALL_FIXTURES

# copied from a real `docker-registry garbage-collect --dry-run --delete-untagged` (2.8.2) run
M1 = "sha256:2e5d8d49db688c8d0cc267ba2b888a7259515e617547270dc0bebf66e27f02e1"
M2 = "sha256:f9ae7cf8135863643da345f4b051359b0e553f8ed4fd5fdf5b7b7b923e256ae9"
B1 = "sha256:b26d56f0db0cb8d512dfbceeeea3e8e9c70712d7a65790ec5219dfaf802bd207"
B2 = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
SAMPLE_GC_OUTPUT = (
    "m/i\n"
    f"manifest eligible for deletion: {M1}\n"
    f"m/i: marking manifest {M2} \n"  # 2.8.2 really ends this line with a space
    f"m/i: marking blob {B1}\n"
    "x/y\n"
    "\n"
    "2 blobs marked, 1 blobs and 1 manifests eligible for deletion\n"
    f"blob eligible for deletion: {B2}\n"
)


@pytest.fixture
def bins() -> tuple[str, str]:
    return rr.registry_binaries()


# ---------------------------------------------------------------------------------------------
# no binaries needed


def test_require_binaries_skips_locally_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="docker-registry, skopeo"):
        rr.require_binaries()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"CI=true.*docker-registry"):
        rr.require_binaries()
    assert rr.find_binaries() is None


def test_write_config(tmp_path: Path) -> None:
    p = rr.write_config(
        tmp_path / "root", 5123, schema1=True, readonly=True, path=tmp_path / "c.yml"
    )
    cfg = json.loads(Path(p).read_text())
    assert cfg["storage"]["filesystem"]["rootdirectory"] == str(tmp_path / "root")
    assert cfg["storage"]["delete"]["enabled"] is True
    assert cfg["storage"]["maintenance"]["uploadpurging"] == {
        "enabled": False,
        "age": "168h",
        "interval": "24h",
        "dryrun": False,
    }
    assert cfg["storage"]["maintenance"]["readonly"]["enabled"] is True
    assert cfg["http"]["addr"] == "127.0.0.1:5123"
    assert cfg["log"]["level"] == "error"
    assert cfg["compatibility"]["schema1"]["enabled"] is True
    plain = json.loads(Path(rr.write_config(tmp_path, 1, path=tmp_path / "d.yml")).read_text())
    assert "compatibility" not in plain
    assert plain["storage"]["maintenance"]["readonly"]["enabled"] is False


def test_parse_gc_output() -> None:
    r = rr.parse_gc_output(SAMPLE_GC_OUTPUT, "", 0, ["docker-registry", "garbage-collect"])
    assert r.ok and r.error is None
    assert (r.marked, r.eligible_blobs, r.eligible_manifests) == (2, 1, 1)
    assert r.blobs == {B2}
    assert r.manifests == {M1}
    assert r.manifests_by_repo == {("m/i", M1)}
    bad = rr.parse_gc_output("dmg/gamma\n", "failed to garbage collect: failed to mark: x\n", 1, [])
    assert not bad.ok and bad.summary is None
    assert bad.error == "failed to garbage collect: failed to mark: x"


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_tarball_matches_metadata(name: str, tmp_path: Path) -> None:
    meta = rr.load_fixture_meta(name)
    root = rr.extract_fixture(name, tmp_path / "root")
    v2 = root / "docker" / "registry" / "v2"
    assert (v2 / "blobs").is_dir() and (v2 / "repositories").is_dir()
    on_disk = {d: p for d, p in rr.iter_blobs(root)}
    assert {d: p.stat().st_size for d, p in on_disk.items()} == meta["blobs"]
    flipped = {x["digest"] for x in meta["damage"] if x["id"] == "bit-flip"}
    for d, p in on_disk.items():
        actual = "sha256:" + hashlib.sha256(p.read_bytes()).hexdigest()
        if d in flipped:
            assert actual != d
        elif not any(x.get("digest") == d for x in meta["damage"]):
            assert actual == d, f"{name}: blob {d} hashes to {actual}"
    for repo, tags in meta["tags"].items():
        for tag, digest in tags.items():
            link = v2 / "repositories" / repo / "_manifests" / "tags" / tag / "current" / "link"
            text = link.read_bytes()
            assert text.rstrip(b"\n") == digest.encode()


def test_uploads_fixture_fresh_and_stale(tmp_path: Path) -> None:
    meta = rr.load_fixture_meta("uploads")
    root = rr.extract_fixture("uploads", tmp_path / "root")
    assert {(u["kind"], u["stale"]) for u in meta["uploads"]} == {
        ("unfinished", True),
        ("unfinished", False),
        ("posted", True),
        ("cancelled", True),
        ("cancelled", False),
    }
    for up in meta["uploads"]:
        d = root / "docker/registry/v2/repositories" / up["repo"] / "_uploads" / up["uuid"]
        files = sorted(f.relative_to(d).as_posix() for f in d.rglob("*") if f.is_file())
        assert files == up["files"]
        if up["kind"] == "cancelled":  # what the registry keeps of a cancelled upload
            assert files == ["hashstates/sha256/0"] and up["startedat"] is None
        else:
            assert {"data", "startedat"} <= set(files)
        age = time.time() - max(f.stat().st_mtime for f in d.rglob("*"))
        started = (d / "startedat").read_text() if up["startedat"] is not None else None
        if up["stale"]:
            assert started in ("2020-01-02T03:04:05Z", None)
            assert age > 365 * 86400
            assert d.stat().st_mtime < time.time() - 365 * 86400
        else:
            if started is not None:
                assert started.startswith(time.strftime("%Y-", time.gmtime()))
            assert age < 3600


# ---------------------------------------------------------------------------------------------
# the real registry


@pytest.mark.registry
def test_registry_push_pull_roundtrip(bins: tuple[str, str], tmp_path: Path) -> None:
    layer = os.urandom(300)
    cfg = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    with rr.Registry(tmp_path / "root") as reg:
        assert reg.url.startswith("http://127.0.0.1:")
        ld = reg.push_blob("a/b", layer)
        cd = reg.push_blob("a/b", cfg)
        man = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": rr.MT_DOCKER_MANIFEST,
                "config": {"mediaType": rr.MT_DOCKER_CONFIG, "digest": cd, "size": len(cfg)},
                "layers": [{"mediaType": rr.MT_DOCKER_LAYER, "digest": ld, "size": len(layer)}],
            }
        ).encode()
        md = reg.push_manifest("a/b", "t", man, rr.MT_DOCKER_MANIFEST)
        assert md == rr.sha256_digest(man)
        assert reg.pull("a/b", "t") == [md, cd, ld]
        reg.mount_blob("c/d", ld, "a/b")
        uuid = reg.start_upload("c/d", b"partial")
        assert (
            tmp_path / "root/docker/registry/v2/repositories/c/d/_uploads" / uuid / "startedat"
        ).is_file()
        assert reg.catalog() == ["a/b", "c/d"]
        assert reg.tags("a/b") == ["t"] and reg.tags("nope") == []
        reg.delete_manifest("a/b", md)
        assert reg.tags("a/b") == []
        with pytest.raises(AssertionError, match="a/b:t"):
            reg.pull("a/b", "t")
    assert reg.proc is None


@pytest.mark.registry
def test_shared_every_tag_pulls_and_verifies(bins: tuple[str, str], tmp_path: Path) -> None:
    meta = rr.load_fixture_meta("shared")
    src = rr.extract_fixture("shared", tmp_path / "fixture")
    root = rr.copy_tree(src, tmp_path / "copy")
    with rr.Registry(root, readonly=True) as reg:
        catalog = reg.catalog()
        assert catalog == meta["catalog"]
        assert {"org/team", "org/team/app"} <= set(catalog)
        pulled = 0
        for repo in catalog:
            assert reg.tags(repo) == sorted(meta["tags"].get(repo, {}))
            for tag in reg.tags(repo):
                verified = reg.pull(repo, tag)
                assert verified[0] == meta["tags"][repo][tag]
                pulled += 1
        assert pulled == sum(len(t) for t in meta["tags"].values())
        # untagged and deleted revisions: pullable / gone as recorded
        for img in meta["images"]:
            if img["state"] == "deleted":
                with pytest.raises(AssertionError, match=img["digest"]):
                    reg.pull(img["repo"], img["digest"])
            else:
                reg.pull(img["repo"], img["digest"])


@pytest.mark.registry
def test_schema1_pull_verifies_payload_digest(bins: tuple[str, str], tmp_path: Path) -> None:
    meta = rr.load_fixture_meta("schema1")
    root = rr.extract_fixture("schema1", tmp_path / "root")
    d = meta["schema1"]["digest"]
    with rr.Registry(root, schema1=True) as reg:
        body, mt, dcd = reg.get_manifest("legacy/app", "v1")
        assert mt == rr.MT_SCHEMA1_SIGNED and dcd == d
        assert rr.sha256_digest(body) != d  # re-signed on every GET
        assert rr.sha256_digest(rr.schema1_payload(body)) == d
        verified = reg.pull("legacy/app", "v1")
        assert verified[0] == d and set(meta["schema1"]["fsLayers"]) <= set(verified)


@pytest.mark.registry
@pytest.mark.parametrize("name", FIXTURES)
def test_reference_gc_matches_metadata(bins: tuple[str, str], name: str, tmp_path: Path) -> None:
    meta = rr.load_fixture_meta(name)
    root = rr.extract_fixture(name, tmp_path / "root")
    schema1 = meta["registry_config"]["schema1"]
    for key, du in (("default", False), ("delete_untagged", True)):
        want = meta["reference_gc"][key]
        got = rr.reference_gc(root, dry_run=True, delete_untagged=du, schema1=schema1)
        assert got.exit_code == want["exit_code"], got.output
        assert got.summary == want["summary"]
        assert sorted(got.blobs) == want["blobs"]
        assert sorted(got.manifests) == want["manifests"]
        assert got.error == want["error"]
