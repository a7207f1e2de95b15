"""Reachability: what tags, revisions and referrers keep; what unreadable parts force to keep."""
