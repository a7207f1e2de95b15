"""Harness around the real Docker registry (distribution 2.8.2, Debian's ``docker-registry``).

Standard library only.  Used by the tests (``tests/`` is on ``sys.path`` under pytest) and by
``tests/fixtures/build.py``, which writes every fixture tree through the registry's HTTP API.

Everything talks to 127.0.0.1 only: the registry listens on a free loopback port, HTTP proxies from
the environment are ignored and redirects to any other host are refused.

Main pieces:

* :func:`find_binaries` / :func:`require_binaries` -- locate ``docker-registry`` and ``skopeo``;
  skip the test when they are missing, fail loudly when ``CI=true``.
* :func:`write_config` -- a registry config (JSON, which is valid YAML), on a folder or, with
  ``s3=``, on a bucket (``storage.s3``; see ``tests/s3bed.py`` for the server).
* :class:`Registry` -- a running ``docker-registry serve`` with push / pull / delete helpers.
* :func:`reference_gc` -- run ``docker-registry garbage-collect`` and parse its output.
* :func:`copy_tree`, :func:`extract_fixture`, :func:`load_fixture_meta` -- fixture trees.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as _dt
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

REGISTRY_BIN = "docker-registry"
SKOPEO_BIN = "skopeo"

FIXTURES_DIR = Path(__file__).resolve().parent / "fixtures"
# Every fixture tree written by tests/fixtures/build.py, by name.
ALL_FIXTURES = sorted(p.name.removesuffix(".tar.gz") for p in FIXTURES_DIR.glob("*.tar.gz"))

# ---------------------------------------------------------------------------------------------
# media types

MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MT_DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_OCI_NONDIST_LAYER = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
MT_OCI_EMPTY = "application/vnd.oci.empty.v1+json"
MT_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
MT_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"

INDEX_TYPES = frozenset({MT_DOCKER_LIST, MT_OCI_INDEX})
IMAGE_TYPES = frozenset({MT_DOCKER_MANIFEST, MT_OCI_MANIFEST})
SCHEMA1_TYPES = frozenset({MT_SCHEMA1_SIGNED, MT_SCHEMA1})
ALL_MANIFEST_TYPES = (
    MT_OCI_INDEX,
    MT_DOCKER_LIST,
    MT_OCI_MANIFEST,
    MT_DOCKER_MANIFEST,
    MT_SCHEMA1_SIGNED,
    MT_SCHEMA1,
)
ACCEPT_ALL_MANIFESTS = ", ".join(ALL_MANIFEST_TYPES)

_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def is_digest(ref: str) -> bool:
    return bool(_DIGEST_RE.match(ref))


# ---------------------------------------------------------------------------------------------
# binaries


def missing_binaries() -> list[str]:
    """Names of the required binaries that are not on PATH."""
    return [b for b in (REGISTRY_BIN, SKOPEO_BIN) if shutil.which(b) is None]


def find_binaries() -> tuple[str, str] | None:
    """``(docker-registry path, skopeo path)``, or None when either is missing."""
    reg = shutil.which(REGISTRY_BIN)
    sko = shutil.which(SKOPEO_BIN)
    if reg is None or sko is None:
        return None
    return reg, sko


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def require_binaries() -> tuple[str, str]:
    """Return the binaries' paths, or skip (locally) / fail loudly (``CI=true``).

    Under pytest this calls ``pytest.skip`` or ``pytest.fail``; outside pytest it raises
    RuntimeError in both cases (the fixture builder cannot do anything without them).
    """
    found = find_binaries()
    if found is not None:
        return found
    missing = ", ".join(missing_binaries())
    msg = (
        f"real-registry binaries missing: {missing} "
        "(install with: apt-get install -y docker-registry skopeo)"
    )
    pytest = sys.modules.get("pytest")
    if in_ci():
        msg = "CI=true but " + msg + " -- registry tests must run in CI"
        if pytest is not None:
            pytest.fail(msg, pytrace=False)
        raise RuntimeError(msg)
    if pytest is not None:
        pytest.skip(msg)
    raise RuntimeError(msg)


def registry_binaries() -> tuple[str, str]:
    """pytest-friendly helper: call it at the top of a test or from a fixture.

    Example::

        @pytest.fixture
        def bins():
            return realreg.registry_binaries()
    """
    import pytest  # noqa: F401  (make sure skip/fail are pytest outcomes)

    return require_binaries()


def registry_version() -> str:
    bins = require_binaries()
    out = subprocess.run([bins[0], "--version"], capture_output=True, text=True, timeout=30)
    return (out.stdout or out.stderr).strip()


# ---------------------------------------------------------------------------------------------
# config


def write_config(
    root_dir: str | os.PathLike[str] | None,
    port: int,
    *,
    schema1: bool = False,
    readonly: bool = False,
    foreign_urls: bool = False,
    path: str | os.PathLike[str] | None = None,
    s3: dict[str, Any] | None = None,
) -> str:
    """Write a registry config for ``root_dir`` (its ``rootdirectory``) and return its path.

    The file is JSON (valid YAML).  Without ``path`` it goes into a fresh temporary directory,
    never into the storage tree.  ``foreign_urls`` allows manifests with foreign layers
    (``urls``): 2.8 rejects every URL unless ``validation.manifests.urls.allow`` is set.
    ``s3`` (then ``root_dir`` is None): the ``storage.s3`` parameters instead of a folder
    (``bucket``, ``regionendpoint``, ``rootdirectory``, ...; ``s3bed.Weed.registry_storage``).
    """
    if s3 is not None:
        if root_dir is not None:
            raise ValueError("write_config: give root_dir or s3, not both")
        driver: dict[str, Any] = {"s3": dict(s3)}
    else:
        if root_dir is None:
            raise ValueError("write_config: root_dir or s3 is needed")
        driver = {"filesystem": {"rootdirectory": os.path.abspath(os.fspath(root_dir))}}
    cfg: dict[str, Any] = {
        "version": "0.1",
        "log": {"level": "error", "accesslog": {"disabled": True}},
        "storage": {
            **driver,
            "delete": {"enabled": True},
            "maintenance": {
                "uploadpurging": {
                    "enabled": False,
                    "age": "168h",
                    "interval": "24h",
                    "dryrun": False,
                },
                "readonly": {"enabled": bool(readonly)},
            },
        },
        "http": {"addr": f"127.0.0.1:{int(port)}", "secret": "regfs-test-secret"},
        # 2.8 answers 400 to _catalog?n= above catalog.maxentries (default 1000)
        "catalog": {"maxentries": 10000},
    }
    if foreign_urls:
        cfg["validation"] = {"manifests": {"urls": {"allow": ["^https?://"]}}}
    if schema1:
        cfg["compatibility"] = {"schema1": {"enabled": True}}
    if path is None:
        d = tempfile.mkdtemp(prefix="regfs-regcfg-")
        path = os.path.join(d, "config.yml")
    path = os.fspath(path)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------------------------
# HTTP (loopback only)


class RegistryHTTPError(RuntimeError):
    def __init__(self, method: str, url: str, status: int, body: bytes) -> None:
        self.method = method
        self.url = url
        self.status = status
        self.body = body
        text = body.decode("utf-8", "replace").strip()
        super().__init__(f"{method} {url} -> HTTP {status}: {text[:500]}")


class _LoopbackOnlyRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        host = urllib.parse.urlsplit(newurl).hostname
        if host not in ("127.0.0.1", "localhost"):
            raise RuntimeError(f"refusing redirect to non-loopback address {newurl!r}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _LoopbackOnlyRedirect())


@dataclasses.dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def http_request(
    method: str,
    url: str,
    *,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    expect: tuple[int, ...] = (200,),
    timeout: float = 30.0,
) -> Response:
    host = urllib.parse.urlsplit(url).hostname
    if host != "127.0.0.1":
        raise RuntimeError(f"refusing to contact non-loopback address {url!r}")
    req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            r = Response(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read())
    except urllib.error.HTTPError as e:
        body = e.read() if e.fp is not None else b""
        r = Response(e.code, {k.lower(): v for k, v in (e.headers or {}).items()}, body)
    if r.status not in expect:
        raise RegistryHTTPError(method, url, r.status, r.body)
    return r


# ---------------------------------------------------------------------------------------------
# schema1 helpers


def schema1_payload(body: bytes) -> bytes:
    """The canonical payload of a signed (prettyjws) schema1 manifest.

    That is what the registry stores as the manifest blob and what its digest is computed over:
    ``body[:formatLength] + base64url(formatTail)`` from the first signature's protected header.
    An unsigned manifest is its own payload.
    """
    doc = json.loads(body)
    sigs = doc.get("signatures") or []
    if not sigs:
        return body
    protected = sigs[0]["protected"]
    protected += "=" * (-len(protected) % 4)
    hdr = json.loads(base64.urlsafe_b64decode(protected))
    tail = hdr["formatTail"]
    tail += "=" * (-len(tail) % 4)
    return body[: int(hdr["formatLength"])] + base64.urlsafe_b64decode(tail)


# ---------------------------------------------------------------------------------------------
# the registry process


class Registry:
    """A running ``docker-registry serve`` on a free 127.0.0.1 port, as a context manager.

    >>> with Registry(root) as reg:
    ...     d = reg.push_blob("library/x", b"hello")
    """

    START_TIMEOUT = 20.0

    def __init__(
        self,
        root_dir: str | os.PathLike[str] | None,
        *,
        schema1: bool = False,
        readonly: bool = False,
        foreign_urls: bool = False,
        s3: dict[str, Any] | None = None,
    ) -> None:
        """``root_dir``: the storage folder; or None and ``s3``: the ``storage.s3`` parameters
        of a bucket (the registry then writes there with its own S3 driver)."""
        if (root_dir is None) == (s3 is None):
            raise ValueError("Registry: give root_dir or s3")
        self.root_dir = "" if root_dir is None else os.path.abspath(os.fspath(root_dir))
        self.s3 = s3
        self.schema1 = schema1
        self.readonly = readonly
        self.foreign_urls = foreign_urls
        self.port: int | None = None
        self.url = ""
        self.config_path: str | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self._logfile: Any = None
        self._tmpdir: str | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> Registry:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Registry:
        bins = require_binaries()
        if self.s3 is None:
            os.makedirs(self.root_dir, exist_ok=True)
        self._tmpdir = tempfile.mkdtemp(prefix="regfs-registry-")
        last_err = ""
        for _attempt in range(3):
            self.port = free_port()
            self.url = f"http://127.0.0.1:{self.port}"
            self.config_path = write_config(
                self.root_dir or None,
                self.port,
                s3=self.s3,
                schema1=self.schema1,
                readonly=self.readonly,
                foreign_urls=self.foreign_urls,
                path=os.path.join(self._tmpdir, "config.yml"),
            )
            log_path = os.path.join(self._tmpdir, "registry.log")
            self._logfile = open(log_path, "w+b")  # noqa: SIM115
            env = _clean_env()
            self.proc = subprocess.Popen(
                [bins[0], "serve", self.config_path],
                stdin=subprocess.DEVNULL,
                stdout=self._logfile,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self._tmpdir,
            )
            ok, last_err = self._wait_ready()
            if ok:
                return self
            self._kill()
            if "address already in use" not in last_err:
                break
        self._cleanup_tmp()
        where = self.root_dir or f"s3 {(self.s3 or {}).get('bucket')}"
        raise RuntimeError(f"docker-registry did not come up on 127.0.0.1 for {where}: {last_err}")

    def _log_text(self) -> str:
        if self._logfile is None:
            return ""
        self._logfile.flush()
        self._logfile.seek(0)
        return str(self._logfile.read().decode("utf-8", "replace"))

    def _wait_ready(self) -> tuple[bool, str]:
        assert self.proc is not None
        deadline = time.monotonic() + self.START_TIMEOUT
        last = ""
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                return False, f"exited with code {rc}; output:\n{self._log_text()}"
            try:
                r = http_request("GET", self.url + "/v2/", expect=(200, 401), timeout=2)
                if r.status == 200:
                    return True, ""
                last = f"GET /v2/ answered {r.status}"
            except (OSError, RegistryHTTPError) as e:
                last = str(e)
            time.sleep(0.05)
        return False, (
            f"GET /v2/ did not answer 200 within {self.START_TIMEOUT:.0f}s ({last}); "
            f"output:\n{self._log_text()}"
        )

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        if self._logfile is not None:
            self._logfile.close()
            self._logfile = None

    def _cleanup_tmp(self) -> None:
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def stop(self) -> None:
        """Terminate the registry and wait for it (idempotent)."""
        self._kill()
        self._cleanup_tmp()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log(self) -> str:
        """What the registry printed so far (log level error)."""
        return self._log_text()

    # -- low level -----------------------------------------------------------------------------

    def request(self, method: str, path_or_url: str, **kw: Any) -> Response:
        url = path_or_url if path_or_url.startswith("http") else self.url + path_or_url
        return http_request(method, url, **kw)

    def _abs(self, location: str) -> str:
        return urllib.parse.urljoin(self.url + "/", location)

    # -- push / delete ---------------------------------------------------------------------------

    def push_blob(self, repo: str, data: bytes) -> str:
        """Upload ``data`` into ``repo`` (POST + PUT), return its digest."""
        digest = sha256_digest(data)
        r = self.request("POST", f"/v2/{repo}/blobs/uploads/", data=b"", expect=(202,))
        loc = self._abs(r.header("location") or "")
        sep = "&" if "?" in loc else "?"
        self.request(
            "PUT",
            f"{loc}{sep}digest={urllib.parse.quote(digest)}",
            data=data,
            headers={"Content-Type": "application/octet-stream"},
            expect=(201,),
        )
        return digest

    def mount_blob(self, repo: str, digest: str, from_repo: str) -> str:
        """Cross-repository mount (must answer 201, not fall back to an upload)."""
        q = urllib.parse.urlencode({"mount": digest, "from": from_repo})
        r = self.request("POST", f"/v2/{repo}/blobs/uploads/?{q}", data=b"", expect=(201, 202))
        if r.status != 201:
            # the registry started an upload instead: cancel it and complain
            loc = r.header("location")
            if loc:
                with contextlib.suppress(RegistryHTTPError, OSError):
                    self.request("DELETE", self._abs(loc), expect=(204, 404))
            raise RuntimeError(f"mount of {digest} from {from_repo} into {repo} was not done")
        return digest

    def push_manifest(self, repo: str, ref: str, body: bytes, media_type: str) -> str:
        """PUT a manifest by tag or digest; return the registry's Docker-Content-Digest."""
        r = self.request(
            "PUT",
            f"/v2/{repo}/manifests/{ref}",
            data=body,
            headers={"Content-Type": media_type},
            expect=(201,),
        )
        d = r.header("docker-content-digest")
        if not d:
            raise RuntimeError(f"no Docker-Content-Digest pushing {repo}:{ref}")
        return d

    def delete_manifest(self, repo: str, digest: str) -> None:
        self.request("DELETE", f"/v2/{repo}/manifests/{digest}", expect=(202,))

    def start_upload(self, repo: str, partial: bytes) -> str:
        """Start an upload (POST), send one PATCH of ``partial`` and leave it unfinished."""
        r = self.request("POST", f"/v2/{repo}/blobs/uploads/", data=b"", expect=(202,))
        loc = self._abs(r.header("location") or "")
        uuid = r.header("docker-upload-uuid") or ""
        self.request(
            "PATCH",
            loc,
            data=partial,
            headers={"Content-Type": "application/octet-stream"},
            expect=(202,),
        )
        return uuid

    def post_upload(self, repo: str) -> str:
        """Start an upload (POST) and send nothing: the registry writes ``startedat``, an empty
        ``data`` and ``hashstates/sha256/0``. Returns the upload id."""
        r = self.request("POST", f"/v2/{repo}/blobs/uploads/", data=b"", expect=(202,))
        return r.header("docker-upload-uuid") or ""

    def cancel_upload(self, repo: str, partial: bytes = b"") -> str:
        """Start an upload (POST), send ``partial`` (one PATCH, when not empty), then cancel it
        (DELETE of the upload). 2.8.2 keeps ``_uploads/<id>/hashstates/...`` and nothing else,
        and answers 404 for that id afterwards. Returns the upload id."""
        r = self.request("POST", f"/v2/{repo}/blobs/uploads/", data=b"", expect=(202,))
        loc = self._abs(r.header("location") or "")
        uuid = r.header("docker-upload-uuid") or ""
        if partial:
            p = self.request(
                "PATCH",
                loc,
                data=partial,
                headers={"Content-Type": "application/octet-stream"},
                expect=(202,),
            )
            loc = self._abs(p.header("location") or loc)
        self.request("DELETE", loc, expect=(204,))
        self.request("GET", f"/v2/{repo}/blobs/uploads/{uuid}", expect=(404,))
        return uuid

    # -- read ------------------------------------------------------------------------------------

    def catalog(self) -> list[str]:
        """All repositories (``n=10000``, following ``Link`` pagination just in case)."""
        repos: list[str] = []
        path = "/v2/_catalog?n=10000"
        while path:
            r = self.request("GET", path)
            repos.extend(json.loads(r.body).get("repositories") or [])
            link = r.header("link") or ""
            m = re.match(r"\s*<([^>]+)>", link)
            path = m.group(1) if m else ""
        return repos

    def tags(self, repo: str) -> list[str]:
        r = self.request("GET", f"/v2/{repo}/tags/list", expect=(200, 404))
        if r.status == 404:
            return []
        return sorted(json.loads(r.body).get("tags") or [])

    def get_manifest(self, repo: str, ref: str) -> tuple[bytes, str, str]:
        """``(body, media type, Docker-Content-Digest)`` of a manifest, accepting every type."""
        r = self.request(
            "GET",
            f"/v2/{repo}/manifests/{ref}",
            headers={"Accept": ACCEPT_ALL_MANIFESTS},
        )
        mt = (r.header("content-type") or "").split(";")[0].strip()
        return r.body, mt, r.header("docker-content-digest") or ""

    def get_blob(self, repo: str, digest: str) -> bytes:
        return self.request("GET", f"/v2/{repo}/blobs/{digest}").body

    def pull(self, repo: str, ref: str, *, absent: Collection[str] = ()) -> list[str]:
        """Fetch a manifest and everything it references, verifying every digest.

        Recurses into index children; fetches config and layers (skipping foreign layers with
        ``urls``).  Returns the digests verified (manifests and blobs), in fetch order.
        ``absent`` names index children that must NOT be served (a partial index: deleted by
        digest, or never pushed): each must answer 404 and is not followed; every other
        platform is pulled in full.
        Raises AssertionError naming repo, ref and the failing digest on a 404 or a mismatch.
        """
        verified: list[str] = []
        seen: set[str] = set()

        def fail(what: str, digest: str, why: str) -> AssertionError:
            return AssertionError(f"pull {repo}:{ref}: {what} {digest}: {why}")

        def fetch_manifest(mref: str) -> None:
            try:
                body, mt, dcd = self.get_manifest(repo, mref)
            except RegistryHTTPError as e:
                raise fail("manifest", mref, f"HTTP {e.status}: {e.body[:200]!r}") from e
            expected = mref if is_digest(mref) else dcd
            if not is_digest(expected):
                raise fail("manifest", mref, f"no usable Docker-Content-Digest ({dcd!r})")
            if dcd and dcd != expected:
                raise fail("manifest", mref, f"Docker-Content-Digest is {dcd}")
            if mt in SCHEMA1_TYPES:
                try:
                    actual = sha256_digest(schema1_payload(body))
                except (ValueError, KeyError, TypeError) as e:
                    raise fail("manifest", expected, f"bad schema1 JWS: {e}") from e
            else:
                actual = sha256_digest(body)
            if actual != expected:
                raise fail("manifest", expected, f"content hashes to {actual}")
            if expected not in seen:
                seen.add(expected)
                verified.append(expected)
            try:
                doc = json.loads(body)
            except ValueError as e:
                raise fail("manifest", expected, f"not JSON: {e}") from e
            kind = mt or doc.get("mediaType") or ""
            if kind in SCHEMA1_TYPES or doc.get("schemaVersion") == 1:
                for layer in doc.get("fsLayers") or []:
                    fetch_blob(layer["blobSum"])
                return
            if kind in INDEX_TYPES or (not kind and "manifests" in doc):
                for child in doc.get("manifests") or []:
                    if child["digest"] in absent:
                        expect_absent(child["digest"])
                    elif child["digest"] not in seen:
                        fetch_manifest(child["digest"])
                return
            cfg = doc.get("config")
            if cfg:
                fetch_blob(cfg["digest"])
            for layer in doc.get("layers") or []:
                if layer.get("urls"):
                    continue  # foreign / non-distributable layer: not served by the registry
                fetch_blob(layer["digest"])

        def expect_absent(digest: str) -> None:
            r = self.request(
                "GET",
                f"/v2/{repo}/manifests/{digest}",
                headers={"Accept": ACCEPT_ALL_MANIFESTS},
                expect=(200, 404),
            )
            if r.status != 404:
                raise fail("manifest", digest, f"expected absent (404), got HTTP {r.status}")

        def fetch_blob(digest: str) -> None:
            if digest in seen:
                return
            try:
                data = self.get_blob(repo, digest)
            except RegistryHTTPError as e:
                raise fail("blob", digest, f"HTTP {e.status}: {e.body[:200]!r}") from e
            actual = sha256_digest(data)
            if actual != digest:
                raise fail("blob", digest, f"content hashes to {actual}")
            seen.add(digest)
            verified.append(digest)

        fetch_manifest(ref)
        return verified

    def pull_all(self) -> dict[str, dict[str, list[str]]]:
        """Pull every tag of every repository in the catalog; ``{repo: {tag: verified}}``."""
        out: dict[str, dict[str, list[str]]] = {}
        for repo in self.catalog():
            out[repo] = {tag: self.pull(repo, tag) for tag in self.tags(repo)}
        return out

    # -- skopeo ----------------------------------------------------------------------------------

    def skopeo_copy(self, src: str, repo: str, tag: str, *, fmt: str | None = None) -> str:
        """``skopeo copy SRC docker://127.0.0.1:PORT/repo:tag``; return the pushed digest."""
        bins = require_binaries()
        with tempfile.TemporaryDirectory(prefix="regfs-skopeo-") as td:
            digestfile = os.path.join(td, "digest")
            cmd = [
                bins[1],
                "--insecure-policy",
                "copy",
                "--quiet",
                "--dest-tls-verify=false",
                "--dest-no-creds",
                "--digestfile",
                digestfile,
            ]
            if fmt:
                cmd += ["--format", fmt]
            cmd += [src, f"docker://{self.host}/{repo}:{tag}"]
            env = _clean_env()
            env["HOME"] = td  # no auth files, no user config
            p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
            if p.returncode != 0:
                raise RuntimeError(
                    f"skopeo copy failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout}{p.stderr}"
                )
            with open(digestfile, encoding="utf-8") as f:
                return f.read().strip()


def _clean_env() -> dict[str, str]:
    """The environment the registry and skopeo run with: no proxies, and no ``AWS_CA_BUNDLE``
    (with it set, the registry's AWS SDK refuses to start its S3 driver:
    "LoadCustomCABundleError ... unsupported transport")."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and k != "AWS_CA_BUNDLE"}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


# ---------------------------------------------------------------------------------------------
# the reference garbage collector


@dataclasses.dataclass
class GcResult:
    """Parsed output of ``docker-registry garbage-collect``."""

    exit_code: int
    blobs: set[str]  # "blob eligible for deletion: <d>"
    manifests: set[str]  # "manifest eligible for deletion: <d>"
    manifests_by_repo: set[tuple[str, str]]  # (repo, digest): the repo is the preceding name line
    summary: str | None  # "N blobs marked, M blobs and K manifests eligible for deletion"
    marked: int | None
    eligible_blobs: int | None
    eligible_manifests: int | None
    stdout: str
    stderr: str
    command: list[str]

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.summary is not None

    @property
    def error(self) -> str | None:
        """The reference's complaint when it gave up (last non-empty stderr line)."""
        if self.ok:
            return None
        lines = [ln for ln in self.stderr.splitlines() if ln.strip()]
        for ln in lines:
            if ln.startswith(("failed to garbage collect", "panic:")):
                return ln.strip()
        return lines[-1].strip() if lines else None

    def as_meta(self) -> dict[str, Any]:
        return {
            "exit_code": self.exit_code,
            "summary": self.summary,
            "marked": self.marked,
            "blobs": sorted(self.blobs),
            "manifests": sorted(self.manifests),
            "error": self.error,
        }


_GC_BLOB_RE = re.compile(r"^blob eligible for deletion: (\S+)\s*$")
_GC_MANIFEST_RE = re.compile(r"^manifest eligible for deletion: (\S+)\s*$")
_REPO_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_GC_REPO_RE = re.compile(rf"^{_REPO_COMPONENT}(?:/{_REPO_COMPONENT})*$")
_GC_SUMMARY_RE = re.compile(
    r"^(\d+) blobs marked, (\d+) blobs and (\d+) manifests eligible for deletion\s*$"
)


def parse_gc_output(stdout: str, stderr: str, exit_code: int, command: list[str]) -> GcResult:
    blobs: set[str] = set()
    manifests: set[str] = set()
    by_repo: set[tuple[str, str]] = set()
    summary = None
    marked = eb = em = None
    repo = ""
    # 2.8.2 prints everything on stdout: a line with the bare repository name, then
    # "<repo>: marking manifest <d> " / "<repo>: marking blob <d>" / "manifest eligible for
    # deletion: <d>" lines, then the summary and one "blob eligible for deletion: <d>" per blob.
    for line in (stdout + "\n" + stderr).splitlines():
        line = line.strip()
        if m := _GC_BLOB_RE.match(line):
            blobs.add(m.group(1))
        elif m := _GC_MANIFEST_RE.match(line):
            manifests.add(m.group(1))
            by_repo.add((repo, m.group(1)))
        elif _GC_REPO_RE.match(line):
            repo = line
        elif m := _GC_SUMMARY_RE.match(line):
            summary = line
            marked, eb, em = (int(g) for g in m.groups())
    return GcResult(
        exit_code, blobs, manifests, by_repo, summary, marked, eb, em, stdout, stderr, command
    )


def reference_gc(
    root_dir: str | os.PathLike[str] | None,
    *,
    dry_run: bool = True,
    delete_untagged: bool = False,
    schema1: bool = False,
    timeout: float = 300.0,
    s3: dict[str, Any] | None = None,
) -> GcResult:
    """Run ``docker-registry garbage-collect [--dry-run] [--delete-untagged] CONFIG`` on a tree
    (or, with ``s3`` and no ``root_dir``, on a bucket: the ``storage.s3`` parameters).

    The registry must not be serving that tree.  Without ``dry_run`` it really deletes.
    """
    bins = require_binaries()
    with tempfile.TemporaryDirectory(prefix="regfs-gc-") as td:
        cfg = write_config(
            root_dir, 5000, schema1=schema1, path=os.path.join(td, "config.yml"), s3=s3
        )
        cmd = [bins[0], "garbage-collect"]
        if dry_run:
            cmd.append("--dry-run")
        if delete_untagged:
            cmd.append("--delete-untagged")
        cmd.append(cfg)
        p = subprocess.run(
            cmd, capture_output=True, text=True, env=_clean_env(), cwd=td, timeout=timeout
        )
    shown = [c if c != cfg else "CONFIG" for c in cmd]
    return parse_gc_output(p.stdout, p.stderr, p.returncode, shown)


# ---------------------------------------------------------------------------------------------
# trees and fixtures


def copy_tree(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Path:
    """Copy a storage tree keeping mtimes (of directories too), symlinks as symlinks."""
    src_p, dst_p = Path(src), Path(dst)
    shutil.copytree(src_p, dst_p, symlinks=True, copy_function=shutil.copy2, dirs_exist_ok=True)
    # copytree sets directory mtimes before their content is written: redo them, deepest first
    dirs = [p for p in src_p.rglob("*") if p.is_dir() and not p.is_symlink()]
    for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
        st = d.stat()
        os.utime(dst_p / d.relative_to(src_p), ns=(st.st_atime_ns, st.st_mtime_ns))
    st = src_p.stat()
    os.utime(dst_p, ns=(st.st_atime_ns, st.st_mtime_ns))
    return dst_p


def fixture_path(name: str) -> Path:
    return FIXTURES_DIR / f"{name}.tar.gz"


def load_fixture_meta(name: str) -> dict[str, Any]:
    with open(FIXTURES_DIR / f"{name}.json", encoding="utf-8") as f:
        meta: dict[str, Any] = json.load(f)
    return meta


def refresh_uploads(root: str | os.PathLike[str], meta: dict[str, Any]) -> None:
    """Make the fixture's *fresh* uploads fresh again: ``startedat`` (when it has one) = now,
    mtimes = now."""
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    v2 = Path(root) / "docker" / "registry" / "v2"
    for up in meta.get("uploads", []):
        if up.get("stale"):
            continue
        d = v2 / "repositories" / up["repo"] / "_uploads" / up["uuid"]
        if not d.is_dir():
            continue
        if (d / "startedat").exists():  # a cancelled upload has none: it gets no new one
            (d / "startedat").write_text(now, encoding="utf-8")
        t = time.time()
        for p in [d, *d.rglob("*")]:
            os.utime(p, (t, t), follow_symlinks=False)


def extract_fixture(
    name: str, dst: str | os.PathLike[str], *, refresh_fresh_uploads: bool = True
) -> Path:
    """Extract ``tests/fixtures/<name>.tar.gz`` into ``dst`` and return the registry root.

    The archive root is the registry ``rootdirectory`` (it holds ``docker/registry/v2``), so the
    returned path is ``dst`` itself.  Mtimes and empty directories are kept.  The archive was
    written at build time, so uploads that were *fresh* then are refreshed (``startedat`` and
    mtimes set to now) unless ``refresh_fresh_uploads`` is False; stale ones keep their old date.
    """
    dst_p = Path(dst)
    dst_p.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fixture_path(name), "r:gz") as tf:
        # 'tar' filter: refuses absolute / escaping member names but keeps symlink targets as they
        # are (the damaged tree has a symlink pointing outside the root, on purpose)
        safe_extractall(tf, dst_p)
    if refresh_fresh_uploads:
        meta_file = FIXTURES_DIR / f"{name}.json"
        if meta_file.exists():
            refresh_uploads(dst_p, load_fixture_meta(name))
    return dst_p


def safe_extractall(tf: tarfile.TarFile, dst: Path) -> None:
    """``extractall`` with the 'tar' filter where this Python has filters (3.11.4+)."""
    if hasattr(tarfile, "tar_filter"):
        tf.extractall(dst, filter="tar")
    else:  # pragma: no cover - old 3.11.x
        for m in tf.getmembers():
            if m.name.startswith("/") or ".." in Path(m.name).parts:
                raise RuntimeError(f"unsafe member in fixture archive: {m.name}")
        tf.extractall(dst)


def write_tarball(root: str | os.PathLike[str], out: str | os.PathLike[str]) -> None:
    """Deterministic ``.tar.gz`` of a tree: sorted, relative names, uid/gid 0, normalised modes,
    integer mtimes kept, gzip header mtime 0."""
    import gzip

    root_p = Path(root)
    entries: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root_p, followlinks=False):
        dirnames.sort()
        for n in dirnames + filenames:
            entries.append(Path(dirpath) / n)
    entries.sort(key=lambda p: p.relative_to(root_p).as_posix())
    with (
        open(out, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tf,
    ):
        for p in entries:
            rel = p.relative_to(root_p).as_posix()
            st = p.lstat()
            ti = tarfile.TarInfo(rel)
            ti.mtime = int(st.st_mtime)
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = ""
            if p.is_symlink():
                ti.type = tarfile.SYMTYPE
                ti.linkname = os.readlink(p)
                ti.mode = 0o777
                tf.addfile(ti)
            elif p.is_dir():
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o755
                tf.addfile(ti)
            elif p.is_file():
                ti.type = tarfile.REGTYPE
                ti.mode = 0o644
                ti.size = st.st_size
                with open(p, "rb") as f:
                    tf.addfile(ti, f)
            else:
                raise RuntimeError(f"unsupported file type in tree: {p}")


def iter_blobs(root: str | os.PathLike[str]) -> Iterator[tuple[str, Path]]:
    """``(digest, data path)`` for every blob directory holding a ``data`` file."""
    base = Path(root) / "docker" / "registry" / "v2" / "blobs"
    if not base.is_dir():
        return
    for alg in sorted(base.iterdir()):
        if not alg.is_dir():
            continue
        for pre in sorted(alg.iterdir()):
            if not pre.is_dir():
                continue
            for h in sorted(pre.iterdir()):
                data = h / "data"
                if data.is_file():
                    yield f"{alg.name}:{h.name}", data
