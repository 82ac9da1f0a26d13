"""Corrupt .tflite files through the real CLI: no crash, no internal error, one JSON document each.

The suite (``test_every_command_survives_every_corrupt_model``) drives inspect, check for every target
and bench over the corrupt variants of the three small seed models; ``make adversarial`` runs the same
over more variants and the third-party seed. The unit tests pin the validator's messages and the
child-process net under it.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from edgeq.errors import BadInput, UsageError
from tests.adversarial import harness, mutate

SMALL_SEEDS = mutate.SEEDS[:3]


def _mutated(seed_path: Path, mutation, tmp_path: Path) -> Path:
    model = mutate.load(seed_path.read_bytes())
    assert mutation(model, random.Random(0))
    out = tmp_path / f"{seed_path.stem}.{mutation.__name__}.tflite"
    out.write_bytes(mutate.pack(model))
    return out


def test_the_mutator_is_deterministic():
    first = [(n, len(d), hash(d)) for n, d in mutate.corrupt_models(seed=3, seeds=SMALL_SEEDS)]
    again = [(n, len(d), hash(d)) for n, d in mutate.corrupt_models(seed=3, seeds=SMALL_SEEDS)]
    assert first == again and len(first) > 100


@pytest.mark.parametrize("seed", mutate.SEEDS, ids=lambda p: p.stem)
def test_valid_models_pass_validation(seed):
    from edgeq.tflite import validate

    validate(seed.read_bytes(), seed.name)


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        (mutate.buffer_out_of_range, r"tensor \d+ of subgraph 0 points to buffer \d+ \(the model has \d+\)"),
        (mutate.op_input_out_of_range, r"op \d+ of subgraph 0 reads tensor \d+ \(the subgraph has \d+\)"),
        (mutate.op_output_optional, r"op \d+ of subgraph 0 writes tensor -1"),
        (mutate.opcode_out_of_range, r"uses operator code \d+ \(the model has \d+\)"),
        (mutate.opcode_unknown_builtin, r"names builtin op \d+, which does not exist"),
        (mutate.shape_negative, r"has a negative dimension"),
        (mutate.shape_huge, r"more than any edge model holds"),
        (mutate.buffer_truncated, r"bytes\) but its buffer holds"),
        (mutate.dtype_invalid, r"tensor type 99, which does not exist"),
        (mutate.quant_lengths_mismatch, r"quantization scale\(s\) but 1 zero point"),
        (mutate.quant_dimension_out_of_range, r"per channel along axis 17"),
        (mutate.subgraph_input_out_of_range, r"input \d+ of subgraph 0 is not a tensor"),
        (mutate.op_cycle, r"reads tensor \d+ before op \d+ writes it"),
        (mutate.signature_bad, r"signature .* names subgraph 5"),
        (mutate.subgraph_index_in_op, r"calls subgraph 9"),
        (mutate.no_subgraphs, r"has no subgraph"),
    ],
    ids=lambda v: getattr(v, "__name__", "msg"),
)
def test_validator_names_the_model_and_the_problem(tmp_path, mutation, expected):
    from edgeq.tflite import validate

    path = _mutated(SMALL_SEEDS[0], mutation, tmp_path)
    with pytest.raises(BadInput, match=r"^corrupt model .*int8_io\." + mutation.__name__ + r"\.tflite: .*?" + expected):
        validate(path.read_bytes(), str(path))


def test_truncated_flatbuffer_is_bad_input():
    from edgeq.tflite import validate

    data = SMALL_SEEDS[0].read_bytes()
    with pytest.raises(BadInput, match="truncated or corrupt \\(its offsets point outside the file\\)"):
        validate(data[: len(data) // 2], "half.tflite")


def test_repeated_tables_are_refused_before_reading(tmp_path):
    """A subgraph vector repeating one subgraph 10,000 times would make the object reader build every copy."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s  # a test crafts what edgeq.tflite never writes

    b = flatbuffers.Builder(0)
    one = mutate.load(SMALL_SEEDS[0].read_bytes()).subgraphs[0].Pack(b)
    s.ModelStartSubgraphsVector(b, 20_000)
    for _ in range(20_000):
        b.PrependUOffsetTRelative(one)  # the same subgraph, 20,000 times, in a few KB
    subs = b.EndVector()
    s.ModelStart(b)
    s.ModelAddSubgraphs(b, subs)
    b.Finish(s.ModelEnd(b), file_identifier=b"TFL3")
    shared = bytes(b.Output())
    from edgeq.tflite import validate

    with pytest.raises(BadInput, match="more tensors and ops than a"):
        validate(shared, "shared.tflite")


def test_a_native_crash_in_the_probe_is_bad_input_naming_the_model(tmp_path):
    """The probe's own job: this model (an op writing tensor -1) kills LiteRT with SIGSEGV in allocate."""
    from edgeq.native_probe import probe

    name, data = next((n, d) for n, d in mutate.corrupt_models(seeds=(SMALL_SEEDS[1],)) if "op_output_optional" in n)
    path = tmp_path / f"{name}.tflite"
    path.write_bytes(data)
    with pytest.raises(BadInput, match=r"LiteRT crashed \(SIG\w+\) loading and running .*op_output_optional"):
        probe(path.read_bytes(), str(path), batch=1)


def test_the_probe_passes_valid_models_and_returns_litert_errors(tmp_path):
    from edgeq.native_probe import probe

    assert probe(SMALL_SEEDS[0].read_bytes(), "ok.tflite", batch=1) is None
    path = _mutated(SMALL_SEEDS[2], mutate.input_shape_wrong, tmp_path)
    assert "failed to prepare" in (probe(path.read_bytes(), str(path), batch=1) or "")


def test_thread_count_is_bounded_before_litert_sees_it():
    from edgeq.runtime import open_session

    with pytest.raises(UsageError, match="100000 interpreter threads"):
        open_session(str(SMALL_SEEDS[0]), num_threads=100_000, batch=1)


@pytest.mark.slow
def test_every_command_survives_every_corrupt_model(tmp_path):
    files = []
    for name, data in mutate.corrupt_models(seed=0, seeds=SMALL_SEEDS):
        files.append(tmp_path / f"{name}.tflite")
        files[-1].write_bytes(data)
    summary = harness.run_all(files, tmp_path / "work")
    doc = summary.to_dict()
    print(json.dumps({k: v for k, v in doc.items() if k != "problems"}))
    assert doc["commands"] == len(files) * len(harness.command_kinds())
    assert doc["problems"] == [], json.dumps(doc["problems"][:5], indent=1)
    assert doc["crashes"] == doc["hangs"] == doc["exit_1"] == 0
    refused = sum(1 for o in summary.outcomes if o.code == 3)
    assert refused > 0.8 * len(summary.outcomes)  # nearly every corrupt model is refused as bad input
