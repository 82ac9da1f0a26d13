"""Streaming models through the generated C engine: resource variables kept across invokes, STRIDED_SLICE and
SPLIT_V, proven against TFLM's reference kernels (the tflite-micro interpreter, which keeps its variables
across invoke calls and runs CALL_ONCE's init subgraph on the first one) over a stream of consecutive frames.

The models are pymicro-wakeword's okay_nabu and hey_jarvis (tests/data/third_party/pymicro_wakeword/SOURCE.md).
Their output is one uint8 probability, 0 on most inputs, so each is also proven cut before LOGISTIC: the int8
logit moves with every frame and with every byte of state, so a lost or stale variable shows in it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgeq import tflite
from edgeq.errors import BadInput
from edgeq.targets.mcu import cgen, tflm
from edgeq.targets.mcu.cgen import stream, toolchain
from edgeq.tflite import edit

DATA = Path(__file__).resolve().parents[2] / "data" / "third_party" / "pymicro_wakeword"
MODELS = ("okay_nabu", "hey_jarvis", "alexa", "hey_mycroft")
FRAMES = 64
ARM_TOOLS = ("arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm")
STATE_OPS = {"CALL_ONCE", "VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "STRIDED_SLICE"}

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc on PATH")
needs_tflm = pytest.mark.skipif(not tflm.available(), reason="tflite-micro not installed")
needs_arm = pytest.mark.skipif(any(shutil.which(t) is None for t in ARM_TOOLS), reason="no Arm toolchain or QEMU")


def _model(name: str, logits: bool) -> bytes:
    data = (DATA / f"{name}.tflite").read_bytes()
    if not logits:
        return data
    m = edit.unpack(data)
    sg = m.subgraphs[0]
    ops = list(sg.operators)
    while edit.op_name(m, ops[-1]) in ("LOGISTIC", "QUANTIZE"):
        ops.pop()
    sg.operators, sg.outputs, m.signatureDefs = ops, [int(ops[-1].outputs[0])], []
    return edit.pack(m)


def _frames(n: int, size: int, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, (n, size)).astype(np.int8)


def _tflm_stream(data: bytes, frames: np.ndarray, work: Path) -> np.ndarray:
    """TFLM's outputs for ``frames`` fed in order to one interpreter (its state carried across invokes)."""
    info = tflite.parse(data).info
    model = work / "model.tflite"
    model.write_bytes(data)
    np.savez(work / "in.npz", input_0=frames.reshape((len(frames), *info.inputs[0].shape)))
    req = tflm._request(model, 1 << 20, info, inputs_npz=str(work / "in.npz"), outputs_npz=str(work / "out.npz"))
    run = tflm.run_worker(req, work, timeout_s=120)
    assert run.response and run.response["ok"], run.log[-2000:]
    return np.load(work / "out.npz")["output_0"].reshape(len(frames), -1)


def test_the_wakeword_files_are_the_ones_source_md_names():
    import hashlib

    text = (DATA / "SOURCE.md").read_text()
    for name in MODELS:
        assert hashlib.sha256((DATA / f"{name}.tflite").read_bytes()).hexdigest() in text
    assert (DATA / "LICENSE").is_file() and "Apache License" in (DATA / "LICENSE").read_text()


@pytest.mark.parametrize("name", MODELS)
def test_every_op_has_a_kernel_and_the_state_its_own_storage(name):
    data = _model(name, logits=False)
    names = set(tflite.parse(data).op_names())
    assert STATE_OPS <= names and names <= set(cgen.SUPPORTED_OPS)
    project = cgen.generate(data, name)
    c = project.files["model.c"]
    # six variables, static storage outside the arena, set by model_reset() and on the first invoke
    assert c.count("static int8_t eq_var") == 6 and "void model_reset(void)" in c
    assert c.count("read in place") == 6  # every READ_VARIABLE here: no ASSIGN_VARIABLE while its value is read
    assert "if (!eq_state_ready) model_reset();" in c and "void model_reset(void);" in project.files["model.h"]
    assert project.output_dtype == "uint8" and project.input_size == 120


def test_strided_slice_window_matches_numpy_slicing():
    rng = np.random.default_rng(0)
    for _ in range(400):
        rank = int(rng.integers(1, 5))
        shape = tuple(int(d) for d in rng.integers(1, 7, rank))
        begin = [int(v) for v in rng.integers(-8, 8, rank)]
        end = [int(v) for v in rng.integers(-8, 8, rank)]
        strides = [int(v) or 1 for v in rng.integers(-3, 4, rank)]
        bm, em = int(rng.integers(0, 1 << rank)), int(rng.integers(0, 1 << rank))
        opts = stream.SliceOptions(bm, em, 0, 0, 0, False)
        starts, steps, counts, out_shape = stream.slice_window(shape, begin, end, strides, opts)
        x = np.arange(int(np.prod(shape))).reshape(shape)
        want = x[
            tuple(
                slice(None if bm >> a & 1 else begin[a], None if em >> a & 1 else end[a], strides[a])
                for a in range(rank)
            )
        ]
        assert list(want.shape) == out_shape == counts
        if want.size:
            index = [np.arange(c) * t + s for s, c, t in zip(starts, counts, steps, strict=True)]
            assert np.array_equal(x[np.ix_(*index)], want)


def test_shrink_axis_drops_the_axis_and_takes_one_element():
    opts = stream.SliceOptions(0, 0, 0, 0, 0b10, False)
    starts, _, counts, out_shape = stream.slice_window((2, 5, 3), [0, -2, 0], [2, 0, 3], [1, 1, 1], opts)
    assert starts[1] == 3 and counts == [2, 1, 3] and out_shape == [2, 3]


@needs_gcc
@needs_tflm
@pytest.mark.parametrize("logits", [True, False], ids=["logits", "probability"])
@pytest.mark.parametrize("name", MODELS)
def test_stream_bit_exact_with_tflm_on_host(tmp_path, name, logits):
    data = _model(name, logits)
    project = cgen.generate(data, name)
    project.write(tmp_path)
    x = _frames(FRAMES, project.input_size)
    want = _tflm_stream(data, x, tmp_path)
    exe = toolchain.host_build(tmp_path, tmp_path / "build" / "host", 120)
    got = toolchain.host_run(exe, x, project.output_size, 60, project.output_dtype)
    assert np.array_equal(got, want.astype(project.output_dtype)), np.flatnonzero((got != want).any(axis=1))[:5]
    if logits:
        # the proof can fail: the logit moves with the frames, and fresh state each frame gives other answers
        assert len(np.unique(want)) > 8
        fresh = np.concatenate([_tflm_stream(data, x[i : i + 1], tmp_path) for i in (5, 20, 40)])
        assert not np.array_equal(fresh, want[[5, 20, 40]])


MAIN_RESET = r"""
#include <stdio.h>
#include "model.h"
/* N frames, model_reset(), the same N frames again: the two halves must match. */
int main(void) {
  static model_input_t in[64][MODEL_INPUT_SIZE];
  static model_output_t out[MODEL_OUTPUT_SIZE];
  int n = (int)fread(in, sizeof in[0], 64, stdin);
  for (int pass = 0; pass < 2; ++pass) {
    if (pass) model_reset();
    for (int i = 0; i < n; ++i) { model_invoke(in[i], out); fwrite(out, 1, sizeof out, stdout); }
  }
  return 0;
}
"""


@needs_gcc
@needs_tflm
def test_model_reset_restarts_the_stream(tmp_path):
    data = _model("okay_nabu", logits=True)
    project = cgen.generate(data, "okay_nabu")
    project.write(tmp_path)
    (tmp_path / "main_reset.c").write_text(MAIN_RESET)
    exe = tmp_path / "reset"
    srcs = [str(tmp_path / f) for f in ("model.c", "eq_kernels.c", "eq_stream.c", "main_reset.c")]
    subprocess.run(["gcc", "-std=c99", "-O2", "-I", str(tmp_path), *srcs, "-o", str(exe)], check=True, timeout=120)
    x = _frames(20, project.input_size, seed=11)
    raw = subprocess.run([str(exe)], input=x.tobytes(), capture_output=True, check=True, timeout=30).stdout
    out = np.frombuffer(raw, dtype=np.int8).reshape(2, 20)
    assert np.array_equal(out[0], out[1])
    assert np.array_equal(out[0], _tflm_stream(data, x, tmp_path).reshape(-1))


@pytest.mark.slow
@needs_gcc
@needs_tflm
@needs_arm
@pytest.mark.parametrize("name", MODELS)
def test_stream_bit_exact_with_tflm_on_cortex_m4(tmp_path, name):
    data = _model(name, logits=True)
    project = cgen.generate(data, name)
    project.write(tmp_path)
    x = _frames(FRAMES, project.input_size)
    want = _tflm_stream(data, x, tmp_path)
    built = cgen.arm_build(tmp_path, "cortex-m4", 120)
    ran = toolchain.qemu_run(Path(built["elf"]), "cortex-m4", x, project.output_size, 60, project.output_dtype)
    assert np.array_equal(ran["outputs"], want.astype(np.int8))
    assert len(ran["instructions"]) == FRAMES and built["model_flash_bytes"] > 0


def test_a_variable_read_into_a_tensor_of_another_size_is_refused():
    m = edit.unpack((DATA / "okay_nabu.tflite").read_bytes())
    sg = m.subgraphs[1]
    for op in sg.operators:
        if edit.op_name(m, op) == "ASSIGN_VARIABLE":
            value = sg.tensors[int(op.inputs[1])]
            value.shape = np.array([1, 1, 1, 64], dtype=np.int32)  # declared smaller than what READ_VARIABLE gives
            m.buffers[value.buffer].data = np.full(64, 128, dtype=np.uint8)
    with pytest.raises(BadInput) as e:
        cgen.generate(edit.pack(m), "edited")
    assert "bytes" in e.value.message and "variable" in e.value.message


def _ops(*specs: tuple[str, tuple[int, ...], tuple[int, ...]]) -> tuple:
    from edgeq.targets.mcu.cgen.graph import Op

    return tuple(Op(i, name, ins, outs, None) for i, (name, ins, outs) in enumerate(specs))


def test_a_variable_is_read_in_place_only_while_nothing_assigns_it():
    from dataclasses import replace

    from edgeq.targets.mcu.cgen.graph import Graph

    # t0: handle, t1: the value read, t2: the model input, t3: the concatenation, t4: a new value
    ops = _ops(("VAR_HANDLE", (), (0,)), ("READ_VARIABLE", (0,), (1,)), ("CONCATENATION", (1, 2), (3,)),
               ("ASSIGN_VARIABLE", (0, 4), ()))  # fmt: skip
    g = Graph(tensors=(), ops=ops, inputs=(2,), outputs=(3,), handles={0: 0})
    assert stream._unchanged_while_read(g, ops[1], 1)
    early = _ops(("VAR_HANDLE", (), (0,)), ("READ_VARIABLE", (0,), (1,)), ("ASSIGN_VARIABLE", (0, 4), ()),
                 ("CONCATENATION", (1, 2), (3,)))  # fmt: skip
    assert not stream._unchanged_while_read(replace(g, ops=early), early[1], 1)  # the copy keeps the old value
    assert not stream._unchanged_while_read(replace(g, outputs=(1,)), ops[1], 1)


def test_call_once_naming_a_missing_subgraph_is_refused():
    m = edit.unpack((DATA / "okay_nabu.tflite").read_bytes())
    for op in m.subgraphs[0].operators:
        if edit.op_name(m, op) == "CALL_ONCE":
            op.builtinOptions.initSubgraphIndex = 9
    with pytest.raises(BadInput) as e:
        cgen.generate(edit.pack(m), "edited")
    assert "subgraph 9" in e.value.message  # the parser refuses it before the engine reads the init subgraph


def _slices_model() -> bytes:
    """An int8 model of STRIDED_SLICE with negative strides, masks and shrunk axes, converted by TensorFlow.
    (SPLIT_V is left out: the converter sometimes leaves it in float here; okay_nabu has three.)"""
    import tensorflow as tf

    def fn(x):
        parts = [x[:, ::-2, 1:4, :], x[0, -2, ::3, 5:1:-1], x[:, 1:, :, ::2]]
        return tf.concat([tf.reshape(p, [-1]) for p in parts], 0)

    shape = (1, 6, 5, 8)
    f = tf.function(fn, input_signature=[tf.TensorSpec(shape, tf.float32)])
    conv = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    conv.representative_dataset = lambda: ([rng.uniform(-1, 1, shape).astype(np.float32)] for _ in range(8))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    return conv.convert()


@pytest.mark.slow
@needs_gcc
@needs_tflm
def test_strided_slice_variants_bit_exact_with_tflm(tmp_path):
    data = _slices_model()
    g = cgen.graph.read(data)
    shrink = [int(op.options.shrinkAxisMask) for op in g.ops if op.name == "STRIDED_SLICE"]
    assert len(shrink) == 3 and any(shrink)
    project = cgen.generate(data, "slices")
    project.write(tmp_path)
    x = _frames(16, project.input_size)
    want = _tflm_stream(data, x, tmp_path)
    exe = toolchain.host_build(tmp_path, tmp_path / "build" / "host", 120)
    got = toolchain.host_run(exe, x, project.output_size, 60)
    assert np.array_equal(got, want) and project.output_size == 72 + 8 + 100
    # the reversed rows: frame 0's first output element is input row 5 (of 6), column 1
    assert got[0, 0] == x[0].reshape(6, 5, 8)[5, 1, 0]


@needs_gcc
@needs_tflm
def test_a_variable_whose_initial_value_varies_starts_from_it(tmp_path):
    m = edit.unpack(_model("okay_nabu", logits=True))
    sg = m.subgraphs[1]
    rng = np.random.default_rng(5)
    for op in sg.operators:
        if edit.op_name(m, op) == "ASSIGN_VARIABLE":
            buf = m.buffers[sg.tensors[int(op.inputs[1])].buffer]
            buf.data = rng.integers(0, 256, len(buf.data)).astype(np.uint8)
    data = edit.pack(m)
    project = cgen.generate(data, "edited")
    assert "eq_copy(eq_var0_init, eq_var0" in project.files["model.c"]
    project.write(tmp_path)
    x = _frames(12, project.input_size, seed=2)
    exe = toolchain.host_build(tmp_path, tmp_path / "build" / "host", 120)
    got = toolchain.host_run(exe, x, project.output_size, 60)
    assert np.array_equal(got, _tflm_stream(data, x, tmp_path))
