"""Files already in the output directory are untrusted input (issue 13, findings 3 and 11).

A pull request can commit a symbolic link, and a local user can leave a FIFO, where an output
belongs; `render --check` (the pre-commit hook, CI) and `report --out` read what is there, and
`render` replaces it.  Every case runs the real CLI in a process of its own, with its address
space capped (RLIMIT_AS) so that reading /dev/zero or a huge file cannot take the machine down:
the bound is the memory, and a generous subprocess timeout stands for "does not hang".
The pre-commit side of the secret leak is in tests/test_precommit.py.
"""

from __future__ import annotations

import fcntl
import os
import resource
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import Result, run_cli_process

DESCRIPTION = textwrap.dedent("""\
    version: 1
    registries:
      - name: fabrikamdev
        sku: Basic
        location: westeurope
    sources: ["10.1.0.0/24"]
""")
OTHER = DESCRIPTION.replace("fabrikamdev", "contosoprod").replace("westeurope", "eastus")
AUTHORIZATION = "AUTHORIZATION: basic c2VjcmV0LXRva2VuLTQ3MTE="
SECRET = "SECRET=s3cr3t-value-0815"
MEMORY_CAP = 1 << 30  # bytes of address space for the CLI: far below /dev/zero or the sparse file
TIMEOUT = 120  # seconds: "it did not hang", generous for a loaded 2-core machine


def cli(*args, cwd: Path, env: dict | None = None) -> Result:
    """The real CLI, in a process with MEMORY_CAP of address space."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
        os.umask(0o022)

    return run_cli_process(*map(str, args), cwd=cwd, env=env, timeout=TIMEOUT, preexec_fn=cap)


@pytest.fixture
def project(tmp_path) -> Path:
    """A checkout: acr.yaml, its outputs in rules/, and a .git/config holding a credential."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "acr.yaml").write_text(DESCRIPTION, encoding="utf-8")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text(f'[http]\n\textraheader = "{AUTHORIZATION}"\n', encoding="utf-8")
    r = cli("render", "acr.yaml", "--out", "rules", cwd=root)
    assert r.code == 0, r.err
    return root


def expected(tmp_path: Path, description: str = DESCRIPTION) -> dict[str, bytes]:
    """What render writes for `description`, into a directory of its own."""
    work = tmp_path / f"expected-{'other' if description == OTHER else 'description'}"
    work.mkdir(exist_ok=True)
    (work / "acr.yaml").write_text(description, encoding="utf-8")
    # The same depth as project/rules: headers name the description relative to the directory.
    r = cli("render", "acr.yaml", "--out", "rules", cwd=work)
    assert r.code == 0, r.err
    return {p.name: p.read_bytes() for p in (work / "rules").iterdir()}


def regular_files(d: Path) -> dict[str, bytes]:
    """Name -> bytes of every entry of `d`, which must all be regular files (no FIFO is opened)."""
    out = {}
    for p in d.iterdir():
        assert stat.S_ISREG(p.lstat().st_mode), f"{p} is no regular file"
        out[p.name] = p.read_bytes()
    return out


def secret_file(tmp_path: Path) -> Path:
    """A file standing in for /proc/self/environ (outside the checkout)."""
    f = tmp_path / "environ"
    f.write_bytes(f"HOME=/root\0{SECRET}\0PATH=/usr/bin\0".encode())
    return f


# ---- a symbolic link in place of an output ---------------------------------------------------


@pytest.mark.parametrize(
    "name, link, secret_value",
    [
        ("nsg.json", "../.git/config", "c2VjcmV0LXRva2VuLTQ3MTE"),  # relative, inside the checkout
        ("nsg.tf", "environ", "s3cr3t-value-0815"),  # absolute, outside it (the real path below)
        ("azure-firewall.tf", "/proc/self/environ", "s3cr3t-value-0815"),  # the CLI's own environment
    ],
)
def test_check_and_report_never_show_what_a_link_points_to(tmp_path, project, name, link, secret_value):
    if link == "environ":
        link = str(secret_file(tmp_path))
    (project / "rules" / name).unlink()
    (project / "rules" / name).symlink_to(link)
    env = {"ACRRULES_TEST_SECRET": SECRET.split("=", 1)[1]}
    assert secret_value in AUTHORIZATION + SECRET

    r = cli("render", "acr.yaml", "--out", "rules", "--check", cwd=project, env=env)
    assert r.code == 1, r.err
    assert secret_value not in r.out + r.err
    assert f"rules/{name}: differs: it is a symbolic link to " in r.out, r.out
    assert "1 of " in r.err and "differ" in r.err

    rep = cli("report", "acr.yaml", "--out", "rules", "--format", "json", cwd=project, env=env)
    assert rep.code == 0, rep.err
    assert secret_value not in rep.out + rep.err
    assert f"warning: rules/{name} is a symbolic link to " in rep.err

    # render replaces the link itself with the rendered file; what it pointed to is untouched.
    target = Path(link) if os.path.isabs(link) else project / "rules" / link
    target_before = target.read_bytes() if not link.startswith("/proc") else None
    w = cli("render", "acr.yaml", "--out", "rules", cwd=project, env=env)
    assert w.code == 0, w.err
    assert secret_value not in w.out + w.err
    assert regular_files(project / "rules") == expected(tmp_path)
    if target_before is not None:
        assert target.read_bytes() == target_before
    assert cli("render", "acr.yaml", "--out", "rules", "--check", cwd=project).code == 0


def test_removal_notices_do_not_read_a_linked_nsg_json(tmp_path, project):
    """The removal notices read the old nsg.json: a link to another NSG template is not it."""
    other = tmp_path / "other"
    other.mkdir()
    (other / "acr.yaml").write_text(OTHER, encoding="utf-8")
    assert cli("render", "acr.yaml", "--out", "rules", cwd=other).code == 0
    (project / "rules" / "nsg.json").unlink()
    (project / "rules" / "nsg.json").symlink_to(other / "rules" / "nsg.json")
    for args in (["--check"], []):
        r = cli("render", "acr.yaml", "--out", "rules", *args, cwd=project)
        assert r.code == (1 if args else 0), r.err
        assert "NSG rule(s)" not in r.err and "nsg rule delete" not in r.err, r.err


def test_a_links_target_is_printed_without_control_characters(tmp_path, project):
    """The link's target is the pull request's text: a newline would start a workflow command in a
    CI log (`::add-mask::`, `::error::`), an escape sequence would rewrite the terminal."""
    (project / "rules" / "nsg.json").unlink()
    (project / "rules" / "nsg.json").symlink_to("x\n::error::forged\x1b[2J")
    r = cli("render", "acr.yaml", "--out", "rules", "--check", cwd=project)
    assert r.code == 1, r.err
    assert "\x1b" not in r.out and not any(line.startswith("::") for line in r.out.splitlines()), r.out
    assert "rules/nsg.json: differs: it is a symbolic link to x ::error::forged [2J, not a regular file" in r.out
    rep = cli("report", "acr.yaml", "--out", "rules", cwd=project)
    assert rep.code == 0 and "\x1b" not in rep.err
    assert not any(line.startswith("::") for line in rep.err.splitlines()), rep.err


def test_a_committed_files_lines_reach_the_diff_escaped(tmp_path, project):
    """A regular output file is shown in the --check diff, and its lines are the repository's: an
    escape sequence, a carriage return, a bidi override or a workflow command written into it reach
    stdout (a CI log) as visible escapes, and tabs stay tabs."""
    nsg = project / "rules" / "nsg.json"
    hostile = "\x1b[2J\r::add-mask::x\u202eevil\n::error::forged\n  ##[group]y\n\tindented\n"
    nsg.write_text(nsg.read_text(encoding="utf-8") + hostile, encoding="utf-8")
    r = cli("render", "acr.yaml", "--out", "rules", "--check", cwd=project)
    assert r.code == 1, r.err
    for raw in ("\x1b", "\r", "\u202e", "##["):
        assert raw not in r.out, (raw, r.out)
    # Every diff line starts with its marker, so a workflow command can only start one after a
    # line break: a carriage return, which is escaped.
    assert not any(line.lstrip().startswith("::") for line in r.out.splitlines()), r.out
    assert "-\\x1b[2J\\r::add-mask::x\\u202eevil\n" in r.out, r.out
    assert "-::error::forged\n" in r.out and "-  \\x23#[group]y\n" in r.out and "-\tindented\n" in r.out, r.out


# ---- /dev/zero, a huge file, a FIFO -----------------------------------------------------------


def check_report_render(tmp_path: Path, project: Path, differs: str) -> None:
    """What stands at an output's place is not read: `render --check` says so (`differs`, without a
    traceback), `report` runs, and `render` replaces it with the rendered set."""
    r = cli("render", "acr.yaml", "--out", "rules", "--check", cwd=project)  # TimeoutExpired on a hang
    assert r.code == 1 and "Traceback" not in r.err, r.err
    assert differs in r.out, r.out
    rep = cli("report", "acr.yaml", "--out", "rules", cwd=project)
    assert rep.code == 0, rep.err
    w = cli("render", "acr.yaml", "--out", "rules", cwd=project)
    assert w.code == 0, w.err
    assert regular_files(project / "rules") == expected(tmp_path)


def test_a_link_to_dev_zero_is_not_read(tmp_path, project):
    (project / "rules" / "nsg.json").unlink()
    (project / "rules" / "nsg.json").symlink_to("/dev/zero")
    check_report_render(tmp_path, project, "rules/nsg.json: differs: it is a symbolic link to /dev/zero")
    mode = (project / "rules" / "nsg.json").lstat().st_mode
    assert stat.S_IMODE(mode) == 0o644  # /dev/zero is 0666: not its mode either


def test_a_file_larger_than_the_margin_is_not_read(tmp_path, project):
    """A sparse file of 2 GiB (over the CLI's 1 GiB of address space): compared by size, not read."""
    big = project / "rules" / "azure-firewall.tf"
    with open(big, "r+b") as fh:
        fh.truncate(2 << 30)
    check_report_render(tmp_path, project, "rules/azure-firewall.tf: differs: it is larger than ")


@pytest.mark.parametrize("where", ["in-place", "linked"])
def test_a_fifo_does_not_hang_the_run(tmp_path, project, where):
    fifo = project / "rules" / "nsg.json" if where == "in-place" else tmp_path / "fifo"
    (project / "rules" / "nsg.json").unlink()
    os.mkfifo(fifo)
    if where == "linked":
        (project / "rules" / "nsg.json").symlink_to(fifo)
    what = "a FIFO" if where == "in-place" else f"a symbolic link to {fifo}"
    check_report_render(tmp_path, project, f"rules/nsg.json: differs: it is {what}, not a regular file")
    if where == "linked":
        assert stat.S_ISFIFO(fifo.lstat().st_mode)  # the link was replaced, not the FIFO written


# ---- modes -------------------------------------------------------------------------------------


def test_modes_come_from_the_file_replaced_never_from_a_links_target(tmp_path, project):
    (project / "acr.yaml").write_text(OTHER, encoding="utf-8")  # every output changes
    (project / "rules" / "nsg.tf").chmod(0o600)  # a regular file keeps its mode
    wide = tmp_path / "wide"
    wide.write_text("x\n")
    wide.chmod(0o777)
    (project / "rules" / "nsg.json").unlink()
    (project / "rules" / "nsg.json").symlink_to(wide)
    w = cli("render", "acr.yaml", "--out", "rules", cwd=project)
    assert w.code == 0, w.err
    assert stat.S_IMODE((project / "rules" / "nsg.tf").stat().st_mode) == 0o600
    assert stat.S_IMODE((project / "rules" / "nsg.json").lstat().st_mode) == 0o644
    assert stat.S_IMODE(wide.stat().st_mode) == 0o777 and wide.read_text() == "x\n"


# ---- --out itself ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["relative", "absolute", "above", "absolute-out"])
def test_a_linked_out_is_refused_unless_the_user_says_so(tmp_path, project, kind):
    """Any component of a relative --out (the tree a pull request controls), the last of an absolute
    one (above it is the host's layout: test_repository renders through a linked checkout)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    if kind == "above":  # a directory above --out is the link: linked/eu, linked -> outside
        (outside / "eu").mkdir()
        out = "linked/eu"
    else:
        out = str(project / "linked") if kind == "absolute-out" else "linked"
    (project / "linked").symlink_to("../outside" if kind == "relative" else outside)
    for args in ([], ["--check"]):
        r = cli("render", "acr.yaml", "--out", out, *args, cwd=project)
        assert r.code == 2 and "Traceback" not in r.err, r.err
        assert r.err.startswith(f"{out}: {'it' if kind != 'above' else 'linked'} is a symbolic link (to ")
        assert "--out-follow-symlink" in r.err
    rep = cli("report", "acr.yaml", "--out", out, cwd=project)
    assert rep.code == 2 and "--out-follow-symlink" in rep.err, rep.err
    assert sorted(p.name for p in outside.rglob("*")) == (["eu"] if kind == "above" else [])  # nothing written

    w = cli("render", "acr.yaml", "--out", out, "--out-follow-symlink", cwd=project)
    assert w.code == 0, w.err
    written = outside / "eu" if kind == "above" else outside
    assert sorted(p.name for p in written.iterdir()) == sorted(expected(tmp_path))
    c = cli("render", "acr.yaml", "--out", out, "--check", "--out-follow-symlink", cwd=project)
    assert c.code == 0, c.err


def test_a_directory_swapped_for_a_link_after_opening_redirects_nothing(tmp_path, project):
    """The writes go through the directory's descriptor: renaming rules/ away and putting a link
    in its place (a race a pull request's hook could try) sends nothing to the link's target."""
    from acrrules import write

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    rules = project / "rules"
    before = regular_files(rules)
    with write.locked(str(rules)) as fd:
        rules.rename(project / "moved")
        rules.symlink_to(elsewhere)
        write.write_files(str(rules), {"nsg.json": "swapped\n"}, dir_fd=fd)
        assert write.read_existing(fd, "nsg.json", 100).data == b"swapped\n"
    assert list(elsewhere.iterdir()) == []
    assert (project / "moved" / "nsg.json").read_bytes() == b"swapped\n"
    assert {n: b for n, b in regular_files(project / "moved").items() if n != "nsg.json"} == {
        n: b for n, b in before.items() if n != "nsg.json"
    }


# ---- the lock --------------------------------------------------------------------------------------

# The real CLI with acrrules.write's renames slowed down, and the two runs of a pair meeting once
# both have rendered (a barrier of marker files, before either touches the directory), so that
# unlocked runs would interleave their renames: one run renames every 0.1 s from the start, the
# other every 0.05 s after 0.2 s, so without a lock the first files end up the second run's and the
# last the first run's (a margin of 0.15 s either side).  Test-only: the product has no such hook.
SLOW_RENAMES = textwrap.dedent("""\
    import os, sys, time, types
    import acrrules.pipeline as pipeline
    import acrrules.write as w
    barrier, me, delay, pace = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    real = os
    def replace(src, dst, **dir_fds):
        global delay
        time.sleep(delay)
        delay = 0
        real.replace(src, dst, **dir_fds)
        time.sleep(pace)
    slow = types.SimpleNamespace(**{k: getattr(real, k) for k in dir(real) if not k.startswith("__")})
    slow.replace = replace
    w.os = slow
    rendered = pipeline.run
    def run(*args, **kwargs):
        result = rendered(*args, **kwargs)
        open(os.path.join(barrier, me), "w").close()
        deadline = time.monotonic() + 60
        while len(os.listdir(barrier)) < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        return result
    pipeline.run = run
    from acrrules.cli import main
    sys.exit(main(sys.argv[5:]))
""")


def test_concurrent_renders_leave_one_runs_set(tmp_path):
    """20 pairs of renders of two descriptions into one directory, each pair started together:
    afterwards the directory holds exactly one description's files, every time."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "a.yaml").write_text(DESCRIPTION, encoding="utf-8")
    (work / "b.yaml").write_text(OTHER, encoding="utf-8")
    sets = {}
    for spec in ("a.yaml", "b.yaml"):
        r = cli("render", spec, "--out", f"expect-{spec}", cwd=work)
        assert r.code == 0, r.err
        sets[spec] = {p.name: p.read_bytes() for p in (work / f"expect-{spec}").iterdir()}
    assert sets["a.yaml"].keys() == sets["b.yaml"].keys()
    assert sum(sets["a.yaml"][n] != sets["b.yaml"][n] for n in sets["a.yaml"]) >= 4

    env = dict(os.environ)
    env.pop("ACRRULES_DEBUG", None)
    problems = []
    for i in range(20):
        out = f"rules-{i}"
        barrier = tmp_path / f"barrier-{i}"
        barrier.mkdir()
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", SLOW_RENAMES, barrier, spec, *timing, "render", spec, "--out", out],
                cwd=work,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for spec, timing in (("a.yaml", ("0", "0.1")), ("b.yaml", ("0.2", "0.05")))
        ]
        # Unlocked, a run also sweeps the other's named temporaries as stale (exit 2, ENOENT).
        failed = [err.strip() for p in procs if (err := p.communicate(timeout=TIMEOUT)[1]) and p.returncode != 0]
        got = regular_files(work / out)
        if failed or got not in (sets["a.yaml"], sets["b.yaml"]):
            problems.append(f"{out}: {'; '.join(failed) or 'a mix of both runs'}")
    assert problems == [], f"{len(problems)} of 20 pairs went wrong:\n" + "\n".join(problems)


def test_a_held_lock_makes_a_run_wait_then_fail_clearly(tmp_path):
    from acrrules import errors, write

    out = tmp_path / "rules"
    out.mkdir()
    holder = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        with pytest.raises(errors.WriteError) as e, write.locked(str(out), timeout=0.2):
            pass
        assert str(e.value) == (
            f"{out}: another acrrules run still holds this directory's lock after 0.2 s: "
            "let it finish (or stop it), then run again"
        )
        with pytest.raises(errors.WriteError), write.locked(str(out), exclusive=False, timeout=0):
            pass  # a check waits for a render too
        fcntl.flock(holder, fcntl.LOCK_SH)  # a reader: other readers share, writers wait
        with write.locked(str(out), exclusive=False, timeout=0) as fd:
            assert fd is not None
        with pytest.raises(errors.WriteError), write.locked(str(out), timeout=0):
            pass
    finally:
        os.close(holder)
    with write.locked(str(out), timeout=0) as fd:  # released with the descriptor
        assert fd is not None
    assert sorted(os.listdir(out)) == []  # no lock file
