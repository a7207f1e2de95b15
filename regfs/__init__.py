"""regfs: offline inspector, checker and safe garbage collector for registry storage."""

__version__ = "0.1.0"
