"""Running Arm's Vela compiler (PyPI ``ethos-u-vela``) as a subprocess, and its configurations as data.

The accelerators come from Vela's own ``Accelerator`` enum and the system configurations and memory
modes from the ``vela.ini`` it ships, so edgeq offers exactly what the installed Vela accepts.
"""

from __future__ import annotations

import configparser
import importlib.metadata
import importlib.util
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from edgeq import procs
from edgeq.errors import BadInput, ConversionFailed, Unavailable, UsageError

INSTALL_HINT = "pip install ethos-u-vela"
CONFIG_FILE = "Arm/vela.ini"
DEFAULT_ACCELERATOR = "ethos-u55-128"
DEFAULT_TIMEOUT_S = 600.0
OPTIMISE = ("Performance", "Size")

# Accelerators Vela 5.2 accepts (--accelerator-config); the installed Vela's enum wins when present.
ACCELERATORS = (
    "ethos-u55-32",
    "ethos-u55-64",
    "ethos-u55-128",
    "ethos-u55-256",
    "ethos-u65-256",
    "ethos-u65-512",
    "ethos-u85-128",
    "ethos-u85-256",
    "ethos-u85-512",
    "ethos-u85-1024",
    "ethos-u85-2048",
)

# A system configuration and memory mode per NPU family, from Arm/vela.ini: the Corstone-300 style
# U55 system (NPU at 500 MHz, SRAM + off-chip flash), U65 and U85 with DRAM behind a dedicated SRAM.
FAMILY_DEFAULTS = {
    "ethos-u55": ("Ethos_U55_High_End_Embedded", "Shared_Sram"),
    "ethos-u65": ("Ethos_U65_High_End", "Dedicated_Sram"),
    "ethos-u85": ("Ethos_U85_SYS_DRAM_Mid", "Dedicated_Sram"),
}


def available() -> bool:
    return importlib.util.find_spec("ethosu.vela") is not None


def version() -> str | None:
    try:
        return importlib.metadata.version("ethos-u-vela")
    except importlib.metadata.PackageNotFoundError:
        return None


def command() -> list[str]:
    """How to start Vela: this interpreter's ``-m ethosu.vela`` (the module the ``vela`` script runs).

    Raises:
        Unavailable: ethos-u-vela is not installed.
    """
    if not available():
        raise Unavailable("Vela (ethos-u-vela) is not installed", INSTALL_HINT)
    return [sys.executable, "-m", "ethosu.vela"]


@cache
def accelerators() -> tuple[str, ...]:
    try:
        from ethosu.vela.architecture_features import Accelerator

        return tuple(a.value for a in Accelerator)
    except ImportError:
        return ACCELERATORS


@cache
def _ini_sections() -> tuple[tuple[str, ...], tuple[str, ...]]:
    spec = importlib.util.find_spec("ethosu.vela")
    if spec is None or spec.origin is None:
        return (), ()
    ini = Path(spec.origin).resolve().parents[1] / "config_files" / CONFIG_FILE
    parser = configparser.ConfigParser()
    parser.read(ini)
    systems = tuple(s.split(".", 1)[1] for s in parser.sections() if s.startswith("System_Config."))
    modes = tuple(s.split(".", 1)[1] for s in parser.sections() if s.startswith("Memory_Mode."))
    return systems, modes


def system_configs() -> tuple[str, ...]:
    return _ini_sections()[0]


def memory_modes() -> tuple[str, ...]:
    return _ini_sections()[1]


@dataclass(frozen=True)
class VelaConfig:
    """What Vela compiles for. Validates against the installed Vela; defaults follow the NPU family."""

    accelerator: str = DEFAULT_ACCELERATOR
    system_config: str | None = None
    memory_mode: str | None = None
    optimise: str = "Performance"
    timeout_s: float = DEFAULT_TIMEOUT_S

    def __post_init__(self) -> None:
        acc = (self.accelerator or DEFAULT_ACCELERATOR).lower()
        object.__setattr__(self, "accelerator", acc)
        known = accelerators()
        if acc not in known:
            raise UsageError(f"unknown Ethos-U accelerator {self.accelerator!r}", f"choose one of: {', '.join(known)}")
        family = acc.rsplit("-", 1)[0]
        sys_default, mem_default = FAMILY_DEFAULTS[family]
        object.__setattr__(self, "system_config", self.system_config or sys_default)
        object.__setattr__(self, "memory_mode", self.memory_mode or mem_default)
        systems, modes = system_configs(), memory_modes()
        if systems and self.system_config not in systems:
            raise UsageError(
                f"unknown Vela system config {self.system_config!r}", f"choose one of: {', '.join(systems)}"
            )
        if modes and self.memory_mode not in modes:
            raise UsageError(f"unknown Vela memory mode {self.memory_mode!r}", f"choose one of: {', '.join(modes)}")
        if self.optimise not in OPTIMISE:
            raise UsageError(f"unknown --optimise {self.optimise!r}", "choose Performance or Size")
        if self.timeout_s <= 0:
            raise UsageError(f"--timeout-s must be positive, got {self.timeout_s}", "e.g. --timeout-s 600")

    def flags(self) -> list[str]:
        return [
            "--accelerator-config",
            self.accelerator,
            "--config",
            CONFIG_FILE,
            "--system-config",
            str(self.system_config),
            "--memory-mode",
            str(self.memory_mode),
            "--optimise",
            self.optimise,
            "--show-cpu-operations",
            "--verbose-cycle-estimate",
        ]

    def to_dict(self) -> dict:
        return {
            "accelerator": self.accelerator,
            "system_config": self.system_config,
            "memory_mode": self.memory_mode,
            "optimise": self.optimise,
            "timeout_s": self.timeout_s,
        }


@dataclass(frozen=True)
class VelaRun:
    args: list[str]
    returncode: int
    console: str


def run(model_path: str | Path, out_dir: Path, cfg: VelaConfig) -> VelaRun:
    """Run Vela on ``model_path`` with its outputs in ``out_dir``.

    Raises:
        Unavailable: Vela is not installed.
        ConversionFailed: Vela failed or timed out (its last lines in the message and details).
    """
    out_dir = Path(out_dir).resolve()
    args = [*command(), str(Path(model_path).resolve()), "--output-dir", str(out_dir), *cfg.flags()]
    try:
        proc = procs.run(args, cfg.timeout_s, text=True, errors="replace", cwd=out_dir)
    except subprocess.TimeoutExpired as exc:
        raise ConversionFailed(
            f"Vela did not finish within {cfg.timeout_s:.0f} s", "raise --timeout-s", details={"command": args}
        ) from exc
    console = (proc.stdout or "") + (proc.stderr or "")
    if proc.returncode != 0:
        last = [ln for ln in console.strip().splitlines() if ln.strip()]
        reason = last[-1].strip() if last else f"exit status {proc.returncode}"
        # the model passed edgeq's structural checks, so a parse failure or a crash is about what its
        # tables say (shapes or options that do not fit the ops): the model is at fault, not the options
        if proc.returncode < 0 or "failed to parse tflite" in console.lower():
            raise BadInput(
                f"Vela cannot read {model_path} ({reason[:200]}): its shapes or op options do not fit its ops",
                "re-export the model with the TFLite converter; edgeq check --target cpu shows what LiteRT makes of it",
                details={"command": args, "returncode": proc.returncode, "output": "\n".join(last[-30:])},
            )
        raise ConversionFailed(
            f"Vela failed: {reason[:400]}",
            "check the options against `vela --help`, and that the model is a TFLite int8/int16 model",
            details={"command": args, "returncode": proc.returncode, "output": "\n".join(last[-30:])},
        )
    return VelaRun(args, proc.returncode, console)
