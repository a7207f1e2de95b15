"""``python -m regfs``: the ``regfs`` console script (:func:`regfs.cli.main`)."""

from regfs.cli import main

main()
