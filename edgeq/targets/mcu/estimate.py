"""A latency estimate for a microcontroller core from the model's per-op MACs, calibrated against
published MLPerf Tiny results.

Model: ``cycles = s_core * (conv_MACs + r_dw * depthwise_MACs + r_fc * fc_MACs + r_elem * other_elems)``
and ``latency = cycles / clock``. ``s_core`` (cycles per convolution MAC on that core) and the relative
costs ``r_dw`` and ``r_fc`` (shared by all cores) are fitted, in log space, to the closed-division
MLPerf Tiny v1.1 results of one software stack (X-CUBE-AI 8.0) on two boards: 8 points, 4 parameters.
``r_elem`` (element-wise ops, pools, softmax: per output element) is fixed at 1, not fitted; they are
under 1% of the reference models' work. The calibration error quoted with an estimate is the
leave-one-out error: each published point predicted by a fit that did not see it.

Cores without published results are not estimated (the result says so rather than extrapolate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np

CONV_OPS = ("CONV_2D", "TRANSPOSE_CONV")
DEPTHWISE_OPS = ("DEPTHWISE_CONV_2D",)
FC_OPS = ("FULLY_CONNECTED", "BATCH_MATMUL")
R_ELEM = 1.0

SOURCE = "mlcommons/tiny_results_v1.1 closed/Krai/results (single-stream latency, converted ms = 1000 / (inf/s))"

# Work of the MLPerf Tiny reference models, read from the int8 .tflite of edgeq's zoo builds
# (edgeq.zoo: ds_cnn, resnet8, mobilenet_v1_025, fc_autoencoder; tests check these against the zoo).
REFERENCE_WORK: dict[str, dict] = {
    "ds_cnn": {"task": "KWS", "conv": 2_368_000, "depthwise": 288_000, "fc": 768, "elem": 76},
    "resnet8": {"task": "IC", "conv": 12_500_992, "depthwise": 0, "fc": 640, "elem": 28_746},
    "mobilenet_v1_025": {"task": "VWW", "conv": 6_690_816, "depthwise": 798_336, "fc": 512, "elem": 258},
    "fc_autoencoder": {"task": "AD", "conv": 0, "depthwise": 0, "fc": 264_192, "elem": 0},
}

# Published MLPerf Tiny v1.1 results: inferences per second (edge_facts 5.2).
# board -> (core, clock_hz, stack, {model: inf/s}); ``fitted`` marks the stack the factors are fitted to.
PUBLISHED: tuple[dict, ...] = (
    {
        "board": "stm32l4r5",
        "title": "NUCLEO-L4R5ZI",
        "core": "cortex-m4",
        "clock_hz": 120_000_000,
        "stack": "X-CUBE-AI 8.0",
        "fitted": True,
        "inferences_per_s": {"fc_autoencoder": 131.95, "resnet8": 4.505, "ds_cnn": 13.759, "mobilenet_v1_025": 4.522},
    },
    {
        "board": "stm32h7a3",
        "title": "NUCLEO-H7A3ZI",
        "core": "cortex-m7",
        "clock_hz": 280_000_000,
        "stack": "X-CUBE-AI 8.0",
        "fitted": True,
        "inferences_per_s": {"fc_autoencoder": 547.2, "resnet8": 18.215, "ds_cnn": 60.988, "mobilenet_v1_025": 19.867},
    },
    {
        "board": "stm32l4r5",
        "title": "NUCLEO-L4R5ZI",
        "core": "cortex-m4",
        "clock_hz": 120_000_000,
        "stack": "microTVM + CMSIS-NN",
        "fitted": False,
        "inferences_per_s": {"fc_autoencoder": 116.2, "resnet8": 2.567, "ds_cnn": 10.019, "mobilenet_v1_025": 3.324},
    },
)
FITTED_STACK = "X-CUBE-AI 8.0"


def work_of(info) -> dict:
    """A model's work by kind: MACs of convolutions, depthwise convolutions and fully connected layers,
    and output elements of every other op (an :class:`edgeq.tflite.ModelInfo`)."""
    w = {"conv": 0, "depthwise": 0, "fc": 0, "elem": 0}
    for op in info.ops:
        if op.name in CONV_OPS:
            w["conv"] += op.macs
        elif op.name in DEPTHWISE_OPS:
            w["depthwise"] += op.macs
        elif op.name in FC_OPS:
            w["fc"] += op.macs
        elif op.outputs:
            w["elem"] += info.tensors[op.outputs[0]].num_elements
    return w


@dataclass(frozen=True)
class Factors:
    core_cycles_per_mac: dict  # core -> cycles per convolution MAC
    r_depthwise: float
    r_fc: float
    r_elem: float = R_ELEM

    def cycles(self, core: str, work: dict) -> float:
        return self.core_cycles_per_mac[core] * (
            work["conv"] + self.r_depthwise * work["depthwise"] + self.r_fc * work["fc"] + self.r_elem * work["elem"]
        )

    def to_dict(self) -> dict:
        return {
            "cycles_per_conv_mac": {k: round(v, 4) for k, v in self.core_cycles_per_mac.items()},
            "relative_cost": {
                "conv_mac": 1.0,
                "depthwise_mac": round(self.r_depthwise, 4),
                "fc_mac": round(self.r_fc, 4),
                "other_op_output_element": self.r_elem,
            },
        }


def _points(exclude: tuple[str, str] | None = None) -> list[tuple[str, str, float, int]]:
    """(model, core, published_ms, clock_hz) of the fitted stack."""
    pts = []
    for row in PUBLISHED:
        if row["stack"] != FITTED_STACK:
            continue
        for model, ips in row["inferences_per_s"].items():
            if exclude == (model, row["board"]):
                continue
            pts.append((model, row["core"], 1000.0 / ips, row["clock_hz"]))
    return pts


def fit(exclude: tuple[str, str] | None = None) -> Factors:
    """Least squares in log space over the published points of :data:`FITTED_STACK`.

    A grid over (r_dw, r_fc) with, for each, the closed-form per-core scale (the mean log ratio)."""
    pts = _points(exclude)
    cores = sorted({p[1] for p in pts})
    work = np.array([[REFERENCE_WORK[m][k] for k in ("conv", "depthwise", "fc", "elem")] for m, *_ in pts], float)
    target_cycles = np.array([ms / 1000.0 * clk for _, _, ms, clk in pts])
    core_idx = np.array([cores.index(p[1]) for p in pts])

    def solve(r_dw: np.ndarray, r_fc: np.ndarray):
        base = (
            work[:, 0][None, :]
            + r_dw.reshape(-1, 1) * work[:, 1][None, :]
            + r_fc.reshape(-1, 1) * work[:, 2][None, :]
            + R_ELEM * work[:, 3][None, :]
        )
        resid = np.log(target_cycles)[None, :] - np.log(np.maximum(base, 1e-9))
        log_s = np.zeros((len(r_dw), len(cores)))
        for c in range(len(cores)):
            sel = core_idx == c
            log_s[:, c] = resid[:, sel].mean(axis=1)
        err = resid - log_s[:, core_idx]
        return (err**2).sum(axis=1), log_s

    lo, hi = math.log(0.05), math.log(100.0)
    best = None
    for _ in range(4):  # coarse-to-fine
        g = np.linspace(lo, hi, 121)
        a, b = np.meshgrid(g, g, indexing="ij")
        sse, log_s = solve(np.exp(a.ravel()), np.exp(b.ravel()))
        i = int(np.argmin(sse))
        best = (float(np.exp(a.ravel()[i])), float(np.exp(b.ravel()[i])), log_s[i])
        step = (hi - lo) / 120
        center_a, center_b = a.ravel()[i], b.ravel()[i]
        lo, hi = min(center_a, center_b) - 4 * step, max(center_a, center_b) + 4 * step
    assert best is not None
    r_dw, r_fc, log_s = best
    return Factors({c: float(np.exp(log_s[k])) for k, c in enumerate(cores)}, r_dw, r_fc)


@cache
def factors() -> Factors:
    return fit()


def estimate_ms(work: dict, core: str, clock_hz: int, f: Factors | None = None) -> float | None:
    f = f or factors()
    if core not in f.core_cycles_per_mac:
        return None
    return f.cycles(core, work) / clock_hz * 1000.0


@cache
def calibration_rows() -> tuple[dict, ...]:
    """Estimate vs published for every published point, with the leave-one-out estimate."""
    f = factors()
    rows = []
    for row in PUBLISHED:
        for model, ips in row["inferences_per_s"].items():
            published = 1000.0 / ips
            work = REFERENCE_WORK[model]
            est = estimate_ms(work, row["core"], row["clock_hz"], f)
            entry = {
                "model": model,
                "task": work["task"],
                "board": row["board"],
                "core": row["core"],
                "stack": row["stack"],
                "fitted": row["fitted"],
                "published_ms": round(published, 3),
                "estimate_ms": round(est, 3) if est is not None else None,
                "error_pct": round((est / published - 1) * 100, 1) if est is not None else None,
            }
            if row["fitted"]:
                loo = estimate_ms(work, row["core"], row["clock_hz"], fit(exclude=(model, row["board"])))
                entry["loo_estimate_ms"] = round(loo, 3) if loo is not None else None
                entry["loo_error_pct"] = round((loo / published - 1) * 100, 1) if loo is not None else None
            rows.append(entry)
    return tuple(rows)


def calibration_table() -> list[dict]:
    """The calibration table: per model and board, estimate vs published (fitted stack and others)."""
    return [dict(r) for r in calibration_rows()]


def calibration_error(core: str) -> dict | None:
    """Leave-one-out error of the fitted stack's points on ``core`` (None if the core is not calibrated)."""
    errs = [r["loo_error_pct"] for r in calibration_rows() if r["fitted"] and r["core"] == core]
    if not errs:
        return None
    abs_errs = [abs(e) for e in errs]
    return {
        "method": "leave-one-out over the published points of this core",
        "num_points": len(errs),
        "mean_abs_error_pct": round(float(np.mean(abs_errs)), 1),
        "max_abs_error_pct": round(float(np.max(abs_errs)), 1),
        "per_point_error_pct": errs,
    }


def estimate(info, board) -> dict:
    """The labelled latency estimate of a model (a ModelInfo) on ``board`` (an mcu Board)."""
    work = work_of(info)
    doc: dict = {
        "kind": "estimate",
        "board": board.name,
        "core": board.core,
        "clock_hz": board.clock_hz,
        "work": work,
        "model": "cycles = s_core * (conv MACs + r_dw * depthwise MACs + r_fc * FC MACs + other-op elements)",
        "calibrated_against": f"MLPerf Tiny v1.1 closed division, {FITTED_STACK} on NUCLEO-L4R5ZI and NUCLEO-H7A3ZI",
        "source": SOURCE,
    }
    float_ops = [op for op in info.ops if op.compute in ("float", "hybrid")]
    if float_ops:
        doc.update(
            latency_ms=None, reason="the cost factors are calibrated on int8 kernels; the model computes in float"
        )
        return doc
    f = factors()
    ms = estimate_ms(work, board.core, board.clock_hz, f)
    if ms is None:
        cores = ", ".join(sorted(f.core_cycles_per_mac))
        doc.update(
            latency_ms=None,
            reason=f"no published MLPerf Tiny result calibrates {board.core} (calibrated cores: {cores})",
        )
        return doc
    fitted_boards = sorted({r["board"] for r in PUBLISHED if r["fitted"] and r["core"] == board.core})
    calibrated = board.name in fitted_boards
    error = calibration_error(board.core)
    doc.update(
        latency_ms=round(ms, 3),
        factors=f.to_dict(),
        board_calibrated=calibrated,
        calibrated_boards=fitted_boards,
        # The leave-one-out error was measured on the fitted boards only: on another board of the same
        # core (other clock, flash wait states, memory) it is not this board's error, so it is not given as one.
        calibration_error=error if calibrated else None,
        extrapolation=None
        if calibrated
        else (
            f"{board.core} cycles per MAC fitted on {', '.join(fitted_boards)}, scaled to this board's "
            f"{board.clock_hz / 1e6:g} MHz clock; no published result on {board.name} checks it, so its error is "
            f"unknown (on the fitted board(s): mean {error['mean_abs_error_pct']}%, max {error['max_abs_error_pct']}%)"
            if error
            else f"{board.core} fitted on other boards; error on {board.name} unknown"
        ),
        note="an estimate for a vendor-optimized int8 stack (X-CUBE-AI class); TFLM with CMSIS-NN is "
        "typically slower: the published microTVM + CMSIS-NN results on NUCLEO-L4R5ZI are 1.1-1.8x "
        "the X-CUBE-AI ones",
    )
    return doc


def basis(est: dict) -> str:
    """How an estimate was made, for people: calibrated on this board (with its error) or extrapolated."""
    err = est.get("calibration_error")
    if est.get("board_calibrated") and err:
        return (
            f"estimate; calibrated on this board, leave-one-out error mean {err['mean_abs_error_pct']}%, "
            f"max {err['max_abs_error_pct']}%"
        )
    fitted = ", ".join(est.get("calibrated_boards") or []) or "other boards"
    return f"estimate; scaled by clock from the {est['core']} fit on {fitted}, error on this board unknown"


def error(est: dict) -> str:
    """How far off an estimate may be, for people: the leave-one-out error where the board is calibrated,
    else why it is unknown."""
    err = est.get("calibration_error")
    if est.get("board_calibrated") and err:
        return f"leave-one-out error on this board: mean {err['mean_abs_error_pct']}%, max {err['max_abs_error_pct']}%"
    return est.get("extrapolation") or f"unknown on {est.get('board', 'this board')}"
