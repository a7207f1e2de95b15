"""The README's examples are what regfs prints on the demo storage (tools/readme_examples.py)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

import pytest

from regfs.gc.outcome import GcOutcome

REPO = Path(__file__).resolve().parent.parent


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "readme_examples", REPO / "tools" / "readme_examples.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_readme_examples_match_real_runs() -> None:
    tool = _tool()
    readme = tool.readme_block((REPO / "README.md").read_text())
    assert tool.normalize(readme) == tool.normalize(tool.block()), (
        "README examples are stale: run `python tools/readme_examples.py --write`"
    )


def test_readme_examples_cover_the_everyday_commands() -> None:
    tool = _tool()
    readme = tool.readme_block((REPO / "README.md").read_text())
    for cmd in ("tree", "orphans", "du", "check", "rm"):
        assert f"$ regfs {cmd} demo/registry" in readme


def test_readme_retention_examples_match_real_runs() -> None:
    """The three worked examples of the "Retention" section, on the demo store."""
    tool = _tool()
    text = (REPO / "README.md").read_text()
    readme = tool.readme_block(text, tool.RETAIN_BEGIN, tool.RETAIN_END)
    assert readme.count("$ regfs retain demo/registry") == 3
    assert tool.normalize(readme) == tool.normalize(tool.block(tool.RETAIN_COMMANDS)), (
        "README retention examples are stale: run `python tools/readme_examples.py --write`"
    )


def test_readme_retention_semantics_are_the_issues() -> None:
    """The rule semantics are written down exactly (issue 14), one sentence each tested in
    tests/test_retain_select.py and tests/test_retain_cli.py."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Retention") : text.index("## JSON keys")]
    for sentence in (
        "Patterns are anchored.",
        "Both given: a tag goes only when it is outside the newest N **and** older than D.",
        'Neither given: refuse (exit 2), never "delete every candidate".',
        "Ties break by tag name, deterministically.",
        "refuse that repository (exit 3, named) unless `--by created`.",
        "manifests that were already untagged before the run are not touched",
        "Tags pushed within `--min-age` (default 1h) are never removed.",
        "a tag survives if any rule that covers its repository keeps it; repositories no rule "
        "covers are untouched.",
        "Unknown keys and invalid values are errors naming the line.",
    ):
        assert sentence in section, sentence


def test_readme_library_example_runs_on_a_copy_of_the_demo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (REPO / "README.md").read_text()
    block = text.split("```python\n", 1)[1].split("```", 1)[0]
    assert 'Registry.open("/srv/registry")' in block
    shutil.copytree(REPO / "demo" / "registry", tmp_path / "registry", symlinks=True)
    code = block.replace('"/srv/registry"', repr(str(tmp_path / "registry")))
    # The demo's files are older than the default grace period: the plan has work to do.
    code = code.replace(
        "GcOptions(delete_untagged=True)", "GcOptions(delete_untagged=True, min_age=0)"
    )
    code = code.replace("reg.plan_gc(", "reg.plan_gc(skip_live_check=True, options=")
    code = code.replace("reg.execute(planned,", "reg.execute(planned, skip_live_check=True,")
    scope: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), scope)
    printed = capsys.readouterr().out.strip()
    assert printed.isdigit() and int(printed) > 0
    planned, done = scope["planned"], scope["done"]
    assert isinstance(planned, GcOutcome) and isinstance(done, GcOutcome)
    assert planned.plan.actions and done.executed is not None
    assert done.executed.failed is None
    assert len(done.executed.results) == len(planned.plan.actions)
