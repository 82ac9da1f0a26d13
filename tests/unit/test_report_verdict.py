"""The build report reads top-down: one verdict line per target first, every latency figure labelled
measured or estimated, facts apart from warnings, no Python reprs, and a failed target reported in place.

The manifests are cut-down copies of a real ``edgeq build --target coral,mcu,cpu`` (no accuracy, so no
plot, which keeps these tests fast), in the shape written before and after the verdict fields.
"""

from __future__ import annotations

import copy
import json
import re

import pytest

MCU_MESSAGES = [
    "tensor arena: TFLM allocated 19,072 bytes (head 15,680 + tail 3,392); firmware constant with margin 22,016",
    "flash: model 29,696 + TFLM runtime ~57,344 (estimate, 5 kernels) = 87,040 bytes",
    "stm32h7a3: arena 18.6 KiB of 1,024.0 KiB RAM, flash 85.0 KiB of 2,048.0 KiB: fits",
    "parity: bit-exact with LiteRT reference kernels; bit-exact with LiteRT optimized kernels",
    "latency estimate on stm32h7a3: 7.27 ms (estimate; calibrated on this board, leave-one-out error mean 6.2%)",
]
TOP = {
    "schema_version": 1,
    "config": {"method": "auto", "max_drop": None},
    "inputs": {"model": "m.keras", "data": "calib.npz", "eval_data": "eval.npz"},
    "targets": ["coral", "mcu", "cpu"],
    "stages": [{"name": "float", "cached": False, "seconds": 1.5}],
    "gate_failures": [],
}


def _variant(name, p50, on, **extra):
    return {
        "variant": name,
        "output": f"/somewhere/{'m_int8' if name == 'int8' else 'm_float'}.tflite",
        "size_bytes": 29696 if name == "int8" else 95324,
        "accuracy": None,
        "float_ops": 0,
        "check": None,
        "compile": None,
        "latency_ms": {"p50": p50, "p99": 2 * p50},
        "latency_on": on,
        "bench_skipped": None,
    } | extra


CORAL = {
    "target": "coral",
    "description": "Google Coral Edge TPU",
    "plan": {"chosen": None, "stopped_because": "", "steps": []},  # no planner ran
    "variants": [
        _variant("float", 0.032, "cpu (host)"),
        _variant(
            "int8",
            0.038,
            "cpu (host)",
            check={"ok": True, "messages": [], "counts": {"tpu": 9, "cpu": 0}, "details": {}},
            compile={"skipped": True, "reason": "edgetpu_compiler is not installed (not on PATH); install it"},
            bench_skipped="cannot load libedgetpu.so.1: libedgetpu.so.1: cannot open shared object file",
        ),
    ],
    "warnings": [],
}
MCU = {
    "target": "mcu",
    "description": "microcontrollers with TFLM",
    "variants": [
        _variant("float", 0.032, "cpu (host)"),
        _variant(
            "int8",
            27.0,  # host TFLM time: a measurement, but of the host
            "mcu (host via TFLM)",
            check={
                "ok": True,
                "messages": MCU_MESSAGES,
                "counts": {},
                "details": {
                    "board": {"name": "stm32h7a3", "core": "cortex-m7"},
                    "arena_bytes": 19072,
                    "arena": {"breakdown": [{"kind": "x", "used_bytes": 456}]},
                    "flash_bytes": 87040,
                    "flash": {"model_bytes": 29696, "runtime_estimate_bytes": 57344, "basis": "fitted"},
                    "fits": True,
                    "fit": {
                        "ram": {"fits": True, "needed_bytes": 19072, "available_bytes": 1048576},
                        "flash": {"fits": True, "needed_bytes": 87040, "available_bytes": 2097152},
                    },
                    "latency_estimate": {
                        "kind": "estimate",
                        "board": "stm32h7a3",
                        "core": "cortex-m7",
                        "latency_ms": 75.0,
                        "board_calibrated": True,
                        "calibrated_boards": ["stm32h7a3"],
                        "calibration_error": {"mean_abs_error_pct": 6.2, "max_abs_error_pct": 10.9},
                    },
                },
            },
            compile={"skipped": False, "reason": "", "output": "/b/.cache/target-0a1b/m_int8_tflm/m_int8.tflite"},
        ),
    ],
    "warnings": list(MCU_MESSAGES),  # written before info and warnings were split: facts among them
}
CPU = {
    "target": "cpu",
    "description": "host CPU",
    "variants": [_variant("float", 0.032, "cpu (host)"), _variant("int8", 0.038, "cpu (host)")],
    "warnings": list(MCU_MESSAGES),  # another target's messages leaked here by an older build
}


def _write(run_dir, top, *targets):
    (run_dir / "build.json").write_text(json.dumps(top))
    for t in targets:
        (run_dir / t["target"]).mkdir(parents=True, exist_ok=True)
        (run_dir / t["target"] / "build.json").write_text(json.dumps(t))


def _report(run_cli, run_dir, top=TOP, targets=(CORAL, MCU, CPU)):
    _write(run_dir, top, *targets)
    r = run_cli("report", run_dir)
    assert r.exit_code == 0, r.stderr
    return (run_dir / "report.md").read_text(), (run_dir / "report.html").read_text()


def _section(md: str, title: str) -> str:
    return md.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_verdict_lines_come_first_one_per_target(run_cli, tmp_path):
    md, page = _report(run_cli, tmp_path)
    assert re.findall(r"^## .*", md, re.M)[0] == "## Verdict per target"
    lines = [ln for ln in _section(md, "Verdict per target").splitlines() if ln.startswith("- ")]
    assert [ln.split(":")[0] for ln in lines] == ["- coral", "- mcu", "- cpu"]
    coral, mcu, cpu = lines
    assert "9 of 9 ops on the Edge TPU (predicted)" in coral
    assert "not measured on coral" in coral and "coral/m_int8.tflite" in coral
    assert "fits: arena 18.6 KiB of 1,024.0 KiB RAM, flash 85.0 KiB of 2,048.0 KiB (estimated)" in mcu
    assert "75.000 ms, estimated for stm32h7a3: calibrated on this board" in mcu
    assert "0.038 ms p50, measured on cpu (host)" in cpu
    # in the HTML too, the verdicts sit above everything else
    assert page.index("Verdict per target") < page.index("<h2>Summary</h2>")
    assert page.index("class='verdict'") < page.index("<h2>Latency</h2>")


def _table(section: str) -> list[dict]:
    """The first markdown table of a section, as one dict per row keyed by the header."""
    lines = [ln for ln in section.splitlines() if ln.startswith("|")]
    cells = [[c.strip() for c in ln.strip("|").split(" | ")] for ln in lines]
    return [dict(zip(cells[0], row, strict=True)) for row in cells[2:]]


def test_an_estimate_is_never_in_a_measured_row(run_cli, tmp_path):
    md, _ = _report(run_cli, tmp_path)
    rows = _table(_section(md, "Latency"))
    measured = [r for r in rows if r["kind"] == "measured"]
    estimated = [r for r in rows if r["kind"] == "estimated"]
    assert not any("75.000" in r.values() for r in measured)
    assert [(r["targets"], r["p50 ms"], r["on"]) for r in estimated] == [("mcu", "75.000", "stm32h7a3")]
    # the host TFLM time stays, labelled as measured on the host
    assert {(r["p50 ms"], r["on"]) for r in measured if r["targets"] == "mcu"} == {("27.000", "mcu (host via TFLM)")}


def test_facts_are_notes_and_not_warnings_nor_another_targets(run_cli, tmp_path):
    md, _ = _report(run_cli, tmp_path)
    notes, warnings = _section(md, "Notes"), _section(md, "Warnings")
    assert "mcu: stm32h7a3: arena 18.6 KiB" in notes and "bit-exact" in notes
    assert "fits" not in warnings and "bit-exact" not in warnings
    assert "cpu: " not in notes  # the messages an older build leaked into cpu's manifest are mcu's


def test_no_python_reprs_or_none_in_the_report(run_cli, tmp_path):
    md, page = _report(run_cli, tmp_path)
    for text in (md, page):
        assert "None" not in text and "{'" not in text and "[{" not in text
    assert "Planner for coral" not in md  # no planner ran: no heading for it
    assert "Op counts: tpu 9, cpu 0" in md


def test_memory_figures_say_how_they_were_got(run_cli, tmp_path):
    md, _ = _report(run_cli, tmp_path)
    mcu = _section(md, "Target mcu: op mapping and memory")
    assert "| arena_bytes | 19,072 | measured (TFLM allocator, on the host) |" in mcu
    assert "| flash_bytes | 87,040 | estimated |" in mcu
    assert "breakdown" not in mcu
    assert "Compile: done" in mcu and ".cache/" not in md  # a cache path is not where a person looks


def test_a_failed_target_has_its_verdict_line_and_the_others_render(run_cli, tmp_path):
    failed = {
        "target": "coral",
        "status": "failed",
        "error": {
            "type": "conversion_failed",
            "message": "edgetpu_compiler failed: unsupported op",
            "hint": "see coral/compile.log",
            "exit_code": 4,
        },
        "variants": [],
    }
    top = TOP | {"failed_targets": ["coral"]}
    md, page = _report(run_cli, tmp_path, top, (failed, MCU, CPU))
    lines = [ln for ln in _section(md, "Verdict per target").splitlines() if ln.startswith("- ")]
    assert lines[0] == "- coral: FAILED: edgetpu_compiler failed: unsupported op (fix: see coral/compile.log)"
    assert lines[1].startswith("- mcu: ") and lines[2].startswith("- cpu: ")
    assert "1 target(s) failed: coral" in md
    assert "class='bad'" in page


def test_a_failed_target_without_a_manifest_is_reported_in_place(run_cli, tmp_path):
    top = TOP | {"targets": ["coral", "cpu"], "failed_targets": ["coral"]}
    md, _ = _report(run_cli, tmp_path, top, (CPU,))
    assert "- coral: FAILED: no reason recorded" in md


def test_the_new_verdict_fields_are_read_when_present(run_cli, tmp_path):
    mcu = copy.deepcopy(MCU) | {
        "status": "ok",
        "info": ["stm32h7a3: fits"],
        "warnings": ["a real problem"],
        "artifacts": ["firmware/main.cc", "m_int8.tflite"],
        "verdict": {
            "accelerator": None,
            "fits": {
                "ram_bytes": 2048,
                "ram_limit": 4096,
                "flash_bytes": 8192,
                "flash_limit": 4096,
                "basis": "measured",
                "ok": False,
            },
            "latency_ms": {"value": 12.5, "kind": "measured", "where": "the board over SSH", "note": "p50"},
        },
    }
    mcu["variants"][1] |= {"latency_kind": "measured", "latency_where": "nucleo over serial"}
    md, _ = _report(run_cli, tmp_path, TOP | {"targets": ["mcu"]}, (mcu,))
    verdict = _section(md, "Verdict per target")
    assert "DOES NOT FIT: arena 2.0 KiB of 4.0 KiB RAM, flash 8.0 KiB of 4.0 KiB (measured)" in verdict
    assert "12.500 ms p50, measured on the board over SSH" in verdict
    assert "artifacts: mcu/firmware/main.cc, mcu/m_int8.tflite" in verdict
    assert "| mcu | int8 | 27.000 | 54.000 | - | measured | nucleo over serial |" in _section(md, "Latency")
    assert "mcu: a real problem" in _section(md, "Warnings")
    assert "mcu: stm32h7a3: fits" in _section(md, "Notes")


def test_a_phone_mean_without_percentiles_is_still_a_measurement(run_cli, tmp_path):
    phone = {
        "target": "android",
        "description": "Android phones",
        "variants": [
            _variant("float", 0.032, "cpu (host)"),
            _variant("int8", 0.0, "android (R5CR1234567, cpu)")
            | {"latency_ms": {"p50": None, "p99": None, "mean": 95.788}},
        ],
        "warnings": [],
    }
    md, _ = _report(run_cli, tmp_path, TOP | {"targets": ["android"]}, (phone,))
    assert "latency 95.788 ms mean, measured on android (R5CR1234567, cpu)" in _section(md, "Verdict per target")
    row = "| android | int8 | - | - | 95.788 | measured | android (R5CR1234567, cpu) | - |"
    assert row in _section(md, "Latency")


@pytest.fixture
def build_doc():
    """What ``edgeq build`` hands its renderer: the manifests of the targets, by name."""
    targets = {t["target"]: {k: v for k, v in t.items() if k != "target"} for t in (CORAL, MCU, CPU)}
    return {
        "out_dir": "out",
        "targets": targets,
        "stages": TOP["stages"],
        "report": ["out/report.html", "out/report.md"],
        "warnings": list(MCU_MESSAGES),
        "gate_failures": [],
    }


def test_build_output_opens_with_the_verdicts_and_has_no_reprs(build_doc):
    from edgeq.cli.cmd_build import problems, render

    text = render(build_doc, 1)
    lines = text.splitlines()
    assert lines[0] == "Verdict per target:"
    assert [ln.split(":")[0] for ln in lines[1:4]] == ["  coral", "  mcu", "  cpu"]
    assert "None" not in text and "{'" not in text
    row = next(ln for ln in lines if ln.startswith("int8") and "75.000" in ln)
    assert "estimated" in row and "stm32h7a3" in row
    assert not any("75.000" in ln and "measured" in ln for ln in lines)
    # facts are notes on stdout, not WARNING lines on stderr
    assert "  note: stm32h7a3: arena 18.6 KiB of 1,024.0 KiB RAM, flash 85.0 KiB of 2,048.0 KiB: fits" in lines
    assert problems(build_doc) == []


def test_build_output_names_a_failed_target(build_doc):
    from edgeq.cli.cmd_build import render

    build_doc["targets"]["coral"] = {"status": "failed", "error": {"message": "boom", "hint": "fix it"}, "variants": []}
    text = render(build_doc, 1)
    assert text.splitlines()[1] == "  coral: FAILED: boom (fix: fix it)"
    assert "coral: failed: boom" in text


def test_chart_labels_do_not_overlap_and_stay_inside_the_plot():
    from edgeq.report.render import tradeoff_figure

    # five models close in size and accuracy on three targets: the crowded case
    sizes = [(29696, 0.9785), (31000, 0.9786), (33000, 0.9784), (48000, 0.9790), (95324, 0.979)]
    targets = [
        {
            "target": name,
            "variants": [
                {"variant": f"v{i}", "size_bytes": size, "accuracy": acc, "latency_ms": {"p50": 0.1}}
                for i, (size, acc) in enumerate(sizes)
            ],
        }
        for name in ("coral", "mcu", "cpu")
    ]
    fig, labels = tradeoff_figure(targets)
    renderer = fig.canvas.get_renderer()
    boxes = [label.get_window_extent(renderer) for label in labels]
    frame = fig.axes[0].get_window_extent(renderer)
    assert len(labels) == len(sizes)  # one label per model, not one per target
    for i, a in enumerate(boxes):
        assert frame.x0 <= a.x0 and a.x1 <= frame.x1 and frame.y0 <= a.y0 and a.y1 <= frame.y1
        assert not any(a.overlaps(b) for b in boxes[i + 1 :]), labels[i].get_text()
