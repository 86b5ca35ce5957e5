"""Writing files and folders safely: built under a temporary name, renamed into place, given default modes.

Temporary names hold the host and process id, so one left by a process that was killed (SIGKILL, power
loss) is removed by the next write of the same file or folder on that host, or by ``remove_abandoned``."""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import IO, Callable, Iterator, Sequence

from .errors import OptionError


def give_default_mode(path: str | Path) -> None:
    """Give ``path`` the mode a plain ``open()`` or ``mkdir()`` would have: 0666 or 0777 less the umask
    (``tempfile`` makes files and folders owner-only)."""
    os.chmod(path, (0o777 if Path(path).is_dir() else 0o666) & ~umask())


def umask() -> int:
    """The process's umask: read where the system tells it (Linux), else set and set back, which
    leaves a moment in which another thread's new file would get no mask."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def sync_directory(directory: Path) -> None:
    """Make a rename inside ``directory`` survive a power loss (POSIX; elsewhere a no-op)."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# What to do about the file-system errors a user meets (by errno); others say only what happened.
FILE_ERROR_FIXES = {
    errno.EACCES: "change its permissions (or its folder's) so that this user may use it, or choose another location",
    errno.EPERM: "change its permissions (or its folder's) so that this user may use it, or choose another location",
    errno.EROFS: "the file system is read-only; make it writable, or choose another location",
    errno.ENOTDIR: "a part of that path is a file, not a folder; move that file, or choose another path",
    errno.EISDIR: "that is a folder; give a file path",
    errno.EEXIST: "it is in the way (a file where a folder is needed?); move it, or choose another path",
    errno.ENOSPC: "the disk is full; free some space or choose another location",
    errno.EFBIG: "the file is larger than this process may write (ulimit -f) or the file system holds; raise the limit or choose another location",
    errno.EDQUOT: "the disk quota is used up; free some space or choose another location",
}


WRITE_FAILURES = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)  # a write that did not fit
REFUSED_WRITES = (errno.EACCES, errno.EPERM, errno.EROFS)  # a folder that takes no file now


def user_path(path: str | os.PathLike[str], name: str) -> str:
    """``path`` as a user gives it: a leading ``~`` is the home folder, as in a shell, and an empty path (an unset shell
    variable's) is refused rather than taken as the working folder; ``name`` names the setting in the refusal."""
    if os.fspath(path) == "":
        raise OptionError(f"{name} is an empty path (as an unset shell variable gives), which would name the working "
                          "folder: give a path.")
    return os.path.expanduser(path)


def file_error_text(error: OSError) -> str:
    """One line for a file-system error on a path: the path, what happened and, where known, the fix."""
    path = error.filename if error.filename2 is None else f"{error.filename} -> {error.filename2}"
    fix = FILE_ERROR_FIXES.get(error.errno)
    return f"{path}: {error.strerror or error}" + (f"; {fix}." if fix else ".")


@contextlib.contextmanager
def replacing(path: str | Path, *, binary: bool = False, durable: bool = False) -> Iterator[IO]:
    """Yield a handle to a temporary file beside ``path`` that replaces ``path`` once written; on any
    error it is removed and ``path`` is left as it was. ``durable`` also syncs the data and the rename
    to disk (for files a power loss must not lose, such as checkpoints)."""
    path = Path(path)
    if path.is_dir():  # found now, not when the written file cannot replace it (an error naming the temporary file)
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=_claim_temporary_name(path, "writing"), suffix=".tmp", dir=path.parent)
    except OSError as error:  # a folder that takes no new file: name the file meant, not the temporary one
        raise OSError(error.errno, error.strerror, str(path)) from None
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"newline": "", "encoding": "utf-8"})) as handle:
            yield handle
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        give_default_mode(tmp)
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(error, OSError) and error.errno in WRITE_FAILURES and error.filename is None:  # name the file
            raise OSError(error.errno, error.strerror, str(path)) from error
        raise
    if durable:
        sync_directory(path.parent)


@contextlib.contextmanager
def building_folder(folder: Path, *, shared: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``folder`` that becomes ``folder`` (replacing an empty one) once
    filled, or is removed on any error, so no one sees a half-built folder. With ``shared`` (a cache
    that concurrent callers may build), a ``folder`` another caller finished first is kept."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=_claim_temporary_name(folder, "building"), dir=folder.parent))
    except OSError as error:
        raise OSError(error.errno, error.strerror, str(folder)) from None
    try:
        yield tmp
        give_default_mode(tmp)
        if folder.is_dir() and not shared and not any(folder.iterdir()):
            folder.rmdir()
        try:
            tmp.rename(folder)
        except OSError:
            if not (shared and folder.is_dir()):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _claim_temporary_name(path: Path, action: str) -> str:
    """The prefix of this process's temporary names for ``path``, after removing those that processes
    on this host which no longer run left behind."""
    name = _shortened(path.name)
    remove_abandoned(path.parent, glob.escape(name), action)
    return f"{_marker(name, action)}{os.getpid()}+"


def _shortened(name: str) -> str:
    """``name``, or the start of a long one and a digest of it: a temporary name adds up to about 100 characters
    to it (host name, process id, random part), and a file name has at most 255 bytes."""
    encoded = os.fsencode(name)  # as the file system stores it (a name may hold bytes that are not UTF-8)
    if len(encoded) <= 128:
        return name
    return os.fsdecode(encoded[:96]) + "~" + hashlib.sha256(encoded).hexdigest()[:16]


def remove_abandoned(directory: Path, pattern: str, action: str = "writing") -> None:
    """Remove the temporary files and folders that processes on this host which no longer run left in
    ``directory`` while writing (or building) a file whose name matches the glob ``pattern``."""
    for abandoned in directory.glob(_marker(pattern, action) + "*"):
        pid = abandoned.name.rsplit("+", 2)[1]  # .NAME.ACTION+HOST+PID+RANDOM
        if pid.isdigit() and not _running(int(pid)):
            if abandoned.is_dir():
                shutil.rmtree(abandoned, ignore_errors=True)
            else:
                abandoned.unlink(missing_ok=True)


def _marker(name: str, action: str) -> str:
    return f".{name}.{action}+{socket.gethostname()}+"  # '+' is in no host name: 'gpu' never matches 'gpu-2'


def _running(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (assumed so where that cannot be asked safely)."""
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def foreign_entries(folder: Path, is_own: Callable[[Path], bool]) -> str:
    """The visible entries of ``folder`` that ``is_own`` does not claim, listed for an error ("a, b, ...");
    "" when there are none or ``folder`` is missing. Hidden entries are ignored (e.g. a killed write's temporary file)."""
    if not folder.is_dir():
        return ""
    foreign = sorted(p.name for p in folder.iterdir() if not p.name.startswith(".") and not is_own(p))
    return first_names(foreign)


def first_names(names: Sequence[object], most: int = 5) -> str:
    """The ``most`` first of ``names`` for a message ("a, b, ..." beyond them)."""
    return ", ".join(map(str, names[:most])) + (", ..." if len(names) > most else "")


def check_writable(out: Path) -> None:
    """Raise, before any work, where ``out`` cannot be written: its folder (or the nearest one that
    exists, where it is to be made) is a file, or takes no new file."""
    existing = next(folder for folder in out.absolute().parents if folder.exists())
    if not existing.is_dir():
        raise OptionError(f"{out}: {existing} is a file, not a folder; choose another path.")
    try:
        if existing == out.absolute().parent:
            tempfile.TemporaryFile(dir=existing).close()
        elif not os.access(existing, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
    except OSError as error:
        raise OSError(error.errno, error.strerror, str(out)) from None
