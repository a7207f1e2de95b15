"""The JSON Schemas shipped in the package, for tests that validate regfs's documents."""

from __future__ import annotations

import json
from typing import Any


def shipped_schemas() -> tuple[Any, dict[str, Any]]:
    """A jsonschema Registry of the schemas shipped in the package, and each by name."""
    from importlib.resources import files

    from referencing import Registry, Resource

    folder = files("regfs").joinpath("schemas")
    docs = {
        p.name.removesuffix(".json"): json.loads(p.read_text())
        for p in folder.iterdir()
        if p.name.endswith(".json")
    }
    registry = Registry().with_resources(
        (f"https://regfs.invalid/schemas/{n}.json", Resource.from_contents(d))
        for n, d in docs.items()
    )
    return registry, docs


def schema_errors(name: str, doc: Any) -> list[str]:
    """Every way ``doc`` breaks the schema of command ``name`` (at most five), as text."""
    from jsonschema import Draft202012Validator

    registry, docs = shipped_schemas()
    validator = Draft202012Validator(docs[name], registry=registry)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    return [f"{list(e.path)}: {e.message}" for e in errors[:5]]
