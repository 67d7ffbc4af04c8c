"""The rendered files as committed at a git revision (`acrrules report --base REF`).

A pull request check compares the rules the descriptions render now with those on the base
branch, so it lists every NSG rule that leaves, whoever rendered and committed the new files.
git runs without a shell, the revision is resolved to a commit first (`--end-of-options`: a
REF that looks like an option stays a revision), the directory is named relative to the
repository's top, and no file larger than MAX_BYTES is read.
"""

from __future__ import annotations

import os
import subprocess

from .errors import AcrrulesError, UsageError

MAX_BYTES = 64 * 1024 * 1024  # far above any output acrrules writes
TIMEOUT = 60


def _git(cwd: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", "-C", cwd, *args], capture_output=True, timeout=TIMEOUT, check=False)
    except FileNotFoundError:
        raise AcrrulesError("--base needs git, which is not installed (or not on PATH)") from None
    except subprocess.TimeoutExpired:
        raise AcrrulesError(f"--base: git {args[0]} took more than {TIMEOUT} s: gave up") from None


def _existing(path: str) -> str:
    """`path`, or its nearest parent that exists (the directory may be new in the working tree)."""
    path = os.path.abspath(path)
    while not os.path.isdir(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def committed_files(ref: str, directory: str, names: list[str]) -> dict[str, bytes | None]:
    """name -> the bytes of `directory/name` at revision `ref` (None: not in that commit)."""
    if not ref or ref.startswith("-") or "\0" in ref:
        raise UsageError(f"--base {ref!r}: give a git revision, such as origin/main or a commit")
    top_run = _git(_existing(directory), "rev-parse", "--show-toplevel")
    if top_run.returncode != 0:
        raise AcrrulesError(
            f"{directory}: --base compares with a git revision, but this directory is in no git repository"
        )
    top = os.fsdecode(top_run.stdout.rstrip(b"\n"))
    rel = os.path.relpath(os.path.realpath(directory), os.path.realpath(top))
    if rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
        raise AcrrulesError(f"{directory}: --base needs the rules' directory inside the git repository {top}")
    found = _git(top, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
    if found.returncode != 0:
        raise UsageError(
            f"--base {ref!r} is no commit of the repository {top}: give a branch, tag or commit "
            "(in a CI checkout, fetch the base branch first, e.g. `git fetch origin main` and --base origin/main)"
        )
    commit = found.stdout.decode("ascii").strip()
    prefix = "" if rel == os.curdir else rel.replace(os.sep, "/") + "/"
    listing = _git(top, "ls-tree", "-z", "-l", "--full-tree", commit, "--", prefix or ".")
    if listing.returncode != 0:
        raise AcrrulesError(f"--base {ref!r}: git ls-tree failed: {listing.stderr.decode('utf-8', 'replace').strip()}")
    entries: dict[str, tuple[str, str, str]] = {}  # path -> (type, object, size)
    for entry in listing.stdout.split(b"\0"):
        if not entry:
            continue
        meta, _, path = entry.partition(b"\t")
        _mode, kind, obj, size = meta.decode("ascii").split()
        entries[os.fsdecode(path)] = (kind, obj, size)
    out: dict[str, bytes | None] = {}
    for name in names:
        kind, obj, size = entries.get(prefix + name, ("", "", ""))
        if kind != "blob":
            out[name] = None
            continue
        if int(size) > MAX_BYTES:
            raise AcrrulesError(f"{prefix}{name} at {ref}: {size} bytes, more than acrrules reads ({MAX_BYTES})")
        blob = _git(top, "cat-file", "blob", obj)
        if blob.returncode != 0:
            raise AcrrulesError(f"{prefix}{name} at {ref}: git cat-file failed")
        out[name] = blob.stdout
    return out
