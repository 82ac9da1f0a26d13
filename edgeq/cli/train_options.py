"""Options shared by `edgeq train` and `edgeq quantize --qat`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from edgeq.config import LrSchedule, Strategy, TrainConfig


def train_options(default_epochs: int, default_lr: float) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        for opt in reversed(
            [
                click.option("--epochs", type=int, default=default_epochs, show_default=True, help="Training epochs."),
                click.option("--batch-size", type=int, default=64, show_default=True, help="Global batch size."),
                click.option(
                    "--lr", type=float, default=default_lr, show_default=True, help="Initial learning rate (Adam)."
                ),
                click.option(
                    "--lr-schedule",
                    type=click.Choice([s.value for s in LrSchedule]),
                    default=LrSchedule.COSINE.value,
                    show_default=True,
                    help="Learning-rate schedule over all epochs.",
                ),
                click.option(
                    "--val-split",
                    type=float,
                    default=0.1,
                    show_default=True,
                    help="Fraction held out for validation when no --val-data.",
                ),
                click.option(
                    "--patience", type=int, default=None, help="Stop after N epochs without a better val_loss."
                ),
                click.option("--augment", is_flag=True, help="Random shifts and small rotations of training images."),
                click.option(
                    "--loss",
                    default=None,
                    help="Keras loss name; default: cross-entropy for classifiers (pass e.g. mse otherwise).",
                ),
                click.option(
                    "--train-seed",
                    "train_seed",
                    type=int,
                    default=0,
                    show_default=True,
                    help="Seed for shuffling, splits and initialization.",
                ),
                click.option(
                    "--strategy",
                    type=click.Choice([s.value for s in Strategy]),
                    default=Strategy.DEFAULT.value,
                    show_default=True,
                    help="tf.distribute strategy (multi-worker reads TF_CONFIG).",
                ),
                click.option(
                    "--cpu-devices",
                    type=int,
                    default=None,
                    help="Split the CPU into N logical devices (mirrored training without GPUs).",
                ),
            ]
        ):
            fn = opt(fn)
        return fn

    return decorate


def train_config(kw: dict) -> TrainConfig:
    """Pop the training options from ``kw`` (and apply --cpu-devices, which must come first)."""
    cpu_devices = kw.pop("cpu_devices")
    if cpu_devices:
        from edgeq.train import configure_cpu_devices

        configure_cpu_devices(cpu_devices)
    return TrainConfig(
        epochs=kw.pop("epochs"),
        batch_size=kw.pop("batch_size"),
        learning_rate=kw.pop("lr"),
        lr_schedule=LrSchedule(kw.pop("lr_schedule")),
        val_split=kw.pop("val_split"),
        patience=kw.pop("patience"),
        augment=kw.pop("augment"),
        loss=kw.pop("loss"),
        seed=kw.pop("train_seed"),
        strategy=Strategy(kw.pop("strategy")),
    )
