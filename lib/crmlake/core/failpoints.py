"""Named points where a test can kill the process, to prove what a kill there leaves behind.

``CRMLAKE_FAILPOINT=<name>`` makes :func:`failpoint` ``<name>`` send the process SIGKILL: no
exception, no ``finally``, no restore, exactly as a killed job or a lost machine. Unset (always,
outside such tests) a failpoint does nothing.
"""

from __future__ import annotations

import os
import signal

ENV = "CRMLAKE_FAILPOINT"


def failpoint(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
