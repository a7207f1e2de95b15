"""Every default regfs applies, in one place: the CLI's option defaults (as the text the help
shows), the library's keyword defaults (in seconds), and nowhere else.

``tests/test_defaults.py`` checks that no other module spells these values.
"""

from __future__ import annotations

from regfs.duration import parse_duration

# The grace period of gc, rm and retain: anything younger is kept (a push in progress).
MIN_AGE_TEXT = "1h"
MIN_AGE: float = parse_duration(MIN_AGE_TEXT)

# Unfinished uploads started before this are stale: the registry's own upload purge age.
UPLOADS_OLDER_THAN_TEXT = "168h"
UPLOADS_OLDER_THAN: float = parse_duration(UPLOADS_OLDER_THAN_TEXT)

# ``regfs trash purge``: trash runs made longer ago than this go.
TRASH_OLDER_THAN_TEXT = "7d"
TRASH_OLDER_THAN: float = parse_duration(TRASH_OLDER_THAN_TEXT)
