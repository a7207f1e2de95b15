"""What was linked since the scan: the executor's look at the store before blobs, links and
revisions go (a push, or a push again, during the run must keep what it references).

Everything is read through a :class:`~regfs.storage.base.Storage`, following symbolic links
as the registry does (this only reads).
"""

from __future__ import annotations

import stat
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping

from regfs.gc.plan import GcPlan
from regfs.gc.steps import Step
from regfs.layout import LAYERS, MANIFESTS, REPOSITORIES, blob_data, join, link_file
from regfs.layout.folders import parse_folder
from regfs.manifests import parse_manifest
from regfs.model.digest import ALGORITHMS, is_hex_for, make_digest, split_digest
from regfs.model.manifest import ManifestError
from regfs.model.snapshot import Snapshot
from regfs.scan import MANIFEST_READ_LIMIT
from regfs.storage.base import DIR, SYMLINK, Storage


def relinked_digests(storage: Storage, wanted: set[str]) -> set[str]:
    """Digests in ``wanted`` that some repository links now (layer link or revision), also
    through symbolic links (this only reads).

    Lists each repository's ``_layers/<alg>`` and ``_manifests/revisions/<alg>`` folders once
    and looks for the link files of the names that match: cheap next to a full scan.
    """
    found: set[str] = set()
    if not wanted:
        return found
    by_alg: dict[str, set[str]] = {}
    for d in wanted:
        alg, hexpart = split_digest(d)
        by_alg.setdefault(alg, set()).add(hexpart)
    for _repo, path, name in _repository_parts(storage):
        if name == LAYERS:
            _match(storage, path, by_alg, found)
        else:
            _match(storage, join(path, _REVISIONS), by_alg, found)
    return found


def _repository_parts(storage: Storage) -> Iterator[tuple[str, str, str]]:
    """``(repository, path, name)`` of every ``_layers`` and ``_manifests`` folder under
    ``repositories/``; through symbolic links too (the registry serves through them; this
    only reads), each folder read once (a link loop or a folder linked twice: folders are
    told apart by where they really are)."""
    top = REPOSITORIES
    try:
        real_top = storage.realpath(top)
        storage.stat(top)
    except OSError:
        return
    stack = [(top, real_top)]
    seen: set[str] = set()
    while stack:
        cur, real = stack.pop()
        if real in seen:
            continue
        try:
            entries = storage.list_dir(cur)
        except OSError:
            continue
        seen.add(real)
        for e in entries:
            path = join(cur, e.name)
            if e.kind == SYMLINK:
                try:
                    if not stat.S_ISDIR(storage.stat(path).st_mode):
                        continue
                except OSError:
                    continue
                sub_real = storage.realpath(path)
            elif e.kind == DIR:
                sub_real = join(real, e.name)
            else:
                continue
            if e.name in (LAYERS, MANIFESTS):
                yield cur[len(top) + 1 :] or ".", path, e.name
            elif not e.name.startswith("_"):
                stack.append((path, sub_real))


# ``_manifests/revisions``, below a repository's ``_manifests`` folder.
_REVISIONS = "revisions"


def _names(storage: Storage, rel: str) -> list[str]:
    try:
        return [name for name, _kind in storage.list_kinds(rel)]
    except OSError:
        return []


def _match(storage: Storage, base: str, by_alg: dict[str, set[str]], found: set[str]) -> None:
    for alg, hexes in by_alg.items():
        names = _names(storage, join(base, alg))
        for h in hexes.intersection(names):
            if storage.exists(link_file(join(join(base, alg), h))):
                found.add(make_digest(alg, h))


def pushed_since(storage: Storage, known: Mapping[str, Collection[str]]) -> set[str]:
    """Manifests linked now that the scan did not know, with everything they reference.

    ``known`` maps each repository to the revisions it may still hold (the scan's, minus
    those the plan removes). A revision link outside it is a manifest pushed, or pushed
    again, since the scan: its blob, config, layers and children (read from the store now,
    recursively) are returned so that neither they nor their layer links are deleted.
    Lists each repository's revision folders once, through symbolic links as the registry
    does; reads only the new manifests.
    """
    new: set[str] = set()
    for repo, path, name in _repository_parts(storage):
        if name == MANIFESTS:
            _new_revisions(storage, join(path, _REVISIONS), known.get(repo, ()), new)
    return referenced_by(storage, new)


def _new_revisions(storage: Storage, base: str, known: Collection[str], into: set[str]) -> None:
    for alg in _names(storage, base):
        if alg not in ALGORITHMS:
            continue
        folder = join(base, alg)
        for h in _names(storage, folder):
            if not is_hex_for(alg, h):
                continue
            d = make_digest(alg, h)
            if d not in known and storage.exists(link_file(join(folder, h))):
                into.add(d)


def referenced_by(storage: Storage, manifests: Iterable[str]) -> set[str]:
    """The manifests with their configs, layers and children (recursively), as stored now.

    A manifest whose blob is missing or unparseable contributes only its own digest."""
    out: set[str] = set()
    stack = list(manifests)
    while stack:
        d = stack.pop()
        if d in out:
            continue
        out.add(d)
        try:
            data = storage.read_file(blob_data(d), MANIFEST_READ_LIMIT + 1, follow=True)[0]
            if len(data) > MANIFEST_READ_LIMIT:
                continue
            m = parse_manifest(data)
        except (OSError, ValueError, ManifestError):
            continue
        out.update(desc.digest for desc in m.blob_refs())
        stack.extend(desc.digest for desc in m.children)
    return out


def expected_revisions(plan: GcPlan, snap: Snapshot) -> Callable[[Step], dict[str, set[str]]]:
    """``step -> {repository: revisions}``: the revision links a run expects to find when
    ``step`` starts. Until the revisions step, what the scan saw; from then on, minus those the
    plan removes. Any other revision link is a manifest pushed (again) since the scan, and a
    planned one still there was pushed again or changed: what it references must stay."""
    seen = {name: set(repo.revisions) for name, repo in snap.repositories.items()}
    after: dict[str, set[str]] | None = None

    def expected(step: Step) -> dict[str, set[str]]:
        nonlocal after
        if step in (Step.TAG, Step.TAG_INDEX, Step.REVISION):
            return seen
        if after is None:
            after = {name: set(revs) for name, revs in seen.items()}
            for a in plan.by_step(Step.REVISION):
                # The folder names the revision (``.../revisions/<alg>/<hex>``).
                folder = parse_folder(a.path)
                if folder is not None and folder.digest:
                    after.get(a.repository or "", set()).discard(folder.digest)
        return after

    return expected
