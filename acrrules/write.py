"""Stage 6: write rendered files atomically, or compare them (--check).

The output directory is untrusted: a pull request may have put a symbolic link, a FIFO or a
huge file where an output belongs.  So the directory is opened once (`open_out_dir`: no
component of --out may be a symbolic link unless the user says so, --out-follow-symlink), every
later read and write goes through that directory's descriptor (openat and friends, so a
component swapped for a link meanwhile redirects nothing), and an existing output is read only by
`read_existing`: never through a symbolic link, never anything but a regular file, never more
than the caller's limit.  `locked` holds an flock on the directory for the whole run: a render
excludes every other render and check of the same directory, checks share it.

Each file's content goes first into an unnamed temporary file in the output
directory (O_TMPFILE: if the process dies now, nothing named is left behind),
all of them are flushed to disk together, and only when every file of the run
is on disk are they given their names: each is linked to a hidden temporary
name and renamed over the old file at once (os.replace; a symbolic link or FIFO in
the way is replaced itself, never written through).  A failed run therefore leaves the
directory as it was; a run killed between a link and its rename leaves a hidden
temporary, which the next run sweeps.  Without O_TMPFILE (not Linux, or a file
system that lacks it) the temporaries are named from the start; without /proc to
link through, each is copied to a named temporary when it is published.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import stat
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from .errors import WriteError

_TMP_MARK = ".acrrules-tmp-"
READ_MARGIN = 1 << 20
"""An existing output is read up to the size of the file rendered in its place plus this, never more."""
LOCK_TIMEOUT = 300.0
"""Seconds a run waits for another run's lock on the same --out before it gives up (exit 2)."""
FOLLOW_OPTION = "--out-follow-symlink"

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO (swapped in after the lstat) does not wait for a writer.
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_NEW_FILE_MODE = 0o644  # less the umask, for an output that is not a regular file yet


def _printable(text: str) -> str:
    from .escape import comment  # a link's target is the pull request's text: no control characters

    return comment(text)


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


# ---- the output directory: opened once, without following links, and locked --------------------


def open_out_dir(out_dir: str, *, create: bool, follow_symlink: bool = False) -> int | None:
    """A descriptor of the directory `out_dir`; None when it does not exist and `create` is false.

    Unless `follow_symlink`, the path is opened without following a symbolic link in any component
    of a relative path (the tree a pull request controls: `--out rules/eu` with `rules` a link is
    refused), and in the last component of an absolute one (the directories above it are the
    host's layout, such as a checkout reached through a link).  A refused link comes with the fix,
    so the descriptor is of the directory the path names, not of one a link points to.
    `create`: missing components are made (0o777 less the umask), one by one.
    """
    if follow_symlink:
        return _open_followed(out_dir, create)
    path = Path(out_dir)
    comps: tuple[str, ...]
    if path.is_absolute():
        if not path.name:  # "/"
            return os.open(path, _DIR_FLAGS)
        base, comps = str(path.parent), (path.name,)
        try:
            fd = os.open(base, _DIR_FLAGS)
        except FileNotFoundError:
            if not create:
                return None
            try:
                os.makedirs(base, exist_ok=True)
                fd = os.open(base, _DIR_FLAGS)
            except OSError as e:
                raise WriteError(f"{out_dir}: cannot create the output directory: {_describe(e)}") from None
        except OSError as e:
            raise WriteError(f"{out_dir}: cannot create the output directory: {_describe(e)}") from None
    else:
        base, comps = ".", path.parts
        fd = os.open(base, _DIR_FLAGS)
    try:
        for i, name in enumerate(comps):
            here = str(Path(base, *comps[: i + 1]) if path.is_absolute() else Path(*comps[: i + 1]))
            last = i == len(comps) - 1
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                if not create:
                    os.close(fd)
                    return None
                try:
                    os.mkdir(name, 0o777, dir_fd=fd)
                except FileExistsError:  # another run made it meanwhile
                    pass
                except OSError as e:
                    raise WriteError(f"{out_dir}: cannot create the output directory: {_describe(e)}") from None
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                target = _printable(os.readlink(name, dir_fd=fd))
                raise WriteError(
                    f"{out_dir}: {'it' if last else here} is a symbolic link (to {target}), and acrrules reads and "
                    f"writes outputs only in a real directory unless told to follow it: give the directory itself "
                    f"(render and report: or add {FOLLOW_OPTION} if the link is meant to be there)"
                )
            if not stat.S_ISDIR(st.st_mode):
                if last:
                    raise WriteError(
                        f"{out_dir}: cannot {'write' if create else 'read'} outputs: it is a file, not a directory"
                    )
                raise WriteError(f"{out_dir}: cannot create the output directory: {here}: Not a directory")
            try:
                inner = os.open(name, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as e:  # swapped for a link or a file since the stat: refuse, do not follow
                raise WriteError(f"{out_dir}: cannot open the output directory ({here}): {_describe(e)}") from None
            os.close(fd)
            fd = inner
        return fd
    except BaseException:
        os.close(fd)
        raise


def _open_followed(out_dir: str, create: bool) -> int | None:
    """open_out_dir with --out-follow-symlink: links in the path are followed (the user said so)."""
    path = Path(out_dir)
    if path.is_symlink() and not path.exists():
        raise WriteError(
            f"{out_dir}: cannot write outputs: it is a symbolic link to {_printable(os.readlink(path))}, "
            "which does not exist: create that directory or give another --out"
        )
    if path.exists() and not path.is_dir():
        raise WriteError(f"{out_dir}: cannot {'write' if create else 'read'} outputs: it is a file, not a directory")
    if not path.exists():
        if not create:
            return None
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise WriteError(f"{out_dir}: cannot create the output directory: {_describe(e)}") from None
    try:
        return os.open(path, _DIR_FLAGS)
    except OSError as e:
        raise WriteError(f"{out_dir}: cannot open the output directory: {_describe(e)}") from None


@contextlib.contextmanager
def locked(
    out_dir: str,
    *,
    exclusive: bool = True,
    create: bool = True,
    follow_symlink: bool = False,
    timeout: float = LOCK_TIMEOUT,
) -> Iterator[int | None]:
    """Open `out_dir` (open_out_dir) and hold an flock on it until the block ends; yield its descriptor.

    exclusive: a run that writes (render); shared: a run that only reads (--check, report --out),
    so that it never sees half of another run's files.  The lock is on the directory's own
    descriptor: no lock file appears in the directory (or in `git status`), and the kernel
    releases it when the process ends, however it ends.  A run waits up to `timeout` seconds
    for another's lock, then fails (exit 2).  On a file system that cannot flock a directory
    (some NFS setups) the run goes on unlocked.  Yields None when the directory does not exist
    and `create` is false (nothing to read, nothing to lock).  Not re-entrant: inside the block,
    pass the descriptor on (read_existing, write_files(dir_fd=...), drift_in) rather than calling
    write_files or drift without it, which would wait for this very lock.  Orphans (another
    branch's concern) can be listed with os.listdir(fd) and removed with os.unlink(name, dir_fd=fd),
    which removes a link itself, never its target.
    """
    fd = open_out_dir(out_dir, create=create, follow_symlink=follow_symlink)
    if fd is None:
        yield None
        return
    try:
        _flock(fd, out_dir, exclusive, timeout)
        yield fd
    finally:
        os.close(fd)  # releases the lock


def _flock(fd: int, out_dir: str, exclusive: bool, timeout: float) -> None:
    op = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
    deadline = time.monotonic() + timeout
    pause = 0.01
    while True:
        try:
            fcntl.flock(fd, op)
            return
        except BlockingIOError:
            pass
        except OSError as e:
            if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EBADF, errno.EINVAL):
                return  # no flock on directories here: unlocked, as before locks existed
            raise WriteError(f"{out_dir}: cannot lock the output directory: {_describe(e)}") from None
        if time.monotonic() >= deadline:
            raise WriteError(
                f"{out_dir}: another acrrules run still holds this directory's lock after {timeout:g} s: "
                "let it finish (or stop it), then run again"
            )
        time.sleep(pause)
        pause = min(pause * 2, 0.25)


# ---- reading what is there -----------------------------------------------------------------------

FILE, MISSING, LINK, DIRECTORY, SPECIAL, TOO_LARGE = "file", "missing", "symlink", "directory", "special", "too-large"


class Existing(NamedTuple):
    """What is at an output's name: `data` only for a regular file of at most the limit."""

    kind: str  # FILE, MISSING, LINK, DIRECTORY, SPECIAL or TOO_LARGE
    data: bytes | None = None
    what: str = ""  # for a message, printable: "a symbolic link to ../.git/config", "a FIFO", ...


def _special(mode: int) -> Existing:
    if stat.S_ISDIR(mode):
        return Existing(DIRECTORY, what="a directory")
    kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"))
    what = next((name for test, name in kinds if test(mode)), "a block device" if stat.S_ISBLK(mode) else "special")
    return Existing(SPECIAL, what=what)


def read_existing(dir_fd: int | None, name: str, limit: int, *, head: bool = False) -> Existing:
    """The file `name` in the directory `dir_fd` (None: a directory that does not exist), read safely.

    Never follows a symbolic link (O_NOFOLLOW, the link itself is reported), never opens anything
    but a regular file (checked before opening, so no device is opened, and again on the open
    descriptor; O_NONBLOCK, so a FIFO swapped in meanwhile does not block), and never reads more
    than `limit` bytes (a larger file is TOO_LARGE, its content unread; with `head`, FILE with its
    first `limit` bytes, for a look at its header).  OSError for anything else
    (permission denied, ...): the caller says what it was doing.
    """
    if dir_fd is None:
        return Existing(MISSING)
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return Existing(MISSING)
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(name, dir_fd=dir_fd)
        except OSError:
            target = "?"
        return Existing(LINK, what=f"a symbolic link to {_printable(target)}")
    if not stat.S_ISREG(st.st_mode):
        return _special(st.st_mode)
    try:
        fd = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        return Existing(MISSING)
    except OSError as e:
        if e.errno == errno.ELOOP:  # became a link after the stat
            return Existing(LINK, what="a symbolic link")
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return _special(st.st_mode)
        too_large = Existing(TOO_LARGE, what=f"larger than {limit} bytes")
        if head:
            return Existing(FILE, os.read(fd, limit))
        if st.st_size > limit:
            return too_large
        chunks, got = [], 0
        while got <= limit:
            chunk = os.read(fd, min(limit + 1 - got, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        return too_large if got > limit else Existing(FILE, b"".join(chunks))
    finally:
        os.close(fd)


def read_limit(text: str | bytes) -> int:
    """How much of the existing file to read in the place of `text`: its size plus READ_MARGIN."""
    return len(text.encode("utf-8") if isinstance(text, str) else text) + READ_MARGIN


def read_text(dir_fd: int | None, name: str, limit: int) -> str | None:
    """The UTF-8 text of a regular file (read_existing), or None: missing, not a regular file, too
    large, unreadable or not UTF-8 (for notices that only help when they can)."""
    try:
        existing = read_existing(dir_fd, name, limit)
        return None if existing.data is None else existing.data.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None


# ---- writing ---------------------------------------------------------------------------------------


def _link_unnamed(fd: int, dir_fd: int, name: str) -> bool:
    """Give an O_TMPFILE file a name, as open(2) shows: link /proc/self/fd/N, following the link.

    The directory fds make os.link call linkat(2) with AT_SYMLINK_FOLLOW: without them, CPython
    before 3.14 calls link(2), which links the /proc symlink itself and fails with EXDEV
    (python/cpython#81793).
    """
    try:
        os.link(f"/proc/self/fd/{fd}", name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=True)
        return True
    except OSError:  # no /proc here
        return False


def _new_mode(dir_fd: int, name: str) -> int:
    """The mode of the regular file being replaced (lstat: never a link's target's), else 0o644."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return _NEW_FILE_MODE
    return st.st_mode & 0o777 if stat.S_ISREG(st.st_mode) else _NEW_FILE_MODE


def _sweep(dir_fd: int) -> None:
    """Named temporaries of a run that was killed between two renames (see _Pending.publish)."""
    for name in os.listdir(dir_fd):
        if name.startswith(".") and _TMP_MARK in name:
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=dir_fd)


class _Pending:
    """One output on its way: opened as a temporary file, filled, published under its name."""

    def __init__(self, out_dir: Path, dir_fd: int, name: str):
        self.final = out_dir / name
        self.name = name
        self.dir_fd = dir_fd
        self.mode = _new_mode(dir_fd, name)
        self.fd: int | None = None
        self.named: str | None = None  # relative to dir_fd
        try:
            self.fd = os.open(".", os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, self.mode, dir_fd=dir_fd)
        except (AttributeError, OSError):  # no O_TMPFILE here: a named temporary it is
            self.fd = self._open_named()

    @property
    def open_fd(self) -> int:
        """The temporary file's descriptor: open from __init__ until discard (publish only swaps it)."""
        assert self.fd is not None, "a _Pending is not used after discard"
        return self.fd

    def _temp_name(self) -> str:
        return f".{self.name}{_TMP_MARK}{secrets.token_hex(4)}"

    def _open_named(self) -> int:
        self.named = self._temp_name()
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        return os.open(self.named, flags, self.mode, dir_fd=self.dir_fd)

    def fill(self, data: bytes) -> None:
        """Write the contents (write_files then syncs every file at once)."""
        self.data = data
        view = memoryview(data)
        while view:
            n = os.write(self.open_fd, view)
            view = view[n:]

    def publish(self) -> None:
        if self.named is None:
            name = self._temp_name()
            if _link_unnamed(self.open_fd, self.dir_fd, name):
                self.named = name
            else:  # the unnamed file cannot be linked here: write a named copy, briefly
                os.close(self.open_fd)
                self.fd = None
                self.fd = self._open_named()
                self.fill(self.data)
                os.fsync(self.fd)
        # Both branches above name the file (linked, or opened named by _open_named).
        assert self.named is not None
        # rename(2) replaces whatever has the name, a symbolic link included: never its target.
        os.replace(self.named, self.name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)
        self.named = None

    def discard(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.named is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.named, dir_fd=self.dir_fd)
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


def _unchanged(dir_fd: int, name: str, data: bytes) -> bool:
    """The file already holds exactly these bytes (then it is left alone: no rewrite, same mtime)."""
    try:
        return read_existing(dir_fd, name, len(data)).data == data
    except OSError:
        return False


def write_files(
    out_dir: str, files: Mapping[str, str | bytes], *, dir_fd: int | None = None, follow_symlink: bool = False
) -> list[tuple[Path, bool]]:
    """Write every file or none; return (path, changed) for each file, in order.

    Text is written as UTF-8, bytes as they are (a downloaded Service Tags file).
    A file whose bytes would not change is not rewritten: a weekly re-render
    that changes nothing touches nothing.  dir_fd: the directory, opened and locked by the
    caller (`locked`); without it, write_files opens and locks `out_dir` itself.
    """
    if dir_fd is None:
        with locked(out_dir, exclusive=True, create=True, follow_symlink=follow_symlink) as fd:
            assert fd is not None  # create=True
            return write_many([(out_dir, fd, files)])[0]
    return write_many([(out_dir, dir_fd, files)])[0]


def write_many(batches: Sequence[tuple[str, int, Mapping[str, str | bytes]]]) -> list[list[tuple[Path, bool]]]:
    """write_files for several directories (out_dir, its opened and locked descriptor, its files)
    at once: every file of every directory is synced in one go before any is published, so a
    project of 20 directories pays for one round of fsync, not 20.  Every file or none."""
    encoded_batches = []
    for out_dir, _, files in batches:  # before anything is created: a failure here leaves no trace
        d = Path(out_dir)
        encoded: dict[str, bytes] = {}
        for name, text in files.items():
            if isinstance(text, bytes):
                encoded[name] = text
                continue
            try:
                encoded[name] = text.encode("utf-8")
            except UnicodeEncodeError as e:
                raise WriteError(
                    f"{d / name}: cannot write: the text cannot be encoded as UTF-8 ({e.reason}); nothing was written"
                ) from None
        encoded_batches.append((d, encoded))
    dir_fds = [fd for _, fd, _ in batches]
    changed = _write_all([(d, fd, enc) for (d, enc), fd in zip(encoded_batches, dir_fds, strict=True)])
    return [
        [(d / name, name in changes) for name in enc]
        for (d, enc), changes in zip(encoded_batches, changed, strict=True)
    ]


def _write_all(batches: Sequence[tuple[Path, int, Mapping[str, bytes]]]) -> list[set[str]]:
    """write_many in the open, locked directories: per directory, the names of the files that changed."""
    pending: list[_Pending] = []
    changed_sets: list[set[str]] = []
    current = batches[0][0] if batches else Path(".")
    try:
        for d, dir_fd, encoded in batches:
            current = d
            _sweep(dir_fd)
            changed = {name for name, data in encoded.items() if not _unchanged(dir_fd, name, data)}
            changed_sets.append(changed)
            for name, data in encoded.items():
                if name not in changed:
                    continue
                current = d / name
                pending.append(_Pending(d, dir_fd, name))
                pending[-1].fill(data)
        for p, error in zip(pending, _sync_all([p.open_fd for p in pending]), strict=True):  # every file on disk first
            if error is not None:
                current = p.final
                raise error
        for p in pending:
            current = p.final
            p.publish()
        for d, dir_fd, _ in batches:
            if any(p.dir_fd == dir_fd for p in pending):
                current = d
                os.fsync(dir_fd)
    except OSError as e:
        raise WriteError(f"{current}: cannot write: {_describe(e)}; earlier outputs were left unchanged") from None
    finally:
        for p in pending:
            p.discard()
    return changed_sets


def drift(out_dir: str, files: Mapping[str, str], *, follow_symlink: bool = False) -> list[str]:
    """Per file that differs, a unified diff between what is on disk and what would be written, or,
    for a symbolic link, special file or file too large to read, a line saying so (its content is
    never read or shown).  Empty: no drift.  Opens and share-locks `out_dir` (see drift_in)."""
    with locked(out_dir, exclusive=False, create=False, follow_symlink=follow_symlink) as fd:
        return drift_in(out_dir, fd, files)


def drift_in(out_dir: str, dir_fd: int | None, files: Mapping[str, str]) -> list[str]:
    """drift in the directory `dir_fd` that the caller opened and locked (`locked`; None: it does
    not exist, so every file is new); `out_dir` names it in the diffs."""
    diffs = []
    for name, text in files.items():
        path = Path(out_dir) / name
        new = text.encode("utf-8")
        try:
            existing = read_existing(dir_fd, name, read_limit(new))
        except OSError as e:
            raise WriteError(f"{path}: cannot read for --check: {_describe(e)}") from None
        if existing.kind == DIRECTORY:
            raise WriteError(f"{path}: cannot read for --check: it is a directory")
        if existing.kind == TOO_LARGE:
            diffs.append(
                f"{path}: differs: it is {existing.what} (the rendered size plus {READ_MARGIN}), so acrrules "
                "does not read it; `acrrules render` replaces it with the rendered file\n"
            )
            continue
        if existing.kind in (LINK, SPECIAL):
            diffs.append(
                f"{path}: differs: it is {existing.what}, not a regular file, so acrrules does not read it "
                "(nor show it); `acrrules render` replaces it with the rendered file\n"
            )
            continue
        raw = existing.data
        if raw == new:
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
