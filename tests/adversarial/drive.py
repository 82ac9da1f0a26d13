"""Run many edgeq CLI invocations in one Python process, for the adversarial suite.

    python -m tests.adversarial.drive JOBS.json RESULTS.jsonl START

JOBS.json is a list of argument lists. From index START on, each is run through ``edgeq.cli.app.run``
in this process with file descriptor 1 sent to a temp file, so the result records exactly what the real
command would print on stdout (Python's and native code's alike). A line ``{"start": i}`` is written
before job i and ``{"index": i, "code": ..., "stdout": ...}`` after it: when the process dies (a signal
from native code), the parent knows which job killed it and restarts this driver after it.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile


def main(jobs_path: str, results_path: str, start: int) -> None:
    from edgeq.cli.app import run
    from edgeq.cli.main import cli

    jobs = json.loads(open(jobs_path).read())
    with open(results_path, "a", buffering=1) as results, tempfile.TemporaryFile() as out:
        real_stdout = os.dup(1)
        for i in range(start, len(jobs)):
            results.write(json.dumps({"start": i}) + "\n")
            results.flush()
            os.fsync(results.fileno())
            out.seek(0)
            out.truncate()
            sys.stdout.flush()
            os.dup2(out.fileno(), 1)
            try:
                code = run(cli, list(jobs[i]))
            except SystemExit as exc:  # nothing under run() should exit; record it if it does
                code = exc.code if isinstance(exc.code, int) else 1
            finally:
                sys.stdout.flush()
                os.dup2(real_stdout, 1)
            out.seek(0)
            results.write(json.dumps({"index": i, "code": code, "stdout": out.read().decode(errors="replace")}) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
