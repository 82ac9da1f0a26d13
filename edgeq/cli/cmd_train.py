"""edgeq train: fit a zoo model or fine-tune a model file, optionally quantization-aware."""

from __future__ import annotations

import click

from edgeq.cli.app import App, pass_app, table
from edgeq.cli.options import data_config, force_option, load_config, load_options, preprocess_options
from edgeq.cli.progress import reporter
from edgeq.cli.train_options import train_config, train_options
from edgeq.errors import UsageError
from edgeq.zoo import names as zoo_names


def _zoo_args(pairs: tuple[str, ...]) -> dict:
    """KEY=VALUE pairs; values are Python literals when they parse as one (0.35, (32, 32, 3))."""
    import ast

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"bad --zoo-arg {pair!r}", "use KEY=VALUE, e.g. --zoo-arg alpha=0.35")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def qat_table(layers: list[dict]) -> str:
    rows = [[x["layer"], x["type"], x["status"], x["reason"]] for x in layers]
    return table(rows, ["layer", "type", "qat", "why"])


@click.command("train")
@click.argument("model")
@click.option(
    "--data",
    "data_path",
    required=True,
    type=click.Path(path_type=str),
    help="Labeled training data (.npz/.npy/image folder).",
)
@click.option(
    "--val-data",
    "val_path",
    default=None,
    type=click.Path(path_type=str),
    help="Validation data (default: --val-split of --data).",
)
@click.option(
    "-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=str), help="The .keras to write."
)
@click.option("--qat", is_flag=True, help="Quantization-aware training with TF-MOT.")
@click.option(
    "--weights", default=None, type=click.Path(path_type=str), help="Initial weights (.weights.h5 / .h5) for the model."
)
@click.option(
    "--checkpoint-dir",
    default=None,
    type=click.Path(file_okay=False, path_type=str),
    help="Checkpoints (default: OUTPUT.ckpt).",
)
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its checkpoints.")
@click.option("--zoo-arg", "zoo_args", multiple=True, metavar="KEY=VALUE", help="Zoo factory option, e.g. alpha=0.35.")
@train_options(default_epochs=10, default_lr=1e-3)
@preprocess_options
@load_options
@force_option
@pass_app
def command(
    app: App,
    model: str,
    data_path: str,
    val_path: str | None,
    output: str,
    qat: bool,
    weights: str | None,
    checkpoint_dir: str | None,
    resume: bool,
    zoo_args: tuple[str, ...],
    force: bool,
    **kw,
) -> None:
    """Train MODEL (a zoo name, or a .keras/.h5 file to fine-tune) on --data.

    Checkpoints are written every epoch; after Ctrl-C, the same command with --resume goes on.
    """
    from edgeq import api

    cfg = train_config(kw)
    val_cfg = data_config(val_path, dict(kw)) if val_path else None
    data_cfg = data_config(data_path, kw)
    assert data_cfg is not None
    r = api.train(
        model,
        data_cfg,
        output,
        cfg,
        val_cfg,
        qat,
        weights,
        checkpoint_dir,
        resume,
        load_config(kw),
        force,
        reporter(app),
        zoo_args=_zoo_args(zoo_args),
    )
    t = r.training
    lines = [
        f"wrote {r.output} ({t['epochs_run']} epochs, {t['num_train_samples']} training samples, {t['num_val_samples']} validation, {t['strategy']} x{t['num_replicas']})",
        f"best val_accuracy: {t['best_val_accuracy']:.4f} (epoch {t['best_epoch']})"
        if t["best_val_accuracy"] is not None
        else "no validation accuracy",
    ]
    if r.qat_layers:
        lines.append(qat_table(r.qat_layers))
    lines += r.notes
    app.done(r.to_dict(), "\n".join(lines), [r.output, r.sidecar], r.warnings)


command.help = (command.help or "") + "\n\nZoo models: " + ", ".join(zoo_names()) + "."
