"""The android target's options as data (light: the CLI reads them without importing the target)."""

from __future__ import annotations

from edgeq.config import SAMPLES, TIMEOUT_S
from edgeq.targets.base import OVERWRITE, option

# The build passes compile the quantized .tflite, never a Keras model: what converts one is not its option.
KERAS_ONLY = {"in_build": False}

OPTIONS = (
    option(
        "data_path",
        "--data",
        "compile",
        "Calibration data for the int8 flavour of a Keras MODEL.",
        path="any",
        **KERAS_ONLY,
    ),
    option(
        "data_samples",
        "--samples",
        "compile",
        "Calibration samples to use (default all).",
        type=int,
        bound=SAMPLES,
        **KERAS_ONLY,
    ),
    option(
        "flavours",
        "--flavours",
        "compile",
        "Flavours to make: float32,fp16,int8 (default all).",
        metavar="LIST",
        **KERAS_ONLY,
    ),
    option(
        "int8_io",
        "--int8-io",
        "compile",
        "I/O type of the int8 flavour.",
        choices=("int8", "uint8", "float"),
        **KERAS_ONLY,
    ),
    option(
        "allow_float_ops",
        "--allow-float-ops",
        "compile",
        "Accept float ops left in the int8 flavour.",
        type=bool,
        is_flag=True,
        **KERAS_ONLY,
    ),
    OVERWRITE,
    option("serial", "--serial", "bench", "adb serial of the phone; needed when several are attached."),
    option(
        "delegates",
        "--delegate",
        "bench",
        "Delegates run one after another: cpu, xnnpack, gpu, nnapi.",
        metavar="LIST",
    ),
    option("nnapi_accelerator", "--nnapi-accelerator", "bench", "NNAPI device name, e.g. qti-dsp."),
    option("op_profiling", "--op-profiling", "bench", "Per-op timings from benchmark_model.", type=bool, is_flag=True),
    option(
        "benchmark_binary",
        "--benchmark-binary",
        "bench",
        "benchmark_model for the phone's ABI (default: $EDGEQ_BENCHMARK_MODEL).",
        path="file",
    ),
    option("cpu_mask", "--cpu-mask", "bench", "Pin to these cores with taskset, e.g. f0.", metavar="HEX"),
    option(
        "extra_args",
        "--benchmark-arg",
        "bench",
        "Extra benchmark_model flag, e.g. --min_secs=0.",
        multiple=True,
        metavar="FLAG",
    ),
    option("adb", "--adb", "bench", "adb to use (default: on PATH).", metavar="PATH"),
    option("timeout_s", "--timeout-s", "bench", "Limit for one benchmark run.", type=float, bound=TIMEOUT_S),
    option(
        "adb_timeout_s", "--adb-timeout-s", "bench", "Limit for every other adb call (60).", type=float, bound=TIMEOUT_S
    ),
    option("log_dir", "--log-dir", "bench", "Keep each run's benchmark_model output here.", path="dir"),
)
DEVICE_HELP = "phone: its adb serial, as --serial"
