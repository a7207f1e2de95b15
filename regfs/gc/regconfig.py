"""What storage a ``registry serve CONFIG`` process serves, worked out the way the registry does.

The registry (distribution 2.8) reads CONFIG with a YAML 1.1 parser, then applies every
``REGISTRY_*`` environment variable in name order: the name minus the prefix, split on ``_``,
is a path into the configuration. Measured against Debian's ``docker-registry`` 2.8.2:

* a struct level (``REGISTRY_STORAGE``, ``REGISTRY_PROXY_REMOTEURL``) matches only in capitals;
  ``REGISTRY_storage_...`` is ignored with a warning;
* a map level (everything below ``storage``) matches an existing key case-insensitively, else
  the key is (re)created in lower case, replacing nothing else but that key;
* below a map the YAML parser made itself (``maintenance: {readonly: {...}}``), an override is
  ignored ("map with non-string keys"): ``REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED`` never
  changes a ``readonly`` written in the file, and where the file has none the registry panics at
  start (the key then holds a map of another type);
* the value of an override is itself parsed as YAML;
* ``maintenance.readonly.enabled`` must be a YAML 1.1 boolean (``true``, ``yes``, ``y``, ``on``
  in any of their spellings); anything else (``1``, ``"true"``) stops the registry at start;
* ``rootdirectory`` is ``fmt.Sprint`` of the value, ``/var/lib/registry`` when absent, and is
  relative to the process's working directory;
* one storage driver only (besides ``maintenance``, ``cache``, ``delete``, ``redirect``,
  ``tag``), else the registry does not start.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from regfs.storage.s3 import S3Storage

DEFAULT_ROOTDIRECTORY = "/var/lib/registry"
NOT_DRIVERS = frozenset({"maintenance", "cache", "delete", "redirect", "tag"})
PREFIX = "REGISTRY_"


class ConfigError(Exception):
    """The configuration cannot be read the way the registry reads it."""


class _GoMap(dict[Any, Any]):
    """A mapping the YAML parser made (Go: ``map[interface{}]interface{}``)."""


class _StrMap(dict[str, Any]):
    """A mapping made by an environment override (Go: ``map[string]interface{}``)."""


class _Loader(yaml.SafeLoader):
    """YAML 1.1 as the registry's parser reads it: ``y``/``n`` are booleans too, dates are text,
    every mapping is a :class:`_GoMap`."""


def _bool(loader: yaml.SafeLoader, node: yaml.Node) -> bool:
    assert isinstance(node, yaml.ScalarNode)
    return str(node.value).lower() in ("y", "yes", "true", "on")


def _map(loader: yaml.SafeLoader, node: yaml.Node) -> _GoMap:
    assert isinstance(node, yaml.MappingNode)
    return _GoMap(loader.construct_mapping(node, deep=True))


_BOOL_RE = re.compile(
    r"^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$"
)
_Loader.yaml_implicit_resolvers = {
    k: [
        (tag, rx)
        for tag, rx in v
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
    ]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", _BOOL_RE, list("yYnNtTfFoO"))
_Loader.add_constructor("tag:yaml.org,2002:bool", _bool)
_Loader.add_constructor("tag:yaml.org,2002:map", _map)


# Timestamps stay text, as in Go (the resolver above is gone; an explicit tag is text too).
def _text_node(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    assert isinstance(node, yaml.ScalarNode)
    return str(node.value)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _text_node)


def load_yaml(text: str) -> Any:
    """Parse YAML the way the registry does (see :class:`_Loader`).

    Raises:
        ConfigError: not YAML.
    """
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML ({_one_line(exc)})") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


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
    storage, sources, ignored, proxy_url = _resolved(config_text, environ)
    driver = _driver(storage)
    root: str | None = None
    root_source = "default"
    if driver == "filesystem":
        params = storage.get("filesystem") or {}
        if "rootdirectory" in params:
            root = _go_sprint(params["rootdirectory"])
            root_source = _source(sources, ("storage", "filesystem", "filesystem.rootdirectory"))
        else:
            root = DEFAULT_ROOTDIRECTORY
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


def _driver(storage: dict[str, Any]) -> str:
    drivers = sorted(k for k in storage if k not in NOT_DRIVERS)
    if len(drivers) > 1:
        raise ConfigError(f"more than one storage driver ({', '.join(drivers)})")
    driver = drivers[0] if drivers else ""
    if not driver:
        raise ConfigError("no storage driver configured")
    return driver


def _resolved(
    config_text: str, environ: dict[str, str]
) -> tuple[dict[str, Any], dict[str, str], list[str], str]:
    """``storage`` after every override, where each key came from, the overrides the registry
    ignores, and ``proxy.remoteurl``."""
    doc = load_yaml(config_text)
    if doc is None:
        doc = _GoMap()
    if not isinstance(doc, dict):
        raise ConfigError("not a YAML mapping")
    storage = _storage(doc.get("storage"), "storage")
    proxy_url = _text(_get(doc.get("proxy"), "remoteurl"))
    sources: dict[str, str] = {}
    ignored: list[str] = []
    for name in sorted(k for k in environ if k.startswith(PREFIX)):
        path = name[len(PREFIX) :].split("_")
        value = environ[name]
        if path[0] == "STORAGE":
            if len(path) == 1:
                storage = _storage(load_yaml(value), name)
                sources["storage"] = name
            else:
                key = _override_map(storage, path[1:], value, name, ignored, typed=True)
                if key is not None:
                    sources[key] = name
        elif path == ["PROXY", "REMOTEURL"]:
            proxy_url = _text(load_yaml(value))
    return storage, sources, ignored, proxy_url


def _source(sources: dict[str, str], keys: Iterable[str]) -> str:
    found = "config"
    for k in keys:  # most specific last
        if k in sources:
            found = f"environment {sources[k]}"
    return found


def _get(d: Any, key: str) -> Any:
    return d.get(key) if isinstance(d, dict) else None


def _text(value: Any) -> str:
    return "" if value is None else _go_sprint(value)


def _go_sprint(value: Any) -> str:
    """``fmt.Sprint`` of a YAML value, for the scalars a path can be."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _storage(value: Any, where: str) -> dict[str, Any]:
    """``storage`` as the registry holds it: a map of driver name to a string-keyed map."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: not a mapping")
    out: dict[str, Any] = {}
    for k, v in value.items():
        if v is not None and not isinstance(v, dict):
            raise ConfigError(f"{where}.{k}: not a mapping")
        out[str(k)] = None if v is None else _StrMap({str(a): b for a, b in v.items()})
    return out


def _override_map(
    m: dict[str, Any], path: list[str], payload: str, name: str, ignored: list[str], *, typed: bool
) -> str | None:
    """Apply one override below ``storage`` (Go's ``overwriteMap``); the dotted key it set.

    ``typed``: ``m`` is ``storage`` itself, whose values are string-keyed maps.
    """
    head = path[0]
    if len(path) > 1:
        for k in list(m):
            if str(k).upper() == head:
                value = m[k]
                if value is None:
                    break  # recreated below
                if isinstance(value, _GoMap):
                    ignored.append(name)  # "map with non-string keys"
                    return None
                if isinstance(value, dict):
                    sub = _override_map(value, path[1:], payload, name, ignored, typed=False)
                    return None if sub is None else f"{str(k).lower()}.{sub}"
                return None  # a scalar: Go leaves it alone
    key = head.lower()
    if len(path) > 1:
        fresh = _StrMap()
        sub = _override_map(fresh, path[1:], payload, name, ignored, typed=False)
        m[key] = fresh
        return None if sub is None else f"{key}.{sub}"
    value = load_yaml(payload)
    if typed:
        if value is not None and not isinstance(value, dict):
            raise ConfigError(f"{name}: not a mapping")
        value = None if value is None else _StrMap({str(a): b for a, b in value.items()})
    m[key] = value
    return key


def _readonly(storage: dict[str, Any], sources: dict[str, str]) -> tuple[bool, str]:
    """``maintenance.readonly.enabled`` as the registry's start-up code reads it."""
    maintenance = storage.get("maintenance")
    if not maintenance or "readonly" not in maintenance:
        return False, "default"
    readonly = maintenance["readonly"]
    if not isinstance(readonly, _GoMap):
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
    return enabled, _source(sources, keys)


# ---------------------------------------------------------------------------------------------
# The store a CONFIG names, for regfs to open (``--config``): a folder or an S3 bucket.

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
    storage, sources, ignored, _proxy = _resolved(config_text, environ)
    driver = _driver(storage)
    if driver == "filesystem":
        settings = resolve(config_text, environ)
        return StorageDescription(
            driver, settings.rootdirectory, settings.root_source, None, tuple(ignored)
        )
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
        texts[name] = "" if value is None else _go_sprint(value)
    bools: dict[str, bool] = {}
    for name, default in _S3_BOOLS.items():
        bools[name] = _s3_bool(name, params.get(name), default)
    if not texts["bucket"]:
        raise ConfigError("storage.s3: no bucket parameter (the registry does not start)")
    if not texts["region"]:
        raise ConfigError("storage.s3: no region parameter (the registry does not start)")
    where = {
        name: _source(sources, ("storage", "s3", f"s3.{name}"))
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
