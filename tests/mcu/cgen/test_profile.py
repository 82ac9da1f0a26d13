"""The opt-in per-op instruction profile (cgen/profile.py): a default build carries no mark, the profile
build's per-op counts add up to the whole invoke and follow the work each op does."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from edgeq.errors import ConversionFailed
from edgeq.targets.mcu.cgen import profile
from edgeq.targets.mcu.cgen.bench import ARM_TOOLS

needs_arm = pytest.mark.skipif(
    any(shutil.which(t) is None for t in ARM_TOOLS), reason="gcc, arm-none-eabi-gcc or qemu-system-arm missing"
)


def test_op_kinds_split_convolutions_by_filter_and_group_the_rest():
    assert profile.group_of("CONV_2D", (1, 1)) == "CONV_2D 1x1"
    assert profile.group_of("CONV_2D", (3, 3)) == "CONV_2D other"
    assert profile.group_of("CONV_2D", (1, 3)) == "CONV_2D other"
    assert profile.group_of("DEPTHWISE_CONV_2D", (3, 3)) == "DEPTHWISE_CONV_2D"
    assert profile.group_of("MAX_POOL_2D", None) == profile.group_of("AVERAGE_POOL_2D", None) == "pools"
    assert profile.group_of("ADD", None) == "ADD" and profile.group_of("SOFTMAX", None) == "rest"


def test_parse_takes_the_marks_cost_off_each_op():
    lines = ["EQ op_overhead 16 160", "EQ op 0 0 110", "EQ op 0 1 1010", "EQ op 1 0 120", "EQ op 1 1 1010"]
    counts, mark = profile.parse(lines, num_ops=2, num_samples=2, insns_per_tick=2.0)
    assert mark == 20.0
    assert counts.tolist() == [[200, 2000], [220, 2000]]


def test_parse_refuses_a_report_with_an_op_missing():
    with pytest.raises(ConversionFailed, match="1 of 2 per-op counts"):
        profile.parse(["EQ op_overhead 1 0", "EQ op 0 0 5"], num_ops=2, num_samples=1, insns_per_tick=1.0)


def test_records_follow_the_statements_and_only_the_profile_build_marks(mcu_models):
    from edgeq.targets.mcu.cgen import emit, generate

    p = generate(mcu_models["ds_cnn"].read_bytes(), "ds_cnn", core="cortex-m4")
    model_c = p.files["model.c"]
    assert [r.position for r in p.op_records] == list(range(len(p.op_records)))
    assert sum(r.macs for r in p.op_records) == p.macs
    for r in p.op_records:  # each mark is followed by the statement calling the recorded kernel
        after = model_c.split(f"EQ_PROFILE_OP({r.position});\n", 1)[1].lstrip()
        assert after.startswith(r.kernel + "(")
    groups = {r.group for r in p.op_records}
    assert {"CONV_2D 1x1", "CONV_2D other", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"} <= groups
    assert "\n".join(emit.PROFILE_MACROS) in model_c and "EQ_PROFILE 1" not in p.files["model.h"]
    assert profile.profiled(p).files["model.h"].startswith(profile.PROFILE_DEFINE)


@pytest.mark.slow
@needs_arm
def test_per_op_counts_add_up_to_the_invoke_and_follow_the_work(mcu_models, tmp_path):
    from edgeq.targets.mcu import parity
    from edgeq.targets.mcu.cgen import generate, prove
    from edgeq.tflite import read_file

    model = mcu_models["bundled_int8"]
    data = model.read_bytes()
    p = generate(data, model.name, core="cortex-m4")
    x = parity.make_inputs(read_file(model), 2, parity.DEFAULT_SEED)[0].reshape(2, -1)
    p.write(tmp_path / "plain")
    whole = prove(p, data, x, tmp_path / "plain", cores=("cortex-m4",))["qemu"]["cortex-m4"]
    assert whole["bit_exact"] == 2
    assert b"eq_profile_mark" not in (tmp_path / "plain" / "build" / "cortex-m4" / "model.elf").read_bytes()
    prof = profile.run(p, data, x, tmp_path / "profile", "cortex-m4")
    assert prof.bit_exact == 2 and prof.machine == "mps2-an386" and len(prof.ops) == len(p.op_records)
    # the per-op sum is the default build's invoke, up to model_invoke's own entry and exit and the tick grain
    assert abs(prof.total - whole["instructions_per_inference"]) <= 50 + 20 * len(prof.ops)
    assert prof.invoke_instructions > whole["instructions_per_inference"]  # the marks themselves cost something
    with_macs = sorted((o for o in prof.ops if o.record.macs), key=lambda o: o.record.macs)
    assert len(with_macs) >= 2 and with_macs[-1].instructions > 10 * with_macs[0].instructions
    assert with_macs[-1].record.macs > 10 * with_macs[0].record.macs
    doc = prof.to_dict()
    assert sum(g["instructions"] for g in doc["by_group"].values()) == prof.total
    assert all(isinstance(o["instructions"], int) and o["instructions"] >= 0 for o in doc["ops"])
    assert np.isclose(doc["mark_instructions"], prof.mark_instructions, atol=0.1)
