"""Options shared by `edgeq train` and `edgeq quantize --qat`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from edgeq.cli.options import number_option
from edgeq.config import (
    BATCH_SIZE,
    CPU_DEVICES,
    EPOCHS,
    LEARNING_RATE,
    PATIENCE,
    SEED,
    VAL_SPLIT,
    LrSchedule,
    Strategy,
    TrainConfig,
)


def train_options(default_epochs: int, default_lr: float) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        for opt in reversed(
            [
                number_option(
                    "--epochs", bound=EPOCHS, default=default_epochs, show_default=True, help="Training epochs."
                ),
                number_option(
                    "--batch-size", bound=BATCH_SIZE, default=64, show_default=True, help="Global batch size."
                ),
                number_option(
                    "--lr",
                    bound=LEARNING_RATE,
                    kind=float,
                    default=default_lr,
                    show_default=True,
                    help="Initial learning rate (Adam).",
                ),
                click.option(
                    "--lr-schedule",
                    type=click.Choice([s.value for s in LrSchedule]),
                    default=LrSchedule.COSINE.value,
                    show_default=True,
                    help="Learning-rate schedule over all epochs.",
                ),
                number_option(
                    "--val-split",
                    bound=VAL_SPLIT,
                    kind=float,
                    default=0.1,
                    show_default=True,
                    help="Fraction held out for validation when no --val-data.",
                ),
                number_option(
                    "--patience", bound=PATIENCE, default=None, help="Stop after N epochs without a better val_loss."
                ),
                click.option("--augment", is_flag=True, help="Random shifts and small rotations of training images."),
                click.option(
                    "--loss",
                    default=None,
                    help="Keras loss name; default: cross-entropy for classifiers (pass e.g. mse otherwise).",
                ),
                number_option(
                    "--train-seed",
                    "train_seed",
                    bound=SEED,
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
                number_option(
                    "--cpu-devices",
                    bound=CPU_DEVICES,
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
