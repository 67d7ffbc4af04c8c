"""`acrrules tags fetch` against real HTTP servers on 127.0.0.1.

Every test serves its own download page and Service Tags files from a
`http.server` in a thread (and, for the proxy tests, a tiny recording proxy);
nothing leaves the loopback interface: in-process runs refuse to resolve any
other host, and Microsoft's default page is only ever asked for through a
loopback proxy that refuses to tunnel. After every failure the target
directory must be exactly as it was, temporary files included.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import run_cli, run_cli_process, service_tag, service_tags_document

from acrrules import catalog, fetch

PROXY_VARS = (
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
)
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """No proxy from the environment, a short deadline, and no name but loopback resolves in this process."""
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(fetch.ENV_TIMEOUT, "10")
    monkeypatch.setenv("ACRRULES_TODAY", "2026-12-07")  # the files below are dated up to then, not after
    real = socket.getaddrinfo

    def guarded(host, *args, **kwargs):
        if host not in LOOPBACK and host not in (b"127.0.0.1", b"localhost"):
            raise AssertionError(f"a test tried to resolve {host!r}: tests stay on 127.0.0.1")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)


# ---- Service Tags files ------------------------------------------------------------------------


def tags_bytes(cloud: str = "Public", change: int = 400, prefix: str = "192.0.2.0/24") -> bytes:
    """A small valid Service Tags file (documentation prefixes), in Microsoft's layout."""
    region = {"Public": "EastUS", "AzureGovernment": "USGovVirginia", "China": "ChinaNorth2"}[cloud]
    values = [
        service_tag(f"{family}.{region}", [prefix, "2001:db8::/48"], change=3, region_id=1)
        for family in (catalog.TAG_ACR, catalog.TAG_STORAGE)
    ]
    return json.dumps(service_tags_document(values, cloud, change), indent=2).encode() + b"\n"


def page_html(*links: str, script: bool = False) -> bytes:
    """A download page: links as <a href>, or (script=True) as the real page carries them, in a script's JSON."""
    if script:
        files = [{"name": link.rsplit("/", 1)[-1], "url": link} for link in links]
        data = json.dumps({"dlcDetailsView": {"downloadFile": files}}).replace("/", "\\/")
        body = f"<script>window.__DLCDetails__={data}</script>"
    else:
        body = "".join(f'<a href="{link}" class="download">Download</a>\n' for link in links)
    return (
        f"<!DOCTYPE html><html><head><title>Azure IP Ranges and Service Tags</title></head><body>"
        f"<p>File name: ServiceTags_Public_20261130.json</p>{body}</body></html>"
    ).encode()


# ---- a loopback web site -----------------------------------------------------------------------

Route = Callable[[BaseHTTPRequestHandler], None]


class QuietServer(ThreadingHTTPServer):
    """A client that gives up mid-answer is what several tests do: no report on stderr (which is the CLI's)."""

    daemon_threads = True

    def handle_error(self, request, client_address):
        pass


class Site:
    """An HTTP server on 127.0.0.1 whose routes each test sets; it records every request line."""

    def __init__(self):
        self.routes: dict[str, Route] = {}
        self.requests: list[str] = []
        self.stop = threading.Event()
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                site.requests.append(self.path)
                route = site.routes.get(self.path.split("?")[0])
                if route is None:
                    self.send_error(404)
                else:
                    route(self)

            def log_message(self, *args):
                pass

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def serve(
        self,
        path: str,
        body: bytes,
        status: int = 200,
        headers: dict | None = None,
        length: int | None = None,
        delay: float = 0.0,
    ) -> None:
        def route(h: BaseHTTPRequestHandler) -> None:
            if delay and self.stop.wait(delay):
                return
            h.send_response(status)
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.send_header("Content-Length", str(len(body) if length is None else length))
            h.end_headers()
            h.wfile.write(body)

        self.routes[path] = route

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        def route(h: BaseHTTPRequestHandler) -> None:
            h.send_response(status)
            h.send_header("Location", location)
            h.send_header("Content-Length", "0")
            h.end_headers()

        self.routes[path] = route

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site():
    s = Site()
    yield s
    s.close()


class Proxy:
    """A tiny HTTP proxy on 127.0.0.1 that records what it is asked. It forwards plain-http GETs
    to 127.0.0.1 only, and refuses every CONNECT (it never opens a tunnel anywhere)."""

    def __init__(self):
        self.requests: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_CONNECT(self):
                proxy.requests.append(f"CONNECT {self.path}")
                self.send_error(403, "tunnels are refused by the test proxy")

            def do_GET(self):
                proxy.requests.append(f"GET {self.path}")
                import http.client
                from urllib.parse import urlsplit

                target = urlsplit(self.path)
                if target.hostname != "127.0.0.1":
                    self.send_error(403, "the test proxy forwards to 127.0.0.1 only")
                    return
                conn = http.client.HTTPConnection("127.0.0.1", target.port, timeout=5)
                conn.request("GET", target.path or "/")
                r = conn.getresponse()
                body = r.read()
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                conn.close()

            def log_message(self, *args):
                pass

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy():
    p = Proxy()
    yield p
    p.close()


# ---- helpers -----------------------------------------------------------------------------------


def snapshot(directory: Path) -> dict[str, tuple[str, int]]:
    """Every entry under `directory`, hidden ones too: sha256 and mtime (None when it does not exist)."""
    if not directory.exists():
        return {}
    out = {}
    for root, dirs, files in os.walk(directory):
        for name in dirs + files:
            p = Path(root, name)
            digest = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            out[os.path.relpath(p, directory)] = (digest, p.stat().st_mtime_ns)
    return out


NAME = "ServiceTags_Public_20261130.json"


@pytest.fixture
def tags_dir(tmp_path) -> Path:
    """A directory that already holds last week's file (and something else), as a weekly job's would."""
    d = tmp_path / "servicetags"
    d.mkdir()
    (d / "ServiceTags_Public_20261123.json").write_bytes(tags_bytes(change=399))
    (d / "README").write_text("weekly Service Tags files\n")
    return d


def fetch_cli(*args, directory: Path):
    return run_cli("tags", "fetch", "--dir", directory, *args)


def assert_failed(r, directory: Path, before: dict, *words: str) -> None:
    """Exit 2, one line on stderr holding every word, nothing on stdout, and the directory untouched."""
    assert r.code == 2, (r.code, r.out, r.err)
    assert "Traceback" not in r.err and r.out == ""
    assert len(r.err.splitlines()) == 1, r.err
    for w in words:
        assert w in r.err, (w, r.err)
    assert snapshot(directory) == before


def publish(site: Site, body: bytes | None = None, name: str = NAME, script: bool = False) -> str:
    """Serve `body` as /download/<name> and a page at /page linking it; return the page URL."""
    site.serve(f"/download/{name}", tags_bytes() if body is None else body)
    site.serve("/page", page_html(site.url(f"/download/{name}"), script=script))
    return site.url("/page")


# ---- success ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("script", [False, True], ids=["href", "script-json"])
def test_fetch_writes_the_linked_file_and_prints_its_path(site, tags_dir, script):
    page = publish(site, script=script)
    r = fetch_cli("--page-url", page, directory=tags_dir)
    assert r.code == 0, r.err
    assert r.out == f"{tags_dir / NAME}\n"
    assert r.err == f"wrote {tags_dir / NAME}\n"
    assert (tags_dir / NAME).read_bytes() == tags_bytes()
    assert site.requests == ["/page", f"/download/{NAME}"]
    assert sorted(p.name for p in tags_dir.iterdir()) == ["README", "ServiceTags_Public_20261123.json", NAME]


def test_same_bytes_already_there_writes_nothing(site, tags_dir):
    page = publish(site)
    assert fetch_cli("--page-url", page, directory=tags_dir).code == 0
    before = snapshot(tags_dir)
    r = fetch_cli("--page-url", page, directory=tags_dir)
    assert r.code == 0 and r.out == f"{tags_dir / NAME}\n"
    assert r.err == f"{tags_dir / NAME} is already here with the same bytes: nothing written\n"
    assert snapshot(tags_dir) == before


def test_a_changed_file_of_the_same_name_replaces_the_old_one(site, tags_dir):
    (tags_dir / NAME).write_bytes(tags_bytes(change=400, prefix="198.51.100.0/24"))
    r = fetch_cli("--page-url", publish(site), directory=tags_dir)
    assert r.code == 0, r.err
    assert (tags_dir / NAME).read_bytes() == tags_bytes()


def test_dir_is_created_and_defaults_to_the_working_directory(site, tmp_path):
    page = publish(site)
    r = fetch_cli("--page-url", page, directory=tmp_path / "new" / "dir")
    assert r.code == 0 and (tmp_path / "new" / "dir" / NAME).is_file()
    here = tmp_path / "here"
    here.mkdir()
    r = run_cli("tags", "fetch", "--page-url", page, cwd=here)
    assert r.code == 0 and r.out == f"{NAME}\n" and (here / NAME).is_file()


def test_the_newest_link_is_taken_and_the_cloud_comes_from_spec(site, tmp_path):
    china = "ServiceTags_China_20261130.json"
    site.serve(f"/d/{china}", tags_bytes("China"))
    site.serve("/d/ServiceTags_China_20261123.json", tags_bytes("China", change=1))
    site.serve("/d/ServiceTags_Public_20261207.json", tags_bytes("Public"))
    site.serve(
        "/page", page_html("/d/ServiceTags_China_20261123.json", f"/d/{china}", "/d/ServiceTags_Public_20261207.json")
    )
    spec = tmp_path / "china.yaml"
    spec.write_text(
        "version: 1\ncloud: AzureChinaCloud\nregistries:\n"
        "  - {name: contosoacr, sku: Standard, location: chinanorth2}\n"
    )
    r = run_cli("tags", "fetch", "--spec", spec, "--dir", tmp_path / "out", "--page-url", site.url("/page"))
    assert r.code == 0, r.err
    assert r.out == f"{tmp_path / 'out' / china}\n"
    assert site.requests == ["/page", f"/d/{china}"]


def test_a_direct_json_url_is_accepted_as_page_url(site, tags_dir):
    site.serve(f"/files/{NAME}", tags_bytes())
    r = fetch_cli("--page-url", site.url(f"/files/{NAME}"), directory=tags_dir)
    assert r.code == 0, r.err
    assert site.requests == [f"/files/{NAME}"]


def test_a_redirect_to_a_file_on_the_same_host_is_followed(site, tags_dir):
    site.serve(f"/store/v2/{NAME}", tags_bytes())
    site.redirect(f"/download/{NAME}", f"/store/v2/{NAME}")
    site.serve("/page", page_html(f"/download/{NAME}"))
    r = fetch_cli("--page-url", site.url("/page"), directory=tags_dir)
    assert r.code == 0, r.err
    assert r.out == f"{tags_dir / NAME}\n"  # the link's name, not the redirect's
    assert site.requests == ["/page", f"/download/{NAME}", f"/store/v2/{NAME}"]


def test_transient_errors_are_retried_a_bounded_number_of_times(site, tags_dir):
    page = publish(site)
    good = site.routes[f"/download/{NAME}"]
    calls = []

    def flaky(h):
        calls.append(1)
        if len(calls) == 1:
            h.send_error(503)
        else:
            good(h)

    site.routes[f"/download/{NAME}"] = flaky
    r = fetch_cli("--page-url", page, directory=tags_dir)
    assert r.code == 0, r.err
    assert len(calls) == 2
    # always unavailable: three attempts, then one message
    site.routes[f"/download/{NAME}"] = lambda h: (calls.append(1), h.send_error(503))
    (tags_dir / NAME).unlink()
    before, calls[:] = snapshot(tags_dir), []
    assert_failed(fetch_cli("--page-url", page, directory=tags_dir), tags_dir, before, "HTTP 503", "run again later")
    assert len(calls) == fetch.ATTEMPTS


# ---- failures: nothing is written ----------------------------------------------------------------


@pytest.mark.parametrize("status, words", [(500, "HTTP 500"), (404, "HTTP 404")])
def test_http_errors(site, tags_dir, status, words):
    page = publish(site)
    site.serve(f"/download/{NAME}", b"oops", status=status)
    before = snapshot(tags_dir)
    assert_failed(
        fetch_cli("--page-url", page, directory=tags_dir), tags_dir, before, words, site.url(f"/download/{NAME}")
    )
    before = snapshot(tags_dir)
    site.serve("/page", b"gone", status=status)
    assert_failed(fetch_cli("--page-url", page, directory=tags_dir), tags_dir, before, words, page + ":")


def test_slow_server_times_out_within_the_deadline(site, tags_dir, monkeypatch):
    monkeypatch.setenv(fetch.ENV_TIMEOUT, "2")
    site.serve("/page", page_html(site.url(f"/download/{NAME}")), delay=30)
    before = snapshot(tags_dir)
    start = time.monotonic()
    r = fetch_cli("--page-url", site.url("/page"), directory=tags_dir)
    elapsed = time.monotonic() - start
    assert_failed(r, tags_dir, before, "no complete answer", "within 2 s")
    assert 1.5 < elapsed < 20, elapsed  # the server would answer after 30 s; headroom for a loaded machine


def test_a_body_that_trickles_is_cut_at_the_deadline(site, tags_dir, monkeypatch):
    monkeypatch.setenv(fetch.ENV_TIMEOUT, "2")
    body = tags_bytes()
    page = publish(site)

    def trickle(h):
        h.send_response(200)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        for i in range(len(body)):
            if site.stop.wait(0.2):
                return
            h.wfile.write(body[i : i + 1])
            h.wfile.flush()

    site.routes[f"/download/{NAME}"] = trickle
    before = snapshot(tags_dir)
    start = time.monotonic()
    r = fetch_cli("--page-url", page, directory=tags_dir)
    assert_failed(r, tags_dir, before, "no complete answer")
    assert time.monotonic() - start < 20  # the trickle would take hours; headroom for a loaded machine


def test_the_command_is_bounded_in_a_real_process(site, tags_dir):
    site.serve("/page", b"", delay=30)
    before = snapshot(tags_dir)
    start = time.monotonic()
    r = run_cli_process(
        "tags",
        "fetch",
        "--dir",
        tags_dir,
        "--page-url",
        site.url("/page"),
        env={fetch.ENV_TIMEOUT: "1.5", **dict.fromkeys(PROXY_VARS, "")},
        timeout=30,
    )
    assert_failed(r, tags_dir, before, "no complete answer")
    assert time.monotonic() - start < 20  # the server would answer after 30 s; headroom for a loaded machine


def test_no_network(tags_dir):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    before = snapshot(tags_dir)
    assert_failed(
        fetch_cli("--page-url", f"http://127.0.0.1:{port}/page", directory=tags_dir),
        tags_dir,
        before,
        f"connection refused by 127.0.0.1:{port}",
        "check the network",
    )


def test_page_without_the_link(site, tags_dir):
    site.serve("/page", b"<html><body>Azure IP Ranges and Service Tags - Public Cloud</body></html>")
    before = snapshot(tags_dir)
    assert_failed(
        fetch_cli("--page-url", site.url("/page"), directory=tags_dir),
        tags_dir,
        before,
        "has no link to a ServiceTags_Public_<YYYYMMDD>.json file",
    )


def test_page_of_another_cloud(site, tags_dir):
    site.serve("/page", page_html(site.url("/d/ServiceTags_AzureGovernment_20261130.json")))
    before = snapshot(tags_dir)
    assert_failed(
        fetch_cli("--page-url", site.url("/page"), "--cloud", "AzureCloud", directory=tags_dir),
        tags_dir,
        before,
        "ServiceTags_AzureGovernment_20261130.json",
        "another cloud",
    )


def test_a_link_on_a_foreign_host_is_refused(site, tags_dir):
    # localhost is the same server, but not the page's host: the rule is about names, and nothing is fetched
    site.serve(f"/download/{NAME}", tags_bytes())
    site.serve("/page", page_html(site.url(f"/download/{NAME}", host="localhost")))
    before = snapshot(tags_dir)
    assert_failed(
        fetch_cli("--page-url", site.url("/page"), directory=tags_dir),
        tags_dir,
        before,
        f"only at http://localhost:{site.port}/download/{NAME}",
        "does not download from",
    )
    assert site.requests == ["/page"]


def test_a_redirect_to_a_foreign_host_is_refused(site, tags_dir):
    site.serve(f"/elsewhere/{NAME}", tags_bytes())
    site.redirect(f"/download/{NAME}", site.url(f"/elsewhere/{NAME}", host="localhost"))
    site.serve("/page", page_html(f"/download/{NAME}"))
    before = snapshot(tags_dir)
    assert_failed(
        fetch_cli("--page-url", site.url("/page"), directory=tags_dir),
        tags_dir,
        before,
        "redirects to http://localhost:",
        "does not download from",
    )
    assert f"/elsewhere/{NAME}" not in site.requests


def test_the_default_page_rule_takes_https_links_on_microsofts_download_host_only():
    page = catalog.SERVICETAGS_DOWNLOAD_PAGES["AzureCloud"]
    good = f"https://download.microsoft.com/download/7/1/d/0000/{NAME}"
    refused = [
        f"http://download.microsoft.com/download/{NAME}",  # not https
        f"https://download.microsoft.com.example.net/{NAME}",  # another host
        f"https://download.microsoft.com:8443/{NAME}",  # another port
        f"https://www.microsoft.com/en-us/download/{NAME}",
    ]  # the page's own host
    for link in refused:
        with pytest.raises(fetch.FetchError, match="does not download from"):
            fetch._pick(page_html(link).decode(), page, page, "Public", own_page=False)
    text = page_html(*refused, good, script=True).decode()
    assert fetch._pick(text, page, page, "Public", own_page=False) == (good, NAME)
    # a relative link resolves against the page: www.microsoft.com, not the download host
    with pytest.raises(fetch.FetchError):
        fetch._pick(page_html(f"/download/{NAME}").decode(), page, page, "Public", own_page=False)
    assert set(catalog.SERVICETAGS_DOWNLOAD_PAGES) == set(catalog.CLOUDS)
    assert [u.rsplit("=", 1)[1] for u in catalog.SERVICETAGS_DOWNLOAD_PAGES.values()] == ["56519", "57063", "57062"]


def test_link_finding_survives_hostile_pages():
    page = catalog.SERVICETAGS_DOWNLOAD_PAGES["AzureCloud"]
    good = f"https://download.microsoft.com/download/{NAME}"
    broken = [f"http://[::1/{NAME}", f"https://download.microsoft.com:port/{NAME}", f"//[/{NAME}"]
    text = page_html(*broken, good).decode() + " ".join(broken)
    assert fetch.links(text, page, "Public") == [(good, NAME)]
    # Headroom, not a benchmark (measured well under 1 s): a backtracking pattern is quadratic or worse on
    # these 7-8 MB pages, hours rather than seconds, so 30 s still catches it on a loaded 2-core machine.
    for hostile in ("//" * 4_000_000, 'href="' * 1_300_000, ("https://x/" + "a" * 10_000 + "/") * 700):
        start = time.monotonic()
        assert fetch.links(hostile, page, "Public") == []
        assert time.monotonic() - start < 30


@pytest.mark.parametrize(
    "body, words",
    [
        (tags_bytes()[:200], "the file is truncated"),
        (b"<html><body>Sign in to continue</body></html>", "not valid JSON"),
        (b"", "the file is empty"),
    ],
)
def test_a_damaged_file_is_refused(site, tags_dir, body, words):
    page = publish(site, body)
    before = snapshot(tags_dir)
    assert_failed(
        fetch_cli("--page-url", page, directory=tags_dir), tags_dir, before, words, site.url(f"/download/{NAME}")
    )


def test_a_malformed_tag_is_refused(site, tags_dir):
    page = publish(site, tags_bytes(prefix="192.0.2.1/24"))
    before = snapshot(tags_dir)
    assert_failed(fetch_cli("--page-url", page, directory=tags_dir), tags_dir, before, "has host bits set")


def test_a_lying_server_content_says_china_name_says_public(site, tags_dir):
    page = publish(site, tags_bytes("China"))
    before = snapshot(tags_dir)
    assert_failed(
        fetch_cli("--page-url", page, directory=tags_dir),
        tags_dir,
        before,
        f"{site.url(f'/download/{NAME}')}:3:3: the downloaded file is for cloud 'China'",
        f"{NAME} for AzureCloud must say 'Public'",
    )


def test_a_lying_server_content_length_larger_than_body(site, tags_dir):
    body = tags_bytes()
    page = publish(site)
    site.serve(f"/download/{NAME}", body, length=len(body) + 1000)
    before = snapshot(tags_dir)
    assert_failed(
        fetch_cli("--page-url", page, directory=tags_dir),
        tags_dir,
        before,
        f"cut off after {len(body)} of {len(body) + 1000} bytes",
    )
    assert site.requests.count(f"/download/{NAME}") == fetch.ATTEMPTS  # a cut-off download is worth a retry


def test_too_large(site, tags_dir):
    page = publish(site)
    site.serve(f"/download/{NAME}", b"{}", length=fetch.FILE_MAX_BYTES + 1)
    before = snapshot(tags_dir)
    assert_failed(fetch_cli("--page-url", page, directory=tags_dir), tags_dir, before, "larger than 64 MiB")


def test_too_large_without_content_length(site, tags_dir, monkeypatch):
    monkeypatch.setattr(fetch, "FILE_MAX_BYTES", 1024 * 1024)
    page = publish(site)

    def endless(h):  # HTTP/1.0 without a length: the body ends when the connection closes
        h.send_response(200)
        h.end_headers()
        for _ in range(64):
            h.wfile.write(b" " * 65536)

    site.routes[f"/download/{NAME}"] = endless
    before = snapshot(tags_dir)
    assert_failed(fetch_cli("--page-url", page, directory=tags_dir), tags_dir, before, "larger than 1 MiB")


def test_an_older_change_number_than_the_newest_in_dir(site, tags_dir):
    (tags_dir / "ServiceTags_Public_20261207.json").write_bytes(tags_bytes(change=401))
    (tags_dir / "ServiceTags_Public_20200101.json").write_bytes(tags_bytes(change=999))  # older by date
    page = publish(site, tags_bytes(change=400))
    before = snapshot(tags_dir)
    assert_failed(
        fetch_cli("--page-url", page, directory=tags_dir),
        tags_dir,
        before,
        "changeNumber 400 is lower than the 401 of",
        "ServiceTags_Public_20261207.json",
    )


def test_a_damaged_newest_file_in_dir_is_named(site, tags_dir):
    (tags_dir / "ServiceTags_Public_20261207.json").write_text("{")
    page = publish(site)
    before = snapshot(tags_dir)
    assert_failed(
        fetch_cli("--page-url", page, directory=tags_dir),
        tags_dir,
        before,
        "ServiceTags_Public_20261207.json:1:2: the file is truncated",
        "replace or remove it",
    )


def test_dir_that_is_a_file(site, tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    r = run_cli("tags", "fetch", "--dir", target, "--page-url", publish(site))
    assert r.code == 2 and "it is a file, not a directory" in r.err and target.read_text() == "x"
    assert site.requests == []


@pytest.mark.parametrize(
    "args, words",
    [
        (["--cloud", "AzureCloud", "--spec", "x.yaml"], "give --cloud or --spec, not both"),
        (["--page-url", "ftp://127.0.0.1/page"], "is not an http:// or https:// URL"),
        (["--page-url", "http://127.0.0.1:99999/page"], "is not a valid URL"),
        (["--page-url", "http://127.0.0.1:1/files/tags.json"], "does not name a ServiceTags_Public_<YYYYMMDD>.json"),
        (
            ["--page-url", f"http://127.0.0.1:1/files/{NAME}", "--cloud", "AzureChinaCloud"],
            "does not name a ServiceTags_China_<YYYYMMDD>.json",
        ),
    ],
)
def test_usage_errors(tags_dir, args, words):
    before = snapshot(tags_dir)
    assert_failed(fetch_cli(*args, directory=tags_dir), tags_dir, before, words)


def test_timeout_knob_must_be_a_number(tags_dir, monkeypatch):
    monkeypatch.setenv(fetch.ENV_TIMEOUT, "soon")
    before = snapshot(tags_dir)
    assert_failed(
        fetch_cli("--page-url", "http://127.0.0.1:1/page", directory=tags_dir),
        tags_dir,
        before,
        "ACRRULES_FETCH_TIMEOUT='soon' is not a number of seconds",
    )


# ---- proxies ------------------------------------------------------------------------------------


def test_http_proxy_is_honoured_and_no_proxy_bypasses_it(site, proxy, tags_dir, monkeypatch):
    page = publish(site)
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    r = fetch_cli("--page-url", page, directory=tags_dir)
    assert r.code == 0, r.err
    assert proxy.requests == [f"GET {page}", f"GET {site.url(f'/download/{NAME}')}"]
    assert site.requests == ["/page", f"/download/{NAME}"]

    (tags_dir / NAME).unlink()
    proxy.requests.clear()
    site.requests.clear()
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    r = fetch_cli("--page-url", page, directory=tags_dir)
    assert r.code == 0, r.err
    assert proxy.requests == [] and site.requests == ["/page", f"/download/{NAME}"]


def test_https_proxy_is_used_for_microsofts_default_page(proxy, tags_dir, monkeypatch):
    """The default page goes through HTTPS_PROXY as a CONNECT tunnel; this proxy refuses it, so nothing leaves."""
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    before = snapshot(tags_dir)
    r = run_cli("tags", "fetch", "--dir", tags_dir)
    assert_failed(
        r,
        tags_dir,
        before,
        catalog.SERVICETAGS_DOWNLOAD_PAGES["AzureCloud"],
        f"the proxy {proxy.url} refused to connect",
        "403",
    )
    assert proxy.requests == ["CONNECT www.microsoft.com:443"]


def test_proxy_credentials_are_not_printed(tags_dir, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HTTP_PROXY", f"http://alice:s3cret@127.0.0.1:{port}")
    r = fetch_cli("--page-url", "http://127.0.0.1:1/page", directory=tags_dir)
    assert r.code == 2 and "s3cret" not in r.err and "alice" not in r.err
    assert f"connection refused by the proxy http://127.0.0.1:{port}" in r.err


def test_network_errors_say_what_happened_and_what_to_do():
    deadline = fetch._Deadline(60)
    url = catalog.SERVICETAGS_DOWNLOAD_PAGES["AzureCloud"]
    dns = fetch._network_error(url, socket.gaierror(-2, "Name or service not known"), None, deadline)
    assert str(dns) == (
        f"{url}: cannot resolve www.microsoft.com (Name or service not known): check the network "
        "and DNS, or set HTTPS_PROXY to the proxy this machine must use"
    )
    import ssl

    tls = fetch._network_error(url, ssl.SSLCertVerificationError(1, "certificate verify failed"), None, deadline)
    assert "TLS failed" in str(tls) and "SSL_CERT_FILE" in str(tls)
    slow = fetch._network_error(url, TimeoutError(), "http://proxy.example:3128", deadline)
    assert str(slow).startswith(f"{url}: no complete answer through proxy http://proxy.example:3128 within 60 s")


# ---- the real entry point ---------------------------------------------------------------------


def test_real_process_success_and_failure(site, tags_dir):
    page = publish(site)
    env = {fetch.ENV_TIMEOUT: "10", **dict.fromkeys(PROXY_VARS, "")}
    r = run_cli_process("tags", "fetch", "--dir", tags_dir, "--page-url", page, env=env)
    assert r.code == 0 and r.out == f"{tags_dir / NAME}\n" and "Traceback" not in r.err, r.err
    site.serve(f"/download/{NAME}", b"[", status=200)
    (tags_dir / NAME).unlink()
    before = snapshot(tags_dir)
    r = run_cli_process("tags", "fetch", "--dir", tags_dir, "--page-url", page, env=env)
    assert_failed(r, tags_dir, before, "truncated")


# ---- issue 13: redirects to other schemes, and what a committed file in --dir may not do ------------


@pytest.mark.parametrize("where", ["page", "file"])
@pytest.mark.parametrize("location", ["file:///etc/passwd", "ftp://127.0.0.1/ServiceTags_Public_20261130.json"])
def test_a_redirect_to_another_scheme_has_its_own_message(site, tags_dir, where, location):
    # urllib refuses file:// itself with an HTTPError 302, which read as "more than 5 redirects"
    page = publish(site)
    site.redirect("/page" if where == "page" else f"/download/{NAME}", location)
    before = snapshot(tags_dir)
    r = fetch_cli("--page-url", page, directory=tags_dir)
    assert_failed(r, tags_dir, before, f"redirects (HTTP 302) to {location}", "not an https:// URL")
    assert "more than" not in r.err


def test_a_redirect_from_https_to_http_is_refused():
    import email.message
    import io
    import urllib.request

    headers = email.message.Message()
    headers["Location"] = "http://download.microsoft.com/ServiceTags_Public_20261130.json"
    request = urllib.request.Request("https://download.microsoft.com/ServiceTags_Public_20261130.json")
    with pytest.raises(fetch.FetchError, match="from https to plain http"):
        fetch._Redirects().http_error_301(request, io.BytesIO(), 301, "Moved", headers)


def test_a_redirect_without_location_is_no_redirect_loop(site, tags_dir):
    page = publish(site)
    site.serve(f"/download/{NAME}", b"", status=302)
    before = snapshot(tags_dir)
    r = fetch_cli("--page-url", page, directory=tags_dir)
    assert_failed(r, tags_dir, before, "HTTP 302 without a redirect acrrules can follow")


def test_a_redirect_loop_is_still_more_than_5_redirects(site, tags_dir):
    page = publish(site)
    site.redirect(f"/download/{NAME}", f"/download/{NAME}")
    before = snapshot(tags_dir)
    assert_failed(fetch_cli("--page-url", page, directory=tags_dir), tags_dir, before, "more than 5 redirects")


@pytest.mark.parametrize(
    "name, body, words",
    [
        ("ServiceTags_Public_20991231.json", tags_bytes(change=401), "dated 2099-12-31 by its name, after today"),
        (
            "ServiceTags_Public_20261206.json",
            b'{"changeNumber": 1' + b"0" * 4000 + b', "cloud": "Public", "values": []}',
            "changeNumber 10000000...(4001 digits) is above",
        ),
    ],
    ids=["future-date", "changeNumber-10^4000"],
)
def test_a_committed_hostile_file_in_dir_is_named_with_the_fix(site, tags_dir, name, body, words):
    # It would otherwise be "the newest file" forever, and every later download "older" (the loop stalls).
    (tags_dir / name).write_bytes(body)
    page = publish(site, tags_bytes(change=402))
    before = snapshot(tags_dir)
    assert_failed(
        fetch_cli("--page-url", page, directory=tags_dir),
        tags_dir,
        before,
        f"{tags_dir / name}",
        words,
        "replace or remove it",
    )
