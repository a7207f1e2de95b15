"""From what the user gave (ROOT, ``--config``, ``--endpoint-url``) to a store and its state.

* ROOT a folder: the registry's ``rootdirectory`` or its ``v2`` folder
  (:func:`regfs.storage.root.resolve_root`);
* ROOT ``s3://BUCKET/PREFIX``: the registry's ``rootdirectory`` in a bucket (``PREFIX`` may
  also end in ``docker/registry/v2``), credentials and region from the usual AWS chain
  (environment, shared config and credentials files, profile, instance role), the endpoint
  from ``--endpoint-url`` (S3-compatible servers: path-style requests) or AWS's;
* ``--config CONFIG.yml``: the registry's own configuration, read as ``registry
  garbage-collect CONFIG`` reads it, ``REGISTRY_*`` environment overrides included
  (:mod:`regfs.storage.config`): a ``filesystem`` or an ``s3`` storage.

A bucket is checked at once with one small listing, so that an unreachable endpoint, a wrong
bucket, refused credentials or a prefix holding no registry is one clear error (exit 2) before
any work. That listing is retried as every request to the bucket is
(:class:`regfs.storage.s3client.Retry`: throttling, server errors, dropped connections).
Every failure is a :class:`~regfs.errors.RootError` or :class:`~regfs.errors.UsageError`
naming what was given.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from regfs.errors import RootError, UsageError
from regfs.layout import V2
from regfs.storage.base import (
    Denied,
    NotFound,
    StateStore,
    Storage,
    StorageError,
    Unavailable,
)
from regfs.storage.config import S3Settings, describe_storage
from regfs.storage.local import LocalStorage
from regfs.storage.regyaml import ConfigError
from regfs.storage.root import DEFAULT_ROOT, ROOT_ENV, resolve_root

if TYPE_CHECKING:
    from regfs.storage.s3 import S3Storage

S3_SCHEME = "s3://"
INSTALL_HINT = "S3 support needs boto3: pip install 'regfs[s3]'"
# Requests in flight at once (listing shards, reads) and connections kept, per bucket.
S3_THREADS = 16
_V2_SUFFIX = "/".join(V2)


@dataclass(frozen=True, slots=True)
class Store:
    """A registry store and regfs's state next to it."""

    storage: Storage
    state: StateStore


class Place:
    """Where a registry's store is, as the user gave it, opened on first use (so that a
    command's malformed arguments are reported before an unusable ROOT).

    Args:
        root: ROOT as given (a folder, ``s3://BUCKET/PREFIX``) or ``None``.
        config: the registry's configuration file, if given instead.
        endpoint_url: an S3-compatible server.
        threads: requests in flight at once on a bucket.
    """

    def __init__(
        self,
        root: str | None = None,
        *,
        config: str | None = None,
        endpoint_url: str | None = None,
        threads: int = 1,
    ) -> None:
        self.root, self.config, self.endpoint_url = root, config, endpoint_url
        self.threads = threads
        self._storage: Storage | None = None
        self._state: StateStore | None = None

    def given(self, storage: Storage, state: StateStore | None = None) -> None:
        """Use ``storage`` (and ``state``, default: the backend's own) from now on."""
        self._storage, self._state = storage, state

    @property
    def storage(self) -> Storage:
        """The store, opened on first use.

        Raises:
            RootError: ROOT or the config is missing, unreadable, unreachable or not a
                registry's storage.
            UsageError: ROOT and the config both given, or ``--endpoint-url`` without a
                bucket.
        """
        if self._storage is None:
            store = open_store(
                self.root,
                config=self.config,
                endpoint_url=self.endpoint_url,
                threads=self.threads,
            )
            self._storage, self._state = store.storage, store.state
        return self._storage

    @property
    def state(self) -> StateStore:
        """regfs's own state next to the store (see :func:`state_of`)."""
        storage = self.storage
        if self._state is None:
            self._state = state_of(storage)
        return self._state

    def runnable(self) -> str | LocalStorage | S3Storage | None:
        """What the runs that open ROOT themselves (gc, rm, retain) get: ROOT as given, or
        the store once a CONFIG, a bucket or a given storage says which.

        Raises:
            UsageError: the store is neither a folder nor a bucket.
        """
        if self._storage is None and self.config is None and not is_s3_url(self.root):
            if self.endpoint_url is not None:
                _ = self.storage  # says why --endpoint-url does not apply
            return self.root
        storage = self.storage
        from regfs.storage.s3 import S3Storage

        if not isinstance(storage, LocalStorage | S3Storage):
            raise UsageError(
                f"regfs gc, rm and retain run on a folder or a bucket, not on {storage.location}"
            )
        return storage


def is_s3_url(root: str | None) -> bool:
    """Whether ROOT names a bucket (``s3://…``)."""
    return root is not None and root.startswith(S3_SCHEME)


def parse_s3_url(url: str) -> tuple[str, str]:
    """``(bucket, rootdirectory prefix)`` of ``s3://BUCKET[/PREFIX]``; a ``PREFIX`` ending in
    ``docker/registry/v2`` names the registry's ``rootdirectory`` above it.

    Raises:
        RootError: no bucket, or a bucket name S3 cannot have.
    """
    rest = url[len(S3_SCHEME) :]
    bucket, _, prefix = rest.partition("/")
    prefix = prefix.strip("/")
    if prefix == _V2_SUFFIX:
        prefix = ""
    elif prefix.endswith("/" + _V2_SUFFIX):
        prefix = prefix[: -len(_V2_SUFFIX) - 1]
    ok = 3 <= len(bucket) <= 63 and all(c.isalnum() or c in ".-_" for c in bucket)
    if not ok or bucket != bucket.lower() or "//" in prefix:
        raise RootError("not an s3://BUCKET/PREFIX location", path=url)
    return bucket, prefix


def open_store(
    root: str | None,
    *,
    config: str | None = None,
    endpoint_url: str | None = None,
    environ: Mapping[str, str] | None = None,
    threads: int = S3_THREADS,
) -> Store:
    """The store ROOT or CONFIG names (see the module docstring); ``None`` and no CONFIG
    mean ``$REGFS_ROOT``, else ``/var/lib/registry``.

    Raises:
        UsageError: ROOT and CONFIG both given; ``--endpoint-url`` for a folder.
        RootError: ROOT or CONFIG unusable (missing, unreadable, not a registry, a driver
            regfs cannot read, boto3 missing, the endpoint unreachable, the bucket refused).
    """
    env = os.environ if environ is None else environ
    if config is not None:
        if root is not None:
            raise UsageError("give ROOT or --config, not both")
        return _from_config(config, endpoint_url, env, threads)
    if root is None:
        root = env.get(ROOT_ENV) or DEFAULT_ROOT
    if is_s3_url(root):
        assert root is not None
        bucket, prefix = parse_s3_url(root)
        return _bucket(_url_storage(bucket, prefix, endpoint_url, threads), endpoint_url)
    if endpoint_url is not None:
        raise UsageError("--endpoint-url applies to an s3:// ROOT or an s3 --config only")
    local = LocalStorage(resolve_root(root))
    return Store(local, local.state)


def _from_config(
    config: str, endpoint_url: str | None, env: Mapping[str, str], threads: int
) -> Store:
    try:
        with open(config, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        msg = f"cannot read the configuration: {exc.strerror or exc}"
        raise RootError(msg, path=config) from None
    except UnicodeDecodeError:
        raise RootError("the configuration is not UTF-8 text", path=config) from None
    try:
        described = describe_storage(text, dict(env))
    except ConfigError as exc:
        raise RootError(str(exc), path=config) from None
    if described.driver == "filesystem":
        if endpoint_url is not None:
            raise UsageError("--endpoint-url applies to an s3 storage; this one is a filesystem")
        assert described.rootdirectory is not None
        local = LocalStorage(resolve_root(_config_folder(described.rootdirectory, config)))
        return Store(local, local.state)
    assert described.s3 is not None
    settings = described.s3
    if endpoint_url is not None:
        settings = dataclasses.replace(settings, regionendpoint=endpoint_url)
    return _bucket(_config_storage(settings, threads), settings.endpoint_url)


def _config_folder(rootdirectory: str, config: str) -> str:
    """The folder a ``filesystem`` storage's ``rootdirectory`` names, as the registry opens it.

    The driver joins it before every path (Go's ``path.Join``): an empty one is ``/``, and a
    relative one starts at the registry's own working directory, which the file does not say
    (a service's ``WorkingDirectory``, a container's ``WORKDIR``). regfs does not guess it
    from its own.

    Raises:
        RootError: ``rootdirectory`` is relative.
    """
    if not rootdirectory:
        return "/"
    if not os.path.isabs(rootdirectory):
        raise RootError(
            f"rootdirectory {rootdirectory!r} is relative: the registry resolves it from its own "
            "working directory, which the configuration does not say; make it absolute "
            "(or REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY), or give the folder as ROOT",
            path=config,
        )
    return rootdirectory


def _url_storage(bucket: str, prefix: str, endpoint_url: str | None, threads: int) -> S3Storage:
    try:
        from regfs.storage.s3 import S3Storage
        from regfs.storage.s3client import make_client

        client = make_client(
            endpoint_url=endpoint_url,
            path_style=endpoint_url is not None,
            pool=max(32, threads * 2),
        )
    except ImportError:
        raise RootError(INSTALL_HINT) from None
    except Exception as exc:  # botocore refuses the setup (a malformed endpoint, region)
        raise RootError(f"cannot set up an S3 client: {exc}") from None
    return S3Storage(client, bucket, prefix, workers=threads)


def _config_storage(settings: S3Settings, threads: int) -> S3Storage:
    try:
        from regfs.storage.config import open_s3

        return open_s3(settings, workers=threads)
    except ImportError:
        raise RootError(INSTALL_HINT) from None
    except Exception as exc:
        raise RootError(f"cannot set up an S3 client: {exc}") from None


def _bucket(storage: S3Storage, endpoint_url: str | None) -> Store:
    """The bucket as a store, after one small listing proves it is reachable and holds a
    registry below the prefix."""
    from regfs.storage.s3state import S3StateStore

    shown = storage.location
    where = endpoint_url or "AWS S3"
    probe = {
        "Bucket": storage.bucket,
        "Prefix": storage.v2_prefix + "/",
        "MaxKeys": 1,
    }
    # Retried as every request is (throttling and network errors, with backoff): a bucket
    # that is busy at the start is no different from one busy later in the run.
    try:
        page = storage.call("ListObjectsV2", "", lambda: storage.client.list_objects_v2(**probe))
    except StorageError as exc:
        raise RootError(_probe_message(exc, where), path=shown) from None
    if not page.get("Contents"):
        raise RootError(
            "not a registry storage root (no docker/registry/v2 keys under this prefix)",
            path=shown,
        )
    return Store(storage, S3StateStore(storage))


def _probe_message(exc: StorageError, where: str) -> str:
    text = " ".join(str(exc.strerror or exc).split())
    if isinstance(exc, NotFound):
        return f"no such bucket ({text})"
    if isinstance(exc, Denied):
        return f"access denied: check the AWS credentials ({text})"
    if isinstance(exc, Unavailable):
        return f"cannot reach {where}: {text}"
    return f"cannot list the bucket at {where}: {text}"


def state_of(storage: Storage) -> StateStore:
    """regfs's state next to ``storage``: the backend's own (``.regfs`` beside the folder,
    or below the bucket's prefix)."""
    backend = getattr(storage, "backend", storage)  # a listed view: its store's state
    state = getattr(backend, "state", None)
    if state is not None:
        return state  # type: ignore[no-any-return]
    from regfs.storage.s3 import S3Storage
    from regfs.storage.s3state import S3StateStore

    if isinstance(backend, S3Storage):
        return S3StateStore(backend)
    raise TypeError(f"no state store known for {type(storage).__name__}")
