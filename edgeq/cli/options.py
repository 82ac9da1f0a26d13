"""Option groups shared by several commands, and turning them into configs."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from edgeq.config import (
    ADAROUND_STEPS,
    INPUT_DIM,
    RESIZE_SIDE,
    SAMPLES,
    SCALE,
    SEED,
    Bound,
    DataConfig,
    LoadConfig,
    Preprocess,
    TechniqueConfig,
    input_shapes,
)
from edgeq.errors import UsageError
from edgeq.targets.base import Stage, TargetOption

if TYPE_CHECKING:
    from edgeq.executor import ExecutorConfig


class Bounded(click.ParamType):
    """An int or float option within a :class:`~edgeq.config.Bound` (finite: no nan, no inf).

    Out of range is a UsageError (exit 2) naming the flag and the range, the same message the
    configs give for the same value from edgeq.toml or a library caller.
    """

    def __init__(self, bound: Bound, kind: type = int) -> None:
        self.bound = bound
        self.kind = kind
        self.name = "integer" if kind is int else "float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = (click.INT if self.kind is int else click.FLOAT).convert(value, param, ctx)
        flag = max(param.opts, key=len) if param is not None and param.opts else "value"
        self.bound.check(flag, number)
        return number


def ranged(text: str, bound: Bound) -> str:
    """``--help`` text that says the option's range."""
    return f"{text} Range: {bound.text()}."


def number_option(*decls: str, bound: Bound, kind: type = int, help: str, **kw: Any) -> Any:
    """A ``click.option`` whose value is checked against ``bound`` (and whose --help says it)."""
    return click.option(*decls, type=Bounded(bound, kind), help=ranged(help, bound), **kw)


def _floats(value: str | None, name: str) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        return tuple(float(v) for v in value.split(","))
    except ValueError as exc:
        raise UsageError(
            f"{name} takes numbers separated by commas, got {value!r}", f"e.g. {name} 0.5,0.5,0.5"
        ) from exc


def _resize(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        h, w = value.lower().split("x")
        return int(h), int(w)
    except ValueError as exc:
        raise UsageError(f"--resize takes HxW, got {value!r}", "e.g. --resize 28x28") from exc


def _scale(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        if "/" in value:
            num, den = value.split("/")
            return float(num) / float(den)
        return float(value)
    except (ValueError, ZeroDivisionError) as exc:
        raise UsageError(f"--scale takes a number, got {value!r}", "e.g. --scale 1/255") from exc


def preprocess_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    for opt in reversed(
        [
            number_option(
                "--samples", bound=SAMPLES, default=None, help="Use N samples, drawn reproducibly with --seed."
            ),
            number_option("--seed", bound=SEED, default=0, show_default=True, help="Seed for sampling."),
            click.option(
                "--resize",
                default=None,
                metavar="HxW",
                help=f"Resize images (image folders); each side {RESIZE_SIDE.text()}.",
            ),
            click.option(
                "--color-mode",
                type=click.Choice(["grayscale", "rgb"]),
                default=None,
                help="Image color mode (default: the model's channels).",
            ),
            click.option(
                "--scale",
                default=None,
                metavar="F",
                help=ranged("Multiply values by F (e.g. 1/255). Image folders default to 1/255.", SCALE),
            ),
            click.option("--mean", default=None, metavar="M[,M..]", help="Subtract per-channel mean after --scale."),
            click.option("--std", default=None, metavar="S[,S..]", help="Divide by per-channel std after --mean."),
        ]
    ):
        fn = opt(fn)
    return fn


def data_config(path: str | None, kw: dict) -> DataConfig | None:
    """Pop the preprocessing options from ``kw`` and build a DataConfig for ``path``."""
    spec = Preprocess(
        resize=_resize(kw.pop("resize")),
        color_mode=kw.pop("color_mode"),
        scale=_scale(kw.pop("scale")),
        mean=_floats(kw.pop("mean"), "--mean"),
        std=_floats(kw.pop("std"), "--std"),
    )
    samples, seed = kw.pop("samples"), kw.pop("seed")
    if path is None:
        return None
    return DataConfig(path=path, samples=samples, seed=seed, preprocess=spec)


def _input_shapes(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...] | None:
    """Check ``--input-shape`` as it is parsed (a bad one is exit 2, one line); None when not given (the
    build then keeps edgeq.toml's)."""
    input_shapes(value)
    return tuple(value) or None


def load_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option(
        "--input-shape",
        multiple=True,
        metavar="[NAME:]DxDx..",
        callback=_input_shapes,
        help=f"Pin the model's dynamic input dimensions, e.g. 1x320x320x3 (Keras, SavedModel, ONNX in its own "
        f"layout, float .tflite); several inputs: repeat it as NAME:1x16. Each dimension {INPUT_DIM.text()}.",
    )(fn)
    fn = click.option(
        "--trust-model",
        is_flag=True,
        help="Run Python code stored in the model (Lambda layers). Only for models you trust.",
    )(fn)
    fn = click.option(
        "--custom-objects",
        multiple=True,
        metavar="MODULE:ATTR",
        help="Import custom layers/objects (a dict or a class); implies trusting the model.",
    )(fn)
    return fn


def load_config(kw: dict) -> LoadConfig:
    return LoadConfig(
        custom_objects=tuple(kw.pop("custom_objects")),
        trust_model=kw.pop("trust_model"),
        input_shapes=input_shapes(kw.pop("input_shape", None)),
    )


model_argument = click.argument("model", type=click.Path(dir_okay=True, path_type=str))
force_option = click.option("--force", is_flag=True, help="Overwrite existing output.")


def _click_type(o: TargetOption) -> Any:
    if o.choices:
        return click.Choice(list(o.choices))
    if o.path is not None:
        return click.Path(dir_okay=o.path != "file", file_okay=o.path != "dir", path_type=str)
    if o.bound is not None:
        return Bounded(o.bound, o.type)
    return o.type


def _help(decls: list[tuple[str, TargetOption]]) -> str:
    """One help line from every target declaring the option: "(mcu, ethos-u) Kill ..."."""
    by_text: dict[str, list[str]] = {}
    for name, o in decls:
        by_text.setdefault(o.help, []).append(name)
    text = " ".join(f"({', '.join(names)}) {text}" for text, names in by_text.items())
    bound = decls[0][1].bound  # every target declaring a key declares the same bound (TargetOption.shape)
    return ranged(text, bound) if bound is not None else text


def _declared_option(
    decls: list[tuple[str, TargetOption]], dest: str, flag_default: bool | None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The click option for one key the targets ``decls`` declare, stored as ``dest``. ``flag_default``:
    what an absent flag is (False for a command; None for the build, where edgeq.toml may still set it)."""
    o = decls[0][1]
    names = [o.short, o.flag] if o.short else [o.flag]
    kw: dict[str, Any] = {"help": _help(decls), "metavar": o.metavar}
    if o.is_flag:
        kw.update(is_flag=True, default=flag_default)
    else:
        kw.update(type=_click_type(o), multiple=o.multiple, default=() if o.multiple else None)
    return click.option(*names, dest, **kw)


def target_options(stage: Stage) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add the options every target declares for ``stage`` (their union; one flag per option key)."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        from edgeq.targets import registry

        for key, decls in reversed(list(registry.options_for(stage).items())):
            fn = _declared_option(decls, key, flag_default=False)(fn)
        return fn

    return decorate


def given_target_options(stage: Stage, target: str, kw: dict) -> dict[str, Any]:
    """Pop the target options of ``stage`` from ``kw``: those given on the command line, plus the CLI's
    defaults (``cli_default``, e.g. no ``--force`` is overwrite=False) for the options ``target`` takes.
    The target checks that it takes every option given (:func:`edgeq.targets.base.resolve`)."""
    from edgeq.targets import registry

    given: dict[str, Any] = {}
    for key in registry.options_for(stage):
        value = kw.pop(key)
        if value is not None and value is not False and value != ():  # 0 is a value given (0 == False)
            given[key] = tuple(value) if isinstance(value, (list, tuple)) else value
    if target in registry.TARGETS:
        for o in registry.options(target):
            if stage in o.stages and o.cli_default is not None:
                given.setdefault(o.key, o.cli_default)
    return given


BUILD_PREFIX = "target_option_"  # the build's parameter names for target options: none clashes with its own


def build_target_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add every option the targets declare for the stages a build runs (check, compile, bench) and take
    in a build (``in_build``), one flag per option key, and ``--device``; :func:`given_build_options`
    reads them back."""
    from edgeq.targets import registry

    union: dict[str, list[tuple[str, TargetOption]]] = {}
    for stage in (Stage.CHECK, Stage.COMPILE, Stage.BENCH):
        for key, decls in registry.options_for(stage).items():
            for name, o in decls:
                if o.in_build and (name, o) not in union.get(key, []):
                    union.setdefault(key, []).append((name, o))
    for key, decls in reversed(list(union.items())):
        fn = _declared_option(decls, BUILD_PREFIX + key, flag_default=None)(fn)
    takes = [(name, registry.device_help(name)) for name in registry.names()]
    text = "; ".join(f"({name}) {h}" for name, h in takes if h)
    return click.option("--device", BUILD_PREFIX + "device", default=None, help=f"Device string: {text}.")(fn)


def given_build_options(kw: dict) -> dict[str, Any]:
    """Pop the build's target options from ``kw``: those given on the command line, by option key (the
    build checks them against the chosen targets, :mod:`edgeq.build.options`)."""
    given: dict[str, Any] = {}
    for name in [k for k in kw if k.startswith(BUILD_PREFIX)]:
        value = kw.pop(name)
        if value is not None and value is not False and value != ():  # a switch not given is False
            given[name.removeprefix(BUILD_PREFIX)] = tuple(value) if isinstance(value, (list, tuple)) else value
    return given


def device_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--device``, with what each target that takes one accepts."""
    from edgeq.targets import registry

    takes = [(name, registry.device_help(name)) for name in registry.names()]
    text = "; ".join(f"({name}) {h}" for name, h in takes if h)
    return click.option("--device", default=None, help=f"Device string: {text}.")(fn)


def technique_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The all-integer accuracy techniques of int8 PTQ (quantize and build; the same keys in edgeq.toml)."""
    for opt in reversed(
        [
            click.option(
                "--ranges",
                default=None,
                metavar="minmax|mse|percentile:P",
                help="Activation ranges: the converter's min/max, the int8-error-optimal clip, or a percentile.",
            ),
            click.option(
                "--cle/--no-cle",
                default=None,
                help="Cross-layer equalization of the Keras model before conversion.",
            ),
            click.option(
                "--bias-correction/--no-bias-correction",
                default=None,
                help="Correct each conv/FC bias for the mean error int8 leaves (empirical).",
            ),
            click.option("--adaround", is_flag=True, default=None, help="Learn the weights' rounding (slow)."),
            number_option(
                "--adaround-steps",
                bound=ADAROUND_STEPS,
                default=None,
                metavar="N",
                help="AdaRound steps per op (default 500).",
            ),
        ]
    ):
        fn = opt(fn)
    return fn


def technique_config(kw: dict) -> TechniqueConfig:
    """The techniques named on the command line (pops their keys); none named: the plain converter."""
    return TechniqueConfig.given(
        ranges=kw.pop("ranges", None),
        cle=kw.pop("cle", None),
        bias_correction=kw.pop("bias_correction", None),
        adaround=kw.pop("adaround", None),
        adaround_steps=kw.pop("adaround_steps", None),
    )


JOBS = Bound(1, 1024, example="2")


def executor_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Where the planner's candidates run: a local process pool or a Ray cluster (build, quantize --max-drop)."""
    for opt in reversed(
        [
            click.option(
                "--executor",
                type=click.Choice(["local", "ray"]),
                default=None,
                help="Run the planner's candidates in a local process pool (default) or as Ray tasks on a "
                "cluster (pip install edgeq[ray]).",
            ),
            number_option(
                "--jobs",
                bound=JOBS,
                default=None,
                metavar="N",
                help="Local processes at once (default: $EDGEQ_JOBS, else the core count; 1: no pool).",
            ),
            click.option(
                "--ray-address",
                default=None,
                metavar="HOST:PORT",
                help="The Ray cluster (ray://HOST:PORT or the head's HOST:PORT; default: RAY_ADDRESS).",
            ),
        ]
    ):
        fn = opt(fn)
    return fn


def executor_config(kw: dict) -> ExecutorConfig | None:
    """The executor named on the command line (pops its keys); None where none of its options is given."""
    from edgeq.executor import ExecutorConfig

    kind, jobs, address = kw.pop("executor", None), kw.pop("jobs", None), kw.pop("ray_address", None)
    if kind is None and jobs is None and address is None:
        return None
    if jobs is not None and kind == "ray":
        raise UsageError("--jobs is for --executor local (a Ray cluster's CPUs decide)", "drop --jobs")
    return ExecutorConfig(kind or ("ray" if address else "local"), jobs, address)  # type: ignore[arg-type]
