"""The tree of ``regfs tree``: text (drawn with anytree) and its JSON document."""

from __future__ import annotations

from typing import Any

from anytree import Node as ANode
from anytree import RenderTree

from regfs.model.digest import short
from regfs.render.base import SCHEMA_VERSION, plural, short_type, shorten_digests, size, to_json
from regfs.reports.treeview import Node

# A broken tag's reason is shown in the tree when it is this short (the line stays readable on
# 80 columns); otherwise the tree points at `regfs check`.
_TAG_REASON_WIDTH = 44


def _label(node: Node) -> str:
    t = node["type"]
    flags = [f for f in ("missing", "absent", "shared", "foreign", "cycle") if node.get(f)]
    if node.get("unparseable"):
        flags.append("unparseable")
    tail = ("  [" + ", ".join(flags) + "]") if flags else ""
    if t == "registry":
        return str(node["path"])
    if t == "repository":
        return str(node["name"])
    if t == "tag":
        mark = ""
        if node.get("broken"):
            issues = [shorten_digests(i) for i in node.get("issues") or []]
            if not issues:
                mark = "  [broken]"
            elif len(issues) == 1 and len(issues[0]) <= _TAG_REASON_WIDTH:
                mark = f"  [broken: {issues[0]}]"
            else:
                mark = f"  [broken: {plural(len(issues), 'problem')}, see `regfs check`]"
        elif node.get("absent_platforms"):
            absent = ", ".join(p or "no platform" for p in node["absent_platforms"])
            mark = f"  [partial: {absent} absent]"
        # The whole tag, always: it is what a user copies (cosign's sha256-<hex>.sig too).
        return f":{node['name']}" + mark
    if t == "untagged":
        return f"(untagged: {node['count']})"
    if t == "uploads":
        return f"(uploads: {node['count']}, {size(node['size'])})"
    if t in ("manifest", "referrer"):
        parts = [tshort(node["digest"])]
        if node.get("artifact_type"):
            parts.append(short_type(node["artifact_type"]))
        else:
            parts.append(node.get("kind") or "?")
        if node.get("platform"):
            parts.append(node["platform"])
        parts.append(size(node.get("size")))
        prefix = "referrer " if t == "referrer" else ""
        return prefix + "  ".join(parts) + tail
    return f"{t:<6} {tshort(node['digest'])}  {size(node.get('size'))}{tail}"


def tshort(digest: str) -> str:
    """Tree digests: 12 hex digits, the algorithm only when it is not sha256."""
    text = short(digest)
    return text.removeprefix("sha256:")


def tree_text(root: Node) -> str:
    """The tree as ``regfs tree`` prints it: one line per node, drawn with anytree."""

    def build(node: Node, parent: ANode | None) -> ANode:
        a = ANode(_label(node), parent=parent)
        for child in node["children"]:
            build(child, a)
        return a

    top = build(root, None)
    lines = [f"{pre}{n.name}" for pre, _, n in RenderTree(top)]
    if not root["children"]:
        lines.append("(no repositories)")
    return "\n".join(lines)


# Every key of every node type, with the value it has when the tree builder left it out:
# a script reads ``node["shared"]`` without ``.get`` (regfs/schemas/tree.json).
TREE_KEYS: dict[str, dict[str, Any]] = {
    "registry": {"path": None},
    "repository": {"name": None},
    "tag": {"name": None, "broken": False, "issues": [], "absent_platforms": []},
    "manifest": {
        "digest": None,
        "kind": None,
        "size": None,
        "platform": None,
        "artifact_type": None,
        "missing": False,
        "absent": False,
        "unparseable": None,
        "cycle": False,
    },
    "config": {"digest": None, "size": None, "shared": False, "missing": False, "foreign": False},
    "untagged": {"count": 0},
    "uploads": {"count": 0, "size": 0},
}
TREE_KEYS["referrer"] = TREE_KEYS["manifest"]
TREE_KEYS["layer"] = TREE_KEYS["config"]


def tree_dict(node: Node) -> dict[str, Any]:
    """``node`` with every key of its type present, children likewise, ``children`` last."""
    out: dict[str, Any] = {"type": node["type"]}
    for key, default in TREE_KEYS.get(node["type"], {}).items():
        value = node.get(key, default)
        out[key] = list(value) if isinstance(value, list) else value
    for key, value in node.items():
        if key not in out and key != "children":
            out[key] = value
    out["children"] = [tree_dict(c) for c in node["children"]]
    return out


def tree_json(root: Node) -> str:
    """The ``regfs tree --json`` document (regfs/schemas/tree.json)."""
    return to_json({"schema": SCHEMA_VERSION, **tree_dict(root)})
