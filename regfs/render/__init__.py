"""Rendering: text and JSON from report values. Returns strings; never prints.

Text rules, the same for every command:

* identifiers (repository names, tags, full digests, paths, run ids) are never cut or
  shortened; digests are shortened to 12 hex digits only where the text says so and ``--json``
  has them in full;
* lines are wrapped to ``width`` at spaces only (:func:`wrap_lines`), continuation lines
  indented two more columns, so a long identifier may stand alone on a line but is never split;
* counts go through :func:`plural`, sizes through :func:`size`, kinds of thing through
  :data:`NOUNS` (never an internal step or kind name).

Modules: :mod:`~regfs.render.base` (the shared pieces), :mod:`~regfs.render.findings`,
:mod:`~regfs.render.tree`, :mod:`~regfs.render.tables`; the JSON documents in
:mod:`~regfs.render.json_inspect` (orphans, check, du) and :mod:`~regfs.render.json_gc` (gc,
rm, restore, trash); their text in :mod:`~regfs.render.text_inspect`,
:mod:`~regfs.render.text_gc` and :mod:`~regfs.render.text_trash`; ``regfs retain``'s
text and JSON in :mod:`~regfs.render.retain`. Everything public is
re-exported here: ``from regfs import render; render.gc_text(outcome)``.
"""

from __future__ import annotations

from regfs.render.base import (
    NOUNS,
    SCHEMA_VERSION,
    noun,
    plural,
    quote,
    rfc3339,
    short_type,
    shorten_digests,
    size,
    to_json,
    wrap_lines,
    wrapped,
)
from regfs.render.findings import FINDING_ORDER, FINDING_TITLES, findings_lines, problem_dict
from regfs.render.json_gc import (
    STEP_TITLES,
    done_actions,
    gc_dict,
    refusal_dict,
    restore_dict,
    rm_dict,
    trash_list_dict,
    trash_purge_dict,
)
from regfs.render.json_inspect import check_dict, du_dict, orphans_dict
from regfs.render.tables import table
from regfs.render.text_gc import (
    gc_estimate_line,
    gc_preview,
    gc_text,
    guard_lines,
    kept_lines,
    rm_preview,
    rm_text,
    skipped_lines,
)
from regfs.render.text_inspect import check_text, du_text, orphans_text, upload_age
from regfs.render.text_trash import (
    restore_text,
    trash_list_text,
    trash_purge_preview,
    trash_purge_text,
)
from regfs.render.tree import TREE_KEYS, tree_dict, tree_json, tree_text, tshort

__all__ = [
    "FINDING_ORDER",
    "FINDING_TITLES",
    "NOUNS",
    "SCHEMA_VERSION",
    "STEP_TITLES",
    "TREE_KEYS",
    "check_dict",
    "check_text",
    "done_actions",
    "du_dict",
    "du_text",
    "findings_lines",
    "gc_dict",
    "gc_estimate_line",
    "gc_preview",
    "gc_text",
    "guard_lines",
    "kept_lines",
    "noun",
    "orphans_dict",
    "orphans_text",
    "plural",
    "problem_dict",
    "quote",
    "refusal_dict",
    "restore_dict",
    "restore_text",
    "rfc3339",
    "rm_dict",
    "rm_preview",
    "rm_text",
    "short_type",
    "shorten_digests",
    "size",
    "skipped_lines",
    "table",
    "to_json",
    "trash_list_dict",
    "trash_list_text",
    "trash_purge_dict",
    "trash_purge_preview",
    "trash_purge_text",
    "tree_dict",
    "tree_json",
    "tree_text",
    "tshort",
    "upload_age",
    "wrap_lines",
    "wrapped",
]
