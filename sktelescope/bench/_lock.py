"""One run at a time per results folder: the ``OUT/.lock`` file.

The lock file is created exclusively and holds the pid and host of the run that writes the
folder; it is removed when that run ends, however it ends. A lock whose process no longer runs
on this host (a run that was killed) is stale: the next run takes it over and says so. A lock
held by a running process, or by another host (whose processes cannot be checked from here), is
refused with the advice to wait or to pass another ``--out``.
"""

from __future__ import annotations

import json
import os
import socket
import time
import warnings
from pathlib import Path

from sktelescope.bench._store import ResultsFolderError

__all__ = ["LOCK_NAME", "ResultsLock"]

LOCK_NAME = ".lock"
#: A lock file with no readable holder younger than this is being written: not stale yet.
_UNREADABLE_GRACE_SECONDS = 60.0


def _pid_is_running(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would end the process on Windows: assume it runs
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        return True
    return True


class ResultsLock:
    """The lock of a results folder, as a context manager.

    Parameters
    ----------
    out : path-like
        The results folder (it must exist).

    Raises
    ------
    ValueError
        On entering, when another run holds the folder.
    ResultsFolderError
        On entering, when the folder is not writable.

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with ResultsLock(folder) as lock:
    ...     lock.path.exists()
    True
    >>> lock.path.exists()
    False
    """

    def __init__(self, out: str | os.PathLike):
        self.path = Path(out) / LOCK_NAME
        self._held = False

    def acquire(self) -> ResultsLock:
        """Take the lock (taking over a stale one, with a warning)."""
        for _ in range(3):
            if self._try_create():
                return self
            holder = self._holder()
            if not self._is_stale(holder):
                raise ValueError(self._busy_message(holder))
            warnings.warn(
                f"Took over the stale lock {str(self.path)!r} of {self._describe(holder)}, "
                "which no longer runs (a run that was killed). Its finished rows are kept.",
                stacklevel=2,
            )
            self.path.unlink(missing_ok=True)
        raise ValueError(self._busy_message(self._holder()))

    def _try_create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        except OSError as exc:
            raise self._unwritable(exc) from None
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(holder, fh)
        except OSError as exc:  # e.g. the disk is full: leave no empty lock behind
            self.path.unlink(missing_ok=True)
            raise self._unwritable(exc) from None
        self._held = True
        return True

    def _unwritable(self, exc: OSError) -> ResultsFolderError:
        return ResultsFolderError(
            f"Cannot write to the results folder {str(self.path.parent)!r} "
            f"({exc.strerror or exc}). Pass a folder you can write to (with free space) as --out."
        )

    def _holder(self) -> dict | None:
        try:
            holder = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        return holder if isinstance(holder, dict) else None

    def _is_stale(self, holder: dict | None) -> bool:
        if holder is None:
            try:
                age = time.time() - self.path.stat().st_mtime
            except FileNotFoundError:
                return True
            return age > _UNREADABLE_GRACE_SECONDS
        if holder.get("host") != socket.gethostname():
            return False
        pid = holder.get("pid")
        return isinstance(pid, int) and not _pid_is_running(pid)

    @staticmethod
    def _describe(holder: dict | None) -> str:
        if holder is None:
            return "an unknown process"
        return f"process {holder.get('pid')} on host {holder.get('host')!r}"

    def _busy_message(self, holder: dict | None) -> str:
        return (
            f"Another sktelescope bench run ({self._describe(holder)}) is writing to "
            f"{str(self.path.parent)!r}. Wait for it to finish, or pass another --out folder; "
            f"if no such run exists, delete {str(self.path)!r}."
        )

    def release(self) -> None:
        """Remove the lock file, when this object holds it."""
        if self._held:
            self._held = False
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> ResultsLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
