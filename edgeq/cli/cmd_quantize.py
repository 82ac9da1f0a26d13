"""edgeq quantize: Keras/SavedModel to a verified .tflite."""

from __future__ import annotations

import click

from edgeq.cli.app import App, pass_app, table
from edgeq.cli.options import data_config, force_option, load_config, load_options, model_argument, preprocess_options
from edgeq.config import IOType, Mode, QuantizeConfig


@click.command("quantize")
@model_argument
@click.option(
    "--mode",
    type=click.Choice([m.value for m in Mode]),
    default=Mode.INT8.value,
    show_default=True,
    help="Conversion mode.",
)
@click.option(
    "--io",
    "io",
    type=click.Choice([t.value for t in IOType]),
    default=None,
    help="Input/output type (int8 mode defaults to int8, others to float).",
)
@click.option(
    "--data",
    "data_path",
    type=click.Path(path_type=str),
    default=None,
    help="Representative data (.npz/.npy or image folder); needed for int8 and int16x8.",
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=str), required=True, help="The .tflite to write."
)
@click.option("--batch", type=int, default=1, show_default=True, help="Static batch size of the converted model.")
@click.option("--allow-float-ops", is_flag=True, help="Keep ops without integer kernels in float instead of failing.")
@preprocess_options
@load_options
@force_option
@pass_app
def command(
    app: App,
    model: str,
    mode: str,
    io: str | None,
    data_path: str | None,
    output: str,
    batch: int,
    allow_float_ops: bool,
    force: bool,
    **kw,
) -> None:
    """Quantize MODEL (.keras, .h5 or SavedModel) to OUTPUT and verify the result.

    The converted model is read back: every op still computing in float is listed and the
    I/O types are checked. Integer modes with float ops exit 4 unless --allow-float-ops.
    """
    from edgeq import api

    data_cfg = data_config(data_path, kw)
    load_cfg = load_config(kw)
    cfg = QuantizeConfig(mode=Mode(mode), io=IOType(io) if io else None, batch=batch, allow_float_ops=allow_float_ops)
    app.say(f"quantizing {model} ({cfg.mode.value}, {cfg.io_type.value} I/O) ...")
    r = api.quantize(model, output, cfg, data_cfg, load_cfg, force=force)
    rows = [[t["name"], t["dtype"], t["shape"], t["scale"], t["zero_point"]] for t in r.inputs + r.outputs]
    human = "\n".join(
        [
            f"wrote {r.output} ({r.size_bytes:,} bytes, {r.size_bytes / r.reference_size_bytes:.2f}x the float .tflite)",
            f"float ops: {', '.join(sorted(set(r.float_ops))) if r.float_ops else 'none (every op is integer)'}",
            table(rows, ["tensor", "dtype", "shape", "scale", "zero_point"]),
        ]
    )
    app.done(r.to_dict(), human, [r.output, r.sidecar], r.warnings)
