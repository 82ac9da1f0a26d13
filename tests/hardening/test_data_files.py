"""Data files edgeq must refuse clearly: not NumPy files, pickled object arrays, complex values,
and shape errors whose hint fits the data's format."""

from __future__ import annotations

import numpy as np
import pytest

from edgeq import data
from edgeq.config import DataConfig, Preprocess
from edgeq.errors import BadInput


def _load(path, **kw):
    return data.load(DataConfig(path=str(path), **kw))


@pytest.mark.parametrize("content", [b"x,y\n0.1,3\n0.2,4\n", bytes(range(256)) * 4, b""])
@pytest.mark.parametrize("suffix", [".npz", ".npy"])
def test_not_a_numpy_file(tmp_path, content, suffix):
    f = tmp_path / f"x{suffix}"
    f.write_bytes(content)
    with pytest.raises(BadInput) as exc:
        _load(f)
    err = exc.value
    assert err.message == f"not a NumPy {suffix} file: {f}"
    assert "pickle" not in err.one_line() and "np.savez" in err.hint


def test_truncated_npz(tmp_path):
    f = tmp_path / "t.npz"
    np.savez(f, x=np.zeros((4, 8, 8, 1), np.float32))
    f.write_bytes(f.read_bytes()[:100])
    with pytest.raises(BadInput, match="truncated or corrupt") as exc:
        _load(f)
    assert "pickle" not in exc.value.one_line()


@pytest.mark.parametrize("key", ["x", "y"])
def test_object_arrays_are_refused_without_unpickling(tmp_path, key, monkeypatch):
    import pickle

    arrays = {"x": np.zeros((3, 2), np.float32), "y": np.arange(3)}
    arrays[key] = np.array([{"a": 1}, None, 3], dtype=object)
    f = tmp_path / "obj.npz"
    np.savez(f, **arrays)

    def no_unpickling(*a, **k):
        raise AssertionError("edgeq unpickled a data file")

    monkeypatch.setattr(pickle, "load", no_unpickling)
    with pytest.raises(BadInput) as exc:
        _load(f)
    assert f"array '{key}' in {f} holds Python objects" in exc.value.message
    assert "allow_pickle" not in exc.value.one_line()


def test_object_npy_is_refused(tmp_path):
    f = tmp_path / "obj.npy"
    np.save(f, np.array(["a", 1], dtype=object))
    with pytest.raises(BadInput, match="holds Python objects"):
        _load(f)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_complex_data_is_refused(tmp_path, dtype):
    x = (np.ones((4, 8, 8, 1)) + 1j).astype(dtype)
    f = tmp_path / "c.npz"
    np.savez(f, x=x)
    with pytest.raises(BadInput) as exc:
        _load(f)
    assert exc.value.message.startswith(f"complex-valued data in {f}")
    assert "models take real inputs" in exc.value.message


def test_complex_labels_and_string_labels_are_refused(tmp_path):
    x = np.zeros((3, 2), np.float32)
    np.savez(tmp_path / "c.npz", x=x, y=np.array([1, 2, 3], np.complex64))
    with pytest.raises(BadInput, match="complex-valued"):
        _load(tmp_path / "c.npz")
    np.savez(tmp_path / "s.npz", x=x, y=np.array(["cat", "dog", "cat"]))
    with pytest.raises(BadInput, match="not numbers"):
        _load(tmp_path / "s.npz")


def test_npy_saved_under_an_npz_name_is_read_by_content(tmp_path):
    f = tmp_path / "really_npy.npz"
    with open(f, "wb") as fh:
        np.save(fh, np.ones((5, 8, 8, 1), np.float32))
    ds = _load(f)
    assert ds.x.shape == (5, 8, 8, 1) and ds.y is None


def test_labels_still_load(tmp_path):
    np.savez(tmp_path / "ok.npz", x=np.zeros((3, 2), np.uint8), y=np.eye(3, dtype=np.float32))
    ds = _load(tmp_path / "ok.npz")
    assert ds.y.tolist() == [0, 1, 2] and ds.x.dtype == np.float32
    np.savez(tmp_path / "b.npz", x=np.zeros((2, 2), np.float32), y=np.array([True, False]))
    assert _load(tmp_path / "b.npz").y.tolist() == [1, 0]


@pytest.mark.parametrize("suffix", [".npz", ".npy"])
def test_shape_hint_for_arrays_says_reshape_not_resize(tmp_path, suffix):
    f = tmp_path / f"x{suffix}"
    x = np.zeros((4, 14, 14, 1), np.float32)
    np.savez(f, x=x) if suffix == ".npz" else np.save(f, x)
    with pytest.raises(BadInput) as exc:
        data.validate(_load(f), (28, 28, 1), None)
    assert "(14, 14, 1)" in exc.value.message
    assert exc.value.hint.startswith("reshape the arrays to (N, 28, 28, 1)")
    assert "pass --resize" not in exc.value.hint


def test_shape_hint_for_arrays_missing_channel_axis(tmp_path):
    np.savez(tmp_path / "x.npz", x=np.zeros((4, 28, 28), np.float32))
    with pytest.raises(BadInput) as exc:
        data.validate(_load(tmp_path / "x.npz"), (28, 28, 1), None)
    assert "x[..., None]" in exc.value.hint


def test_shape_hint_for_image_folders_names_resize_and_color_mode(tmp_path):
    from PIL import Image

    (tmp_path / "imgs" / "0").mkdir(parents=True)
    Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(tmp_path / "imgs" / "0" / "a.png")
    ds = data.load(DataConfig(path=str(tmp_path / "imgs"), preprocess=Preprocess(resize=(10, 12), color_mode="rgb")))
    with pytest.raises(BadInput) as exc:
        data.validate(ds, (28, 28, 1), None)
    assert exc.value.hint == "pass --resize 28x28 --color-mode grayscale"
