"""`acrrules tags fetch`: download the cloud's current Service Tags file from Microsoft.

Microsoft publishes the file weekly behind a download page per cloud; the page
links ServiceTags_<Cloud>_<YYYYMMDD>.json on download.microsoft.com. This reads
the page, takes that link, downloads the file into memory, checks it like
`--service-tags` does (plus: the right cloud, every tag well-formed, not older
than the newest file already in DIR) and only then writes it, atomically, with
write.write_files. A failure of any kind is one FetchError (exit 2); nothing is
written.

The standard library's urllib is enough and is what this uses: it honours
HTTPS_PROXY / HTTP_PROXY / NO_PROXY (including CONNECT tunnels for https),
verifies TLS against the system's CAs (SSL_CERT_FILE for an inspecting proxy)
and follows redirects, which is everything a client behind a firewall needs;
a third-party HTTP client would add a dependency and nothing this job uses.

The whole command is bounded: one deadline (60 s, ACRRULES_FETCH_TIMEOUT to
tune it, e.g. in tests) covers the page, the file, redirects and retries. Each
request's socket timeout is at most a third of it, so a retry fits, and the
network work runs in a worker thread the command stops waiting for at the
deadline (name resolution, for one, takes no timeout).
"""

from __future__ import annotations

import html
import http.client
import os
import re
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, NamedTuple
from urllib.parse import urljoin, urlsplit, urlunsplit

from . import __version__, catalog, servicetags, write
from .errors import FetchError, InputError, UsageError
from .escape import terminal

ENV_TIMEOUT = "ACRRULES_FETCH_TIMEOUT"
DEFAULT_TIMEOUT = 60.0
ATTEMPTS = 3  # per request, on transient failures only
BACKOFF = 1.0  # seconds before the 2nd attempt; doubles for the 3rd
PAGE_MAX_BYTES = 8 * 1024 * 1024  # the real pages are a few hundred KB
FILE_MAX_BYTES = catalog.SERVICETAGS_MAX_BYTES  # what servicetags reads at most; the Public file is ~4 MB
MAX_REDIRECTS = 5
_TRANSIENT_HTTP = frozenset({408, 429, 502, 503, 504})
_CHUNK = 64 * 1024


def total_timeout() -> float:
    value = os.environ.get(ENV_TIMEOUT)
    if not value:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(value)
        if not 0 < seconds <= 3600:
            raise ValueError
    except ValueError:
        raise UsageError(
            f"{ENV_TIMEOUT}={value!r} is not a number of seconds from 0 to 3600: unset it "
            f"(default {DEFAULT_TIMEOUT:g} s) or give e.g. {ENV_TIMEOUT}=5"
        ) from None
    return seconds


class _Deadline:
    def __init__(self, seconds: float):
        self.total = seconds
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def request_timeout(self) -> float:
        return max(0.01, min(self.remaining(), self.total / ATTEMPTS))


class _Transient(Exception):
    """A failure worth another attempt; carries the FetchError to raise when attempts run out."""

    def __init__(self, error: FetchError):
        super().__init__(str(error))
        self.error = error


# ---- URLs and links ---------------------------------------------------------------------


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


def _on_microsoft_host(url: str) -> bool:
    return _origin(url) == ("https", catalog.SERVICETAGS_DOWNLOAD_HOST, 443)


def _allowed_rule(page_url: str | None) -> tuple[Callable[[str], bool], str]:
    """Which file URLs may be downloaded, and the rule in words for messages."""
    microsoft = f"https://{catalog.SERVICETAGS_DOWNLOAD_HOST}/"
    if page_url is None:
        return _on_microsoft_host, microsoft
    own = _origin(page_url)
    scheme, host, port = own
    return (
        lambda url: _on_microsoft_host(url) or _origin(url) == own
    ), f"{microsoft} or the page's own host ({scheme}://{host}:{port}/)"


def _redacted(url: str) -> str:
    """A proxy URL without its user and password, for messages."""
    parts = urlsplit(url if "://" in url else "http://" + url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _proxy_for(url: str) -> str | None:
    parts = urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if not proxy or urllib.request.proxy_bypass(parts.netloc):
        return None
    return _redacted(proxy)


def _check_url(url: str, what: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as e:
        raise UsageError(f"{what} {url!r} is not a valid URL ({e}): give an http:// or https:// address") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(
            f"{what} {url!r} is not an http:// or https:// URL: give the download page's address "
            "or a direct link to the ServiceTags_<Cloud>_<YYYYMMDD>.json file"
        )


def _file_name(url: str, kind: str) -> str | None:
    """The link's file name when it is ServiceTags_<kind>_<YYYYMMDD>.json with a real date."""
    name = urlsplit(url).path.rsplit("/", 1)[-1]
    m = servicetags.FILE_NAME.fullmatch(name)
    if not m or m.group(1) != kind or servicetags.date_in_name(name) is None:
        return None
    return name


# Both patterns run in linear time on any page: no backtracking across a whole page.
_ATTRIBUTE = re.compile(r"""(?i)\b(?:href|src)\s*=\s*(["'])([^"'<>]{0,4096})\1""")
_TOKEN = re.compile(r"""[^\s"'<>`\\(){}\[\],;]+""")
_ANY_NAME = re.compile(r"ServiceTags_[A-Za-z]+_[0-9]{8}\.json")


def links(page: str, base_url: str, kind: str) -> list[tuple[str, str]]:
    """(URL, file name) of every link to a ServiceTags_<kind>_<date>.json file on the page, in page order.

    Links count in href/src attributes (relative ones resolved against the page) and as
    absolute URLs anywhere, which is how the current page carries them: in a script's JSON.
    A file name in plain text is no link.
    """
    text = html.unescape(page).replace("\\/", "/").replace("\\u002f", "/").replace("\\u002F", "/")
    found = [(m.start(2), m.group(2).strip()) for m in _ATTRIBUTE.finditer(text) if "ServiceTags_" in m.group(2)]
    found += [
        (m.start(), m.group(0))
        for m in _TOKEN.finditer(text)
        if "ServiceTags_" in m.group(0) and m.group(0).startswith(("http://", "https://", "//"))
    ]
    out, seen = [], set()
    for _, link in sorted(found):
        try:
            url = urljoin(base_url, link)
            name = _file_name(url, kind)
            _origin(url)  # a link with a malformed port or host is no link
        except ValueError:
            continue
        if name and url not in seen:
            seen.add(url)
            out.append((url, name))
    return out


def _pick(page: str, page_url: str, final_url: str, kind: str, own_page: bool) -> tuple[str, str]:
    allowed, rule = _allowed_rule(page_url if own_page else None)
    candidates = links(page, final_url, kind)
    usable = [(u, n) for u, n in candidates if allowed(u)]
    if usable:
        return max(usable, key=lambda c: c[1][-13:-5])  # newest date; max keeps the first of equals
    if candidates:
        url, name = candidates[0]
        raise FetchError(
            f"{page_url}: the page links {name} only at {url}, which acrrules does not download "
            f"from (it takes links on {rule}): check --page-url, or download the file yourself"
        )
    others = sorted({n for n in _ANY_NAME.findall(html.unescape(page)) if not n.startswith(f"ServiceTags_{kind}_")})
    hint = f" (it names {', '.join(others[:3])}: the page of another cloud?)" if others else ""
    raise FetchError(
        f"{page_url}: the page has no link to a ServiceTags_{kind}_<YYYYMMDD>.json file{hint}: "
        "check --page-url; if Microsoft changed the page, give the file's direct link as --page-url"
    )


# ---- HTTP -----------------------------------------------------------------------------------


class _Redirects(urllib.request.HTTPRedirectHandler):
    max_redirections = MAX_REDIRECTS

    def __init__(self, allowed: Callable[[str], bool] | None = None, rule: str = ""):
        super().__init__()
        self.allowed, self.rule = allowed, rule

    def http_error_302(
        self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str, headers: http.client.HTTPMessage
    ) -> IO[bytes] | None:
        """The scheme is checked here, first: urllib refuses a redirect to file:// itself, with an
        HTTPError of the 3xx code, which read as "more than 5 redirects"."""
        location = headers.get("location") or headers.get("uri")
        if location:
            try:
                newurl = urljoin(req.full_url, location.strip())
                scheme = urlsplit(newurl).scheme.lower()
            except ValueError:
                newurl, scheme = location, ""
            if scheme not in ("http", "https"):
                fp.close()
                raise FetchError(
                    f"{terminal(req.full_url)}: the server redirects (HTTP {code}) to {terminal(newurl)}, which is "
                    "not an https:// URL: acrrules follows redirects to http(s) only; check --page-url"
                )
            if scheme == "http" and urlsplit(req.full_url).scheme == "https":
                fp.close()
                raise FetchError(
                    f"{terminal(req.full_url)}: the server redirects (HTTP {code}) from https to plain http "
                    f"({terminal(newurl)}), where anyone on the way could change the file: check --page-url"
                )
        result: IO[bytes] | None = super().http_error_302(req, fp, code, msg, headers)
        return result

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        if self.allowed is not None and not self.allowed(newurl):
            fp.close()
            raise FetchError(
                f"{req.full_url}: the server redirects to {newurl}, which acrrules does not "
                f"download from (it takes files on {self.rule}): check --page-url"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _via(proxy: str | None) -> str:
    return f" through proxy {proxy}" if proxy else ""


def _http_error(url: str, e: urllib.error.HTTPError, proxy: str | None) -> FetchError:
    code, via = e.code, _via(proxy)
    if 300 <= code < 400:
        if str(e.reason).startswith(urllib.request.HTTPRedirectHandler.inf_msg):
            return FetchError(f"{url}: more than {MAX_REDIRECTS} redirects, or a loop{via}: check --page-url")
        return FetchError(
            f"{url}: the server answered HTTP {code} without a redirect acrrules can follow (no Location){via}: "
            "check --page-url, or give the file's direct link"
        )
    if code == 407:
        fix = "the proxy wants credentials: put them in HTTPS_PROXY (http://USER:PASSWORD@HOST:PORT)"
    elif code in (404, 410):
        fix = "check --page-url; if Microsoft moved the page or file, run again later or give the file's direct link"
    elif code in (401, 403):
        fix = "the server or a proxy refuses this machine: check the proxy settings (HTTPS_PROXY, NO_PROXY)"
    elif code >= 500:
        fix = "the server has a problem: run again later"
    else:
        fix = "check --page-url, or run again later"
    return FetchError(f"{url}: the server answered HTTP {code} {e.reason}{via}: {fix}")


def _network_error(url: str, reason: BaseException, proxy: str | None, deadline: _Deadline) -> FetchError:
    host, via = urlsplit(url).hostname, _via(proxy)
    if isinstance(reason, TimeoutError):
        return FetchError(
            f"{url}: no complete answer{via} within {deadline.total:g} s: check the network or "
            "the proxy (HTTPS_PROXY, NO_PROXY), then run again"
        )
    if isinstance(reason, socket.gaierror):
        what = f"cannot resolve the host of the proxy {proxy}" if proxy else f"cannot resolve {host}"
        return FetchError(
            f"{url}: {what} ({reason.strerror or reason}): check the network and DNS, or set "
            "HTTPS_PROXY to the proxy this machine must use"
        )
    if isinstance(reason, ssl.SSLError):
        detail = getattr(reason, "verify_message", None) or getattr(reason, "reason", None) or str(reason)
        return FetchError(
            f"{url}: TLS failed{via} ({detail}): if a proxy inspects TLS, point SSL_CERT_FILE at its CA certificates"
        )
    if isinstance(reason, ConnectionRefusedError):
        port = urlsplit(url).port
        target = f"the proxy {proxy}" if proxy else (f"{host}:{port}" if port else host)
        return FetchError(
            f"{url}: connection refused by {target}: check the network and the proxy settings (HTTPS_PROXY, NO_PROXY)"
        )
    text = getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
    if via and str(reason).startswith("Tunnel connection failed"):
        return FetchError(
            f"{url}: the proxy {proxy} refused to connect ({reason}): check HTTPS_PROXY, NO_PROXY and the proxy's rules"
        )
    return FetchError(
        f"{url}: cannot download{via}: {text}: check the network and the proxy settings "
        "(HTTPS_PROXY, NO_PROXY), then run again"
    )


def _transient_reason(reason: BaseException) -> bool:
    return isinstance(
        reason,
        (
            TimeoutError,
            ConnectionResetError,
            ConnectionAbortedError,
            BrokenPipeError,
            http.client.RemoteDisconnected,
            http.client.IncompleteRead,
        ),
    )


class _Body(NamedTuple):
    data: bytes
    final_url: str


def _get_once(url: str, limit: int, deadline: _Deadline, redirects: _Redirects) -> _Body:
    proxy = _proxy_for(url)
    via = _via(proxy)
    if deadline.remaining() <= 0:
        raise _network_error(url, TimeoutError(), proxy, deadline)
    opener = urllib.request.build_opener(redirects)  # with the default ProxyHandler: the *_PROXY variables
    request = urllib.request.Request(url, headers={"User-Agent": f"acrrules/{__version__}"})
    try:
        response = opener.open(request, timeout=deadline.request_timeout())
    except urllib.error.HTTPError as e:
        e.close()
        error = _http_error(url, e, proxy)
        raise (_Transient(error) if e.code in _TRANSIENT_HTTP else error) from None
    except urllib.error.URLError as e:
        reason = e.reason if isinstance(e.reason, BaseException) else OSError(str(e.reason))
        error = _network_error(url, reason, proxy, deadline)
        raise (_Transient(error) if _transient_reason(reason) else error) from None
    except (OSError, http.client.HTTPException) as e:
        error = (
            _network_error(url, e, proxy, deadline)
            if isinstance(e, OSError)
            else FetchError(f"{url}: the answer is not valid HTTP ({type(e).__name__}: {e}): run again later")
        )
        raise (_Transient(error) if _transient_reason(e) else error) from None
    with response:
        final = response.geturl()
        if response.status != 200:
            raise FetchError(
                f"{url}: the server answered HTTP {response.status} {response.reason}{via}, not 200: "
                "check --page-url, or run again later"
            )
        declared = response.headers.get("Content-Length")
        length = int(declared) if declared and declared.strip().isdigit() else None
        too_large = FetchError(
            f"{final}: larger than {limit // (1024 * 1024)} MiB, far more than a Service Tags "
            "file or its download page: check --page-url"
        )
        if length is not None and length > limit:
            raise too_large
        chunks, got = [], 0
        try:
            while True:
                if deadline.remaining() <= 0:
                    raise TimeoutError
                chunk = response.read1(_CHUNK)
                if not chunk:
                    break
                got += len(chunk)
                if got > limit:
                    raise too_large
                chunks.append(chunk)
        except (OSError, http.client.HTTPException) as e:
            error = (
                _network_error(final, e, proxy, deadline)
                if isinstance(e, OSError)
                else FetchError(f"{final}: the download broke off ({type(e).__name__}): run again later")
            )
            raise (_Transient(error) if _transient_reason(e) else error) from None
        if length is not None and got < length:
            raise _Transient(
                FetchError(f"{final}: the download was cut off after {got} of {length} bytes: run again later")
            )
        return _Body(b"".join(chunks), final)


def _get(url: str, limit: int, deadline: _Deadline, redirects: _Redirects) -> _Body:
    """GET with bounded retries on transient failures (timeouts, resets, 408/429/502/503/504, cut-off bodies)."""
    for attempt in range(ATTEMPTS):
        try:
            return _get_once(url, limit, deadline, redirects)
        except _Transient as t:
            pause = min(BACKOFF * 2**attempt, deadline.total / 20)  # a short test deadline, short pauses
            if attempt == ATTEMPTS - 1 or deadline.remaining() <= pause:
                raise t.error from None
            time.sleep(pause)
    raise AssertionError("unreachable")  # pragma: no cover


def _bounded(work: Callable[[], tuple[str, str, bytes]], deadline: _Deadline, url: str) -> tuple[str, str, bytes]:
    """Run `work` in a worker thread and stop waiting for it at the deadline."""
    values: list[tuple[str, str, bytes]] = []  # what `work` returned, or
    errors: list[BaseException] = []  # what it raised

    def run() -> None:
        try:
            values.append(work())
        except BaseException as e:
            errors.append(e)

    worker = threading.Thread(target=run, name="acrrules-fetch", daemon=True)
    worker.start()
    worker.join(max(deadline.remaining(), 0) + 1.0)  # the worker's own time-outs fire first, with details
    if worker.is_alive():
        raise FetchError(
            f"{url}: no complete answer within {deadline.total:g} s (name resolution or the connection "
            "hangs): check the network, DNS and the proxy settings (HTTPS_PROXY, NO_PROXY)"
        )
    if errors:
        raise errors[0]
    return values[0]


# ---- the command ------------------------------------------------------------------------------


def _newest_local(directory: Path, kind: str) -> Path | None:
    dated = servicetags.dated_files(str(directory), kind)
    return Path(dated[-1]) if dated else None


def _check_download(url: str, name: str, raw: bytes, kind: str, cloud: str, newest: Path | None) -> None:
    tags = servicetags.parse(url, raw)
    if tags.cloud != kind:
        raise tags.error(
            f"the downloaded file is for cloud {tags.cloud!r}, but {name} for {cloud} must say "
            f"{kind!r}: the server sent the wrong file; check --page-url, or run again later",
            re.compile(r'"cloud"\s*:'),
        )
    for tag in tags.entries:  # a file fetch accepts renders and diffs, whatever tags a description uses
        tags.tag(tag)
    if newest is None:
        return
    try:
        have = servicetags.load(str(newest))
    except InputError as e:
        raise FetchError(
            f"{e.lines()[0]} (it is the newest ServiceTags_{kind}_*.json in {newest.parent}, which a "
            "download must not be older than): replace or remove it, then run again"
        ) from None
    if tags.change_number < have.change_number:
        raise FetchError(
            f"{url}: changeNumber {tags.change_number} is lower than the {have.change_number} of "
            f"{newest}, which you already have: the server sent an older file; keep yours and run "
            "again later, or check --page-url"
        )


def fetch(cloud: str, directory: str = ".", page_url: str | None = None) -> tuple[Path, bool]:
    """Download `cloud`'s current Service Tags file into `directory`: (its path, whether it was written)."""
    kind = catalog.CLOUDS[cloud].servicetags_cloud
    deadline = _Deadline(total_timeout())
    if page_url is not None:
        _check_url(page_url, "--page-url")
    out = Path(directory)
    if out.exists() and not out.is_dir():
        raise FetchError(f"{directory}: cannot save the Service Tags file there: it is a file, not a directory")
    newest = _newest_local(out, kind) if out.is_dir() else None

    name: str | None = None  # set when --page-url is a direct link to the file
    if page_url is not None and urlsplit(page_url).path.lower().endswith(".json"):
        name = _file_name(page_url, kind)
        if name is None:
            raise UsageError(
                f"--page-url {page_url}: the link does not name a ServiceTags_{kind}_<YYYYMMDD>.json "
                f"file ({cloud}): give the download page, or a direct link to that file"
            )
    page = page_url or catalog.SERVICETAGS_DOWNLOAD_PAGES[cloud]

    def download() -> tuple[str, str, bytes]:
        if name is not None:
            file_url, file_name = page, name
        else:
            body = _get(page, PAGE_MAX_BYTES, deadline, _Redirects())
            file_url, file_name = _pick(
                body.data.decode("utf-8", "replace"), page, body.final_url, kind, own_page=page_url is not None
            )
        allowed, rule = _allowed_rule(page_url)
        return file_url, file_name, _get(file_url, FILE_MAX_BYTES, deadline, _Redirects(allowed, rule)).data

    file_url, file_name, raw = _bounded(download, deadline, page)
    _check_download(file_url, file_name, raw, kind, cloud, newest)
    ((path, changed),) = write.write_files(directory, {file_name: raw})
    return path, changed
