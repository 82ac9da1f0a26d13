"""edgeq inspect: what a model holds."""

from __future__ import annotations

import click

from edgeq.cli.app import App, pass_app, table
from edgeq.cli.options import load_config, load_options, model_argument


@click.command("inspect")
@model_argument
@load_options
@pass_app
def command(app: App, model: str, **kw) -> None:
    """Show MODEL's inputs and outputs, ops (float vs integer), size, parameters and MACs.

    MODEL is a .tflite, .keras, .h5, .onnx or SavedModel directory.
    """
    from edgeq import api

    r = api.inspect(model, load_config(kw))
    lines = [f"{r['path']}  ({r['format']}, {r['size_bytes']:,} bytes)"]
    io_rows = [
        [kind, t["name"], t["dtype"], t["shape"], t.get("scale"), t.get("zero_point")]
        for kind in ("input", "output")
        for t in r[kind + "s"]
    ]
    lines.append(table(io_rows, ["", "name", "dtype", "shape", "scale", "zero_point"]))
    if r["format"] == "tflite":
        lines.append(
            f"ops: {r['num_ops']}  parameters: {r['num_parameters']:,}  MACs: {r['macs']:,}  weights: {r['weight_dtypes']}"
        )
        lines.append(f"compute: {r['compute']}")
        lines.append(table([[op, n] for op, n in r["ops"].items()], ["op", "count"]))
        lines.append("float ops: " + (", ".join(r["float_ops"]) if r["float_ops"] else "none"))
        if r["custom_ops"]:
            lines.append("custom ops: " + ", ".join(r["custom_ops"]))
    else:
        if r.get("converted_to"):
            lines.append(f"converted by onnx2tf to a SavedModel (NHWC inputs): {r['converted_to']}")
        if "signatures" in r:  # a SavedModel, or an ONNX model converted to one
            signatures = ", ".join(r["signatures"]) or "none"
            lines.append(f"signatures: {signatures}  variables: {r['num_variables']}")
        if "layers" in r:  # a Keras model's layers, an ONNX graph's nodes
            what = "nodes" if r["format"] == "onnx" else "layers"
            lines.append(f"{what}: {r['num_layers']}  parameters: {r['num_parameters']:,}")
            lines.append(
                table([[x["name"], x["type"], x["parameters"]] for x in r["layers"]], ["layer", "type", "parameters"])
            )
        else:
            lines.append(f"parameters: {r['num_parameters']:,}")
    app.done(r, "\n".join(lines))
