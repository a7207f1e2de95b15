"""``--registry-url``: ask a running registry whether it is read-only, writing nothing.

The request: ``PUT /v2/regfs-probe/manifests/regfs-readonly-probe`` with a body that is not a
manifest. Measured against distribution 2.8.2: a read-only registry has no PUT handler and
answers 405 ("Method not allowed", plain text); a writable one fails to parse the body and
answers 400 ``MANIFEST_INVALID`` before touching its storage (the store stays byte-identical,
no folder is created; ``tests/test_gc_readonly.py`` proves it). The obvious alternatives do not
work: starting an upload (POST) creates ``_uploads/<uuid>/`` on a writable registry, which 2.8.2
keeps even after a DELETE; DELETE/PATCH/PUT of an upload UUID answer 404 in both modes (the
upload state is checked before the method); DELETE of a manifest or blob answers 405
``UNSUPPORTED`` on a writable registry whose ``storage.delete`` is off (the default).

Before that, ``GET /v2/`` must answer with a ``Docker-Distribution-API-Version`` header, so
that a web server that refuses every PUT is not taken for a read-only registry.
"""

from __future__ import annotations

import ipaddress
import json
import urllib.parse
from dataclasses import dataclass

from regfs.errors import UsageError

PROBE_PATH = "/v2/regfs-probe/manifests/regfs-readonly-probe"
PROBE_BODY = b"regfs read-only probe: this is not a manifest\n"


def check_url(url: str) -> str:
    """The URL without a trailing slash, or :class:`UsageError` when it cannot be a registry's.

    Raises:
        UsageError: no http/https scheme, no host, or a query/fragment.
    """
    try:
        parts = urllib.parse.urlsplit(url.strip())
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise UsageError(f"--registry-url {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not host:
        raise UsageError(
            f"--registry-url {url!r}: not an http:// or https:// URL with a host "
            "(e.g. http://127.0.0.1:5000)"
        )
    if parts.query or parts.fragment:
        raise UsageError(f"--registry-url {url!r}: a registry's base URL has no ?query or #part")
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What :func:`probe` learnt from the registry at ``--registry-url``.

    Attributes:
        readonly: proven read-only: a probe push was refused with 405 and no error code.
            False for anything else, the safe side.
        reachable: it answered over HTTP at all.
        message: one line: what was asked and what it answered.
        status: the HTTP status of the last answer, or None when there was none.
    """

    readonly: bool
    reachable: bool
    message: str
    status: int | None = None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def probe(url: str, timeout: float = 10.0) -> ProbeResult:
    """Whether the registry at ``url`` (from :func:`check_url`) is in read-only mode."""
    import urllib.error  # here: the HTTP client costs 20 ms of every run's start otherwise
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None  # a redirect is an answer, not something to follow

    handlers: list[urllib.request.BaseHandler] = [NoRedirect()]
    if _is_loopback(urllib.parse.urlsplit(url).hostname or ""):
        handlers.append(urllib.request.ProxyHandler({}))
    opener = urllib.request.build_opener(*handlers)

    def ask(method: str, path: str, body: bytes | None) -> tuple[int, dict[str, str], bytes]:
        headers = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"} if body else {}
        req = urllib.request.Request(url + path, data=body, method=method, headers=headers)
        try:
            with opener.open(req, timeout=timeout) as resp:
                return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
        except urllib.error.HTTPError as exc:
            data = exc.read() if exc.fp is not None else b""
            return exc.code, {k.lower(): v for k, v in (exc.headers or {}).items()}, data

    def unreachable(exc: Exception) -> ProbeResult:
        why = getattr(exc, "reason", exc)
        return ProbeResult(
            False,
            False,
            f"cannot reach {url} ({why}); if the registry is stopped, drop --registry-url",
        )

    try:
        status, headers, _ = ask("GET", "/v2/", None)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return unreachable(exc)
    if "docker-distribution-api-version" not in headers:
        return ProbeResult(
            False,
            True,
            f"--registry-url {url}: GET /v2/ answered {status} without a "
            "Docker-Distribution-API-Version header: not a registry",
            status,
        )
    if status == 401:
        return ProbeResult(
            False,
            True,
            f"--registry-url {url}: asks for credentials (401), which regfs does not send; "
            "give the URL of a listener without auth, or stop the registry",
            status,
        )
    try:
        status, headers, body = ask("PUT", PROBE_PATH, PROBE_BODY)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return unreachable(exc)
    code = _error_code(body)
    if status == 405 and code is None:
        return ProbeResult(True, True, f"--registry-url {url}: read-only (405)", status)
    said = f"{status} {code}" if code else str(status)
    return ProbeResult(
        False,
        True,
        f"--registry-url {url}: writable (a PUT answered {said}, not 405); put it in "
        "read-only mode or stop it",
        status,
    )


def _error_code(body: bytes) -> str | None:
    """The first ``errors[].code`` of a registry error document, if the body is one."""
    try:
        doc = json.loads(body)
        return str(doc["errors"][0]["code"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None
