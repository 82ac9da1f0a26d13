"""Every target follows one protocol, declares its options as data, and the CLI is built from them."""

from __future__ import annotations

import inspect
import re

import click
import pytest

from edgeq.errors import UsageError
from edgeq.findings import Findings, info
from edgeq.targets import registry
from edgeq.targets.base import NO_OPTIONS, CompatReport, CompileResult, Stage, TargetOption, protocol_problems
from edgeq.targets.registry import resolve

NAMES = registry.names()
COMMANDS = {stage: stage.value for stage in Stage}


@pytest.mark.parametrize("name", NAMES)
def test_every_target_conforms(name):
    tgt = registry.get(name)
    assert protocol_problems(tgt) == []
    assert tgt.name == name
    assert tgt.options == registry.options(name)  # the light declarations are the target's own
    assert tgt.device_help == registry.device_help(name)


def test_a_target_missing_a_method_or_with_other_arguments_fails_conformance():
    class NoRunner:
        name, description, build_mode, build_io, profile = "x", "x", None, None, {}
        options, max_models, device_help = (), 1, None

        def check(self, model, options=NO_OPTIONS): ...

        def compile(self, model_path, out_dir): ...  # the old, per-target signature

    problems = protocol_problems(NoRunner())
    assert "no method runner" in problems
    assert any(p.startswith("compile('model_path', 'out_dir')") for p in problems)


def test_an_option_key_has_one_flag_and_one_type_across_targets():
    seen: dict[str, tuple] = {}
    for name, decls in registry.all_options().items():
        for o in decls:
            assert isinstance(o, TargetOption)
            assert seen.setdefault(o.key, o.shape()) == o.shape(), f"{name} declares {o.key} differently"


@pytest.mark.parametrize("stage", list(Stage))
def test_a_flag_names_one_option_per_command(stage):
    flags: dict[str, str] = {}
    for key, decls in registry.options_for(stage).items():
        o = decls[0][1]
        for flag in filter(None, (o.flag, o.short)):
            assert flags.setdefault(flag, key) == key, f"{flag} is {flags[flag]} and {key}"


def _command(stage: Stage) -> click.Command:
    from edgeq.cli.main import cli

    return cli.commands[COMMANDS[stage]]


def _flags(cmd: click.Command) -> set[str]:
    return {f for p in cmd.params for f in p.opts}


@pytest.mark.parametrize("name", NAMES)
def test_every_option_appears_in_its_commands_help(run_cli, name):
    for stage in Stage:
        text = run_cli(COMMANDS[stage], "--help").stdout
        params = {f: p for p in _command(stage).params for f in p.opts}
        for o in registry.options(name):
            if stage in o.stages:
                assert o.flag in text, f"{o.flag} missing from {stage.value} --help"
                assert re.search(rf"\(([a-z-]+, )*{name}(, [a-z-]+)*\) {re.escape(o.help)}", params[o.flag].help)
                if o.short:
                    assert f"{o.short}, {o.flag}" in text
            elif not any(stage in x.stages for d in registry.all_options().values() for x in d if x.key == o.key):
                assert o.flag not in _flags(_command(stage)), f"{o.flag} is offered by {stage.value}"


def _value(o: TargetOption, tmp_path) -> list[str]:
    if o.is_flag:
        return [o.flag]
    if o.choices:
        return [o.flag, o.choices[0]]
    if o.path == "dir":
        return [o.flag, str(tmp_path)]
    if o.path is not None:
        return [o.flag, str(tmp_path / "f")]
    return [o.flag, "1" if o.type in (int, float) else "x"]


def _cases():
    for stage in Stage:
        for decls in registry.options_for(stage).values():
            takers = {n for n, _ in decls}
            for name in NAMES:
                if name not in takers:
                    yield stage, name, decls[0][1]


@pytest.mark.parametrize(
    ("stage", "name", "opt"), list(_cases()), ids=lambda x: getattr(x, "value", getattr(x, "flag", x))
)
def test_an_option_that_does_not_apply_is_named_by_a_flag_of_the_command(run_cli, tmp_path, stage, name, opt):
    (tmp_path / "f").write_bytes(b"x")
    model = tmp_path / "m.tflite"
    model.write_bytes(b"\0\0\0\0TFL3")  # enough for the format check; the error comes before any work
    args = [COMMANDS[stage], str(model), "--target", name, *_value(opt, tmp_path)]
    if stage == Stage.COMPILE:
        args += ["-o", str(tmp_path / "out")]
    r = run_cli(*args)
    expected = f"{opt.flag} does not apply to target {name} for {stage.value}; drop {opt.flag}"
    assert r.exit_code == 2 and expected in r.stderr, r.stderr
    assert opt.flag in _flags(_command(stage))


def test_the_library_names_the_flag_too():
    mcu = registry.get("mcu")
    with pytest.raises(UsageError, match="--benchmark-arg does not apply to target mcu for bench"):
        resolve(mcu, Stage.BENCH, {"extra_args": ("--min_secs=0",)})
    with pytest.raises(UsageError, match="--remote-python does not apply to target mcu for bench"):
        resolve(mcu, Stage.BENCH, {"python": "python3"})
    with pytest.raises(UsageError, match="--timeout-s does not apply to target mcu for bench"):
        resolve(mcu, Stage.BENCH, {"timeout_s": 5.0})  # mcu takes it at check and compile only
    with pytest.raises(UsageError, match="unknown option 'frob' for target mcu"):
        resolve(mcu, Stage.CHECK, {"frob": 1})
    assert resolve(mcu, Stage.CHECK, {"board": "rp2040", "timeout_s": None}) == {"board": "rp2040"}


def test_a_target_that_compiles_one_model_refuses_two(run_cli, tmp_path):
    a, b = tmp_path / "a.tflite", tmp_path / "b.tflite"
    for p in (a, b):
        p.write_bytes(b"\0\0\0\0TFL3")
    r = run_cli("compile", a, b, "--target", "mcu", "-o", tmp_path / "o")
    assert r.exit_code == 2 and "target mcu compiles one model at a time" in r.stderr


def test_the_cli_does_not_sniff_result_shapes():
    from edgeq.cli import cmd_bench, cmd_check, cmd_compile

    for mod in (cmd_bench, cmd_check, cmd_compile):
        src = inspect.getsource(mod)
        for sniff in ("hasattr(", "getattr(", '" in doc', '_options"'):
            assert sniff not in src, f"{mod.__name__} sniffs with {sniff}"


def _result_types():
    from edgeq.targets.android import AndroidBenchResult, AndroidCompatReport, AndroidCompileResult
    from edgeq.targets.coral import CoralCompatReport, CoralCompileResult
    from edgeq.targets.ethos_u import EthosUCompileResult
    from edgeq.targets.mcu import McuCompileResult

    return [
        (CompatReport, (AndroidCompatReport, CoralCompatReport)),
        (CompileResult, (AndroidCompileResult, CoralCompileResult, EthosUCompileResult, McuCompileResult)),
        (object, (AndroidBenchResult,)),
    ]


def test_each_result_type_describes_itself():
    """The text edgeq check/compile/bench print for a target's result is the result's describe(): the CLI
    imports no target package to render it."""
    for base, classes in _result_types():
        for cls in classes:
            assert callable(getattr(cls, "describe", None)), f"{cls.__name__} has no describe()"
            if base is not object:
                assert cls.describe is not base.describe, f"{cls.__name__} says no more than {base.__name__}"


def test_android_check_counts_are_not_read_as_an_accelerator_split():
    from edgeq.targets.android import AndroidCompatReport

    r = AndroidCompatReport(
        target="android",
        ok=True,
        ops=({"op": "CONV_2D", "count": 2},),
        findings=Findings(
            no_accelerator="delegates NNAPI, CPU: which one runs is decided on the phone",
            messages=(info("flavour int8: for NNAPI"),),
        ),
        details={"flavour": "int8", "delegates": ["nnapi", "cpu"], "counts": {"ops": 2, "float_ops": 0}},
    )
    text = "\n".join(r.describe("m.tflite"))
    assert text.startswith("m.tflite on android: 2 op(s), 0 computing in float\n")
    assert "on the OPS" not in text and text.endswith(
        "flavour int8: for NNAPI\ndelegates it suits, best first: nnapi, cpu"
    )
    assert r.findings.placement is None  # the phone decides: no accelerator split, not even a predicted one


def test_the_cpu_runs_every_op_and_has_nothing_to_compile(tiny_int8, tmp_path):
    cpu = registry.get("cpu")
    report = cpu.check(str(tiny_int8))
    assert report.findings.placement is None and report.findings.no_accelerator == "all ops on the CPU"
    compiled = cpu.compile([str(tiny_int8)], str(tmp_path), checked=[report])
    assert compiled.skipped and compiled.findings.no_accelerator == "all ops on the CPU"
    assert compiled.describe() == [f"compile for cpu: skipped ({compiled.reason})"]


def test_the_board_names_in_the_help_are_the_profiles():
    from edgeq.targets import mcu_options
    from edgeq.targets.mcu import boards

    assert set(mcu_options.BOARD_NAMES) == set(boards.BOARDS) and mcu_options.BOARD_NAMES[0] == boards.DEFAULT_BOARD


def test_the_cli_builds_its_options_without_importing_a_target():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from edgeq.cli.main import cli\n"
        "mods = ('edgeq.targets.cpu', 'edgeq.targets.coral', 'edgeq.targets.mcu', 'edgeq.targets.ethos_u',"
        " 'edgeq.targets.android')\n"
        "print(','.join(m for m in mods if m in sys.modules))\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.strip() == "", p.stdout + p.stderr


def test_every_runner_has_the_runner_methods():
    from edgeq.targets.android.bench import AndroidRunner
    from edgeq.targets.cpu import LocalRunner
    from edgeq.targets.ethos_u import EthosURunner
    from edgeq.targets.mcu import McuRunner
    from edgeq.targets.remote import SshRunner

    expected = {"availability": (), "load": ("model_path", "cfg"), "invoke": (), "benchmark": ("model_path", "cfg")}
    for cls in (LocalRunner, SshRunner, AndroidRunner, McuRunner, EthosURunner):
        for method, params in expected.items():
            fn = getattr(cls, method, None)
            assert fn is not None, f"{cls.__name__} has no {method}"
            assert tuple(inspect.signature(fn).parameters)[1:] == params, f"{cls.__name__}.{method}"


def test_a_runner_over_ssh_refuses_single_invokes():
    from edgeq.targets.remote import SshRunner

    with pytest.raises(UsageError, match="single invokes are not timed from this host over SSH"):
        SshRunner(host="pi@board").invoke()


def test_the_supported_ops_listing_speaks_for_its_target(run_cli):
    mcu = run_cli("targets", "--supported-ops", "mcu").stdout
    assert "a model with any other op is refused (TFLM has no kernel for it)" in mcu and "runs on the CPU" not in mcu
    assert mcu.rstrip().endswith("(sources: docs/mcu.md)")
    coral = run_cli("targets", "--supported-ops", "coral").stdout
    assert "any other op runs on the CPU" in coral and coral.rstrip().endswith("(sources: docs/coral.md)")
    r = run_cli("targets", "--supported-ops", "ethos-u")
    assert r.exit_code == 2 and "target ethos-u has no supported-ops table" in r.stderr


def test_zero_is_a_value_given_not_an_absent_option():
    """0 == False in Python: `--parity-samples 0` must reach the target (which refuses it), not vanish."""
    from edgeq.cli.options import given_target_options
    from edgeq.targets import registry
    from edgeq.targets.base import Stage

    kw = {k: None for k in registry.options_for(Stage.CHECK)} | {"parity_samples": 0}
    assert given_target_options(Stage.CHECK, "mcu", kw)["parity_samples"] == 0


def test_a_bench_result_outside_the_base_class_has_every_field_of_one():
    """The build reads a runner's result as a BenchResult; Android's is its own class (a table of
    delegates), so each field added to BenchResult must exist there too (``via`` once did not: exit 1)."""
    import dataclasses

    from edgeq.targets.android.bench import AndroidBenchResult
    from edgeq.targets.base import BenchResult

    missing = (
        {f.name for f in dataclasses.fields(BenchResult)}
        - set(dir(AndroidBenchResult))
        - {f.name for f in dataclasses.fields(AndroidBenchResult)}
    )
    assert not missing, f"AndroidBenchResult lacks {sorted(missing)}"
