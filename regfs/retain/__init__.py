"""``regfs retain``: tag retention rules, the tags they select, and the removal plan."""
