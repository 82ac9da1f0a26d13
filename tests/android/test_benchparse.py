"""The benchmark_model parser on real, published outputs (tests/data/android, sources in SOURCE.md)."""

from __future__ import annotations

import pytest

from edgeq.targets.android import benchparse
from tests.android.conftest import recorded


def parse(name: str) -> benchparse.BenchmarkOutput:
    return benchparse.parse(recorded(name).read_text())


def test_tail_only_cpu_run_mi11():
    out = parse("lp6m_mi11_cpu_fp32.txt")
    assert out.inference is not None and out.warmup is None  # one count line: the regular runs
    assert out.inference.count == 50
    assert out.inference.avg_us == 249684 and out.inference.std_us == 1442
    assert (out.inference.min_us, out.inference.max_us) == (247067, 254474)
    assert (out.init_us, out.first_inference_us, out.warmup_avg_us, out.inference_avg_us) == (
        16242,
        360262,
        304586,
        249684,
    )
    assert out.memory == {"kind": "peak", "init_mb": 4.92969, "overall_mb": 138.809}
    assert not out.failed and out.has_timings and out.delegates == ()


@pytest.mark.parametrize(
    "name, avg_us",
    [
        ("lp6m_mi11_nnapi_qti_gpu_fp32.txt", 156669),
        ("lp6m_mi11_nnapi_qti_gpu_fp16.txt", 92571.2),
        ("lp6m_mi11_cpu_int8.txt", 95788.3),
    ],
)
def test_decimal_averages(name, avg_us):
    out = parse(name)
    assert out.inference.avg_us == pytest.approx(avg_us)
    assert out.inference_avg_us == pytest.approx(avg_us)


@pytest.mark.parametrize(
    "name, error",
    [
        ("lp6m_mi11_nnapi_qti_default_failed.txt", "ANEURALNETWORKS_OP_FAILED"),
        ("lp6m_mi11_nnapi_qti_dsp_failed.txt", "ANEURALNETWORKS_BAD_DATA"),
    ],
)
def test_nnapi_failure_on_qualcomm_accelerators(name, error):
    out = parse(name)
    assert out.failed and out.failure == "Failed to apply NNAPI delegate."
    assert any(error in e for e in out.errors)
    assert out.delegate("nnapi").applied == "failed"
    assert out.nnapi_accelerators == ("qti-default", "qti-dsp", "qti-gpu", "nnapi-reference")
    assert out.params["NNAPI execution preference"] == "sustained_speed"
    assert out.params["Num threads"] == "4"
    assert not out.has_timings


def test_op_profiling_tables_with_nnapi_partitions():
    out = parse("lp6m_mi11_nnapi_qti_gpu_op_profiling.txt")
    init, regular = out.profiles
    assert init.title == "Benchmark Initialization" and regular.title == "Regular Benchmark Runs"
    modify = init.run_order[0]
    assert modify.node_type == "ModifyGraphWithDelegate" and modify.values["avg_ms"] == pytest.approx(413.346)
    assert init.timings.count == 1 and init.timings.curr_us == 729391 and init.timings.all_same
    assert len(regular.run_order) == 11 and regular.nodes_observed == 11
    first = regular.run_order[6]
    assert first.node_type == "TfLiteNnapiDelegate"
    assert first.values == {
        "start_ms": 8.377,
        "first_ms": 78.701,
        "avg_ms": 79.01,
        "pct": 49.781,
        "cdf_pct": 55.042,
        "mem_kb": 0.0,
        "times_called": 1.0,
    }
    assert first.name == "[model/tf.nn.silu_16/mul, model/tf.nn.silu_26/mul, model/tf.nn.silu_35/mul]:231"
    by_type = {r.node_type: r.values for r in regular.by_node_type}
    assert by_type["TfLiteNnapiDelegate"]["count"] == 3 and by_type["TfLiteNnapiDelegate"]["avg_pct"] == 94.187
    assert by_type["STRIDED_SLICE"]["count"] == 6 and by_type["RESIZE_NEAREST_NEIGHBOR"]["avg_ms"] == 0.879
    assert len(regular.tables["Top by Computation Time"]) == 10
    assert regular.timings.count == 50 and regular.timings.avg_us == 158715
    # the profiler's run totals are not the benchmark's statistics lines
    assert out.inference is None


def test_info_prefixed_nnapi_npu_run_fully_delegated():
    out = parse("synaptics_nnapi_synap_npu.txt")
    assert out.tflite_version == "2.15.0"
    assert out.nnapi_accelerators == ("synap-npu", "nnapi-reference")
    assert out.params["NNAPI accelerator name"] == "synap-npu"
    nnapi = out.delegate("nnapi")
    assert (nnapi.applied, nnapi.kernels, nnapi.nodes_delegated, nnapi.nodes_total, nnapi.partitions) == (
        "all",
        1,
        31,
        31,
        1,
    )
    assert nnapi.falls_back_to_cpu is False
    assert out.warmup.count == 1 and out.warmup.all_same and out.warmup.avg_us == 637079
    assert out.warmup.requested_runs == 1 and out.inference.requested_runs == 50
    assert out.inference.count == 520 and out.inference.avg_us == pytest.approx(1885.74)
    assert out.first_inference_us == 637079 and out.init_session_ms == pytest.approx(66.002)
    assert out.model_size_mb == pytest.approx(0.497264)
    assert out.memory == {"kind": "delta_from_tool_start", "init_mb": 7.40234, "overall_mb": 7.83203}
    assert out.warnings == ("NNAPI SL driver did not implement SL_ANeuralNetworksDiagnostic_registerCallbacks!",)
    assert not out.failed


def test_nnapi_partial_delegation_is_a_cpu_fallback():
    nnapi = parse("synaptics_nnapi_partial.txt").delegate("nnapi")
    assert (nnapi.applied, nnapi.kernels, nnapi.falls_back_to_cpu) == ("partial", 2, True)


def test_space_separated_profile_without_start_column():
    (section,) = parse("synaptics_nnapi_partial_op_profiling.txt").profiles
    rows = section.run_order
    assert [r.node_type for r in rows] == ["TfLiteNnapiDelegate", "RESIZE_NEAREST_NEIGHBOR", "TfLiteNnapiDelegate"]
    assert rows[1].values["avg_ms"] == 0.058 and rows[1].values["pct"] == 0.899 and rows[1].name == "[]:38"
    assert "start_ms" not in rows[0].values


def test_scientific_notation_and_error_line_that_is_not_a_failure():
    out = parse("synaptics_nnapi_cache_miss.txt")
    assert out.warmup_avg_us == pytest.approx(1.59906e06)
    assert out.inference_avg_us == pytest.approx(1380.86)
    assert out.delegate("nnapi").nodes_delegated == 31 and out.delegate("nnapi").nodes_total is None
    assert out.errors and not out.failed


def test_percentiles_and_scientific_averages():
    out = parse("ti_am62x_cpu_no_xnnpack.txt")
    assert out.warmup.count == 1 and out.warmup.median_us == 1357602
    inf = out.inference
    assert inf.avg_us == pytest.approx(1.24027e06)
    assert (inf.p5_us, inf.median_us, inf.p95_us) == (1238753, 1239807, 1247415)
    assert out.inference_avg_us == pytest.approx(1.24027e06) and out.warmup_avg_us == pytest.approx(1.3576e06)
    assert out.params["Use xnnpack"] == "0" and out.delegates == ()


def test_xnnpack_partial():
    out = parse("ti_am62x_xnnpack.txt")
    x = out.delegate("xnnpack")
    assert x.created and (x.applied, x.kernels) == ("partial", 1)
    assert out.inference.median_us == 899281


def test_external_delegate_and_many_warmup_runs():
    out = parse("synaptics_external_vx_delegate.txt")
    ext = out.delegate("external")
    assert (ext.applied, ext.nodes_delegated, ext.nodes_total) == ("all", 31, 31)
    assert len(out.delegates) == 1  # "Vx Delegate" nodes belong to the external delegate
    assert out.warmup.count == 277 and out.inference.count == 876


def test_xnnpack_failure():
    out = parse("tf56166_xnnpack_failed.txt")
    assert out.failed and out.failure == "Failed to apply XNNPACK delegate."
    assert out.delegate("xnnpack").applied == "failed"


def test_logcat_lines_nnapi_not_executed_means_cpu():
    out = parse("tf56301_logcat_nnapi_not_executed.txt")
    assert out.params["Use NNAPI"] == "1" and out.params["Min num runs"] == "50"
    assert out.nnapi_accelerators == ("ipuadaptor", "nnapi-reference")
    nnapi = out.delegate("nnapi")
    assert (nnapi.applied, nnapi.kernels, nnapi.falls_back_to_cpu) == ("none", 0, True)


def test_logcat_gpu_unsupported_op_cut_mid_line():
    out = parse("tf56301_logcat_gpu_unsupported_op.txt")
    gpu = out.delegate("gpu")
    assert gpu.created
    assert gpu.unsupported_ops == ({"op": "UNPACK", "reason": "Operation is not supported."},)
    assert any("not supported by GPU delegate" in e for e in out.errors)  # an E-level logcat line


def test_gpu_unsupported_op_list_and_split():
    gpu = parse("tf57907_gpu_unsupported_ops.txt").delegate("gpu")
    assert [u["op"] for u in gpu.unsupported_ops] == [
        "ARG_MAX",
        "CAST",
        "CONCATENATION",
        "DEQUANTIZE",
        "FLOOR_DIV",
        "GATHER_ND",
        "MUL",
        "PACK",
        "RESHAPE",
        "SUB",
        "UNPACK",
    ]
    assert gpu.unsupported_ops[1]["reason"] == "Not supported cast case"
    assert gpu.unsupported_ops[3]["reason"] == ""
    assert (gpu.gpu_ops, gpu.cpu_ops, gpu.applied) == (97, 200, "partial")


def test_gpu_opencl_run_cut_short():
    out = parse("tf43541_gpu_opencl.txt")
    gpu = out.delegate("gpu")
    assert (gpu.applied, gpu.kernels) == ("all", 1)
    assert out.warmup.count == 4 and out.warmup.avg_us == 122373
    assert out.inference.count == 50 and out.inference.avg_us == 119375
    assert out.init_us == 870557 and out.memory == {}


def test_profile_cut_inside_a_row_does_not_break_the_rest():
    out = parse("tf42507_cpu_op_profiling_cut.txt")
    assert out.inference.avg_us == pytest.approx(33209.4) and out.warmup.count == 15
    assert out.memory["init_mb"] == 0.0 and out.memory["overall_mb"] == 12.8672
    (section,) = out.profiles
    assert section.title == "Benchmark Initialization" and section.run_order == ()


def test_2018_spelling():
    out = parse("yuenshome77_2018_old_format.txt")
    assert out.init_us == 12516 and out.warmup_avg_us == 146548 and out.inference_avg_us == 133690
    assert out.first_inference_us is None
    assert out.warmup.count == 4 and out.inference.count == 10
    assert out.init_session_ms == pytest.approx(12.516)


def test_shell_refusing_the_binary_is_an_exec_failure():
    text = "EDGEQ_PID=4242\n/system/bin/sh: /data/local/tmp/edgeq/benchmark_model: not executable: 64-bit ELF file\n"
    out = benchparse.parse(text)
    assert out.failed and out.exec_failure.endswith("not executable: 64-bit ELF file")


def test_stats_line_spellings():
    same = benchparse.parse_stats("count=10 curr=30(all same)")
    assert same.all_same and same.avg_us == 30 and same.std_us == 0
    old = benchparse.parse_stats("curr=66800 count=15 min=66699 max=66838 avg=66767.6 std=39")
    assert old.count == 15 and old.avg_us == pytest.approx(66767.6) and not old.all_same
    assert benchparse.parse_stats("count=0").count == 0
    assert benchparse.parse_stats("no stats here") is None
