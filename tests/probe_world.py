"""A small "cloud" for `acrrules probe`, in private network namespaces, with no route out.

`run(world, actions)` starts a brand-new network namespace (`unshare -n`) for the client and a
second one for the cloud, joined by a veth pair (client 203.0.113.1 on vA; the cloud's addresses on
vB).  The cloud side serves:
  - DNS on 203.0.113.53 (UDP and TCP, dnslib): A and CNAME records of `world["dns"]`; every other
    name is NXDOMAIN.  203.0.113.54 takes DNS queries and never answers.
  - one HTTPS server per entry of `world["servers"]` (its own address, certificate and key from a
    test CA), answering by role like the real services:
      acr        /v2/ 401 with `Bearer realm="https://NAME/oauth2/token"`; /oauth2/token with the
                 world's Basic credentials -> a token; a manifest; a blob -> 307 to `redirect`
      mcr        /v2/ 200 (anonymous); an index, a manifest, a blob -> 307 to `redirect`
      data       any GET -> 200 (a blob)
      blockpage  any GET -> 200 text/html, as a proxy's or web filter's block page
      silent     a TCP listener that accepts and never answers
      endless    any GET -> `100 Continue` every 50 ms, forever (each read gets bytes in time)
      trickle    any GET -> 200 with a long Content-Length, then one body byte every 0.5 s
      hugeheader any GET -> 200 with a 20000-character Content-Type
      garbageproxy  (port 3128, no TLS) answers CONNECT with 200 and then bytes no tunnel sends
    An acr server may override its manifest body ("manifest_body") and its blob Location ("location").
The client side runs the actions in order and returns what each did:
  {"cmd": [argv...], "env": {...}}  -> {"rc", "out", "err"}   (env is added to the environment;
                                    "timeout": seconds, after which the command is killed: rc -9)
  {"nft": "ruleset text"}          -> {"rc", "out", "err"}   (nft -f -)
  {"squid": "acrrules-squid.conf text"} starts a real squid on 203.0.113.1:3128 with it (as
                                    ../shared/tools/validators/squid_check.sh wraps ACL files),
                                    resolving through 203.0.113.53 -> {"rc": 0}
  {"squid_stop": true}              stops it
Only documentation addresses are used on interfaces; DNS answers may hold others (a real Service
Tags address as a private-link name's public answer), which have no route here: nothing leaves.
This file is also the program that runs inside the namespaces (see main()).
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve()
CLIENT = "203.0.113.1"
DNS = "203.0.113.53"
DNS_SILENT = "203.0.113.54"
PROXY = f"http://{CLIENT}:3128"
CONFIG_DIGEST = "sha256:" + "c" * 64
INDEX_DIGEST = "sha256:" + "1" * 64
BLOB = b'{"architecture":"amd64","os":"linux"}'


def run(world: dict, actions: list[dict], timeout: float = 240) -> list[dict]:
    from netns import in_private_namespace  # (the test process only: not imported in the namespaces)

    return in_private_namespace(HERE, {"world": world, "actions": actions}, timeout)


# ---- inside the namespaces ---------------------------------------------------------------------


def _sh(*cmd: str, input: str | None = None) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, capture_output=True, text=True, input=input, timeout=60)
    if p.returncode != 0:
        raise SystemExit(f"setup failed: {' '.join(cmd)}: {p.stderr.strip()}")
    return p


def _guard(allowed: tuple[str, ...]) -> None:
    names = sorted(link["ifname"].split("@")[0] for link in json.loads(_sh("ip", "-j", "link", "show").stdout))
    if names != sorted(allowed):
        raise SystemExit(f"refusing: interfaces {names}, expected only {sorted(allowed)}")
    for fam in ("-4", "-6"):
        for r in json.loads(_sh("ip", "-j", fam, "route", "show", "table", "all").stdout or "[]"):
            if r.get("dst") == "default" or r.get("gateway") or r.get("dev") not in (None, *allowed):
                raise SystemExit(f"refusing: route {r} leaves this namespace")


def _dns_server(records: dict) -> None:
    from dnslib import CNAME, QTYPE, RCODE, RR, A
    from dnslib.server import BaseResolver, DNSServer

    class Resolver(BaseResolver):
        def resolve(self, request, handler):
            reply = request.reply()
            name = str(request.q.qname).rstrip(".").lower()
            qtype = QTYPE[request.q.qtype]
            seen = 0
            while name in records and seen < 8:
                seen += 1
                rec = records[name]
                if "cname" in rec:
                    reply.add_answer(RR(name + ".", QTYPE.CNAME, rdata=CNAME(rec["cname"] + "."), ttl=60))
                    name = rec["cname"].lower()
                    continue
                if qtype == "A":
                    for a in rec.get("a", []):
                        reply.add_answer(RR(name + ".", QTYPE.A, rdata=A(a), ttl=60))
                return reply
            if name not in records:
                reply.header.rcode = RCODE.NXDOMAIN
            return reply

    for tcp in (False, True):
        DNSServer(Resolver(), port=53, address=DNS, tcp=tcp).start_thread()
    # A resolver that never answers (UDP read and ignored; TCP accepted and held).
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((DNS_SILENT, 53))
    threading.Thread(target=lambda: [u.recvfrom(4096) for _ in iter(int, 1)], daemon=True).start()
    _silent_tcp(DNS_SILENT, 53)


def _silent_tcp(address: str, port: int) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((address, port))
    s.listen(64)
    held = []

    def serve() -> None:
        while True:
            conn, _ = s.accept()
            held.append(conn)  # accepted, never answered

    threading.Thread(target=serve, daemon=True).start()


def _handler(server: dict, world: dict):
    name, role = server["name"], server["role"]
    redirect = server.get("redirect")
    user, password = world.get("credentials", ["", ""])

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def send(self, status, body=b"", headers=()):
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def registry_headers(self):
            return [("Docker-Distribution-Api-Version", "registry/2.0")]

        def do_GET(self):
            path = self.path.split("?")[0]
            if role == "data":
                return self.send(200, BLOB, [("Content-Type", "application/octet-stream")])
            if role == "endless":
                with contextlib.suppress(OSError):
                    for _ in range(100000):
                        self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                        time.sleep(0.05)
                return None
            if role == "trickle":
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                with contextlib.suppress(OSError):
                    for _ in range(100000):
                        self.wfile.write(b"x")
                        time.sleep(0.5)
                return None
            if role == "hugeheader":
                return self.send(200, b"<html></html>", [("Content-Type", "text/" + "x" * 20000)])
            if role == "blockpage":
                page = b"<html><head><title>Access denied by policy</title></head><body>Blocked</body></html>"
                return self.send(200, page, [("Content-Type", "text/html")])
            if role == "acr":
                if path == "/oauth2/token":
                    import base64

                    want = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
                    if self.headers.get("Authorization") != want:
                        return self.send(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}')
                    return self.send(
                        200, b'{"access_token":"test-access-token"}', [("Content-Type", "application/json")]
                    )
                if self.headers.get("Authorization") != "Bearer test-access-token":
                    challenge = f'Bearer realm="https://{name}/oauth2/token",service="{name}"'
                    return self.send(401, b"{}", [("WWW-Authenticate", challenge), *self.registry_headers()])
            if path == "/v2/":
                return self.send(200, b"{}", self.registry_headers())
            m = re.fullmatch(r"/v2/(.+)/(manifests|blobs)/([^/]+)", path)
            if not m:
                return self.send(404, b"{}", self.registry_headers())
            repo, what, ref = m.groups()
            if what == "manifests":
                if role == "mcr" and ref == "latest":
                    doc = {
                        "schemaVersion": 2,
                        "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": [{"digest": INDEX_DIGEST, "platform": {"os": "linux", "architecture": "amd64"}}],
                    }
                else:
                    doc = {
                        "schemaVersion": 2,
                        "mediaType": "application/vnd.oci.image.manifest.v1+json",
                        "config": {"digest": CONFIG_DIGEST, "size": len(BLOB)},
                        "layers": [],
                    }
                body = server["manifest_body"].encode() if server.get("manifest_body") else json.dumps(doc).encode()
                return self.send(200, body, [("Content-Type", doc["mediaType"]), *self.registry_headers()])
            if ref != CONFIG_DIGEST:
                return self.send(404, b"{}", self.registry_headers())
            return self.send(
                307,
                b"",
                [
                    ("Location", server.get("location") or f"https://{redirect}/{repo}/{ref}?sig=test"),
                    *self.registry_headers(),
                ],
            )

    return Handler


def _garbage_proxy(address: str) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((address, 3128))
    s.listen(64)

    def answer(conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n<html>not a tunnel</html>")
            time.sleep(5)

    def serve() -> None:
        while True:
            conn, _ = s.accept()
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()


def _https_server(server: dict, world: dict) -> None:
    if server["role"] == "silent":
        _silent_tcp(server["address"], 443)
        return
    if server["role"] == "garbageproxy":
        _garbage_proxy(server["address"])
        return
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(server["pem"])

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def get_request(self):
            conn, addr = self.socket.accept()
            return ctx.wrap_socket(conn, server_side=True, do_handshake_on_connect=False), addr

        def handle_error(self, request, client_address):
            pass  # a client that refused our certificate, or went away

    httpd = Server((server["address"], 443), _handler(server, world))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()


def cloud() -> None:
    print("NS", flush=True)
    world = json.loads(sys.stdin.readline())
    _sh("ip", "link", "set", "lo", "up")
    _sh("ip", "link", "set", "vB", "up")
    addresses = sorted({s["address"] for s in world["servers"]} | {DNS, DNS_SILENT})
    for a in addresses:
        _sh("ip", "addr", "add", f"{a}/32", "dev", "vB")
    _sh("ip", "route", "add", CLIENT, "dev", "vB")
    _guard(("lo", "vB"))
    _dns_server(world["dns"])
    for s in world["servers"]:
        _https_server(s, world)
    print("READY", flush=True)
    sys.stdin.read()


class Squid:
    RUNTIME = (
        "visible_hostname probe-world.invalid",
        "cache_log {tmp}/cache.log",
        "access_log stdio:{tmp}/access.log",
        "pid_filename {tmp}/squid.pid",
        "cache_store_log none",
        "netdb_filename none",
        "coredump_dir {tmp}",
        f"dns_nameservers {DNS}",
        "pinger_enable off",
        "shutdown_lifetime 0 seconds",
        "connect_timeout 5 seconds",
        "cache deny all",
        "cache_mem 8 MB",
    )

    def __init__(self, conf: str, check_script: str):
        self.tmp = tempfile.mkdtemp(prefix="probe-squid.")
        os.chmod(self.tmp, 0o755)
        acl = os.path.join(self.tmp, "acrrules-squid.conf")
        Path(acl).write_text(conf, encoding="utf-8")
        base = _sh(check_script, "--print-conf", acl).stdout.replace(
            "http_port 127.0.0.1:3128", f"http_port {CLIENT}:3128"
        )
        lines = [line.format(tmp=self.tmp) for line in self.RUNTIME]
        try:
            pw = pwd.getpwnam("proxy")
            os.chown(self.tmp, pw.pw_uid, pw.pw_gid)
            lines.append("cache_effective_user proxy")
        except KeyError:
            pass
        path = os.path.join(self.tmp, "squid.conf")
        Path(path).write_text("\n".join(lines) + "\n" + base, encoding="utf-8")
        for p in os.listdir(self.tmp):
            os.chmod(os.path.join(self.tmp, p), 0o644)
        out = open(os.path.join(self.tmp, "squid.out"), "w")  # noqa: SIM115 (lives as long as squid)
        self.proc = subprocess.Popen([shutil.which("squid") or "squid", "-N", "-f", path], stdout=out, stderr=out)
        for _ in range(200):
            if self.proc.poll() is not None:
                raise SystemExit(f"squid exited: {Path(self.tmp, 'squid.out').read_text()[-2000:]}")
            try:
                socket.create_connection((CLIENT, 3128), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("squid did not listen within 20 s")

    def stop(self) -> None:
        kids = []
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    stat = Path(f"/proc/{d}/stat").read_text()
                    if int(stat.rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                        kids.append(int(d))
                except (OSError, ValueError, IndexError):
                    pass
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        for k in kids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(k, signal.SIGKILL)
        shutil.rmtree(self.tmp, ignore_errors=True)


def client() -> None:
    job = json.loads(sys.stdin.read())
    world = job["world"]
    _guard(("lo",))
    _sh("ip", "link", "set", "lo", "up")
    peer = subprocess.Popen(
        ["unshare", "-n", sys.executable, str(HERE), "cloud"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    squid = None
    try:
        if peer.stdout.readline().strip() != "NS":
            raise SystemExit("the cloud namespace did not start")
        _sh("ip", "link", "add", "vA", "type", "veth", "peer", "name", "vB", "netns", str(peer.pid))
        _sh("ip", "link", "set", "vA", "up")
        _sh("ip", "addr", "add", f"{CLIENT}/32", "dev", "vA")
        for a in sorted({s["address"] for s in world["servers"]} | {DNS, DNS_SILENT}):
            _sh("ip", "route", "add", a, "dev", "vA")
        peer.stdin.write(json.dumps(world) + "\n")
        peer.stdin.flush()
        if peer.stdout.readline().strip() != "READY":
            raise SystemExit("the cloud namespace did not come up")
        _guard(("lo", "vA"))
        results = []
        for action in job["actions"]:
            if "cmd" in action:
                env = dict(os.environ, **action.get("env", {}))
                try:
                    p = subprocess.run(
                        action["cmd"], capture_output=True, text=True, env=env, timeout=action.get("timeout", 120)
                    )
                    results.append({"rc": p.returncode, "out": p.stdout, "err": p.stderr})
                except subprocess.TimeoutExpired as e:
                    out = e.stdout.decode() if isinstance(e.stdout, bytes) else e.stdout or ""
                    results.append({"rc": -9, "out": out, "err": f"killed after {e.timeout} s"})
            elif "nft" in action:
                p = subprocess.run(["nft", "-f", "-"], input=action["nft"], capture_output=True, text=True)
                results.append({"rc": p.returncode, "out": p.stdout, "err": p.stderr})
            elif "squid" in action:
                squid = Squid(action["squid"], action["check_script"])
                results.append({"rc": 0})
            elif "squid_stop" in action:
                if squid is not None:
                    squid.stop()
                    squid = None
                results.append({"rc": 0})
            else:
                raise SystemExit(f"unknown action {action!r}")
        json.dump(results, sys.stdout)
    finally:
        if squid is not None:
            squid.stop()
        peer.stdin.close()
        peer.wait(timeout=10)


if __name__ == "__main__":
    {"client": client, "cloud": cloud}[sys.argv[1]]()
