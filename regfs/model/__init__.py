"""The model: digests, findings, manifest types and the snapshot; imports nothing above it."""
