"""Tables in text: a name column and right-aligned number columns, never cutting a name."""

from __future__ import annotations


def table(rows: list[tuple[str, list[str]]], heads: tuple[str, ...], width: int) -> list[str]:
    """A name column and right-aligned number columns. A name too long for the room left
    by the numbers stands on its own line, whole, with its numbers on the next line."""
    widths = [max([len(h)] + [len(cells[i]) for _, cells in rows]) for i, h in enumerate(heads)]
    numbers = sum(w + 3 for w in widths)
    longest = max([len("REPOSITORY")] + [len(name) for name, _ in rows])
    name_w = max(len("REPOSITORY"), min(longest, width - numbers))

    def line(name: str, cells: list[str]) -> str:
        return (
            f"{name:<{name_w}}"
            + "".join(f"   {c:>{w}}" for c, w in zip(cells, widths, strict=True))
        ).rstrip()

    out = [line("REPOSITORY", list(heads))]
    for name, cells in rows:
        if len(name) > name_w:
            out.append(name)
            out.append(line("", cells))
        else:
            out.append(line(name, cells))
    return out
