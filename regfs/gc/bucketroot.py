"""ROOT in a bucket, for the live guard: which bucket and root a registry config names.

A registry serves the same store as ``s3://BUCKET/PREFIX`` when its ``s3`` driver names the
same bucket and a ``rootdirectory`` with the same key prefix (slashes trimmed, as the driver
trims them). The endpoint is not compared: a registry naming the same bucket and root on
another endpoint is taken for the same store (the safe side: a refusal, never a miss).
"""

from __future__ import annotations

from dataclasses import dataclass

V2_BELOW_ROOT = "docker/registry/v2"


@dataclass(frozen=True, slots=True)
class BucketRoot:
    """ROOT in a bucket: the bucket and the key prefix of the registry's ``rootdirectory``
    (slashes trimmed, ``""`` for the bucket's top)."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, v2: str) -> BucketRoot | None:
        """``s3://BUCKET[/PREFIX]/docker/registry/v2`` as a :class:`BucketRoot`; None for a
        path that is not in a bucket."""
        if not v2.startswith("s3://"):
            return None
        rest = v2[len("s3://") :].rstrip("/")
        bucket, _, key = rest.partition("/")
        key = key.removesuffix(V2_BELOW_ROOT).strip("/")
        return cls(bucket, key)

    def describe(self) -> str:
        """``s3://bucket/prefix``, for messages."""
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


def served_bucket(config_text: str, environ: dict[str, str]) -> tuple[BucketRoot, str]:
    """The bucket and root an ``s3`` registry config (with its environment) serves, and
    ``" at ENDPOINT"`` (empty for AWS itself), for messages.

    Raises:
        ConfigError: the config is not one the registry starts with, or not ``s3``.
    """
    # Here: the YAML parser costs 25 ms of every run's start otherwise.
    from regfs.gc.regconfig import ConfigError, describe_storage

    desc = describe_storage(config_text, environ)
    if desc.s3 is None:
        raise ConfigError(f"storage driver {desc.driver!r}, not s3")
    where = f" at {desc.s3.regionendpoint}" if desc.s3.regionendpoint else ""
    return BucketRoot(desc.s3.bucket, desc.s3.prefix), where
