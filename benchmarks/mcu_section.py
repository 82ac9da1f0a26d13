"""Microcontroller figures for the bundled model: TFLM arena and flash per board, Vela estimates.

A section of run.py (``run.py --only mcu``): the bundled MNIST CNN quantized to int8 with int8 I/O,
checked in TensorFlow Lite Micro (the arena TFLM allocates, the flash estimate, the fit on each board,
the calibrated latency estimate) and compiled with Vela for three Ethos-U configurations.
"""

from __future__ import annotations

from pathlib import Path

BOARDS = ("stm32l4r5", "stm32h7a3", "nrf52840")
ACCELERATORS = ("ethos-u55-128", "ethos-u55-256", "ethos-u65-256")


def mcu_figures(root: Path, tmp: Path, log) -> dict:
    from edgeq import api
    from edgeq.config import DataConfig, QuantizeConfig
    from edgeq.targets import registry

    int8 = tmp / "mcu" / "mnist_cnn_int8.tflite"
    int8.parent.mkdir(parents=True, exist_ok=True)
    api.quantize(
        str(root / "models/mnist_cnn.keras"),
        str(int8),
        QuantizeConfig(),
        DataConfig(path=str(root / "representative_data/mnist_calib.npz")),
        force=True,
    )
    from edgeq.targets.mcu import estimate

    mcu, ethos = registry.get("mcu"), registry.get("ethos-u")
    boards = []
    for board in BOARDS:
        r = mcu.check(str(int8), {"board": board}).to_dict()
        d = r["details"]
        est = d.get("latency_estimate") or {}
        boards.append(
            {
                "board": board,
                "arena_bytes": r["arena_bytes"],
                "flash_bytes": r["flash_bytes"],
                "fits": r["fits"],
                "estimate_ms": est.get("latency_ms") or est.get("estimate_ms"),
                "estimate_basis": estimate.basis(est) if est.get("latency_ms") is not None else est.get("reason"),
            }
        )
        log(f"  {board}: arena {r['arena_bytes']:,} B, flash {r['flash_bytes']:,} B")
    vela = []
    for acc in ACCELERATORS:
        c = ethos.compile([str(int8)], str(tmp / "vela" / acc), {"accelerator": acc, "overwrite": True})
        s = c.details.get("summary") or {}
        vela.append(
            {
                "accelerator": acc,
                **{
                    k: s.get(k)
                    for k in (
                        "sram_used_bytes",
                        "off_chip_flash_used_bytes",
                        "inference_time_ms",
                        "inferences_per_second",
                    )
                },
            }
        )
        log(f"  {acc}: {s.get('inference_time_ms')} ms")
    return {
        "model": "models/mnist_cnn.keras (int8, int8 I/O)",
        "model_bytes": int8.stat().st_size,
        "boards": boards,
        "vela": vela,
    }


def render(section: dict) -> list[str]:
    lines = [f"### Microcontrollers: {section['model']}, {section['model_bytes']:,} bytes", ""]
    lines += [
        "| board | TFLM arena bytes (allocated) | flash bytes (model + runtime estimate) | fits | latency estimate ms | how estimated |",
        "|---|---:|---:|---|---:|---|",
    ]
    for b in section["boards"]:
        est = "-" if b["estimate_ms"] is None else f"{b['estimate_ms']:.2f}"
        how = b.get("estimate_basis") or "-"
        lines.append(f"| {b['board']} | {b['arena_bytes']:,} | {b['flash_bytes']:,} | {b['fits']} | {est} | {how} |")
    lines += [
        "",
        "| Vela accelerator | SRAM bytes | off-chip flash bytes | inference ms (estimate) | inferences/s |",
        "|---|---:|---:|---:|---:|",
    ]
    for v in section["vela"]:
        t = v["inference_time_ms"]
        lines.append(
            f"| {v['accelerator']} | {v['sram_used_bytes'] or 0:,.0f} | {v['off_chip_flash_used_bytes'] or 0:,.0f} | {'-' if t is None else f'{t:.3f}'} | {v['inferences_per_second'] or 0:,.0f} |"
        )
    return lines + [""]
