"""Faults while writing: every run leaves each output either as it was or fully replaced.

Real faults, not mocks, wherever the kernel can make them: a read-only bind
mount and a 64 KiB tmpfs in a private mount namespace (`unshare -m`), a
directory the process may not write (root's override capabilities dropped),
and SIGKILL of the real CLI while it writes (its writes slowed down so the
kill lands mid-file).  After each fault the output directory is listed with
hidden files: no partial file, no temporary file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import consumers
import pytest
from conftest import REPO, need_tool, run_cli, run_cli_process
from test_badinput import drop_file_access_override, snapshot

SMALL_SPEC = textwrap.dedent("""\
    version: 1
    registries:
      - {name: contosoprod, sku: Premium, location: eastus}
""")


def big_spec(registries: int) -> str:
    """A description whose azure-firewall.tf grows by ~500 bytes per registry."""
    lines = ["version: 1", "mcr: true", "registries:"]
    for i in range(registries):
        lines.append(
            f"  - {{name: registry{i:05d}, sku: Premium, location: eastus, replicas: [westeurope], "
            "data_endpoints: both, regional_endpoints: true}"
        )
    return "\n".join(lines) + "\n"


@pytest.fixture
def specs(tmp_path) -> dict[str, Path]:
    small = tmp_path / "small.yaml"
    small.write_text(SMALL_SPEC, encoding="utf-8")
    big = tmp_path / "big.yaml"
    big.write_text(big_spec(400), encoding="utf-8")
    return {"small": small, "big": big}


@pytest.fixture
def rendered(tmp_path, specs) -> dict[str, dict[str, str]]:
    """sha256 of each output of the small and of the big description, rendered normally."""
    out = {}
    for name, spec in specs.items():
        d = tmp_path / f"expected-{name}"
        r = run_cli("render", spec, "--out", d)
        assert r.code == 0, r.err
        out[name] = snapshot(d)
    want = sorted([*consumers.output_files(service_tags=False), ".acrrules-manifest"])  # the manifest: README
    assert sorted(out["small"]) == sorted(out["big"]) == want
    return out


def previous(tmp_path, specs) -> Path:
    """An output directory holding the small description's outputs."""
    d = tmp_path / "out"
    r = run_cli("render", specs["small"], "--out", d)
    assert r.code == 0, r.err
    return d


def assert_no_temporaries(listing) -> None:
    hidden = [n for n in listing if n.startswith(".") and n != ".acrrules-manifest"]
    assert hidden == [], f"left behind: {hidden}"


# ---- the output directory itself -----------------------------------------------------------


def test_missing_output_directory_is_created(tmp_path, specs, rendered):
    out = tmp_path / "a" / "b" / "c"
    r = run_cli("render", specs["small"], "--out", out)
    assert r.code == 0, r.err
    same_depth = tmp_path / "x" / "y" / "z"  # headers name the description relative to the directory
    assert run_cli("render", specs["small"], "--out", same_depth).code == 0
    assert snapshot(out) == snapshot(same_depth)


def test_output_path_is_a_file(tmp_path, specs):
    out = tmp_path / "out"
    out.write_bytes(b"keep me\n")
    r = run_cli("render", specs["small"], "--out", out)
    assert r.code == 2 and "Traceback" not in r.err
    assert r.err == f"{out}: cannot write outputs: it is a file, not a directory\n"
    assert out.read_bytes() == b"keep me\n"


def test_output_path_below_a_file(tmp_path, specs):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"keep me\n")
    out = blocker / "out"
    r = run_cli("render", specs["small"], "--out", out)
    assert r.code == 2 and "Traceback" not in r.err
    assert r.err.startswith(f"{out}: cannot create the output directory: ") and "Not a directory" in r.err
    assert blocker.read_bytes() == b"keep me\n"


def test_an_output_name_taken_by_a_directory(tmp_path, specs, rendered):
    """nsg.json is a directory: nothing of the run may be published, not even the files before it."""
    out = previous(tmp_path, specs)
    (out / "nsg.json").unlink()
    (out / "nsg.json").mkdir()
    before = snapshot(out)
    r = run_cli("render", specs["big"], "--out", out)
    assert r.code == 2 and "Traceback" not in r.err
    assert r.err.startswith(f"{out / 'nsg.json'}: cannot write: ") and "earlier outputs were left unchanged" in r.err
    after = snapshot(out)
    assert_no_temporaries(after)
    # Per file: the old bytes or the new bytes, never anything else.
    for name, digest in after.items():
        if name != "nsg.json":
            assert digest in (before[name], rendered["big"][name]), name


def test_directory_not_writable(tmp_path, specs, rendered):
    out = previous(tmp_path, specs)
    before = snapshot(out)
    out.chmod(0o555)
    try:
        env = dict(os.environ)
        env.pop("ACRRULES_DEBUG", None)
        p = subprocess.run(
            [sys.executable, "-m", "acrrules", "render", str(specs["big"]), "--out", str(out)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            preexec_fn=drop_file_access_override if os.geteuid() == 0 else None,
        )
    finally:
        out.chmod(0o755)
    assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
    assert "cannot write: permission denied; earlier outputs were left unchanged" in p.stderr
    assert len(p.stderr.splitlines()) == 1
    assert snapshot(out) == before


# ---- faults the kernel makes: read-only file system, disk full -----------------------------------

MOUNT_HELPER = textwrap.dedent("""\
    # Runs inside `unshare -m`: mount, pre-populate, run the CLI, report the directory.
    import hashlib, json, os, shutil, subprocess, sys
    out, previous, mounts, args = json.loads(sys.argv[1])
    subprocess.run(mounts[0], check=True)
    for name in os.listdir(previous):  # after the mount, before a read-only remount
        shutil.copy2(os.path.join(previous, name), os.path.join(out, name))
    for cmd in mounts[1:]:
        subprocess.run(cmd, check=True)
    r = subprocess.run([sys.executable, "-m", "acrrules", *args], capture_output=True, text=True)
    files = {n: hashlib.sha256(open(os.path.join(out, n), "rb").read()).hexdigest() for n in os.listdir(out)}
    print(json.dumps({"code": r.returncode, "err": r.stderr, "listing": sorted(os.listdir(out)), "files": files}))
""")


def run_in_mount_namespace(out: Path, previous_dir: Path, mounts: list[list[str]], *args) -> dict:
    need_tool("unshare", "mount")
    if os.geteuid() != 0:
        pytest.skip("mounting in a private mount namespace needs root")
    env = dict(os.environ)
    env.pop("ACRRULES_DEBUG", None)
    p = subprocess.run(
        [
            "unshare",
            "-m",
            "--propagation",
            "private",
            sys.executable,
            "-c",
            MOUNT_HELPER,
            json.dumps([str(out), str(previous_dir), mounts, [str(a) for a in args]]),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=REPO,
    )
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_read_only_file_system(tmp_path, specs):
    prev = previous(tmp_path, specs)
    out = tmp_path / "ro"
    out.mkdir()
    got = run_in_mount_namespace(
        out,
        prev,
        [["mount", "--bind", str(out), str(out)], ["mount", "-o", "remount,ro,bind", str(out)]],
        "render",
        specs["big"],
        "--out",
        out,
    )
    assert got["code"] == 2 and "Traceback" not in got["err"], got
    assert "cannot write: the file system is read-only; earlier outputs were left unchanged" in got["err"]
    assert got["files"] == {k: v for k, v in snapshot(prev).items()}
    assert_no_temporaries(got["listing"])


def test_disk_full(tmp_path, specs, rendered):
    """64 KiB tmpfs: the big azure-firewall.tf (~200 KB) cannot fit; the small outputs already there survive."""
    prev = previous(tmp_path, specs)
    out = tmp_path / "tiny"
    out.mkdir()
    got = run_in_mount_namespace(
        out, prev, [["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(out)]], "render", specs["big"], "--out", out
    )
    assert got["code"] == 2 and "Traceback" not in got["err"], got
    assert "cannot write: no space left on the device; earlier outputs were left unchanged" in got["err"], got
    assert got["files"] == snapshot(prev)
    assert_no_temporaries(got["listing"])
    # The same tmpfs takes the small description: the failure was the size, nothing else.
    ok = run_in_mount_namespace(
        out,
        prev,
        [["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(out)]],
        "render",
        specs["small"],
        "--out",
        out,
    )
    assert ok["code"] == 0 and ok["files"] == rendered["small"], ok


# ---- SIGKILL while writing -------------------------------------------------------------------

# Runs the real CLI with acrrules.write's os.write slowed down to 16 KiB per call.  stage
# "content": once the first chunk of the nth output file is written, it announces itself
# (a marker file) and sleeps until killed; stage "publish": the same after the nth rename.
SLOW_CLI = textwrap.dedent("""\
    import os, sys, time, types
    import acrrules.write as w
    marker, pause_after, stage = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    files = []
    real = os
    def pause():
        open(marker, "w").close()
        time.sleep(600)
    def write(fd, data):
        n = real.write(fd, bytes(data[:16384]))
        if fd not in files:
            files.append(fd)
        if stage == "content" and len(files) == pause_after:
            pause()
        return n
    replaced = 0
    def replace(src, dst, **dir_fds):
        global replaced
        real.replace(src, dst, **dir_fds)
        replaced += 1
        if stage == "publish" and replaced == pause_after:
            pause()
    slow = types.SimpleNamespace(**{k: getattr(real, k) for k in dir(real) if not k.startswith("__")})
    slow.write, slow.replace = write, replace
    w.os = slow
    from acrrules.cli import main
    sys.exit(main(sys.argv[4:]))
""")


def kill_while_writing(tmp_path, spec: Path, out: Path, pause_after: int, stage: str) -> None:
    marker = tmp_path / f"paused-{stage}-{pause_after}"
    env = dict(os.environ)
    env.pop("ACRRULES_DEBUG", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_CLI, str(marker), str(pause_after), stage, "render", str(spec), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the slowed CLI never reached the pause"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


@pytest.mark.parametrize("pause_after", [1, 2])  # 16 KiB into the 1st file / into the 2nd, the 1st complete
def test_killed_while_writing_contents(tmp_path, specs, rendered, pause_after):
    out = previous(tmp_path, specs)
    before = snapshot(out)
    kill_while_writing(tmp_path, specs["big"], out, pause_after, "content")
    assert snapshot(out) == before
    assert_no_temporaries(os.listdir(out))
    # and the next run replaces them all
    r = run_cli_process("render", specs["big"], "--out", out)
    assert r.code == 0 and snapshot(out) == rendered["big"]


def test_killed_between_two_renames(tmp_path, specs, rendered):
    """Publishing is one rename per file: a kill between two leaves each file whole (old or new).

    Nothing named is left half-written; the next run finishes the job and sweeps
    any named temporary the kill left between link and rename.
    """
    out = previous(tmp_path, specs)
    kill_while_writing(tmp_path, specs["big"], out, 1, "publish")
    after = snapshot(out)
    assert sorted(after) == sorted(rendered["small"])
    for name, digest in after.items():
        assert digest in (rendered["small"][name], rendered["big"][name]), name
    changing = [n for n in after if rendered["small"][n] != rendered["big"][n]]  # (an empty no_proxy.txt is not)
    assert len(changing) >= 2 and sum(after[n] == rendered["big"][n] for n in changing) == 1  # the first published
    r = run_cli_process("render", specs["big"], "--out", out)
    assert r.code == 0 and snapshot(out) == rendered["big"]
    assert_no_temporaries(os.listdir(out))


# ---- --check compares bytes --------------------------------------------------------------------------


def test_check_sees_crlf_line_ends_and_non_utf8_bytes(tmp_path, specs, rendered):
    """Outputs are byte-identical or drifted: CRLF ends (a Windows checkout) and damaged bytes are drift."""
    out = previous(tmp_path, specs)
    assert run_cli("render", specs["small"], "--out", out, "--check").code == 0
    crlf = out / "nsg.tf"
    crlf.write_bytes(crlf.read_bytes().replace(b"\n", b"\r\n"))
    damaged = out / "azure-firewall.tf"
    damaged.write_bytes(damaged.read_bytes().replace(b"Generated", b"Gener\xffted", 1))
    before = snapshot(out)
    r = run_cli_process("render", specs["small"], "--out", out, "--check")
    assert r.code == 1 and "Traceback" not in r.err, r.err
    assert r.err.startswith(f"2 of {len(rendered['small'])} file(s) in ") and "differ" in r.err
    assert f"--- {crlf}" in r.out and "\u240d" in r.out  # the CR shown, not hidden
    assert f"--- {damaged}" in r.out and "Gener\ufffdted" in r.out
    assert snapshot(out) == before  # --check writes nothing
    assert run_cli("render", specs["small"], "--out", out).code == 0
    assert snapshot(out) == rendered["small"]


def test_check_when_an_output_is_a_directory(tmp_path, specs):
    out = previous(tmp_path, specs)
    (out / "nsg.json").unlink()
    (out / "nsg.json").mkdir()
    r = run_cli("render", specs["small"], "--out", out, "--check")
    assert r.code == 2 and r.err == f"{out / 'nsg.json'}: cannot read for --check: it is a directory\n"


def test_output_path_is_a_dangling_symlink(tmp_path, specs):
    """A symbolic link as --out is followed only with --out-follow-symlink (tests/test_output_hostile.py)."""
    out = tmp_path / "out"
    out.symlink_to(tmp_path / "gone")
    r = run_cli("render", specs["small"], "--out", out, "--out-follow-symlink")
    assert r.code == 2 and r.err == (
        f"{out}: cannot write outputs: it is a symbolic link to {tmp_path / 'gone'}, "
        "which does not exist: create that directory or give another --out\n"
    )
    assert out.is_symlink() and not (tmp_path / "gone").exists()
    (tmp_path / "gone").mkdir()  # once the target exists, the outputs go there
    assert run_cli("render", specs["small"], "--out", out, "--out-follow-symlink").code == 0
    assert run_cli("render", specs["small"], "--out", tmp_path / "plain").code == 0
    assert sorted(p.name for p in (tmp_path / "gone").iterdir()) == sorted(
        p.name for p in (tmp_path / "plain").iterdir()
    )


# ---- how the unnamed files get their names ------------------------------------------------------------


def test_unnamed_files_are_linked_not_copied(tmp_path):
    """On Linux with /proc, an O_TMPFILE file is given its name by a link (no second write)."""
    from acrrules import write

    if not hasattr(os, "O_TMPFILE") or not os.path.isdir("/proc/self/fd"):
        pytest.skip("no O_TMPFILE or /proc here: write.py names its temporaries from the start")
    fd = os.open(tmp_path, os.O_TMPFILE | os.O_WRONLY, 0o644)
    try:
        os.write(fd, b"content\n")
        dir_fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            assert write._link_unnamed(fd, dir_fd, "named")
        finally:
            os.close(dir_fd)
    finally:
        os.close(fd)
    assert (tmp_path / "named").read_bytes() == b"content\n"


@pytest.mark.parametrize("without", ["link", "O_TMPFILE"])
def test_fallbacks_write_the_same_files(tmp_path, specs, rendered, monkeypatch, without):
    """No /proc to link through (a named copy at publishing), or no O_TMPFILE (named from the start)."""
    import types

    from acrrules import write

    if without == "link":
        monkeypatch.setattr(write, "_link_unnamed", lambda fd, dir_fd, name: False)
    else:
        monkeypatch.setattr(
            write,
            "os",
            types.SimpleNamespace(
                **{k: getattr(os, k) for k in dir(os) if not k.startswith("__") and k != "O_TMPFILE"}
            ),
        )
    out = previous(tmp_path, specs)
    r = run_cli("render", specs["big"], "--out", out)
    assert r.code == 0, r.err
    assert snapshot(out) == rendered["big"]
    assert_no_temporaries(os.listdir(out))


def test_a_file_that_cannot_be_synced_publishes_nothing(tmp_path, specs, monkeypatch):
    """fsync failing (EIO: the kernel lost the data) for one file: no file is published, the error names it."""
    import errno
    import types

    from acrrules import write

    out = previous(tmp_path, specs)
    before = snapshot(out)
    synced = []

    def fsync(fd):
        synced.append(fd)
        if len(synced) == 2:
            raise OSError(errno.EIO, "Input/output error")
        os.fsync(fd)

    monkeypatch.setattr(
        write,
        "os",
        types.SimpleNamespace(
            **{k: getattr(os, k) for k in dir(os) if not k.startswith("__") and k != "fsync"}, fsync=fsync
        ),
    )
    r = run_cli("render", specs["big"], "--out", out)
    assert r.code == 2 and "Traceback" not in r.err
    assert r.err.endswith(": cannot write: Input/output error; earlier outputs were left unchanged\n"), r.err
    assert r.err.split(": cannot write")[0] in {str(out / n) for n in before}
    assert snapshot(out) == before
