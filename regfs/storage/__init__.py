"""Storage access: the only I/O on registry data."""
