"""Bounds before work in the generated C engine (issue 19, defect 5): declared shapes are checked against
their ops and a cap before lowering, a project that cannot fit the board is refused before any compiler
runs, an ld region overflow is the same does-not-fit verdict, and proof samples are drawn in the model's
dtype, one chunk at a time."""

from __future__ import annotations

import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from edgeq.errors import BadInput, ConversionFailed, QualityGateFailed
from edgeq.quantize import tflite_edit
from edgeq.targets.mcu.cgen import emit, fit, generate, shapes, toolchain
from tests.mcu.conftest import _keras, convert_int8

LD_MESSAGE = Path(__file__).resolve().parents[1] / "data" / "mcu" / "ld_region_overflow.txt"
HAS_ARM = all(shutil.which(t) for t in ("gcc", "arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm"))


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """conv (28x28x1 -> conv 4 -> pool -> FC 10), fc3m (1800 x 1800: 3.24 M int8 weights), fc640k (800 x 800)."""
    k = _keras()
    folder = tmp_path_factory.mktemp("bounds")
    rng = np.random.default_rng(0)
    conv = k.Sequential(
        [
            k.layers.Input((28, 28, 1)),
            k.layers.Conv2D(4, 3, padding="same", activation="relu"),
            k.layers.MaxPooling2D(2),
            k.layers.Flatten(),
            k.layers.Dense(10),
        ]
    )
    out = {"conv": convert_int8(folder, "conv", conv, (28, 28, 1), rng.standard_normal((8, 28, 28, 1)))}
    for name, units in (("fc3m", 1800), ("fc640k", 800)):
        dense = k.Sequential([k.layers.Input((units,)), k.layers.Dense(units)])
        out[name] = convert_int8(folder, name, dense, (units,), rng.standard_normal((4, units)))
    return out


def _edited(src: Path, dst: Path, op_index: int, shape: list[int], which: str = "output") -> Path:
    """``src`` with op ``op_index``'s first output (or input) tensor declared as ``shape``."""
    m = tflite_edit.unpack(src.read_bytes())
    g = m.subgraphs[0]
    op = g.operators[op_index]
    g.tensors[int((op.outputs if which == "output" else op.inputs)[0])].shape = shape
    dst.write_bytes(tflite_edit.pack(m))
    return dst


# --- declared shapes against their ops ------------------------------------------------------------------


def test_a_conv_output_edited_to_a_million_channels_exits_3_naming_the_op(run_cli, models, tmp_path):
    bad = _edited(models["conv"], tmp_path / "m.tflite", 0, [1, 28, 28, 1000000])
    r = run_cli("compile", bad, "--target", "mcu", "--runtime", "c", "-o", tmp_path / "out")
    assert r.exit_code == 3, r.stderr
    assert "op #0 CONV_2D" in r.stderr
    assert "declared [1, 28, 28, 1000000]" in r.stderr and "imply [1, 28, 28, 4]" in r.stderr
    assert "corrupt or hand-edited" in r.stderr and "re-export" in r.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize(
    ("op_index", "shape", "expected"),
    [
        (1, [1, 15, 14, 4], "op #1 MAX_POOL_2D"),  # 28x28 pooled by 2 is 14x14
        (3, [1, 11], "op #3 FULLY_CONNECTED"),  # 10 units
        (2, [1, 785], "op #2 RESHAPE"),  # 14 * 14 * 4 = 784 elements
    ],
)
def test_every_op_output_is_checked_against_its_inputs(models, tmp_path, op_index, shape, expected):
    data = _edited(models["conv"], tmp_path / "m.tflite", op_index, shape).read_bytes()
    with pytest.raises(BadInput, match=expected) as info:
        generate(data, "m.tflite")
    assert "corrupt or hand-edited" in info.value.hint or "corrupt or hand-edited" in info.value.message


def test_an_empty_activation_dimension_is_refused(models, tmp_path):
    # (a negative one is refused earlier, by edgeq.tflite.check)
    data = _edited(models["conv"], tmp_path / "m.tflite", 3, [1, 0]).read_bytes()
    with pytest.raises(BadInput, match="a negative or empty dimension"):
        generate(data, "m.tflite")


def test_a_huge_declared_input_is_refused_before_any_sample_is_made(models, tmp_path):
    # [1, 32768, 32768, 1] int8 is 1 GiB per sample: 20 proof samples as int64 were 160 GiB
    data = _edited(models["conv"], tmp_path / "m.tflite", 0, [1, 32768, 32768, 1], which="input").read_bytes()
    with pytest.raises(BadInput, match="op #0 CONV_2D"):
        generate(data, "m.tflite")


def test_a_tensor_over_the_cap_is_refused_by_its_size(models, tmp_path):
    data = _edited(models["conv"], tmp_path / "m.tflite", 0, [1, 28, 28, 2_000_000]).read_bytes()
    # the validator every .tflite passes first holds activations to the budget the engine shares
    assert shapes.MAX_TENSOR_BYTES == 1 << 30
    with pytest.raises(BadInput, match="1,568,000,000 bytes, more than edgeq's budget of 1 GiB per activation tensor"):
        generate(data, "m.tflite")


def test_unedited_models_pass_the_shape_check(models):
    for path in models.values():
        generate(path.read_bytes(), path.name)


# --- does not fit, before any compiler ------------------------------------------------------------------


@pytest.fixture
def no_compiler(monkeypatch):
    """Fail the test if any compiler or QEMU is started."""

    def refuse(*args, **kwargs):
        raise AssertionError("a compiler ran for a project that cannot fit")

    for name in ("host_build", "arm_build", "arm_objects_sizes", "qemu_run", "_run"):
        monkeypatch.setattr(toolchain, name, refuse)


def test_3m_weights_for_a_2mb_board_do_not_fit_before_any_compiler(models, tmp_path, no_compiler):
    from edgeq.targets.mcu import TARGET

    with pytest.raises(QualityGateFailed) as info:
        TARGET.compile([str(models["fc3m"])], str(tmp_path / "out"), {"runtime": "c", "board": "stm32h7a3"})
    e = info.value
    assert e.exit_code == 6
    assert "does not fit stm32h7a3" in e.message and "before any compiler ran" in e.message
    fit_doc = e.details["fit"]["flash"]
    assert fit_doc["needed_bytes_at_least"] > 3_240_000 > fit_doc["available_bytes"] == 2 * 1024 * 1024
    assert not list(tmp_path.rglob("*.elf")) and not list(tmp_path.rglob("model.c"))


def test_3m_weights_exit_6_on_the_command_line(run_cli, models, tmp_path, no_compiler):
    r = run_cli("--json", "compile", models["fc3m"], "--target", "mcu", "--runtime", "c", "-o", tmp_path / "out")
    assert r.exit_code == 6, r.stdout
    assert '"exit_code": 6' in r.stdout and "constants 3," in r.stdout


def test_bench_refuses_a_misfit_before_any_compiler(models, no_compiler):
    from edgeq.config import BenchConfig
    from edgeq.targets.mcu import boards
    from edgeq.targets.mcu.cgen.bench import McuCRunner

    runner = McuCRunner(boards.get("stm32l4r5"))
    runner.availability = lambda: type("A", (), {"available": True, "reason": ""})()  # type: ignore[method-assign]
    with pytest.raises(QualityGateFailed, match="does not fit stm32l4r5"):
        runner.benchmark(str(models["fc3m"]), BenchConfig(num_runs=2, warmup_runs=0))


def test_the_tflm_export_does_not_compile_the_c_footprint_of_a_misfit(models, no_compiler):
    from edgeq.targets.mcu import boards
    from edgeq.targets.mcu.cgen import compile as cgen_compile

    doc = cgen_compile.footprint(models["fc3m"].read_bytes(), "fc3m", boards.get("stm32h7a3"))
    assert doc["flash_bytes"] is None and "exceed" in doc["reason"]


# --- an ld region overflow is the same verdict ----------------------------------------------------------


def test_the_captured_ld_overflow_message_is_parsed():
    text = LD_MESSAGE.read_text()
    assert fit.ld_overflow(text) == {"region": "FLASH", "overflow_bytes": 75720}
    assert fit.ld_overflow("undefined reference to `main'") is None


def _real_overflow(tmp_path: Path) -> ConversionFailed:
    (tmp_path / "link_cortex-m55.ld").write_text(emit.linker_script("cortex-m55"))
    (tmp_path / "big.c").write_text(
        "const signed char big[600000] = {1};\nvoid Reset_Handler(void) { for (;;) {} }\n"
        "int main(void) { return big[0]; }\n"
    )
    cmd = ["arm-none-eabi-gcc", "-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=soft", "-O2", "-std=c99"]
    cmd += ["--specs=nosys.specs", "-nostartfiles", "-T", "link_cortex-m55.ld", "big.c", "-o", "big.elf"]
    with pytest.raises(ConversionFailed) as info:
        toolchain._run(cmd, tmp_path, "arm link (cortex-m55)", 120)
    return info.value


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="no arm-none-eabi-gcc on PATH")
def test_a_real_ld_overflow_becomes_does_not_fit(tmp_path):
    exc = _real_overflow(tmp_path)
    misfit = fit.link_misfit(exc, "mps3-an547", "cortex-m55")
    assert misfit is not None and misfit.exit_code == 6
    assert misfit.details["ld_overflow"] == {"region": "FLASH", "overflow_bytes": 75720}
    assert "overflows by 75,720 bytes" in misfit.message
    other = ConversionFailed("arm link failed", details={"stderr": "undefined reference to `x'"})
    assert fit.link_misfit(other, "mps3-an547", "cortex-m55") is None


@pytest.mark.skipif(not HAS_ARM, reason="gcc, arm-none-eabi-gcc or qemu-system-arm missing")
def test_a_link_overflow_in_the_proof_exits_6_not_4(run_cli, models, tmp_path):
    # 640 KB of weights fit corstone-300's flash but not the 512 KiB FLASH of QEMU's mps3-an547 (cortex-m55)
    r = run_cli(
        "compile", models["fc640k"], "--target", "mcu", "--runtime", "c", "--board", "corstone-300",
        "--proof-samples", "1", "-o", tmp_path / "out",
    )  # fmt: skip
    assert r.exit_code == 6, r.stderr
    assert "FLASH region of QEMU's mps3-an547" in r.stderr and "overflows by" in r.stderr
    assert "report this" not in r.stderr
    assert not (tmp_path / "out" / "fc640k_c").exists()


# --- samples in the model's dtype, one chunk at a time --------------------------------------------------


def test_samples_are_drawn_in_the_input_dtype_without_int64_copies(models):
    from edgeq.targets.mcu import parity
    from edgeq.tflite import read_file

    info = read_file(models["conv"])
    n = 4000  # 4000 x 784 int8 = 3 MiB; drawn as int64 first it was 24 MiB
    tracemalloc.start()
    try:
        (x,) = parity.make_inputs(info, n, parity.DEFAULT_SEED)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert x.dtype == np.int8 and x.shape == (n, 1, 28, 28, 1)
    assert peak < x.nbytes + parity.DRAW_CHUNK * 8 + (1 << 20)
    # the same values as the one int64 draw they replace (parity figures stay comparable across versions)
    old = np.random.default_rng(parity.DEFAULT_SEED).integers(-128, 127, size=(50, 1, 28, 28, 1), endpoint=True)
    assert np.array_equal(x[:50], old.astype(np.int8))


def test_sample_chunks_hold_at_most_one_chunk(models):
    from edgeq.targets.mcu import parity
    from edgeq.tflite import read_file

    t = read_file(models["conv"]).inputs[0]
    chunks = list(parity.sample_chunks(t, 10, parity.DEFAULT_SEED, chunk_bytes=3 * 784))
    assert [len(c) for c in chunks] == [3, 3, 3, 1]
    assert all(c.dtype == np.int8 and c.nbytes <= 3 * 784 for c in chunks)
    again = np.concatenate(list(parity.sample_chunks(t, 10, parity.DEFAULT_SEED, chunk_bytes=3 * 784)))
    assert np.array_equal(np.concatenate(chunks), again)  # seeded: the same samples every time


@pytest.mark.skipif(not HAS_ARM, reason="gcc, arm-none-eabi-gcc or qemu-system-arm missing")
def test_a_proof_over_several_chunks_counts_every_sample(models, tmp_path, monkeypatch):
    from edgeq.targets.mcu import TARGET, parity

    monkeypatch.setattr(parity, "CHUNK_BYTES", 3 * 784)
    runs = []
    real = toolchain.qemu_run
    monkeypatch.setattr(toolchain, "qemu_run", lambda elf, core, x, *a: runs.append(len(x)) or real(elf, core, x, *a))
    result = TARGET.compile(
        [str(models["conv"])], str(tmp_path / "out"), {"runtime": "c", "board": "stm32l4r5", "proof_samples": 7}
    )
    proof = result.details["proof"]
    assert runs == [3, 3, 1]
    assert proof["num_samples"] == 7
    assert proof["host"]["bit_exact"] == 7 and proof["qemu"]["cortex-m4"]["bit_exact"] == 7


# --- the TFLM path: declared activations against the board before TFLM runs or samples are drawn ----------


@pytest.fixture
def no_tflm(monkeypatch):
    from edgeq.targets.mcu import parity, tflm

    def refuse(*args, **kwargs):
        raise AssertionError("TFLM ran or samples were drawn for a model that cannot fit")

    monkeypatch.setattr(tflm, "probe", refuse)
    monkeypatch.setattr(parity, "make_inputs", refuse)


def test_tflm_check_of_a_huge_declared_input_does_not_fit_before_tflm(run_cli, models, tmp_path, no_tflm):
    # [1, 32768, 32768, 1]: 8 parity samples were 8 GiB (64 GiB drawn as int64) before TFLM ran
    bad = _edited(models["conv"], tmp_path / "m.tflite", 0, [1, 32768, 32768, 1], which="input")
    r = run_cli("check", bad, "--target", "mcu")
    assert r.exit_code == 6, r.stderr
    assert "1,073,741,824 bytes" in r.stderr and "before TFLM ran" in r.stderr


def test_tflm_bench_refuses_an_activation_over_the_cap(models, tmp_path, no_tflm):
    from edgeq.config import BenchConfig
    from edgeq.targets.mcu import TARGET

    bad = _edited(models["conv"], tmp_path / "m.tflite", 0, [1, 28, 28, 2_000_000])
    with pytest.raises(BadInput, match="more than edgeq's budget of 1 GiB per activation tensor"):
        TARGET.runner(None, {}).benchmark(str(bad), BenchConfig(num_runs=1, warmup_runs=0))
