"""tools/json_diff.py: the same revision twice is identical; a changed output is caught.

The script runs `python -m regfs` of two sources on their own copies of a fixture; these tests
keep to one small fixture and a few cases (a few seconds). Its normalisations are tested
directly: run ids numbered, durations and environmental guard notes replaced, ages compared
with the runs' time spans as tolerance.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRIPT = REPO_ROOT / "tools" / "json_diff.py"
# Cases that print ages (orphans with stale uploads), a plan, and a real run with its trash,
# restore and the tree listings between the steps.
CASES = "orphans-uploads-0,gc-dry-skip,real-gc-trash-restore"


def _json_diff() -> ModuleType:
    spec = importlib.util.spec_from_file_location("json_diff", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("json_diff", mod)
    spec.loader.exec_module(mod)
    return mod


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--no-gen", "--fixtures", "uploads", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_same_revision_is_identical(tmp_path: Path) -> None:
    keep = tmp_path / "keep"
    res = _run("--base", "HEAD", "--new", "HEAD", "--commands", CASES, "--keep", str(keep))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "4 of 4 cases identical" in res.stderr  # the 3 cases and the read-only listing
    kept = (keep / "new" / "uploads" / "real-gc-trash-restore.txt").read_text()
    # it really ran: a trash run was made, listed, restored (by its run id) and purged
    assert '"run_id": "<RUN_ID-1>"' in kept
    assert "$ regfs restore <ROOT> <RUN_ID-1> --json" in kept
    assert '"restored": [' in kept
    assert "f .regfs/trash/<RUN_ID-1>/repositories/up/app/_uploads/" in kept
    orphans = (keep / "base" / "uploads" / "orphans-uploads-0.txt").read_text()
    assert '"age_seconds": "<age: compared apart>"' in orphans
    assert "ages [" in orphans


def test_a_changed_output_is_a_difference(tmp_path: Path) -> None:
    """A copy of this checkout whose JSON loses the last stale upload (patched at the one
    place every layout shares, json.dumps) differs from the original, and the diff says where."""
    patched = tmp_path / "patched"
    shutil.copytree(REPO_ROOT / "regfs", patched / "regfs")
    with open(patched / "regfs" / "__init__.py", "a", encoding="utf-8") as f:
        f.write(
            "\nimport json as _json\n_dumps = _json.dumps\n\n\n"
            "def _patched(obj, *a, **k):\n"
            "    if isinstance(obj, dict) and obj.get('stale_uploads'):\n"
            "        obj = {**obj, 'stale_uploads': obj['stale_uploads'][:-1]}\n"
            "    return _dumps(obj, *a, **k)\n\n\n"
            "_json.dumps = _patched\n"
        )
    res = _run("--base", str(REPO_ROOT), "--new", str(patched), "--commands", "orphans-uploads-0")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "=== uploads / orphans-uploads-0: DIFFERENT" in res.stdout
    assert "--- base/uploads/orphans-uploads-0" in res.stdout
    assert '-      "repository": "up/probe",' in res.stdout
    assert "1 different" in res.stderr


def test_run_ids_are_numbered_by_first_appearance() -> None:
    jd = _json_diff()
    seen: dict[str, str] = {}
    a, b = "20261129T032828Z-3edd3086", "20261129T032829Z-00aa11bb"
    text = f'"run_id": "{a}", "gc": {{"run_id": "{b}"}}, trash/{a}/x'
    assert jd.number_run_ids(text, seen) == (
        '"run_id": "<RUN_ID-1>", "gc": {"run_id": "<RUN_ID-2>"}, trash/<RUN_ID-1>/x'
    )
    assert jd.number_run_ids(f"restore {b}", seen) == "restore <RUN_ID-2>"


def test_only_the_documented_fields_are_normalised() -> None:
    jd = _json_diff()
    doc = {
        "seconds": 1.234,
        "verify_seconds": 0.5,
        "reclaimed_bytes": 10,
        "runs": [{"run_id": "x", "created": "2026-11-29T03:27:17Z", "bytes": 5}],
        "stale_uploads": [{"age_seconds": 100, "size": 3}, {"age_seconds": 7, "size": 4}],
        "guard": [{"kind": "registry_other", "pid": 1}, {"kind": "no_registry", "pid": None}],
        "gc": {"seconds": 2.0, "guard": [{"kind": "registry_other"}], "reclaimed_bytes": 1},
    }
    out, ages = jd.normalise_doc(doc)
    assert ages == [100, 7]
    assert out == {
        "seconds": "<seconds>",
        "verify_seconds": "<seconds>",
        "reclaimed_bytes": 10,
        "runs": [{"run_id": "x", "created": "<created>", "bytes": 5}],
        "stale_uploads": [
            {"age_seconds": "<age: compared apart>", "size": 3},
            {"age_seconds": "<age: compared apart>", "size": 4},
        ],
        "guard": [{"kind": "no_registry", "pid": None}],
        "gc": {"seconds": "<seconds>", "guard": [], "reclaimed_bytes": 1},
    }


def _record(jd: ModuleType, ages: list[int], start: float, end: float) -> object:
    return jd.Record("", ages, start, end, jd.Result([], 0, "", "", start, end))


def test_ages_are_compared_within_the_runs_time_spans() -> None:
    jd = _json_diff()
    # the same upload (started at t=1000) seen by a run at 1100.2-1100.5 and one at 1103.0-1103.4
    a = _record(jd, [100], 1100.2, 1100.5)
    b = _record(jd, [103], 1103.0, 1103.4)
    assert jd.ages_agree(a, b)
    # a start time 5 s off is a difference, however the runs are timed
    assert not jd.ages_agree(a, _record(jd, [108], 1103.0, 1103.4))
    assert not jd.ages_agree(a, _record(jd, [103, 1], 1103.0, 1103.4))


def test_retain_ages_are_compared_apart() -> None:
    jd = _json_diff()
    doc = {
        "repositories": [
            {
                "name": "app",
                "kept": [{"tag": "v2", "pushed_age_seconds": 86400.125}],
                "removed": [{"tag": "v1", "pushed_age_seconds": 172800.5}],
            }
        ]
    }
    out, ages = jd.normalise_doc(doc)
    assert ages == [86400.125, 172800.5]
    repo = out["repositories"][0]
    assert repo["kept"][0]["pushed_age_seconds"] == "<age: compared apart>"
    assert repo["removed"][0] == {"tag": "v1", "pushed_age_seconds": "<age: compared apart>"}


def test_pushed_at_spread_is_deterministic_and_latest_is_newest(tmp_path: Path) -> None:
    """The PUSHED step gives each tag its own pushed-at time, the same on every copy (a
    function of repository, tag and the anchor), at least two hours old; latest the newest."""
    jd = _json_diff()
    times = []
    for copy in ("a", "b"):
        tags = tmp_path / copy / "docker/registry/v2/repositories/org/app/_manifests/tags"
        for t in ("v1", "v2", "v3", "latest"):
            (tags / t / "current").mkdir(parents=True)
            (tags / t / "current" / "link").write_text("sha256:" + "0" * 64)
        assert jd.spread_pushed_at(tmp_path / copy, anchor=1_000_000_000.0) == 4
        times.append(
            {
                t: (tags / t / "current" / "link").stat().st_mtime
                for t in ("v1", "v2", "v3", "latest")
            }
        )
    assert times[0] == times[1]
    mtimes = times[0]
    assert len({mtimes[t] for t in ("v1", "v2", "v3")}) == 3
    assert mtimes["latest"] == max(mtimes.values())
    assert all(m <= 1_000_000_000.0 - 7200 for m in mtimes.values())


def test_retain_cases_run_with_spread_times(tmp_path: Path) -> None:
    """A dry run and a real --trash run then restore on the referrers fixture: identical for
    the same revision, and they really removed tags (the spread times let the rule decide)."""
    keep = tmp_path / "keep"
    cases = "retain-dry-keep-last-1,retain-real-trash-restore"
    res = subprocess.run(
        [sys.executable, str(SCRIPT), "--no-gen", "--fixtures", "referrers", "--base", "HEAD",
         "--new", "HEAD", "--commands", cases, "--keep", str(keep)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    real = (keep / "new" / "referrers" / "retain-real-trash-restore.txt").read_text()
    assert "$ (pushed-at times of 5 tags spread)" in real
    assert '"pushed_age_seconds": "<age: compared apart>"' in real
    # {run_id} is the real run's (the dry run before it printed RUN_ID-1)
    assert "$ regfs restore <ROOT> <RUN_ID-2> --json\nexit 0\n" in real
    assert "d .regfs/trash/<RUN_ID-2>/repositories/" in real
    assert '"restored": [' in real
    dry = (keep / "new" / "referrers" / "retain-dry-keep-last-1.txt").read_text()
    assert '"removed": [\n        {' in dry
