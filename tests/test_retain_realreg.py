"""``regfs retain`` against the real registry (distribution 2.8.2, skopeo), one case per rule.

Images are pushed through the registry's HTTP API (one through skopeo), the tags' pushed-at
times (their current links' mtimes) then set to known times, the registry stopped, and
``regfs retain --trash`` run for real (the live guard on: no registry serves ROOT then). After
the registry restarts: its tag list is the expected one, every kept tag pulls with every digest
verified, every removed tag is 404, and the blobs on disk are exactly those of the surviving
images plus what was there before and untouched (an untagged manifest, an orphan blob). Then
``regfs restore`` of each run brings every removed tag back, pullable.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import realreg as rr
from fixtures import build as fx
from typer.testing import CliRunner

from regfs.cli import app

pytestmark = pytest.mark.registry

NOW = time.time()
D = 86400.0


@pytest.fixture(autouse=True)
def _binaries() -> None:
    rr.require_binaries()


def img(
    seed: str,
    *,
    shared: list[fx.Blob] | None = None,
    created: str = fx.CREATED,
    arch: str = "amd64",
    oci: bool = False,
) -> fx.Manifest:
    """A small image with one layer of its own (plus ``shared`` ones)."""
    layers = [*(shared or []), fx.layer(f"retain-{seed}", 400, oci=oci)]
    return fx.image(seed, layers, created=created, arch=arch, oci=oci)


def closure(m: fx.Manifest) -> set[str]:
    """Everything a pull of ``m`` fetches: its own blob, config, layers, children's."""
    out = {m.digest, *(b.digest for b in m.blobs)}
    for c in m.children:
        out |= closure(c)
    return out


@dataclass
class Case:
    """One rule case: its repository, what is pushed, the retain arguments, the outcome."""

    repo: str
    args: list[str]
    # tag -> (manifest, days since pushed; None: leave the mtime as the push wrote it)
    tags: dict[str, tuple[fx.Manifest, float | None]]
    expect_kept: set[str]
    exit_code: int = 0
    # Manifests not reachable from a tag that must stay anyway (untagged before, referrers).
    also_kept: list[fx.Manifest] = field(default_factory=list)
    # Pushed by digest only (children are pushed with their index).
    untagged: list[fx.Manifest] = field(default_factory=list)
    # Manifests whose subject is a tagged one (signatures).
    referrers: list[fx.Manifest] = field(default_factory=list)
    orphan_blobs: list[bytes] = field(default_factory=list)
    same_mtime: bool = False


def cases(tmp: Path) -> list[Case]:
    base = fx.layer("retain-shared-base", 500)
    out: list[Case] = []
    v = [img(f"kl{i}", shared=[base]) for i in range(4)]
    untagged = img("kl-untagged", shared=[base])
    out.append(
        Case(
            "keep-last/app",
            ["--keep-last", "2"],
            {f"v{i + 1}": (v[i], d) for i, d in enumerate((40, 30, 20, 10))},
            {"v3", "v4"},
            also_kept=[untagged],
            untagged=[untagged],
            orphan_blobs=[b"an orphan blob that was there before"],
        )
    )
    v = [img(f"ot{i}") for i in range(3)]
    out.append(
        Case(
            "older-than/app",
            ["--older-than", "15d"],
            {f"v{i + 1}": (v[i], d) for i, d in enumerate((40, 20, 5))},
            {"v3"},
        )
    )
    v = [img(f"both{i}", shared=[base]) for i in range(5)]
    out.append(
        Case(
            "both/app",
            ["--keep-last", "1", "--older-than", "25d"],
            {f"v{i + 1}": (v[i], d) for i, d in enumerate((50, 40, 30, 20, 2))},
            {"v4", "v5"},  # v4: outside the newest 1 but younger than 25d
        )
    )
    r = {n: img(f"rx-{n}") for n in ("rel-1", "rel-2", "dev-1", "dev-2", "dev-keep", "latest")}
    out.append(
        Case(
            "regex/app",
            ["--tags", "dev-.*", "--keep-tags", "dev-keep|latest", "--older-than", "1d"],
            {n: (m, 10 + i) for i, (n, m) in enumerate(r.items())},
            {"rel-1", "rel-2", "dev-keep", "latest"},
        )
    )
    a, b = img("lt-a"), img("lt-b")
    out.append(
        Case(
            "latest/app",
            ["--older-than", "1d"],
            {"v1": (a, 30), "latest": (b, 30)},
            {"latest"},
        )
    )
    x, y = img("sd-x"), img("sd-y")
    out.append(
        Case(
            "shared-digest/app",
            ["--keep-last", "2"],
            {"old": (x, 30), "stable": (x, 2), "new": (y, 1)},
            {"stable", "new"},  # old goes as a tag; its manifest stays with stable
        )
    )
    common = img("ma-common", arch="s390x", oci=True)
    i1 = fx.index([img("ma-amd", oci=True), img("ma-arm", arch="arm64", oci=True), common])
    i2 = fx.index([img("ma-amd2", oci=True), common])
    out.append(Case("multiarch/app", ["--keep-last", "1"], {"v1": (i1, 20), "v2": (i2, 2)}, {"v2"}))
    s1, s2 = img("sg-1", oci=True), img("sg-2", oci=True)
    sig1 = fx.artifact(fx.SIG_ARTIFACT, fx.signature_payload(s1, "signed/app"), subject=s1)
    sig2 = fx.artifact(fx.SIG_ARTIFACT, fx.signature_payload(s2, "signed/app"), subject=s2)
    out.append(
        Case(
            "signed/app",
            ["--keep-last", "1"],
            {"v1": (s1, 20), "v2": (s2, 2)},
            {"v2"},
            also_kept=[sig2],
            referrers=[sig1, sig2],
        )
    )
    p = {n: img(f"pol-{n}") for n in ("dev-1", "dev-2", "dev-3", "rel-1", "rel-2", "rel-3")}
    policy = tmp / "policy.toml"
    policy.write_text(
        '[[rule]]\nrepo = "policy/*"\ntags = "dev-.*"\nkeep_last = 1\n\n'
        '[[rule]]\nrepo = ["policy/**"]\nkeep_tags = "rel-3|latest"\nolder_than = "1d"\n'
    )
    out.append(
        Case(
            "policy/app",
            ["--policy", str(policy)],
            {n: (m, 30 - i) for i, (n, m) in enumerate(p.items())},
            {"dev-3", "rel-3"},
        )
    )
    e = {n: img(f"eq-{n}") for n in "abc"}
    out.append(
        Case(
            "equal/app",
            ["--keep-last", "1"],
            {n: (m, 30) for n, m in e.items()},
            {"a", "b", "c"},
            exit_code=3,
            same_mtime=True,
        )
    )
    c = {
        "2020": img("cr-2020", created="2020-06-01T00:00:00Z"),
        "2021": img("cr-2021", created="2021-06-01T00:00:00.123456789Z"),
        "2022": img("cr-2022", created="2022-06-01T00:00:00+02:00"),
    }
    out.append(
        Case(
            "created/app",
            ["--by", "created", "--keep-last", "1"],
            {n: (m, 30) for n, m in c.items()},
            {"2022"},
            same_mtime=True,
        )
    )
    return out


def push(reg: rr.Registry, repo: str, m: fx.Manifest, ref: str | None = None) -> None:
    for c in m.children:
        push(reg, repo, c)
    for blob in m.blobs:
        reg.push_blob(repo, blob.data)
    assert reg.push_manifest(repo, ref or m.digest, m.body, m.media_type) == m.digest


def set_pushed(root: Path, repo: str, tag: str, days: float) -> None:
    t = NOW - days * D
    link = root / f"docker/registry/v2/repositories/{repo}/_manifests/tags/{tag}/current/link"
    os.utime(link, (t, t))


def blobs_on_disk(root: Path) -> set[str]:
    return {d for d, _ in rr.iter_blobs(root)}


def retain(root: Path, *args: str) -> Any:
    return CliRunner().invoke(
        app, ["retain", str(root), *args, "--yes", "--trash", "--json", "--min-age", "0"]
    )


def digests_of(items: Iterable[fx.Manifest]) -> set[str]:
    out: set[str] = set()
    for m in items:
        out |= closure(m)
    return out


def test_every_rule_case_through_the_real_registry(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    all_cases = cases(tmp_path)
    with rr.Registry(root) as reg:
        for case in all_cases:
            for tag, (m, _) in case.tags.items():
                push(reg, case.repo, m, tag)
            for m in case.untagged + case.referrers:
                push(reg, case.repo, m)
            for data in case.orphan_blobs:
                reg.push_blob(case.repo, data)
        # One image through skopeo too: what a CI pipeline does.
        layout = tmp_path / "layout"
        sk = img("skopeo-pushed", oci=True)
        fx.oci_layout(layout, sk, "v1")
        assert reg.skopeo_copy(f"oci:{layout}:v1", "skopeo/app", "old") == sk.digest
        assert reg.skopeo_copy(f"oci:{layout}:v1", "skopeo/app", "new") == sk.digest
    all_cases.append(
        Case("skopeo/app", ["--keep-last", "1"], {"old": (sk, 9), "new": (sk, 1)}, {"new"})
    )
    for case in all_cases:
        for tag, (_, days) in case.tags.items():
            set_pushed(root, case.repo, tag, 30 if case.same_mtime else days or 0)
    before_blobs = blobs_on_disk(root)

    runs: list[str] = []
    for case in all_cases:
        scope = [] if "--policy" in case.args else ["--repo", case.repo]  # the file scopes
        res = retain(root, *scope, *case.args)
        assert res.exit_code == case.exit_code, (case.repo, res.stderr, res.stdout[-1500:])
        doc = json.loads(res.stdout)
        if case.exit_code == 3:
            assert [r["name"] for r in doc["refused_repositories"]] == [case.repo]
        (repo_doc,) = doc["repositories"]
        assert {t["tag"] for t in repo_doc["kept"]} == case.expect_kept, case.repo
        removed = set(case.tags) - case.expect_kept
        assert {t["tag"] for t in repo_doc["removed"]} == removed, case.repo
        if removed:
            runs.append(doc["run_id"])

    # What must be on disk: every surviving image whole, plus what was there untouched.
    survivors = [m for c in all_cases for t, (m, _) in c.tags.items() if t in c.expect_kept]
    survivors += [m for c in all_cases for m in c.also_kept]
    orphans = {rr.sha256_digest(d) for c in all_cases for d in c.orphan_blobs}
    assert blobs_on_disk(root) == digests_of(survivors) | orphans
    gone = before_blobs - blobs_on_disk(root)
    assert gone, "the runs freed blobs"

    with rr.Registry(root) as reg:
        for case in all_cases:
            assert reg.tags(case.repo) == sorted(case.expect_kept), case.repo
            for tag in case.expect_kept:
                m = case.tags[tag][0]
                verified = reg.pull(case.repo, tag)
                assert m.digest in verified
            for tag in set(case.tags) - case.expect_kept:
                with pytest.raises(rr.RegistryHTTPError) as info:
                    reg.get_manifest(case.repo, tag)
                assert info.value.status == 404, (case.repo, tag)
            for m in case.also_kept:
                reg.pull(case.repo, m.digest)

    for run_id in reversed(runs):
        res = CliRunner().invoke(app, ["restore", str(root), run_id])
        assert res.exit_code == 0, res.output
    assert blobs_on_disk(root) == before_blobs
    with rr.Registry(root) as reg:
        for case in all_cases:
            assert reg.tags(case.repo) == sorted(case.tags), case.repo
            for tag, (m, _) in case.tags.items():
                assert m.digest in reg.pull(case.repo, tag)
            for m in case.referrers + case.untagged:
                reg.pull(case.repo, m.digest)
