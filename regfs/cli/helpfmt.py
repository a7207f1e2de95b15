"""Help formatting: usage lines and sections that read like the README.

Every command is made with ``cls=Command``: ``[ROOT]`` and ``RUN-ID`` instead of click's
``<str>`` placeholders, arguments in their own section before the options.
"""

from __future__ import annotations

import typer
from typer._click.core import Context  # typer 0.29 vendors (a trimmed) click
from typer._click.formatting import HelpFormatter
from typer.core import TyperArgument

EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 problems found; 2 bad input; 3 refused for safety; "
    "4 a deletion step failed part-way; 130 interrupted."
)


class Command(typer.core.TyperCommand):
    """Help that reads like the README: ``[ROOT]``, ``RUN-ID``, no ``<str>`` placeholders."""

    def collect_usage_pieces(self, ctx: Context) -> list[str]:
        """The usage line after the command's name: options, then each argument's name."""
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                pieces.append(usage_name(param))
        return pieces

    def format_options(self, ctx: Context, formatter: HelpFormatter) -> None:
        """An "Arguments" section (each with its help) before the "Options" section."""
        args: list[tuple[str, str]] = []
        opts: list[tuple[str, str]] = []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                help_text = getattr(param, "help", None) or ""
                args.append((usage_name(param), help_text))
            else:
                rv = param.get_help_record(ctx)
                if rv is not None:
                    opts.append(rv)
        if args:
            with formatter.section("Arguments"):
                formatter.write_dl(args)
        if opts:
            with formatter.section("Options"):
                formatter.write_dl(opts)


def usage_name(param: TyperArgument) -> str:
    """An argument as the usage line shows it: its metavar in full (``[ROOT] TARGET...``),
    in brackets when it is optional."""
    name = param.metavar or (param.name or "").upper() + ("..." if param.nargs != 1 else "")
    return name if param.required or name.startswith("[") else f"[{name}]"
