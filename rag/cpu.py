"""How many cores generation should use: the cores this process may run on, less the
ones other processes are busy on right now.

llama.cpp's threads wait for each other at every step, so one thread that has to share
its core with another process holds them all back: on the two cores here (bench/threads.py,
README "Generation threads") two threads made a 64-token answer 1.31x faster than one on
an idle machine, but 1.26x slower than one with one competing process and 1.10x slower
with two; a user's report had 177 s against 26 s with another job on the cores. So the
default gives a core to generation only when nothing else is running on it. "Running" is the kernel's count of runnable tasks (the fourth field of
/proc/loadavg, which includes this process), read a few times over ~40 ms: unlike the
load average it does not lag a minute behind.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

_LOADAVG = Path("/proc/loadavg")


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def busy_elsewhere(samples: int = 5, gap: float = 0.01) -> int:
    """Roughly how many cores other processes keep busy: runnable tasks other than this
    one, median of a few readings; from the 1-minute load average where /proc is missing."""
    try:
        counts = []
        for i in range(samples):
            if i:
                time.sleep(gap)
            counts.append(int(_LOADAVG.read_text().split()[3].split("/")[0]) - 1)
        return max(0, round(statistics.median(counts)))
    except (OSError, IndexError, ValueError):
        try:
            return max(0, round(os.getloadavg()[0]))
        except OSError:
            return 0


def auto_threads(cores: int | None = None) -> int:
    """Generation threads for now: the usable cores minus the busy ones, at least one."""
    cores = usable_cores() if cores is None else cores
    return max(1, min(cores, cores - busy_elsewhere()))
