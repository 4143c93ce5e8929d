"""Writing a file whole or not at all: a crash, a full disk or a concurrent reader never sees half.

Every file aistack owns on disk (model manifests and blobs, the agent registry, run outputs,
summaries, caches) is written through this one function.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes | str, mode: int | None = None) -> Path:
    """Write to a temporary file beside `path`, flush it to disk, then rename it into place.

    The file gets `mode`, or by default what the process's umask gives a new file (0600 under
    aistack's private umask, see `keep_private`)."""
    if mode is None:
        mode = 0o666 & ~current_umask()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data.encode() if isinstance(data, str) else data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return path


def current_umask() -> int:
    """The process's umask, read without changing it (os.umask can only be read by setting it,
    which would let another thread create a file under the wrong mask in between)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o077


def keep_private(data_dir: Path, umask: int) -> None:
    """Make what aistack and the processes it starts write (the Airflow database with every
    prompt and result, run logs, outputs, tokens) readable by this user only: set the umask they
    all inherit, and create the data directory 0700, or tighten it to that when the umask asks
    for privacy and an earlier version left it open to others."""
    os.umask(umask)
    try:
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o777 & ~umask)
        status = data_dir.stat()
        wanted = status.st_mode & 0o777 & ~umask
        if status.st_uid == os.getuid() and status.st_mode & 0o777 != wanted:
            data_dir.chmod(wanted)
    except OSError:  # a read-only or foreign data directory: the command says so when it writes
        pass
