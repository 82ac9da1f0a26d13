"""The build's target options: generated from the targets' declarations, from the command line and from
edgeq.toml's [targets.NAME] tables, resolved and checked once, before any work (edgeq/build/options.py)."""

from __future__ import annotations

import pytest

from edgeq.build import options
from edgeq.config import BuildConfig, load_toml
from edgeq.errors import BadInput, UsageError
from edgeq.targets import registry
from edgeq.targets.base import Stage


def _resolve(**kw):
    cfg = BuildConfig(**kw)
    return options.resolve(cfg, {name: registry.get(name) for name in cfg.targets})


def test_build_help_has_every_target_option_the_build_takes(run_cli):
    r = run_cli("build", "--help")
    assert r.exit_code == 0
    flags = {o.flag for decls in registry.all_options().values() for o in options.build_options(decls)}
    assert {"--board", "--host", "--serial", "--runtime", "--runtime-version", "--compiler", "--accelerator"} <= flags
    for flag in flags | {"--device"}:
        assert f" {flag} " in r.stdout or f" {flag}\n" in r.stdout, flag
    # what the build sets itself is not offered: android's Keras-only options; --force is the build's own
    assert "--flavours" not in r.stdout and "--int8-io" not in r.stdout and "--samples" not in r.stdout
    assert r.stdout.count("--force") == 1 and "Write into an -o folder" in r.stdout


def test_an_option_no_chosen_target_takes_is_the_one_usage_error(run_cli, tmp_path):
    out = tmp_path / "out"
    r = run_cli("build", "--target", "cpu,ethos-u", "--board", "nrf52840", "-o", str(out))
    assert r.exit_code == 2
    assert "--board does not apply to targets cpu,ethos-u for build" in r.stderr
    assert "choose a target that takes it: mcu" in r.stderr
    assert not out.exists()  # before any work


def test_device_goes_only_to_targets_that_take_one():
    with pytest.raises(UsageError, match="--device does not apply to target mcu") as err:
        _resolve(targets=("mcu",), options={"device": "usb:0"})
    assert "android, coral" in err.value.hint
    assert _resolve(targets=("coral", "mcu"), options={"device": "usb:0"})["coral"].device == "usb:0"


def test_a_flag_goes_to_every_chosen_target_that_declares_it_at_each_stage():
    s = _resolve(targets=("coral", "cpu", "mcu"), options={"host": "pi@board", "timeout_s": 30.0})
    assert s["cpu"].of(Stage.BENCH) == {"host": "pi@board", "timeout_s": 30.0}
    assert s["coral"].of(Stage.BENCH) == {"host": "pi@board", "timeout_s": 30.0}
    assert s["coral"].of(Stage.COMPILE) == {"timeout_s": 30.0}  # coral's compiler timeout is the same flag
    assert s["mcu"].of(Stage.CHECK) == {"timeout_s": 30.0} and s["mcu"].of(Stage.BENCH) == {}
    assert s["cpu"].key(Stage.BENCH) != _resolve(targets=("cpu",)).get("cpu").key(Stage.BENCH)


def test_a_runner_that_refuses_its_options_fails_before_any_work(run_cli, tmp_path):
    # cpu takes --timeout-s only with --host: the runner is made up front, so the build stops at once
    out = tmp_path / "out"
    r = run_cli("build", "--target", "cpu", "--timeout-s", "5", "-o", str(out))
    assert r.exit_code == 2 and "needs --host" in r.stderr and not out.exists()


def test_edgeq_toml_targets_tables_beside_build_and_the_command_line_wins(tmp_path):
    toml = tmp_path / "edgeq.toml"
    toml.write_text(
        '[build]\ntarget = ["mcu", "coral"]\n\n[targets.mcu]\nboard = "nrf52840"\nruntime = "c"\n'
        'parity_samples = 4\n\n[targets.coral]\nruntime-version = 13\nhost = "pi@board"\n'
    )
    settings = load_toml(str(toml))
    s = _resolve(**settings)
    assert s["mcu"].of(Stage.COMPILE) == {"board": "nrf52840", "runtime": "c"}
    assert s["mcu"].of(Stage.CHECK) == {"board": "nrf52840", "parity_samples": 4}
    assert s["coral"].of(Stage.CHECK) == {"runtime_version": 13} and s["coral"].of(Stage.BENCH)["host"] == "pi@board"
    s = _resolve(**settings, options={"board": "rp2040"})
    assert s["mcu"].of(Stage.BENCH) == {"board": "rp2040", "runtime": "c"}


@pytest.mark.parametrize(
    "table, error, words",
    [
        ('[targets.mcu]\nbaord = "nrf52840"\n', BadInput, "unknown key 'baord' in [targets.mcu]"),
        ("[targets.mcu]\nforce = true\n", BadInput, "unknown key 'force'"),  # the build's own, not mcu's
        ('[targets.nope]\nboard = "x"\n', BadInput, "unknown target 'nope'"),
        ("[targets.mcu]\nboard = 3\n", BadInput, "--board takes str, got 3"),
        ('[targets.mcu]\nruntime = "cc"\n', BadInput, "--runtime takes one of tflm, c"),
        ("[targets.mcu]\nparity-samples = 0\n", UsageError, "--parity-samples must be between 1 and 10000"),
        ('[targets.mcu]\ndevice = "usb"\n', BadInput, "unknown key 'device'"),
    ],
)
def test_a_bad_targets_table_is_refused_naming_it(tmp_path, table, error, words):
    toml = tmp_path / "edgeq.toml"
    toml.write_text('target = "mcu"\n' + table)
    with pytest.raises(error) as err:
        _resolve(**load_toml(str(toml)))
    assert words in err.value.message


def test_a_bad_targets_table_exits_3_from_the_command_line(run_cli, tmp_path):
    toml = tmp_path / "edgeq.toml"
    toml.write_text('target = "mcu"\n[targets.mcu]\nbaord = "nrf52840"\n')
    r = run_cli("build", "--config", str(toml), "-o", str(tmp_path / "out"))
    assert r.exit_code == 3 and "unknown key 'baord' in [targets.mcu]" in r.stderr and "board" in r.stderr


def test_a_targets_entry_that_is_not_a_table_is_bad_input(tmp_path):
    toml = tmp_path / "edgeq.toml"
    toml.write_text('[build]\ntarget = "mcu"\n[targets]\nmcu = "nrf52840"\n')
    with pytest.raises(BadInput, match="`targets.mcu` must be a table"):
        load_toml(str(toml))


def test_a_target_option_at_the_top_of_edgeq_toml_points_at_the_table(tmp_path):
    toml = tmp_path / "edgeq.toml"
    toml.write_text('target = "mcu"\nboard = "nrf52840"\n')
    with pytest.raises(BadInput, match="unknown key 'board'") as err:
        load_toml(str(toml))
    assert "[targets.mcu]" in err.value.hint


def test_the_bundled_model_named_by_its_path_takes_the_bundled_data(tmp_path, monkeypatch):
    from edgeq import bundled
    from edgeq.build.inputs import resolve_inputs

    monkeypatch.chdir(bundled.ROOT)
    io = resolve_inputs(BuildConfig(targets=("cpu",), model="models/mnist_cnn.keras"))
    assert io["data"] == str(bundled.CALIB) and io["eval_data"] == str(bundled.EVAL)
    other = tmp_path / "mine.keras"
    other.write_bytes(bundled.MODEL.read_bytes())
    with pytest.raises(BadInput, match="no calibration data"):  # a model of one's own needs one's own data
        resolve_inputs(BuildConfig(targets=("cpu",), model=str(other)))
