"""What `make fuzz` found in the data reader, kept as tests (each raised an untyped error, exit 1)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeq.config import DataConfig
from edgeq.errors import BadInput


def test_npy_file_holding_an_npz_archive(tmp_path):
    """The reader goes by content, not by suffix: an npz archive named .npy is read as the npz it is."""
    from edgeq import data

    path = tmp_path / "x.npy"
    with open(path, "wb") as fh:
        np.savez(fh, x=np.zeros((2, 3), np.float32))
    assert data.load(DataConfig(path=str(path))).x.shape == (2, 3)


def test_npz_labels_of_bytes(tmp_path):
    from edgeq import data

    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((2, 3), np.float32), y=np.array([b"", b""]))
    with pytest.raises(BadInput):
        data.load(DataConfig(path=str(path)))


def test_npz_member_that_is_not_an_array(tmp_path):
    """An npz member without the .npy suffix comes back from numpy as raw bytes."""
    import zipfile

    from edgeq import data

    path = tmp_path / "d.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("x", b"not an array")
    with pytest.raises(BadInput):
        data.load(DataConfig(path=str(path)))
