"""Reports over a snapshot: orphans, check (fsck), disk usage, the tree view."""
