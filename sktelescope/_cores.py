"""How many CPU cores this process may use: its affinity mask, capped by a cgroup CPU quota.

``os.cpu_count()`` counts the machine's cores, not the ones this process may run on: a
container limited to 2 CPUs by a cgroup quota, or a job pinned with ``taskset``, still sees
every core of the host. This module imports nothing but the standard library, so that the
command line can show the number in ``--help`` without loading the benchmark.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

__all__ = ["available_cores", "cgroup_cpu_limit"]


def available_cores(cgroup_root: str | os.PathLike = "/sys/fs/cgroup") -> int:
    """The cores this process may use: its CPU affinity, capped by a cgroup CPU quota.

    A fractional quota is rounded down (1.5 CPUs: 1 core), so a thread count derived from it
    never exceeds the CPU time the process gets; the result is at least 1.

    Parameters
    ----------
    cgroup_root : path-like, default="/sys/fs/cgroup"
        Where the cgroup file systems are mounted (a test points it elsewhere).

    Examples
    --------
    >>> available_cores() >= 1
    True
    """
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:  # pragma: no cover - macOS and Windows have no affinity call in os
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_limit(cgroup_root)
    if quota is not None:
        cores = min(cores, math.floor(quota))
    return max(cores, 1)


def cgroup_cpu_limit(
    cgroup_root: str | os.PathLike = "/sys/fs/cgroup", proc_cgroup: str = "/proc/self/cgroup"
) -> float | None:
    """The CPUs a cgroup quota allows this process (quota / period), or ``None`` without one.

    Reads cgroup v2's ``cpu.max`` (``"max 100000"`` or ``"200000 100000"``) and cgroup v1's
    ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (quota -1: none), in the process's own
    cgroup and at the mount's root; the smallest quota found wins.

    Examples
    --------
    >>> limit = cgroup_cpu_limit()
    >>> limit is None or limit > 0
    True
    """
    root = Path(cgroup_root)
    own = _own_cgroups(Path(proc_cgroup))
    places = [root / own.get("", "/").lstrip("/"), root]
    v1_dirs = [root / name for name in ("cpu", "cpu,cpuacct")]
    places += [d / own.get("cpu", "/").lstrip("/") for d in v1_dirs] + v1_dirs
    limits = [q for q in map(_quota, places) if q is not None]
    return min(limits) if limits else None


def _own_cgroups(proc_cgroup: Path) -> dict[str, str]:
    """``controller -> path`` from ``/proc/self/cgroup`` (``""`` for the v2 hierarchy)."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(","):
                out[controller] = parts[2]
    return out


def _quota(folder: Path) -> float | None:
    """The CPU quota of one cgroup folder, v2 or v1 layout, or ``None``."""
    try:
        if (folder / "cpu.max").is_file():
            quota, period = (folder / "cpu.max").read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        if (folder / "cpu.cfs_quota_us").is_file():
            quota = int((folder / "cpu.cfs_quota_us").read_text())
            period = int((folder / "cpu.cfs_period_us").read_text())
            return None if quota <= 0 else quota / period
    except (OSError, ValueError, ZeroDivisionError):
        return None
    return None
