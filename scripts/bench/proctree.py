"""Run a command and sample the resident memory of its whole process tree (the Python driver,
the JVM it starts, Python workers), every ``interval`` seconds, from ``/proc``.

``getrusage(RUSAGE_CHILDREN).ru_maxrss`` reports only the largest single process that was
waited for; a Spark job's memory is mostly the JVM, a grandchild of the command. The sampled
peak may miss a spike shorter than the interval.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Measured:
    seconds: float
    peak_tree_gib: float  # sampled sum of RSS over the process tree
    peak_single_gib: float  # sampled largest single process
    returncode: int


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command name is in parentheses and may hold spaces: the parent pid follows the last ')'
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(parent, []).append(int(entry.name))
    return tree


def _memory(pid: int) -> tuple[str, str]:
    """(``/proc/<pid>/statm``, the executable's path); empty where the process is gone."""
    try:
        return Path(f"/proc/{pid}/statm").read_text(), os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return "", ""


def _rss_bytes(statm: str) -> int:
    try:
        return int(statm.split()[1]) * PAGE_BYTES
    except (IndexError, ValueError):
        return 0


def tree_rss(root_pid: int) -> tuple[int, int]:
    """(sum, largest) resident bytes over ``root_pid`` and all its descendants.

    A child caught while it is being spawned (the JVM starting a shell command: ``posix_spawn``
    shares the parent's memory until the child runs its program) shows its parent's memory
    exactly: the same executable and every figure of ``statm`` the same. It is counted once,
    with the parent; a sample once summed an 8.7 GiB JVM twice that way."""
    tree = _children()
    total, largest, todo = 0, 0, [(root_pid, None)]
    while todo:
        pid, parent = todo.pop()
        memory = _memory(pid)
        if memory != parent:
            rss = _rss_bytes(memory[0])
            total += rss
            largest = max(largest, rss)
        todo.extend((child, memory) for child in tree.get(pid, []))
    return total, largest


def run_sampled(
    cmd: list[str], env: dict | None = None, interval: float = 0.5, check: bool = True, **popen
) -> Measured:
    """Run ``cmd`` to completion, sampling its process tree's memory."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, **popen)
    peaks = [0, 0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            total, largest = tree_rss(proc.pid)
            peaks[0], peaks[1] = max(peaks[0], total), max(peaks[1], largest)
            done.wait(interval)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    returncode = proc.wait()
    elapsed = time.monotonic() - started
    done.set()
    sampler.join()
    if check and returncode != 0:
        raise subprocess.CalledProcessError(returncode, cmd)
    return Measured(elapsed, peaks[0] / 1024**3, peaks[1] / 1024**3, returncode)
