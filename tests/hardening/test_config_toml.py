"""edgeq.toml values of the wrong type, and --threads bounds: exit with the key and the type, before any work."""

from __future__ import annotations

import pytest

from edgeq.config import MAX_THREADS, BenchConfig, BuildConfig, load_toml
from edgeq.errors import BadInput, UsageError

# (edgeq.toml text, what the message must name)
WRONG_TYPES = [
    ('target = "cpu"\nruns = "abc"\n', ["`runs` must be an integer", '"abc" (a string)']),
    ('target = "cpu"\nmax-drop = "one"\n', ["`max-drop` must be a finite number", '"one" (a string)']),
    ("build = 5\n", ["`build` must be a table", "5 (an integer)"]),
    ('target = "cpu"\nout-dir = ["a", "b"]\n', ["`out-dir` must be a path", "(an array)"]),
    ("target = 5\n", ["`target` must be a string or an array of strings", "5 (an integer)"]),
    ('target = "cpu"\nruns = 1.5\n', ["`runs` must be an integer", "1.5 (a float)"]),
    ('target = "cpu"\nthreads = true\n', ["`threads` must be an integer", "true (a boolean)"]),
    ('target = "cpu"\nmax-drop = nan\n', ["`max-drop` must be a finite number", "nan (a float)"]),
    ('target = "cpu"\ncache = 1\n', ["`cache` must be true or false", "1 (an integer)"]),
    ('target = ["cpu", 3]\n', ["`target` must be a string or an array of strings"]),
    ('target = "cpu"\nmodel = ""\n', ["`model` must be a path"]),
    ('target = "cpu"\nrun = 1979-05-27\n', ["unknown key 'run'", "did you mean runs?"]),
    ('[build]\ntarget = "cpu"\n[extra]\nx = 1\n', ["key `extra` is outside the [build] table"]),
]


@pytest.mark.parametrize(("text", "named"), WRONG_TYPES, ids=[t.split("\n")[-2][:20] for t, _ in WRONG_TYPES])
def test_wrong_type_exits_3_naming_key_and_type(run_cli, tmp_path, text, named):
    cfg = tmp_path / "edgeq.toml"
    cfg.write_text(text)
    out = tmp_path / "out"
    r = run_cli("build", "--config", cfg, "-o", out)
    assert r.exit_code == 3, r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    for part in named:
        assert part in r.stderr
    assert "e.g." in r.stderr or "known keys" in r.stderr or "[build]" in r.stderr
    assert not out.exists()  # refused before any work


def test_wrong_type_in_json_mode(run_cli, tmp_path):
    cfg = tmp_path / "edgeq.toml"
    cfg.write_text('[build]\ntarget = "cpu"\nwarmup = "ten"\n')
    r = run_cli("--json", "build", "--config", cfg, "-o", tmp_path / "out")
    assert r.exit_code == 3
    err = r.json["error"]
    assert err["type"] == "bad_input" and "`warmup` must be an integer" in err["message"]
    assert err["hint"] == "e.g. warmup = 10"


def test_good_values_load_as_the_fields(tmp_path):
    cfg = tmp_path / "edgeq.toml"
    cfg.write_text(
        '[build]\ntarget = ["cpu", "mcu"]\nmax-drop = 2\nout_dir = "o"\nruns = 5\ncache = false\ntargets = "cpu"\n'
    )
    got = load_toml(str(cfg))
    assert got == {"targets": "cpu", "max_drop": 2, "out_dir": "o", "runs": 5, "cache": False}
    assert BuildConfig(**got).targets == ("cpu",)


def test_unreadable_config_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="is a folder"):
        load_toml(str(tmp_path))
    (tmp_path / "latin1.toml").write_bytes(b'model = "caf\xe9.keras"\n')
    with pytest.raises(BadInput, match="not valid TOML|not UTF-8"):
        load_toml(str(tmp_path / "latin1.toml"))


@pytest.mark.parametrize("threads", [0, MAX_THREADS + 1, 100000])
def test_threads_out_of_range(threads):
    with pytest.raises(UsageError, match=rf"--threads must be between 1 and {MAX_THREADS}, got {threads}"):
        BenchConfig(num_threads=threads)
    BenchConfig(num_threads=MAX_THREADS)


def test_bench_threads_100000_is_a_usage_error(run_cli, tmp_path):
    model = tmp_path / "m.tflite"
    model.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(64))  # refused on --threads before the model is read
    r = run_cli("bench", model, "--threads", "100000")
    assert r.exit_code == 2 and "--threads must be between 1 and 64, got 100000" in r.stderr


def test_toml_threads_out_of_range(run_cli, tmp_path):
    cfg = tmp_path / "edgeq.toml"
    cfg.write_text('target = "cpu"\nthreads = 100000\n')
    r = run_cli("build", "--config", cfg, "-o", tmp_path / "out")
    assert r.exit_code == 2 and "--threads must be between 1 and 64" in r.stderr
    assert not (tmp_path / "out").exists()


def test_custom_objects_import_does_not_write_stdout(tmp_path, monkeypatch, capfd):
    """Importing user code must not write before the one JSON document: its prints go to stderr."""
    from edgeq.modelio import resolve_custom_objects

    (tmp_path / "noisy_layers.py").write_text("print('HELLO FROM USER CODE')\nX = {'k': 1}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    capfd.readouterr()
    assert resolve_custom_objects(("noisy_layers:X",)) == {"k": 1}
    out, err = capfd.readouterr()
    assert out == "" and "HELLO FROM USER CODE" in err


def test_custom_objects_module_that_fails_is_bad_input(tmp_path, monkeypatch):
    from edgeq.modelio import resolve_custom_objects

    (tmp_path / "broken_layers.py").write_text("raise SystemExit(0)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(BadInput, match="importing custom objects 'broken_layers:X' failed"):
        resolve_custom_objects(("broken_layers:X",))


@pytest.mark.parametrize(
    ("lines", "named"),
    [
        ('custom-objects = ["evil_layers:X"]', 'sets custom-objects = ["evil_layers:X"]: safe mode is off'),
        ("trust-model = true", "sets trust-model = true: safe mode is off"),
    ],
)
def test_toml_turning_safe_mode_off_is_said_on_stderr(run_cli, tmp_path, monkeypatch, lines, named):
    monkeypatch.chdir(tmp_path)  # an edgeq.toml in a cloned folder, picked up without --config
    (tmp_path / "edgeq.toml").write_text(f'target = "cpu"\nmodel = "missing.keras"\n{lines}\n')
    r = run_cli("--json", "build", "-o", tmp_path / "out")
    assert r.exit_code != 0  # no data and no model: it stops before loading anything
    warned = [line for line in r.stderr.splitlines() if "safe mode is off" in line]
    assert len(warned) == 1 and "edgeq.toml" in warned[0] and named in warned[0], r.stderr
    r = run_cli("build", "-o", tmp_path / "out", "--trust-model", "--custom-objects", "evil_layers:X")
    assert "safe mode is off" not in r.stderr  # the user said so on the command line
