"""What `make fuzz` found, kept as tests.

The data reader's findings are in edgeq/data.py, which another change owns: they are strict xfails
here so they turn into failures (drop the marker) once the reader refuses these files with a BadInput.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgeq.config import DataConfig
from edgeq.errors import BadInput

OPEN_IN_DATA_PY = pytest.mark.xfail(
    raises=(AttributeError, ValueError), strict=True, reason="edgeq/data.py raises an untyped error (exit 1)"
)


@OPEN_IN_DATA_PY
def test_npy_file_holding_an_npz_archive(tmp_path):
    from edgeq import data

    path = tmp_path / "x.npy"
    with open(path, "wb") as fh:
        np.savez(fh, x=np.zeros((2, 3), np.float32))
    with pytest.raises(BadInput):
        data.load(DataConfig(path=str(path)))


@OPEN_IN_DATA_PY
def test_npz_labels_of_bytes(tmp_path):
    from edgeq import data

    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((2, 3), np.float32), y=np.array([b"", b""]))
    with pytest.raises(BadInput):
        data.load(DataConfig(path=str(path)))


@OPEN_IN_DATA_PY
def test_npz_member_that_is_not_an_array(tmp_path):
    """An npz member without the .npy suffix comes back from numpy as raw bytes."""
    import zipfile

    from edgeq import data

    path = tmp_path / "d.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("x", b"not an array")
    with pytest.raises(BadInput):
        data.load(DataConfig(path=str(path)))
