"""What storage a ``registry serve CONFIG`` process serves, worked out the way the registry does
(the live guard's evidence: which store, read-only or not, a pull-through cache or not).

The configuration is read by :mod:`regfs.storage.regyaml` (YAML 1.1 and the ``REGISTRY_*``
overrides, as measured against Debian's ``docker-registry`` 2.8.2); the store a CONFIG names,
for regfs to open (``--config``), by :mod:`regfs.storage.config` (re-exported here). What
matters here besides:

* ``maintenance.readonly.enabled`` must be a YAML 1.1 boolean (``true``, ``yes``, ``y``, ``on``
  in any of their spellings); anything else (``1``, ``"true"``) stops the registry at start;
* an override below a ``readonly`` written in the file is ignored by the registry (see
  :mod:`regfs.storage.regyaml`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from regfs.storage.config import (
    SUPPORTED_DRIVERS,
    S3Settings,
    StorageDescription,
    describe_storage,
    open_s3,
)
from regfs.storage.regyaml import (
    DEFAULT_ROOTDIRECTORY,
    NOT_DRIVERS,
    PREFIX,
    ConfigError,
    GoMap,
    driver_of,
    filesystem_root,
    load_yaml,
    resolved,
    source_of,
)

__all__ = [
    "DEFAULT_ROOTDIRECTORY",
    "NOT_DRIVERS",
    "PREFIX",
    "SUPPORTED_DRIVERS",
    "ConfigError",
    "S3Settings",
    "Settings",
    "StorageDescription",
    "describe_storage",
    "load_yaml",
    "open_s3",
    "resolve",
]


@dataclass(frozen=True, slots=True)
class Settings:
    """The storage a registry serves, and how each fact was found."""

    driver: str
    rootdirectory: str | None  # filesystem driver only
    root_source: str  # "config", "environment REGISTRY_...", or "default"
    readonly: bool
    readonly_source: str  # "config", "environment REGISTRY_STORAGE", or "default"
    proxy: str | None  # proxy.remoteurl: a pull-through cache writes on every pull
    ignored: tuple[str, ...] = ()  # overrides the registry ignores


def resolve(config_text: str, environ: dict[str, str]) -> Settings:
    """The storage a registry started with this CONFIG and environment serves.

    Raises:
        ConfigError: the registry would not start with these (so this is not what a running
            registry uses), or the file is not YAML.
    """
    storage, sources, ignored, proxy_url = resolved(config_text, environ)
    driver = driver_of(storage)
    root: str | None = None
    root_source = "default"
    if driver == "filesystem":
        root, root_source = filesystem_root(storage, sources)
    readonly, ro_source = _readonly(storage, sources)
    return Settings(
        driver,
        root,
        root_source,
        readonly,
        ro_source,
        proxy_url or None,
        tuple(ignored),
    )


def _readonly(storage: dict[str, Any], sources: dict[str, str]) -> tuple[bool, str]:
    """``maintenance.readonly.enabled`` as the registry's start-up code reads it."""
    maintenance = storage.get("maintenance")
    if not maintenance or "readonly" not in maintenance:
        return False, "default"
    readonly = maintenance["readonly"]
    if not isinstance(readonly, GoMap):
        # The registry panics on this at start ("readonly config key must contain additional
        # keys"): whatever runs was not started with it.
        raise ConfigError("storage.maintenance.readonly is not a mapping the registry accepts")
    if "enabled" not in readonly:
        return False, "default"
    enabled = readonly["enabled"]
    if not isinstance(enabled, bool):
        raise ConfigError(
            f"storage.maintenance.readonly.enabled is {enabled!r}, not a boolean "
            "(the registry does not start with that)"
        )
    keys = ("storage", "maintenance", "maintenance.readonly", "maintenance.readonly.enabled")
    return enabled, source_of(sources, keys)
