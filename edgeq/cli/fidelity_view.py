"""How ``eval`` and ``debug`` show per-output fidelity: one row per output, named, with its shape."""

from __future__ import annotations

from edgeq.cli.app import table
from edgeq.report.fmt import pct

ROLE_WORDS = {
    "class_scores": "class scores",
    "regression": "regression",
    "embedding": "embedding",
    "boxes": "detection boxes",
    "scores": "detection scores",
    "yolo_head": "detection (YOLO boxes+scores)",
}


def outputs_lines(r: dict) -> list[str]:
    """The per-output table, the model summary (its worst output) and the detection figures."""
    rows = [
        [
            o["name"],
            "x".join(str(d) for d in o["shape"]) or "scalar",
            ROLE_WORDS.get(o["role"], o["role"]),
            o["sqnr_db"],
            o["cosine_similarity"],
            f"{o['mean_abs_error']:.4g}",
            f"{o['max_abs_error']:.4g}",
            pct(o.get("agreement")),
            o["degenerate"]
            or ("reference constant" if o.get("constant_reference") is not None else "")
            or ("mixed ranges" if o.get("mixed_ranges") else ""),
        ]
        for o in r["outputs"]
    ]
    header = ["output", "shape", "kind", "sqnr_db", "cosine", "mean_abs_err", "max_abs_err", "top1_agree", "degenerate"]
    lines = [
        table(rows, header),
        f"model ({r['task']}, worst output {r['worst_output']!r}): SQNR {r['sqnr_db']} dB  "
        f"cosine {r['cosine_similarity']}  mean abs err {r['mean_abs_error']:.4g}  max abs err {r['max_abs_error']:.4g}",
    ]
    d = r.get("detection")
    if d:
        iou = "-" if d["box_iou_mean"] is None else f"{d['box_iou_mean']:.3f}"
        head = d["boxes"] if d["boxes"] == d["scores"] else f"{d['boxes']} + {d['scores']}"
        lines.append(
            f"detection ({head}, score > {d['score_threshold']}): "
            f"{d['reference_detections']} float / {d['quantized_detections']} int8 detections, "
            f"score agreement {pct(d['score_agreement'])}, box IoU mean {iou}, "
            f"box agreement (IoU >= 0.5) {pct(d['box_agreement'])}"
            + (f", class agreement {pct(d['class_agreement'])}" if "class_agreement" in d else "")
        )
    return lines
