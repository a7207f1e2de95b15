"""The registry's configuration file, read the way the registry (distribution 2.8) reads it.

The registry reads CONFIG with a YAML 1.1 parser, then applies every ``REGISTRY_*``
environment variable in name order: the name minus the prefix, split on ``_``, is a path into
the configuration. Measured against Debian's ``docker-registry`` 2.8.2:

* a struct level (``REGISTRY_STORAGE``, ``REGISTRY_PROXY_REMOTEURL``) matches only in capitals;
  ``REGISTRY_storage_...`` is ignored with a warning;
* a map level (everything below ``storage``) matches an existing key case-insensitively, else
  the key is (re)created in lower case, replacing nothing else but that key;
* below a map the YAML parser made itself (``maintenance: {readonly: {...}}``), an override is
  ignored ("map with non-string keys"): ``REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED`` never
  changes a ``readonly`` written in the file, and where the file has none the registry panics at
  start (the key then holds a map of another type);
* the value of an override is itself parsed as YAML;
* ``rootdirectory`` is ``fmt.Sprint`` of the value, ``/var/lib/registry`` when absent, and is
  relative to the process's working directory;
* one storage driver only (besides ``maintenance``, ``cache``, ``delete``, ``redirect``,
  ``tag``), else the registry does not start.

:func:`resolved` gives the ``storage`` section after every override (and where each key came
from); :mod:`regfs.storage.config` reads the store it names, :mod:`regfs.gc.regconfig` what
the live guard needs (read-only mode, pull-through proxy).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import yaml

DEFAULT_ROOTDIRECTORY = "/var/lib/registry"
NOT_DRIVERS = frozenset({"maintenance", "cache", "delete", "redirect", "tag"})
PREFIX = "REGISTRY_"


class ConfigError(Exception):
    """The configuration cannot be read the way the registry reads it."""


class GoMap(dict[Any, Any]):
    """A mapping the YAML parser made (Go: ``map[interface{}]interface{}``)."""


class StrMap(dict[str, Any]):
    """A mapping made by an environment override (Go: ``map[string]interface{}``)."""


class _Loader(yaml.SafeLoader):
    """YAML 1.1 as the registry's parser reads it: ``y``/``n`` are booleans too, dates are text,
    every mapping is a :class:`GoMap`."""


def _bool(loader: yaml.SafeLoader, node: yaml.Node) -> bool:
    assert isinstance(node, yaml.ScalarNode)
    return str(node.value).lower() in ("y", "yes", "true", "on")


def _map(loader: yaml.SafeLoader, node: yaml.Node) -> GoMap:
    assert isinstance(node, yaml.MappingNode)
    return GoMap(loader.construct_mapping(node, deep=True))


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


def driver_of(storage: dict[str, Any]) -> str:
    """The one storage driver ``storage`` configures.

    Raises:
        ConfigError: none, or more than one (the registry does not start).
    """
    drivers = sorted(k for k in storage if k not in NOT_DRIVERS)
    if len(drivers) > 1:
        raise ConfigError(f"more than one storage driver ({', '.join(drivers)})")
    driver = drivers[0] if drivers else ""
    if not driver:
        raise ConfigError("no storage driver configured")
    return driver


def resolved(
    config_text: str, environ: dict[str, str]
) -> tuple[dict[str, Any], dict[str, str], list[str], str]:
    """``storage`` after every override, where each key came from, the overrides the registry
    ignores, and ``proxy.remoteurl``.

    Raises:
        ConfigError: not YAML, not a mapping, a ``storage`` section that is not one.
    """
    doc = load_yaml(config_text)
    if doc is None:
        doc = GoMap()
    if not isinstance(doc, dict):
        raise ConfigError("not a YAML mapping")
    storage = _storage(doc.get("storage"), "storage")
    proxy_url = text_of(get_key(doc.get("proxy"), "remoteurl"))
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
            proxy_url = text_of(load_yaml(value))
    return storage, sources, ignored, proxy_url


def source_of(sources: dict[str, str], keys: Iterable[str]) -> str:
    """Where the most specific of ``keys`` (dotted, least specific first) came from:
    ``config``, or ``environment REGISTRY_...``."""
    found = "config"
    for k in keys:  # most specific last
        if k in sources:
            found = f"environment {sources[k]}"
    return found


def get_key(d: Any, key: str) -> Any:
    """``d[key]`` when ``d`` is a mapping, else None."""
    return d.get(key) if isinstance(d, dict) else None


def text_of(value: Any) -> str:
    """A YAML value as text (``""`` for none)."""
    return "" if value is None else go_sprint(value)


def go_sprint(value: Any) -> str:
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
        out[str(k)] = None if v is None else StrMap({str(a): b for a, b in v.items()})
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
                if isinstance(value, GoMap):
                    ignored.append(name)  # "map with non-string keys"
                    return None
                if isinstance(value, dict):
                    sub = _override_map(value, path[1:], payload, name, ignored, typed=False)
                    return None if sub is None else f"{str(k).lower()}.{sub}"
                return None  # a scalar: Go leaves it alone
    key = head.lower()
    if len(path) > 1:
        fresh = StrMap()
        sub = _override_map(fresh, path[1:], payload, name, ignored, typed=False)
        m[key] = fresh
        return None if sub is None else f"{key}.{sub}"
    value = load_yaml(payload)
    if typed:
        if value is not None and not isinstance(value, dict):
            raise ConfigError(f"{name}: not a mapping")
        value = None if value is None else StrMap({str(a): b for a, b in value.items()})
    m[key] = value
    return key


def filesystem_root(storage: dict[str, Any], sources: dict[str, str]) -> tuple[str, str]:
    """``(rootdirectory, where it came from)`` of a ``filesystem`` storage section: the
    driver's ``fmt.Sprint`` of the value, ``/var/lib/registry`` when absent."""
    params = storage.get("filesystem") or {}
    if "rootdirectory" in params:
        where = source_of(sources, ("storage", "filesystem", "filesystem.rootdirectory"))
        return go_sprint(params["rootdirectory"]), where
    return DEFAULT_ROOTDIRECTORY, "default"
