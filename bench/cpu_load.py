"""How much of the machine's CPU other processes took while a benchmark ran.

/proc/stat counts every process on the machine (neighbours in other containers too,
which `ps` cannot see); this benchmark's own CPU time (this process and its waited-for
children) is taken off, and the rest is shown as a share of all cores' wall time.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path


def busy_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy (all processes, all cores)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """This process's CPU time plus that of its children that have been waited for."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


@dataclass
class LoadMeter:
    """Start with `LoadMeter.start()`; `stop()` returns (wall seconds, others' CPU share)."""

    wall: float
    busy: float
    own: float

    @classmethod
    def start(cls) -> LoadMeter:
        return cls(time.perf_counter(), busy_cpu_seconds(), own_cpu_seconds())

    def stop(self) -> tuple[float, float]:
        wall = time.perf_counter() - self.wall
        foreign = (busy_cpu_seconds() - self.busy) - (own_cpu_seconds() - self.own)
        return wall, max(0.0, foreign) / (max(wall, 1e-9) * (os.cpu_count() or 1))
