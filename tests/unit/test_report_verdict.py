"""The build report reads top-down: one verdict line per target first, every figure with its basis, notes
apart from warnings by their level (never by their words), no Python reprs, a failed target reported in
place, and a manifest from an older edgeq asking for a rebuild instead of being guessed at.

The manifests are cut-down copies of a real ``edgeq build --target coral,mcu,cpu`` (no accuracy, so no plot,
which keeps these tests fast), their findings built from the typed :mod:`edgeq.findings` as the build writes
them (``Findings.to_dict()``).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import subprocess
import sys

import pytest

from edgeq.findings import Basis, Board, Figure, Findings, Fit, Placement, Proof, error, info, warning

KIB = 1024
TOP = {
    "schema_version": 1,
    "config": {"method": "auto", "max_drop": None},
    "inputs": {"model": "m.keras", "data": "calib.npz", "eval_data": "eval.npz"},
    "targets": ["coral", "mcu", "cpu"],
    "stages": [{"name": "float", "cached": False, "seconds": 1.5}],
    "gate_failures": [],
}
NO_LIBEDGETPU = "cannot load libedgetpu.so.1: libedgetpu.so.1: cannot open shared object file"
NO_COMPILER = "edgetpu_compiler is not installed (not on PATH); install it"


def _variant(name, p50, where, findings=None, **extra):
    row = {
        "variant": name,
        "output": f"/somewhere/{'m_int8' if name == 'int8' else 'm_float'}.tflite",
        "size_bytes": 29696 if name == "int8" else 95324,
        "accuracy": None,
        "float_ops": 0,
        "check": None,
        "compile": None,
        "latency_ms": {"p50": p50, "p99": 2 * p50},
        "latency_kind": "measured",
        "latency_where": where,
        "latency_via": "",
        "bench_skipped": None,
    }
    if findings is not None:  # the check's own findings, as the variant row keeps them
        row["check"] = {"ok": True, "ops": [], "findings": findings.to_dict()}
    return row | extra


def _target(name, findings, variants, **extra):
    return {"target": name, "description": name, "variants": variants, "findings": findings.to_dict()} | extra


CORAL_FOUND = Findings(
    placement=Placement("Edge TPU", 9, 0, Basis.PREDICTED),
    messages=(info(f"compile step skipped: {NO_COMPILER}"),),
)
CORAL = _target(
    "coral",
    CORAL_FOUND,
    [
        _variant("float", 0.032, "host"),
        _variant(
            "int8",
            0.038,
            "host",
            CORAL_FOUND,
            check={"ok": True, "ops": [{"op": "CONV_2D", "count": 9, "status": "Mapped to Edge TPU"}]},
            compile={"skipped": True, "reason": NO_COMPILER},
            bench_skipped=NO_LIBEDGETPU,
        ),
    ],
    plan={"chosen": None, "stopped_because": "", "steps": []},  # no planner ran
)
MCU_FOUND = Findings(
    no_accelerator="all ops on the Cortex-M7",
    board=Board("stm32h7a3", "Cortex-M7", "ST NUCLEO-H7A3ZI-Q"),
    fit=Fit(
        ram=Figure(19072, "bytes", Basis.MEASURED, where="TFLM on the host"),
        flash=Figure(87040, "bytes", Basis.ESTIMATED, how="model 29,696 + TFLM runtime ~57,344 (5 kernels)"),
        ram_limit_bytes=1024 * KIB,
        flash_limit_bytes=2048 * KIB,
    ),
    latency=Figure(
        75.0, "ms", Basis.ESTIMATED, where="stm32h7a3", how="calibrated on this board", error="leave-one-out 6.2%"
    ),
    memory={
        "firmware arena constant": Figure(22016, "bytes", Basis.MEASURED, where="TFLM on the host", how="+ margin")
    },
    messages=(
        info("tensor arena: TFLM allocated 19,072 bytes (head 15,680 + tail 3,392)"),
        info("stm32h7a3: arena 18.6 KiB of 1,024.0 KiB RAM, flash 85.0 KiB of 2,048.0 KiB: fits"),
        info("parity: bit-exact with LiteRT reference kernels"),
    ),
)
MCU = _target(
    "mcu",
    MCU_FOUND,
    [
        _variant("float", 0.032, "host"),
        # host TFLM time: a measurement, but of the host, not of the board
        _variant(
            "int8",
            27.0,
            "mcu (host via TFLM)",
            MCU_FOUND,
            compile={"skipped": False, "reason": ""},
            # unlabeled evaluation data: agreement with float (no accuracy, so no plot)
            agreement=0.64,
            num_eval_samples=500,
            intervals={
                "agreement": {
                    "what": "agreement",
                    "estimate": 0.64,
                    "low": 0.5968,
                    "high": 0.6813,
                    "n": 500,
                    "confidence": 0.95,
                    "method": "wilson",
                }
            },  # fmt: skip
        ),
    ],
)
CPU_FOUND = Findings(
    no_accelerator="all ops on the CPU",
    latency=Figure(0.038, "ms", Basis.MEASURED, where="host", how="p50 of 100 runs"),
)
CPU = _target("cpu", CPU_FOUND, [_variant("float", 0.032, "host"), _variant("int8", 0.038, "host", CPU_FOUND)])


def _write(run_dir, top, *targets):
    (run_dir / "build.json").write_text(json.dumps(top))
    for t in targets:
        (run_dir / t["target"]).mkdir(parents=True, exist_ok=True)
        (run_dir / t["target"] / "build.json").write_text(json.dumps(t))


def _report(run_cli, run_dir, top=TOP, targets=(CORAL, MCU, CPU)):
    _write(run_dir, top | {"targets": [t["target"] for t in targets]}, *targets)
    r = run_cli("report", run_dir)
    assert r.exit_code == 0, r.stderr
    return (run_dir / "report.md").read_text(), (run_dir / "report.html").read_text()


def _section(md: str, title: str) -> str:
    return md.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def _verdicts(md: str) -> list[str]:
    return [ln for ln in _section(md, "Verdict per target").splitlines() if ln.startswith("- ")]


def test_verdict_lines_come_first_one_per_target(run_cli, tmp_path):
    md, page = _report(run_cli, tmp_path)
    assert re.findall(r"^## .*", md, re.M)[0] == "## Verdict per target"
    coral, mcu, cpu = _verdicts(md)
    assert [ln.split(":")[0] for ln in (coral, mcu, cpu)] == ["- coral", "- mcu", "- cpu"]
    assert "9 of 9 ops on the Edge TPU (predicted)" in coral and "coral/m_int8.tflite" in coral
    # the host's figure stands in for coral's, said as the host's, with why coral's did not run
    assert "0.038 ms p50 measured on host, not on coral (cannot load libedgetpu.so.1: cannot open" in coral
    # fidelity leads: int8 disagreeing with float on 36% of inputs is the first thing said, with its interval
    assert mcu.startswith(
        "- mcu: top-1 agreement with float 64.00% (95%: 59.68-68.13%, n=500); all ops on the Cortex-M7"
    )
    assert "; all ops on the Cortex-M7; stm32h7a3 (Cortex-M7): fits: arena 18.6 KiB of " in mcu
    assert coral.startswith("- coral: fidelity not measured (no evaluation data); 9 of 9 ops")
    # each figure its own basis: the arena TFLM allocated, the flash with an estimated runtime
    assert "arena 18.6 KiB of 1,024.0 KiB RAM, flash 85.0 KiB of 2,048.0 KiB (RAM measured, flash estimated)" in mcu
    assert "75.000 ms, estimated for stm32h7a3: calibrated on this board (leave-one-out 6.2%)" in mcu
    assert "0.038 ms p50 of 100 runs, measured on host" in cpu and "fits" not in cpu
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
    assert estimated[0]["how / note"] == "calibrated on this board (leave-one-out 6.2%)"
    # the host TFLM time stays, labelled as measured on the host
    assert {(r["p50 ms"], r["on"]) for r in measured if r["targets"] == "mcu"} == {("27.000", "mcu (host via TFLM)")}


def test_a_message_is_a_note_or_a_warning_by_its_level_not_its_words(run_cli, tmp_path):
    # words that used to mean "a problem" (not, cannot) in an INFO, and one that meant "a fact" (fits) in a WARNING
    said = Findings(
        no_accelerator="all ops on the CPU",
        messages=(info("cache: cannot reuse nothing, not a problem"), warning("stm32h7a3: fits only without the log")),
    )
    cpu = _target("cpu", said, [_variant("int8", 0.038, "host", said)])
    md, _ = _report(run_cli, tmp_path, targets=(cpu,))
    notes, warnings = _section(md, "Notes"), _section(md, "Warnings")
    assert "cpu: cache: cannot reuse nothing, not a problem" in notes and "cannot" not in warnings
    assert "cpu: stm32h7a3: fits only without the log" in warnings and "fits" not in notes


def test_an_error_message_is_a_warning_and_another_targets_messages_stay_its_own(run_cli, tmp_path):
    md, _ = _report(run_cli, tmp_path)
    notes, warnings = _section(md, "Notes"), _section(md, "Warnings")
    assert "mcu: stm32h7a3: arena 18.6 KiB" in notes and "mcu: parity: bit-exact" in notes
    assert "coral: compile step skipped: edgetpu_compiler is not installed" in notes
    assert "cpu: " not in notes and warnings.strip() == "none"
    broken = copy.deepcopy(CPU) | {"findings": CPU_FOUND.with_messages([error("runner crashed")]).to_dict()}
    md, _ = _report(run_cli, tmp_path, targets=(broken,))
    assert "cpu: runner crashed" in _section(md, "Warnings")


def test_no_python_reprs_or_none_in_the_report(run_cli, tmp_path):
    md, page = _report(run_cli, tmp_path)
    for text in (md, page):
        assert "None" not in text and "{'" not in text and "[{" not in text
    assert "Planner for coral" not in md  # no planner ran: no heading for it
    coral = _section(md, "Target coral: op mapping and memory")
    assert "| CONV_2D | 9 | Mapped to Edge TPU |" in coral  # the check's own op table, whatever its columns
    assert "Ops: 9 on the Edge TPU, 0 on the CPU (predicted)" in coral


def test_memory_figures_say_how_they_were_got(run_cli, tmp_path):
    md, _ = _report(run_cli, tmp_path)
    mcu = _section(md, "Target mcu: op mapping and memory")
    assert "| arena | 19,072 bytes | measured (TFLM on the host) |" in mcu
    assert "| flash | 87,040 bytes | estimated (model 29,696 + TFLM runtime ~57,344 (5 kernels)) |" in mcu
    assert "| RAM limit | 1,048,576 bytes | board data (stm32h7a3) |" in mcu
    assert "| firmware arena constant | 22,016 bytes | measured (TFLM on the host; + margin) |" in mcu
    assert "Board: stm32h7a3 (ST NUCLEO-H7A3ZI-Q, Cortex-M7)" in mcu
    assert "Compile: done" in mcu and ".cache/" not in md  # a cache path is not where a person looks


def test_a_compiled_placement_and_its_first_op_off(run_cli, tmp_path):
    found = Findings(placement=Placement("Edge TPU", 7, 2, Basis.COMPILED, first_off="MEAN: reduces over the batch"))
    coral = copy.deepcopy(CORAL) | {"findings": found.to_dict()}
    md, _ = _report(run_cli, tmp_path, targets=(coral,))
    assert "7 of 9 ops on the Edge TPU (compiled)" in _verdicts(md)[0]
    assert "First op off the Edge TPU: MEAN: reduces over the batch" in _section(
        md, "Target coral: op mapping and memory"
    )


FAILED = {
    "target": "coral",
    "status": "failed",
    "error": {
        "type": "conversion_failed",
        "message": "edgetpu_compiler failed: unsupported op",
        "hint": "see coral/compile.log",
        "exit_code": 4,
    },
    "findings": Findings(messages=(error("edgetpu_compiler failed: unsupported op"),)).to_dict(),
    "variants": [],
}


def test_a_failed_target_has_its_verdict_line_and_the_others_render(run_cli, tmp_path):
    md, page = _report(run_cli, tmp_path, TOP | {"failed_targets": ["coral"]}, (FAILED, MCU, CPU))
    lines = _verdicts(md)
    assert lines[0] == "- coral: FAILED: edgetpu_compiler failed: unsupported op (fix: see coral/compile.log)"
    assert lines[1].startswith("- mcu: ") and lines[2].startswith("- cpu: ")
    assert "1 target(s) failed: coral" in md and "class='bad'" in page
    assert "failed: edgetpu_compiler failed: unsupported op (exit code 4)" in md


def test_a_failed_target_without_a_manifest_is_reported_in_place(run_cli, tmp_path):
    top = TOP | {"targets": ["coral", "cpu"], "failed_targets": ["coral"]}
    _write(tmp_path, top, CPU)
    assert run_cli("report", tmp_path).exit_code == 0
    assert "- coral: FAILED: no reason recorded" in (tmp_path / "report.md").read_text()


def test_a_manifest_from_an_older_edgeq_says_rebuild(run_cli, tmp_path):
    """No legacy derivation: what an older build recorded in other fields is not re-judged."""
    old = copy.deepcopy(MCU)
    del old["findings"]
    old["variants"][1]["check"] = {"ok": True, "messages": ["x: fits"], "counts": {"tpu": 3, "cpu": 0}, "details": {}}
    old |= {"warnings": ["stm32h7a3: fits", "a problem"], "verdict": {"fits": {"ram_bytes": 1}}}
    md, _ = _report(run_cli, tmp_path, targets=(old, CPU))
    mcu, cpu = _verdicts(md)
    assert mcu == "- mcu: not recorded (manifest from an older edgeq: rebuild); artifacts: mcu/m_int8.tflite"
    assert cpu.startswith("- cpu: fidelity not measured (no evaluation data); all ops on the CPU; latency 0.038 ms")
    assert "Findings not recorded (manifest from an older edgeq: rebuild)." in _section(
        md, "Target mcu: op mapping and memory"
    )
    assert "mcu: " not in _section(md, "Notes") and "mcu: " not in _section(md, "Warnings")
    # its measurements are still rows of the latency table, each where it was measured
    assert "| mcu | int8 | 27.000 | 54.000 | - | measured | mcu (host via TFLM) | - |" in _section(md, "Latency")


def test_a_phone_mean_without_percentiles_is_still_a_measurement(run_cli, tmp_path):
    where = "android (R5CR1234567, cpu)"
    found = Findings(
        no_accelerator="delegates GPU, NNAPI: which one runs is decided on the phone",
        latency=Figure(95.788, "ms", Basis.MEASURED, where=where, how="mean of 50 runs", via="over adb"),
    )
    phone = _target(
        "android",
        found,
        [
            _variant("float", 0.032, "host"),
            _variant("int8", 0.0, where, latency_ms={"p50": None, "p99": None, "mean": 95.788}, latency_via="over adb"),
        ],
    )
    md, _ = _report(run_cli, tmp_path, targets=(phone,))
    [line] = _verdicts(md)
    assert line.startswith("- android: fidelity not measured (no evaluation data); delegates GPU, NNAPI: which one")
    assert f"latency 95.788 ms mean of 50 runs, measured over adb on {where}" in line
    assert f"| android | int8 | - | - | 95.788 | measured over adb | {where} | - |" in _section(md, "Latency")


def test_measured_over_ssh_says_so(run_cli, tmp_path):
    host = "pi@192.0.2.7"
    found = Findings(
        no_accelerator="all ops on the CPU",
        latency=Figure(1.25, "ms", Basis.MEASURED, where=host, how="p50 of 5 runs", via="over SSH", low=1.1, high=1.9),
    )
    cpu = _target("cpu", found, [_variant("int8", 1.25, host, found, latency_via="over SSH")])
    md, _ = _report(run_cli, tmp_path, targets=(cpu,))
    assert f"1.250 ms p50 of 5 runs, measured over SSH on {host}" in _verdicts(md)[0]


MCU_C = Findings(
    no_accelerator="all ops on the Cortex-M4",
    board=Board("nrf52840", "Cortex-M4", "Nordic nRF52840 DK"),
    fit=Fit(
        ram=Figure(9000, "bytes", Basis.MEASURED, where="arm-none-eabi-size / QEMU stack"),
        flash=Figure(60000, "bytes", Basis.MEASURED, where="arm-none-eabi-size / QEMU stack"),
        ram_limit_bytes=256 * KIB,
        flash_limit_bytes=1024 * KIB,
        ram_what="RAM (static + stack)",
    ),
    instructions=Figure(
        1234567,
        "instructions",
        Basis.MEASURED,
        where="QEMU mps2-an386 (Cortex-M4)",
        how="QEMU instruction count, not board cycles",
        low=1234000,
        high=1235000,
    ),
    proof=Proof(20, 20, "TFLM's reference kernels", "QEMU mps2-an386 (Cortex-M4)"),
)


def test_the_generated_c_counts_instructions_and_proves_them(run_cli, tmp_path):
    mcu = _target("mcu", MCU_C, [_variant("int8", 27.0, "mcu (host via TFLM)", MCU_C)], artifacts=["m_c/"])
    md, _ = _report(run_cli, tmp_path, targets=(mcu,))
    [line] = _verdicts(md)
    assert "nrf52840 (Cortex-M4): fits: RAM (static + stack) 8.8 KiB of 256.0 KiB RAM" in line
    assert "flash 58.6 KiB of 1,024.0 KiB (measured)" in line
    assert "1,234,567 instructions per inference, measured on QEMU mps2-an386 (Cortex-M4)" in line
    assert "(QEMU instruction count, not board cycles); bit-exact 20/20" in line
    details = _section(md, "Target mcu: op mapping and memory")
    assert "Instructions per inference: 1,234,567, min 1,234,000, max 1,235,000; measured" in details
    assert "Bit-exact: 20 of 20 inferences against TFLM's reference kernels on QEMU mps2-an386" in details


def test_a_fit_that_fails_says_so():
    from edgeq.report.verdict import judge

    tight = dataclasses.replace(MCU_C, fit=dataclasses.replace(MCU_C.fit, flash_limit_bytes=32 * KIB))
    v = judge(_target("mcu", tight, [_variant("int8", 27.0, "host", tight)]))
    assert "DOES NOT FIT: RAM (static + stack) 8.8 KiB of 256.0 KiB RAM, flash 58.6 KiB of 32.0 KiB" in v.cells()[3]


def test_judge_returns_a_frozen_typed_verdict():
    from edgeq.report.verdict import Verdict, judge

    v = judge(MCU)
    assert isinstance(v, Verdict) and v.findings == MCU_FOUND
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.target = "cpu"  # type: ignore[misc]


def test_the_report_and_the_cli_import_no_target_code():
    code = (
        "import sys\n"
        "import edgeq.report.render, edgeq.report.verdict, edgeq.report.manifest\n"
        "print(','.join(m for m in sys.modules if m.startswith('edgeq.targets')))\n"
        "import edgeq.cli.render, edgeq.cli.cmd_build, edgeq.cli.cmd_check, edgeq.cli.cmd_compile, edgeq.cli.cmd_bench\n"
        "print(','.join(m for m in sys.modules if m.startswith('edgeq.targets.') and m.count('.') == 2))\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    report, cli = p.stdout.split("\n")[:2]
    assert report == ""  # report -> targets: never
    # cli -> a target package: never (the protocol in base, the registry and the option declarations are no target)
    loaded = {m.split(".")[2] for m in cli.split(",") if m}
    assert "base" in loaded and not loaded & {"cpu", "coral", "mcu", "ethos_u", "android", "remote"}, loaded


@pytest.fixture
def build_doc():
    """What ``edgeq build`` hands its renderer: the manifests of the targets, by name."""
    targets = {t["target"]: {k: v for k, v in t.items() if k != "target"} for t in copy.deepcopy([CORAL, MCU, CPU])}
    return {
        "out_dir": "out",
        "targets": targets,
        "stages": TOP["stages"],
        "report": ["out/report.html", "out/report.md"],
        "warnings": ["the cache was cleaned"],
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
    assert not any(ln.startswith("int8") and "75.000" in ln and "measured" in ln for ln in lines)
    assert "  estimate for stm32h7a3: calibrated on this board (leave-one-out 6.2%)" in lines
    # INFO messages are notes on stdout, not WARNING lines on stderr
    assert "  note: stm32h7a3: arena 18.6 KiB of 1,024.0 KiB RAM, flash 85.0 KiB of 2,048.0 KiB: fits" in lines
    assert "  compile: skipped: edgetpu_compiler is not installed (not on PATH)" in lines
    # the compile line said the reason's first clause: the note keeps it whole
    assert f"  note: compile step skipped: {NO_COMPILER}" in lines
    assert "  not benchmarked on coral: cannot load libedgetpu.so.1: cannot open shared object file" in lines
    assert problems(build_doc) == ["the cache was cleaned"]


def test_build_warnings_come_from_warning_levels_each_once(build_doc):
    from edgeq.cli.cmd_build import problems

    for name in ("coral", "cpu"):
        found = Findings.from_dict(build_doc["targets"][name]["findings"])
        build_doc["targets"][name]["findings"] = found.with_messages([warning("the cache is full")]).to_dict()
    build_doc["targets"]["mcu"]["findings"] = MCU_FOUND.with_messages([warning("no flash left")]).to_dict()
    assert problems(build_doc) == ["the cache was cleaned", "the cache is full", "mcu: no flash left"]


def test_build_output_names_a_failed_target(build_doc):
    from edgeq.cli.cmd_build import render

    build_doc["targets"]["coral"] = {
        "status": "failed",
        "error": {"message": "boom", "hint": "fix it"},
        "findings": Findings(messages=(error("boom"),)).to_dict(),
        "variants": [],
    }
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


def test_the_report_and_the_cli_read_no_targets_details():
    """Nothing outside edgeq/targets reads a target's private keys: the findings are typed."""
    import inspect

    from edgeq.cli import cmd_bench, cmd_build, cmd_check, cmd_compile
    from edgeq.cli import render as cli_render
    from edgeq.report import manifest, render, verdict

    for mod in (manifest, render, verdict, cli_render, cmd_build, cmd_check, cmd_compile, cmd_bench):
        src = inspect.getsource(mod)
        for read in ('"details"', ".details", '"counts"', "first_unmapped", '"info"'):
            assert read not in src, f"{mod.__name__} reads {read}"
    assert "re.compile" not in inspect.getsource(verdict)  # no message is leveled by its words


def _iv(what, estimate, low, high, n):
    return {"what": what, "estimate": estimate, "low": low, "high": high, "n": n, "confidence": 0.95, "method": "m"}


def test_fidelity_is_the_drop_with_labels_else_agreement_else_worst_sqnr():
    from edgeq.report.verdict import fidelity

    row = {"accuracy": 0.60, "reference_accuracy": 0.96, "agreement": 0.62, "sqnr_db": 4.0, "num_eval_samples": 500}
    row["intervals"] = {"accuracy_drop_points": _iv("accuracy_drop_points", 36.0, 31.5, 40.2, 500)}
    assert fidelity(row) == "top-1 drop 36.00 points vs float (95%: +31.50..+40.20 points, n=500)"
    unlabeled = row | {"accuracy": None, "reference_accuracy": None, "intervals": {}}
    assert fidelity(unlabeled) == "top-1 agreement with float 62.00%"
    outputs = [{"name": "boxes", "constant_reference": None}, {"name": "scores", "constant_reference": None}]
    reg = unlabeled | {"agreement": None, "worst_output": "boxes", "outputs": outputs}
    reg["intervals"] = {"sqnr_db": _iv("sqnr_db", 4.0, 3.5, 4.4, 500)}
    assert fidelity(reg) == "worst-output SQNR ('boxes') 4.00 dB (95%: 3.50..4.40 dB, n=500)"
    det = reg | {"detection": {"box_iou_mean": 0.412, "score_agreement": 0.5, "boxes": "boxes"}}
    assert fidelity(det).endswith("n=500); box IoU 0.41, score agreement 50.0%")
    assert fidelity({"sqnr_db": float("inf"), "num_eval_samples": 100}) == "worst-output SQNR identical to float"
    assert fidelity({"accuracy": None, "num_eval_samples": 0}) == "fidelity not measured (no evaluation data)"


def test_fidelity_says_when_samples_are_too_few_or_the_reference_is_constant():
    from edgeq.bench.stats import MIN_SAMPLES
    from edgeq.report.verdict import fidelity

    few = {"agreement": 1.0, "num_eval_samples": MIN_SAMPLES - 1}
    assert fidelity(few).endswith(f"only {MIN_SAMPLES - 1} samples, too few to judge (needs {MIN_SAMPLES})")
    assert "too few" not in fidelity(few | {"num_eval_samples": MIN_SAMPLES})
    dead = {"agreement": 1.0, "sqnr_db": float("inf"), "num_eval_samples": 500}
    dead["outputs"] = [{"name": "logits", "constant_reference": 0.0}]
    assert fidelity(dead) == "NOT JUDGED: the float reference's output 'logits' is constant over the evaluation data"


def test_the_verdict_table_has_a_fidelity_column_and_every_table_fits_the_page(run_cli, tmp_path):
    from edgeq.report.verdict import VERDICT_HEADER

    assert VERDICT_HEADER[:3] == ["target", "fidelity", "on the accelerator"]
    md, page = _report(run_cli, tmp_path, TOP | {"failed_targets": ["coral"]}, (FAILED, MCU, CPU))
    assert "<th>mcu</th><td>top-1 agreement with float 64.00% (95%: 59.68-68.13%, n=500)</td><td>all ops" in page
    assert f"<td colspan='{len(VERDICT_HEADER) - 1}'>FAILED" in page
    # every table scrolls inside its own box rather than past the page's edge
    assert page.count("<table") == page.count("<div class='wide'><table") > 3
    assert "div.wide{max-width:100%;overflow-x:auto}" in page


def test_an_sqnr_inside_the_noise_of_the_default_floor_is_a_note(run_cli, tmp_path):
    """Unlabeled data: the build's default SQNR floor (kept in the manifest) is judged against its interval."""
    iv = {"sqnr_db": _iv("sqnr_db", 20.4, 19.1, 21.8, 200)}
    budget = {"max_drop": None, "min_sqnr": 20.0, "why": "the default", "text": "worst-output SQNR >= 20 dB"}
    cpu = copy.deepcopy(CPU) | {"budget": budget}
    cpu["variants"][1] |= {"sqnr_db": 20.4, "num_eval_samples": 200, "intervals": iv}
    md, _ = _report(run_cli, tmp_path, targets=(cpu,))
    assert "cpu: the 95% interval of the SQNR (19.10..21.80 dB on 200 samples) spans the 20.0 dB floor" in md
    assert _verdicts(md)[0].startswith("- cpu: worst-output SQNR 20.40 dB (95%: 19.10..21.80 dB, n=200);")
    far = copy.deepcopy(cpu) | {"budget": budget | {"min_sqnr": 10.0}}
    md, _ = _report(run_cli, tmp_path, targets=(far,))
    assert "spans the" not in md
    cpu["budget"] = {"min_sqnr": "twenty"}  # a damaged manifest is one clear error, not a traceback
    _write(tmp_path, TOP | {"targets": ["cpu"]}, cpu)
    r = run_cli("report", tmp_path)
    assert r.exit_code == 3 and "budget.min_sqnr" in r.stderr


@pytest.mark.slow
@pytest.mark.skipif(not __import__("shutil").which("chromium"), reason="needs headless chromium")
def test_the_report_fits_a_1280_px_window_in_chromium(run_cli, tmp_path):
    """Laid out by a real browser at 1280 px: the page is no wider than the window (before: the variants
    table of a real build ran to 1,363 px and was cut off) and no table runs past the body's edge."""
    import shutil

    wide = copy.deepcopy(MCU)  # long cells: the variants table is the widest of a real build
    for v in wide["variants"]:
        v |= {"accuracy": 0.9785, "reference_accuracy": 0.979, "agreement": 0.9995, "sqnr_db": 40.7}
        v |= {"worst_class_drop_points": 0.25, "num_eval_samples": 2000}
    _report(run_cli, tmp_path, targets=(CORAL, wide, CPU))
    probe = (
        "<script>var b=document.body.getBoundingClientRect().right,o=0;"
        "document.querySelectorAll('table').forEach(function(t){if(t.getBoundingClientRect().right>b+1)o++});"
        "document.body.setAttribute('data-fit',document.documentElement.scrollWidth+' '+o)</script></body>"
    )
    page = tmp_path / "probe.html"
    page.write_text((tmp_path / "report.html").read_text().replace("</body>", probe))
    profile = tmp_path / "profile"
    p = subprocess.run(
        [shutil.which("chromium"), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={profile}", "--window-size=1280,2000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    width, outside = re.search(r'data-fit="(\d+) (\d+)"', p.stdout).groups()
    assert int(width) <= 1280 and outside == "0", (width, outside)
