"""Garbage collection: a pure planner and a single-use executor."""
