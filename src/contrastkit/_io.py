"""Atomic file writes: temporary file in the same folder, fsync, rename, fsync the folder.

Temporary files are named ``.<name>.tmp-<pid>-<random>``, so that the ones a killed process
left behind can be recognised and removed (:func:`remove_stale_temp_files`). Written files get
the usual mode of a new file (0666 less the umask), not mkstemp's 0600.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write", "atomic_write_bytes", "file_sha256", "remove_stale_temp_files"]

#: ``.<name>.tmp-<pid>-<random>``, the temporary files of :func:`atomic_write`
_TEMP = re.compile(r"^\..+\.tmp-(\d+)-[A-Za-z0-9_]+$")
#: ``.<name>.<8 random>.tmp``, the temporary files of versions before the pid was in the name
_OLD_TEMP = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    """The process's umask (read from /proc where possible: setting it is not thread-safe)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process is not writing while it cleans
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # gone, or a pid no process can have
        return False
    except OSError:
        return True  # exists (another user's), or cannot tell: keep its file
    return True


def remove_stale_temp_files(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that killed writers left in ``folder``; return them.

    Only names of :func:`atomic_write`'s pattern are touched: ``.<name>.tmp-<pid>-<random>``
    whose process is gone (or is this one), and ``.<name>.<8 characters>.tmp`` from versions
    before the pid was in the name.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _TEMP.match(entry.name)
        stale = (m is not None and not _alive(int(m.group(1)))) or bool(_OLD_TEMP.match(entry.name))
        if stale and entry.is_file(follow_symlinks=False):
            try:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
            except OSError:
                pass
    return removed


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)``, then make the result appear at ``path`` in one rename.

    A crash at any point leaves either the old file or the new one, never a partial file; an
    exception leaves no temporary file behind (a kill can: see
    :func:`remove_stale_temp_files`). The file's mode is 0666 less the umask.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-{os.getpid()}-", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)

    atomic_write(path, write)


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 24) -> str:
    """SHA-256 (hex) of a file's bytes, read ``chunk`` bytes at a time.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "x"
        >>> _ = p.write_bytes(b"abc")
        >>> file_sha256(p)[:12]
        'ba7816bf8f01'
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
