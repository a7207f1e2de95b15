"""The store a registry's CONFIG names, for regfs to open (``--config``): a folder or a bucket.

:func:`describe_storage` reads the ``storage`` section the way ``registry serve`` and
``registry garbage-collect`` read it (:mod:`regfs.storage.regyaml`: YAML 1.1, ``REGISTRY_*``
overrides): ``filesystem`` gives its ``rootdirectory``, ``s3`` its parameters as 2.8's ``s3``
driver reads them (:class:`S3Settings`); :func:`open_s3` reaches the bucket as that driver does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from regfs.storage.regyaml import (
    ConfigError,
    driver_of,
    filesystem_root,
    go_sprint,
    resolved,
    source_of,
)

if TYPE_CHECKING:
    from regfs.storage.s3 import S3Storage

SUPPORTED_DRIVERS = ("filesystem", "s3")
# Parameters of 2.8's ``s3`` driver that are booleans, with the driver's defaults.
_S3_BOOLS = {
    "secure": True,
    "skipverify": False,
    "v4auth": True,
    "encrypt": False,
    "forcepathstyle": False,
    "accelerate": False,
    "usedualstack": False,
}
_S3_TEXTS = (
    "accesskey",
    "secretkey",
    "sessiontoken",
    "region",
    "regionendpoint",
    "bucket",
    "rootdirectory",
    "keyid",
    "storageclass",
    "objectacl",
)
# Go's strconv.ParseBool, which the driver applies to a parameter given as text.
_PARSE_BOOL = {
    **dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True),
    **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False),
}


@dataclass(frozen=True, slots=True)
class S3Settings:
    """The ``storage.s3`` parameters as the registry's ``s3`` driver (2.8) reads them.

    ``sources`` maps a parameter to where it came from (``config``, ``environment
    REGISTRY_STORAGE_S3_...``); parameters left at their default are absent from it.
    """

    bucket: str
    region: str
    regionendpoint: str  # "" for AWS itself
    rootdirectory: str  # as written ("" when absent)
    accesskey: str
    secretkey: str
    sessiontoken: str
    secure: bool
    skipverify: bool
    v4auth: bool
    encrypt: bool
    forcepathstyle: bool
    keyid: str
    storageclass: str
    sources: dict[str, str]

    @property
    def prefix(self) -> str:
        """The key prefix of the registry's data: the driver joins ``rootdirectory`` (its
        trailing ``/`` removed) and ``/docker/registry/v2/...``, then strips leading ``/``.
        ``""`` for the bucket's top."""
        return self.rootdirectory.rstrip("/").lstrip("/")

    @property
    def endpoint_url(self) -> str | None:
        """The endpoint to send requests to (None: AWS for ``region``); a ``regionendpoint``
        without a scheme gets ``https://``, or ``http://`` when ``secure`` is false, as the
        driver's SDK does."""
        if not self.regionendpoint:
            return None
        if "://" in self.regionendpoint:
            return self.regionendpoint
        return ("https://" if self.secure else "http://") + self.regionendpoint

    def redacted(self) -> dict[str, Any]:
        """Everything but the secrets, for messages and ``--json``."""
        return {
            "bucket": self.bucket,
            "region": self.region,
            "regionendpoint": self.regionendpoint,
            "rootdirectory": self.rootdirectory,
            "accesskey": "(set)" if self.accesskey else "",
            "secretkey": "(set)" if self.secretkey else "",
            "secure": self.secure,
            "v4auth": self.v4auth,
            "encrypt": self.encrypt,
            "forcepathstyle": self.forcepathstyle,
        }


@dataclass(frozen=True, slots=True)
class StorageDescription:
    """The store a registry CONFIG (with its environment) names: ``driver`` is ``filesystem``
    (then ``rootdirectory``) or ``s3`` (then ``s3``)."""

    driver: str
    rootdirectory: str | None
    root_source: str
    s3: S3Settings | None
    ignored: tuple[str, ...] = ()


def describe_storage(config_text: str, environ: dict[str, str]) -> StorageDescription:
    """The store the registry would use with this CONFIG and environment, read exactly as
    ``registry serve``/``garbage-collect`` read it (``REGISTRY_STORAGE_*`` overrides included:
    ``REGISTRY_STORAGE_S3_BUCKET`` replaces ``storage.s3.bucket``).

    Raises:
        ConfigError: not YAML; no driver or more than one; a driver regfs cannot read
            (``azure``, ``gcs``, ``swift``, ``oss``, ``inmemory``, ...); or an ``s3`` section
            the driver refuses (no bucket, no region, a boolean that is not one).
    """
    storage, sources, ignored, _proxy = resolved(config_text, environ)
    driver = driver_of(storage)
    if driver == "filesystem":
        root, root_source = filesystem_root(storage, sources)
        return StorageDescription(driver, root, root_source, None, tuple(ignored))
    if driver != "s3":
        raise ConfigError(
            f"storage driver {driver!r} is not supported (regfs reads "
            f"{' and '.join(SUPPORTED_DRIVERS)})"
        )
    s3 = _s3_settings(storage.get("s3") or {}, sources)
    return StorageDescription(
        "s3", None, s3.sources.get("rootdirectory", "default"), s3, tuple(ignored)
    )


def _s3_settings(params: dict[str, Any], sources: dict[str, str]) -> S3Settings:
    texts: dict[str, str] = {}
    for name in _S3_TEXTS:
        value = params.get(name)
        texts[name] = "" if value is None else go_sprint(value)
    bools: dict[str, bool] = {}
    for name, default in _S3_BOOLS.items():
        bools[name] = _s3_bool(name, params.get(name), default)
    if not texts["bucket"]:
        raise ConfigError("storage.s3: no bucket parameter (the registry does not start)")
    if not texts["region"]:
        raise ConfigError("storage.s3: no region parameter (the registry does not start)")
    where = {
        name: source_of(sources, ("storage", "s3", f"s3.{name}"))
        for name in (*_S3_TEXTS, *_S3_BOOLS)
        if name in params
    }
    return S3Settings(
        bucket=texts["bucket"],
        region=texts["region"],
        regionendpoint=texts["regionendpoint"],
        rootdirectory=texts["rootdirectory"],
        accesskey=texts["accesskey"],
        secretkey=texts["secretkey"],
        sessiontoken=texts["sessiontoken"],
        secure=bools["secure"],
        skipverify=bools["skipverify"],
        v4auth=bools["v4auth"],
        encrypt=bools["encrypt"],
        forcepathstyle=bools["forcepathstyle"],
        keyid=texts["keyid"],
        storageclass=texts["storageclass"] or "STANDARD",
        sources=where,
    )


def _s3_bool(name: str, value: Any, default: bool) -> bool:
    """A boolean parameter as the driver reads it: absent -> default, a YAML boolean, or text
    that Go's ``strconv.ParseBool`` accepts; anything else stops the registry."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value in _PARSE_BOOL:
        return _PARSE_BOOL[value]
    raise ConfigError(
        f"storage.s3.{name} is {value!r}, not a boolean (the registry does not start)"
    )


def open_s3(settings: S3Settings, *, workers: int = 16) -> S3Storage:
    """The registry's bucket as a :class:`regfs.storage.s3.S3Storage`, reached the way its
    driver reaches it: ``regionendpoint`` (else AWS for ``region``), path-style requests when
    ``forcepathstyle`` is set or an endpoint is given (what S3-compatible servers expect), TLS
    verification unless ``skipverify``; the config's keys, else boto3's usual credential chain
    (environment, profile, instance role), as the driver falls back to the SDK's.

    Needs the extra ``regfs[s3]`` (boto3).
    """
    from regfs.storage.s3 import S3Storage
    from regfs.storage.s3client import make_client

    client = make_client(
        endpoint_url=settings.endpoint_url,
        region=settings.region,
        access_key=settings.accesskey or None,
        secret_key=settings.secretkey or None,
        session_token=settings.sessiontoken or None,
        path_style=settings.forcepathstyle or bool(settings.regionendpoint),
        verify=not settings.skipverify,
        pool=max(32, workers * 2),
    )
    return S3Storage(client, settings.bucket, settings.prefix, workers=workers)
