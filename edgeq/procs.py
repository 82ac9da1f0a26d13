"""Child processes for long work (compilers, QEMU, adb, the LiteRT probe): each in its own process group,
and the whole group ended when it overruns its time or edgeq is interrupted (Ctrl-C, SIGTERM).

A tool that forks (gcc runs cc1, as and ld; edgetpu_compiler a compilation child; adb its server)
leaves its children running when only the direct child is killed. A new session also keeps the
terminal's Ctrl-C away from the children: edgeq ends them itself, group and all.
"""

from __future__ import annotations

import os
import signal
import subprocess
from typing import Any

KILL_WAIT_S = 5.0


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL ``proc``'s process group (it leads one: see :func:`run`), then reap ``proc``."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    try:
        proc.wait(timeout=KILL_WAIT_S)
    except subprocess.TimeoutExpired:
        pass


def run(
    cmd: list[str], timeout_s: float | None, *, input: bytes | str | None = None, **popen: Any
) -> subprocess.CompletedProcess:
    """``subprocess.run`` in a new session (process group); on a timeout or any exception (KeyboardInterrupt
    from Ctrl-C or SIGTERM) the group is killed before the exception goes on.

    ``popen`` takes Popen's keywords (cwd, env, stdout, stderr, stdin, text, errors); stdout and stderr
    default to pipes.

    Raises:
        subprocess.TimeoutExpired: not finished within ``timeout_s``; its ``output`` and ``stderr`` hold
            what was read before the kill (pipes only).
        OSError: the program could not be started (FileNotFoundError when it is missing).
    """
    popen.setdefault("stdout", subprocess.PIPE)
    popen.setdefault("stderr", subprocess.PIPE)
    if input is not None:
        popen["stdin"] = subprocess.PIPE
    proc = subprocess.Popen(cmd, start_new_session=True, **popen)
    try:
        out, err = proc.communicate(input, timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        kill_group(proc)
        out, err = _drain(proc)
        raise subprocess.TimeoutExpired(cmd, exc.timeout, output=out, stderr=err) from None
    except BaseException:
        kill_group(proc)
        _drain(proc)
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _drain(proc: subprocess.Popen) -> tuple[Any, Any]:
    """What the killed group wrote; a grandchild that left the group may hold a pipe open: do not wait on it."""
    try:
        return proc.communicate(timeout=KILL_WAIT_S)
    except (subprocess.TimeoutExpired, ValueError, OSError):
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
        return None, None
