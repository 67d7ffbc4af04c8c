"""Stage 6: write rendered files atomically, or compare them (--check).

Each file's content goes first into an unnamed temporary file in the output
directory (O_TMPFILE: if the process dies now, nothing named is left behind),
all of them are flushed to disk together, and only when every file of the run
is on disk are they given their names: each is linked to a hidden temporary
name and renamed over the old file at once (os.replace).  A failed run therefore leaves the
directory as it was; a run killed between a link and its rename leaves a hidden
temporary, which the next run sweeps.  Without O_TMPFILE (not Linux, or a file
system that lacks it) the temporaries are named from the start; without /proc to
link through, each is copied to a named temporary when it is published.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import threading
from collections.abc import Mapping
from pathlib import Path

from .errors import WriteError

_TMP_MARK = ".acrrules-tmp-"


def _link_unnamed(fd: int, dest: Path) -> bool:
    """Give an O_TMPFILE file a name, as open(2) shows: link /proc/self/fd/N, following the link.

    The directory fds make os.link call linkat(2) with AT_SYMLINK_FOLLOW: without them, CPython
    before 3.14 calls link(2), which links the /proc symlink itself and fails with EXDEV
    (python/cpython#81793).
    """
    try:
        dir_fd = os.open(dest.parent, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return False
    try:
        os.link(f"/proc/self/fd/{fd}", dest.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=True)
        return True
    except OSError:  # no /proc here
        return False
    finally:
        os.close(dir_fd)


def _describe(e: OSError) -> str:
    if e.errno == errno.ENOSPC:
        return "no space left on the device"
    if e.errno == errno.EDQUOT:
        return "disk quota exceeded"
    if e.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if e.errno == errno.EROFS:
        return "the file system is read-only"
    return e.strerror or str(e)


def _prepare_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise WriteError(f"{out_dir}: cannot write outputs: it is a file, not a directory")
    if out_dir.is_symlink() and not out_dir.exists():
        raise WriteError(
            f"{out_dir}: cannot write outputs: it is a symbolic link to {os.readlink(out_dir)}, "
            "which does not exist: create that directory or give another --out"
        )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WriteError(f"{out_dir}: cannot create the output directory: {_describe(e)}") from None
    # Named temporaries of a run that was killed between two renames (see _publish).
    for stale in out_dir.glob(f".*{_TMP_MARK}*"):
        with contextlib.suppress(OSError):
            stale.unlink()


class _Pending:
    """One output on its way: opened as a temporary file, filled, published under its name."""

    def __init__(self, out_dir: Path, name: str):
        self.final = out_dir / name
        self.mode = 0o644
        self.fd: int | None = None
        self.named: Path | None = None
        if self.final.exists():
            self.mode = self.final.stat().st_mode & 0o777
        try:
            self.fd = os.open(out_dir, os.O_TMPFILE | os.O_WRONLY, self.mode)
        except (AttributeError, OSError):  # no O_TMPFILE here: a named temporary it is
            self.fd = self._open_named()

    @property
    def open_fd(self) -> int:
        """The temporary file's descriptor: open from __init__ until discard (publish only swaps it)."""
        assert self.fd is not None, "a _Pending is not used after discard"
        return self.fd

    def _open_named(self) -> int:
        self.named = self.final.parent / f".{self.final.name}{_TMP_MARK}{secrets.token_hex(4)}"
        return os.open(self.named, os.O_WRONLY | os.O_CREAT | os.O_EXCL, self.mode)

    def fill(self, data: bytes) -> None:
        """Write the contents (write_files then syncs every file at once)."""
        self.data = data
        view = memoryview(data)
        while view:
            n = os.write(self.open_fd, view)
            view = view[n:]

    def publish(self) -> None:
        if self.named is None:
            name = self.final.parent / f".{self.final.name}{_TMP_MARK}{secrets.token_hex(4)}"
            if _link_unnamed(self.open_fd, name):
                self.named = name
            else:  # the unnamed file cannot be linked here: write a named copy, briefly
                os.close(self.open_fd)
                self.fd = None
                self.fd = self._open_named()
                self.fill(self.data)
                os.fsync(self.fd)
        # Both branches above name the file (linked, or opened named by _open_named).
        assert self.named is not None
        os.replace(self.named, self.final)
        self.named = None

    def discard(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.named is not None:
            with contextlib.suppress(OSError):
                self.named.unlink()
            self.named = None


def _sync_all(fds: list[int]) -> list[OSError | None]:
    """fsync every file, all at once: the file system can commit them together (ext4: one
    journal commit for all, not one per file). The error of each file, or None."""
    errors: list[OSError | None] = [None] * len(fds)

    def sync(i: int) -> None:
        try:
            os.fsync(fds[i])
        except OSError as e:
            errors[i] = e

    threads = [threading.Thread(target=sync, args=(i,)) for i in range(len(fds))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def _unchanged(path: Path, data: bytes) -> bool:
    """The file already holds exactly these bytes (then it is left alone: no rewrite, same mtime)."""
    try:
        if not path.is_file() or path.is_symlink() or path.stat().st_size != len(data):
            return False
        return path.read_bytes() == data
    except OSError:
        return False


def write_files(out_dir: str, files: Mapping[str, str | bytes]) -> list[tuple[Path, bool]]:
    """Write every file or none; return (path, changed) for each file, in order.

    Text is written as UTF-8, bytes as they are (a downloaded Service Tags file).
    A file whose bytes would not change is not rewritten: a weekly re-render
    that changes nothing touches nothing.
    """
    d = Path(out_dir)
    encoded = {}
    for name, text in files.items():  # before anything is created: a failure here leaves no trace
        if isinstance(text, bytes):
            encoded[name] = text
            continue
        try:
            encoded[name] = text.encode("utf-8")
        except UnicodeEncodeError as e:
            raise WriteError(
                f"{d / name}: cannot write: the text cannot be encoded as UTF-8 ({e.reason}); nothing was written"
            ) from None
    _prepare_dir(d)
    pending: list[_Pending] = []
    current = ""
    changed = {name for name, data in encoded.items() if not _unchanged(d / name, data)}
    try:
        for name, data in encoded.items():
            if name not in changed:
                continue
            current = name
            pending.append(_Pending(d, name))
            pending[-1].fill(data)
        for p, error in zip(pending, _sync_all([p.open_fd for p in pending]), strict=True):  # every file on disk first
            if error is not None:
                current = p.final.name
                raise error
        for p in pending:
            current = p.final.name
            p.publish()
        if pending:
            dir_fd = os.open(d, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
    except OSError as e:
        raise WriteError(f"{d / current}: cannot write: {_describe(e)}; earlier outputs were left unchanged") from None
    finally:
        for p in pending:
            p.discard()
    return [(d / name, name in changed) for name in files]


def drift(out_dir: str, files: Mapping[str, str]) -> list[str]:
    """Unified diffs between what is on disk and what would be written (empty: no drift)."""
    diffs = []
    for name, text in files.items():
        path = Path(out_dir) / name
        try:
            raw = path.read_bytes()  # bytes: text mode would hide CRLF line ends
        except FileNotFoundError:
            raw = None
        except IsADirectoryError:
            raise WriteError(f"{path}: cannot read for --check: it is a directory") from None
        except OSError as e:
            raise WriteError(f"{path}: cannot read for --check: {e.strerror or e}") from None
        if raw == text.encode("utf-8"):
            continue
        # Show what differs, even in a file that is not UTF-8 (replacement characters) or has CRLF ends.
        old = None if raw is None else raw.decode("utf-8", "replace").replace("\r\n", "\u240d\n")
        import difflib  # only --check with drift needs it

        diff = difflib.unified_diff(
            _lines(old or ""), _lines(text), fromfile=str(path) if old is not None else "/dev/null", tofile=str(path)
        )
        diffs.append(
            "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in diff)
        )
    return diffs


def _lines(text: str) -> list[str]:
    """Lines ending at "\n" only (str.splitlines also breaks at \r, \x0c, \u2028, ... inside a line)."""
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
