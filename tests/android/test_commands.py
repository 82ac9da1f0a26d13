"""The exact adb and benchmark_model command lines, option checks, and the small readers (devices, getprop, ELF)."""

from __future__ import annotations

import pytest

from edgeq.errors import USAGE, Unavailable, UsageError
from edgeq.targets.android import adb, bench, elf
from tests.android.conftest import EM_ARM, EM_X86_64, elf_bytes

MODEL = "/data/local/tmp/edgeq/mobilenet_int8.tflite"
BIN = "/data/local/tmp/edgeq/benchmark_model"


@pytest.mark.parametrize(
    "delegate, flag",
    [
        ("cpu", "--use_xnnpack=false"),
        ("xnnpack", "--use_xnnpack=true"),
        ("gpu", "--use_gpu=true"),
        ("nnapi", "--use_nnapi=true"),
    ],
)
def test_flags_per_delegate(delegate, flag):
    opts = bench.BenchOptions(delegates=(delegate,))
    assert bench.benchmark_flags(delegate, MODEL, opts) == [f"--graph={MODEL}", flag]


def test_all_options_in_order():
    opts = bench.BenchOptions(
        delegates="cpu,nnapi",
        nnapi_accelerator="qti-dsp",
        threads=4,
        runs=50,
        warmup=5,
        op_profiling=True,
        extra_args=("--min_secs=0",),
    )
    assert bench.benchmark_flags("nnapi", MODEL, opts) == [
        f"--graph={MODEL}",
        "--num_threads=4",
        "--num_runs=50",
        "--warmup_runs=5",
        "--use_nnapi=true",
        "--nnapi_accelerator_name=qti-dsp",
        "--enable_op_profiling=true",
        "--min_secs=0",
    ]
    # the accelerator name goes to the nnapi run only
    assert "--nnapi_accelerator_name=qti-dsp" not in bench.benchmark_flags("cpu", MODEL, opts)


def test_shell_command_and_full_adb_argv():
    opts = bench.BenchOptions(delegates=("gpu",), threads=1)
    flags = bench.benchmark_flags("gpu", MODEL, opts)
    command = bench.shell_command(flags, opts)
    assert command == f"echo EDGEQ_PID=$$; exec {BIN} --graph={MODEL} --num_threads=1 --use_gpu=true"
    argv = adb.Adb("/usr/bin/adb", "R5CR1234567").argv("shell", command)
    assert argv == ["/usr/bin/adb", "-s", "R5CR1234567", "shell", command]
    assert adb.Adb("/usr/bin/adb").argv("devices", "-l") == ["/usr/bin/adb", "devices", "-l"]


def test_cpu_mask_pins_with_taskset():
    opts = bench.BenchOptions(delegates=("cpu",), cpu_mask="f0")
    command = bench.shell_command(bench.benchmark_flags("cpu", MODEL, opts), opts)
    assert command == f"echo EDGEQ_PID=$$; exec taskset f0 {BIN} --graph={MODEL} --use_xnnpack=false"


def test_model_names_are_made_safe_for_the_phone_shell():
    assert bench.remote_model_path("/home/me/my model (v2).tflite") == "/data/local/tmp/edgeq/my_model__v2_.tflite"
    opts = bench.BenchOptions()
    command = bench.shell_command(bench.benchmark_flags("cpu", "/data/local/tmp/it's.tflite", opts), opts)
    assert "'--graph=/data/local/tmp/it'\"'\"'s.tflite'" in command  # quoted for sh


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"delegates": "cpu,npu"}, "unknown delegate 'npu'"),
        ({"delegates": ""}, "no delegate"),
        ({"delegates": ("cpu",), "nnapi_accelerator": "qti-dsp"}, "needs the nnapi delegate"),
        ({"delegates": ("nnapi",), "nnapi_accelerator": "qti dsp; rm -rf /"}, "bad NNAPI accelerator"),
        ({"threads": 0}, "--threads"),
        ({"runs": 0}, "--runs"),
        ({"warmup": -1}, "--warmup"),
        ({"cpu_mask": "big"}, "--cpu-mask"),
        ({"extra_args": ("min_secs=0",)}, "--name=value"),
        ({"timeout_s": 0}, "timeouts"),
    ],
)
def test_bad_options_are_usage_errors(kwargs, words):
    with pytest.raises(UsageError) as err:
        bench.BenchOptions(**kwargs)
    assert words in err.value.message and err.value.exit_code == USAGE


def test_delegates_keep_order_and_drop_duplicates():
    assert bench.parse_delegates("nnapi, CPU,gpu,cpu") == ("nnapi", "cpu", "gpu")
    assert bench.parse_delegates(["cpu,xnnpack", "gpu"]) == ("cpu", "xnnpack", "gpu")


def test_devices_long_listing():
    text = (
        "List of devices attached\n"
        "R5CR1234567            device usb:1-1 product:venus model:M2011K2G device:venus transport_id:1\n"
        "emulator-5554          unauthorized transport_id:2\n"
        "0123456789ABCDEF       no permissions (user in plugdev group; are your udev rules wrong?); see "
        "[http://developer.android.com/tools/device.html] usb:1-2 transport_id:3\n"
        "192.168.1.7:5555       offline transport_id:4\n\n"
    )
    devices = adb.parse_devices(text)
    assert [(d.serial, d.state) for d in devices] == [
        ("R5CR1234567", "device"),
        ("emulator-5554", "unauthorized"),
        ("0123456789ABCDEF", "no permissions"),
        ("192.168.1.7:5555", "offline"),
    ]
    assert devices[0].attrs == {
        "usb": "1-1",
        "product": "venus",
        "model": "M2011K2G",
        "device": "venus",
        "transport_id": "1",
    }
    assert devices[2].attrs == {"usb": "1-2", "transport_id": "3"}
    assert adb.parse_devices("List of devices attached\nemulator-5554\tdevice\n\n")[0].state == "device"


def test_getprop_lines():
    props = adb.parse_getprop("[ro.product.model]: [Pixel 7]\n[ro.build.version.sdk]: [35]\n[empty]: []\nnoise\n")
    assert props == {"ro.product.model": "Pixel 7", "ro.build.version.sdk": "35", "empty": ""}


def test_device_info_prefers_soc_properties():
    info = bench.device_info(
        "X",
        {
            "ro.soc.manufacturer": "Google",
            "ro.soc.model": "Tensor G2",
            "ro.board.platform": "gs201",
            "ro.product.cpu.abilist": "arm64-v8a",
            "ro.build.version.sdk": "35",
            "ro.build.version.release": "15",
        },
    )
    assert info["soc"] == "Google Tensor G2" and info["sdk"] == 35 and info["abilist"] == ["arm64-v8a"]
    older = bench.device_info("X", {"ro.board.platform": "lahaina", "ro.product.cpu.abi": "arm64-v8a"})
    assert (
        older["soc"] == "lahaina" and older["abi"] == "arm64-v8a" and older["abilist"] == ["arm64-v8a"]
    )  # pre-Lollipop phones have no abilist


@pytest.mark.parametrize(
    "text, kind",
    [
        ("error: no devices/emulators found", "no_device"),
        ("adb: error: failed to get feature set: no devices/emulators found", "no_device"),
        ("error: device 'XYZ' not found", "not_found"),
        ("error: more than one device/emulator", "multiple"),
        ("adb: more than one device/emulator", "multiple"),
        ("error: device unauthorized.\nThis adb server's $ADB_VENDOR_KEYS is not set", "unauthorized"),
        ("error: device offline", "offline"),
    ],
)
def test_adb_error_wording(text, kind):
    assert adb.classify(text)[0] == kind


def test_benchmark_model_errors_are_not_adb_errors():
    assert adb.classify("ERROR: Node number 248 (TfLiteNnapiDelegate) failed to prepare.") is None
    assert adb.classify("/system/bin/sh: benchmark_model: not found") is None


def test_several_devices_error_is_a_usage_error():
    err = adb.error_for("multiple", "error: more than one device/emulator", None)
    assert isinstance(err, UsageError) and "--serial" in err.hint


def test_elf_abi_of_binaries(tmp_path):
    def write(name: str, data: bytes):
        path = tmp_path / name
        path.write_bytes(data)
        return path

    assert elf.read(write("a64", elf_bytes())).abi == "arm64-v8a"
    arm = elf.read(write("a32", elf_bytes(EM_ARM, 32, "/system/bin/linker")))
    assert (arm.abi, arm.bits, arm.is_android) == ("armeabi-v7a", 32, True)
    static = elf.read(write("static", elf_bytes(interp=None)))
    assert static.interpreter is None and static.is_android is None


def test_binary_checks(tmp_path):
    with pytest.raises(Unavailable) as err:
        bench.check_binary(None)
    assert "EDGEQ_BENCHMARK_MODEL" in err.value.hint and "android_aarch64_benchmark_model" in err.value.hint
    with pytest.raises(Unavailable, match="not found"):
        bench.check_binary(str(tmp_path / "missing"))
    script = tmp_path / "benchmark_model"
    script.write_text("#!/bin/sh\necho hi\n")
    with pytest.raises(Unavailable, match="no ELF header"):
        bench.check_binary(str(script))
    with pytest.raises(Unavailable, match="Linux build"):
        bench.check_binary("/bin/ls")  # this machine's own glibc x86-64 binary
    x86 = tmp_path / "x86_64_benchmark_model"
    x86.write_bytes(elf_bytes(EM_X86_64, 64, "/system/bin/linker64"))
    with pytest.raises(Unavailable) as err:
        bench.check_binary(str(x86), ["arm64-v8a", "armeabi-v7a", "armeabi"])
    assert "built for x86_64, but the phone runs arm64-v8a" in err.value.message
    assert "android_aarch64_benchmark_model" in err.value.hint
    assert bench.check_binary(str(x86), ["x86_64", "x86"]).abi == "x86_64"
