"""The one place TensorFlow is imported.

TF-MOT needs tf_keras, so ``TF_USE_LEGACY_KERAS=1`` must be set before TensorFlow is first
imported; Keras 3 files are still loaded through the separate ``keras`` package.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import Any


def tensorflow() -> Any:
    """Import TensorFlow with tf_keras as ``tf.keras`` and its C++ logging quiet."""
    if "tensorflow" not in sys.modules:
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    return tf


class Captured:
    text: str = ""


@contextlib.contextmanager
def captured_stderr() -> Iterator[Captured]:
    """Capture what C++ code (converter, interpreter, debugger) writes to file descriptors 1 and 2.

    Python's ``sys.stderr`` redirection does not see it, so the descriptors themselves are
    swapped for a temp file; the text ends up in ``Captured.text`` for the result and the
    provenance sidecar, and stdout stays clean for ``--json``.
    """
    captured = Captured()
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        for fd in (1, 2):
            os.dup2(tmp.fileno(), fd)
        try:
            yield captured
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, keep in saved.items():
                os.dup2(keep, fd)
                os.close(keep)
            tmp.seek(0)
            captured.text = tmp.read().decode(errors="replace")
