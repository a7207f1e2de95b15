"""Which argument is ROOT, for the commands that take more than ROOT (``rm``, ``restore``):
decided from the arguments alone, the filesystem never probed."""

from __future__ import annotations

from regfs.errors import UsageError


def path_like(arg: str) -> bool:
    """Whether an argument can only be a path: ``.``, ``..``, ``/…``, ``./…``, ``~…``, ``…/``,
    ``s3://…``.

    No repository name, tag reference or run id looks like this (a name starts with a
    lowercase letter or digit and never ends with ``/``).
    """
    return (
        arg in (".", "..") or arg.startswith(("/", "./", "../", "~", "s3://")) or arg.endswith("/")
    )


def split_root(
    args: list[str], what: str, *, forms: str = "", single: bool = False
) -> tuple[str | None, list[str]]:
    """ROOT and the rest, for the commands that take more than ROOT (``rm``, ``restore``).

    The rule, decided from the arguments alone (the filesystem is never probed):

    * two or more arguments: the first is ROOT, the rest are ``what``;
    * one argument that looks like a path (:func:`path_like`): it is ROOT, and ``what`` is
      missing (``regfs rm . --dry-run`` says "no target given");
    * one other argument: it is ``what``; ROOT is ``$REGFS_ROOT``, else ``/var/lib/registry``.

    ``single``: exactly one ``what`` is expected; ``forms`` says what one looks like.

    Raises:
        UsageError: no ``what`` given, or more than one when ``single``.
    """
    hint = f"{forms}; " if forms else ""
    if not args:
        raise UsageError(f"no {what} given")
    if len(args) == 1:
        if path_like(args[0]):
            raise UsageError(f"no {what} given ({hint}ROOT is {args[0]!r})")
        return None, args
    root, rest = args[0], args[1:]
    if single and len(rest) > 1:
        raise UsageError(f"one {what} expected after ROOT, got {len(rest)}: {' '.join(rest)}")
    return root, rest
