"""Running edgetpu_compiler: finding it, its version, its arguments, a subprocess with a timeout.

The compiler is a closed x86-64 binary from Coral's apt repository (package ``edgetpu-compiler``). It
writes ``<name>_edgetpu.tflite`` and ``<name>_edgetpu.log`` per model into ``-o DIR`` (segments for
``-n``: ``<name>_segment_<i>_of_<n>_edgetpu.tflite``). edgeq runs it in a fresh temporary folder inside
the output folder and moves the results into place only when the compile succeeded, so a failed or
interrupted compile leaves no half-written model behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from edgeq import procs
from edgeq.errors import ConversionFailed, Unavailable, UsageError
from edgeq.targets import toolversions
from edgeq.targets.coral import logparse, rules

EXECUTABLE = "edgetpu_compiler"
INSTALL_HINT = (
    "install edgetpu_compiler on x86-64 Debian/Ubuntu from Coral's apt repository "
    "(deb https://packages.cloud.google.com/apt coral-edgetpu-stable main; apt-get install edgetpu-compiler), "
    "pass --compiler PATH, or run the edgeq Docker image (see docs/coral.md)"
)
VERSION_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class CompileConfig:
    """Options of one edgetpu_compiler call; the compiler's flags are in brackets.

    Args:
        min_runtime_version: lowest Edge TPU runtime the model must run on [-m].
        enable_multiple_subgraphs: let the compiler make several Edge TPU subgraphs, experimental [-a].
        search_delegate: on failure, retry with the graph cut earlier [-d].
        delegate_search_step: the step of that search [-k]; needs search_delegate.
        intermediate_tensors: tensor names that end the Edge TPU part [-i].
        num_segments: split into segments for pipelining [-n].
        compiler_timeout_sec: the compiler's own timeout [-t] (its default is 180 s).
        timeout_s: edgeq's timeout on the whole subprocess.
        compiler: the executable (default: ``edgetpu_compiler`` on PATH).
        require_compiler: a missing compiler is an error instead of a skipped step.
        overwrite: replace existing outputs.
    """

    min_runtime_version: int | None = None
    enable_multiple_subgraphs: bool = False
    search_delegate: bool = False
    delegate_search_step: int | None = None
    intermediate_tensors: tuple[str, ...] = ()
    num_segments: int | None = None
    compiler_timeout_sec: int | None = None
    timeout_s: float = 600.0
    compiler: str | None = None
    require_compiler: bool = False
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.min_runtime_version is not None and self.min_runtime_version not in rules.KNOWN_RUNTIME_VERSIONS:
            raise UsageError(
                f"unknown Edge TPU runtime version {self.min_runtime_version}",
                f"choose one of {', '.join(map(str, rules.KNOWN_RUNTIME_VERSIONS))}",
            )
        if self.delegate_search_step is not None and not self.search_delegate:
            raise UsageError("--delegate-search-step needs --search-delegate", "add -d / --search-delegate")
        if self.delegate_search_step is not None and self.delegate_search_step < 1:
            raise UsageError("--delegate-search-step must be at least 1", "e.g. --delegate-search-step 10")
        if self.num_segments is not None and self.num_segments < 1:
            raise UsageError("--num-segments must be at least 1", "e.g. --num-segments 2")
        if self.compiler_timeout_sec is not None and self.compiler_timeout_sec < 1:
            raise UsageError("--compiler-timeout-sec must be at least 1", "e.g. --compiler-timeout-sec 600")
        if self.timeout_s <= 0:
            raise UsageError("--timeout-s must be positive", "e.g. --timeout-s 600")

    @property
    def runtime_version(self) -> int:
        return self.min_runtime_version or rules.DEFAULT_RUNTIME_VERSION

    @property
    def changes_partitioning(self) -> bool:
        """Options under which the single-partition prediction is not expected to match."""
        return bool(self.enable_multiple_subgraphs or self.search_delegate or self.intermediate_tensors)

    def flags(self) -> list[str]:
        args = ["-s"]  # always: the per-op table on the console as well as in the .log
        if self.min_runtime_version is not None:
            args += ["-m", str(self.min_runtime_version)]
        if self.enable_multiple_subgraphs:
            args.append("-a")
        if self.search_delegate:
            args.append("-d")
        if self.delegate_search_step is not None:
            args += ["-k", str(self.delegate_search_step)]
        if self.intermediate_tensors:
            args += ["-i", ",".join(self.intermediate_tensors)]
        if self.num_segments is not None:
            args += ["-n", str(self.num_segments)]
        if self.compiler_timeout_sec is not None:
            args += ["-t", str(self.compiler_timeout_sec)]
        return args

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["intermediate_tensors"] = list(self.intermediate_tensors)
        return d


def find(explicit: str | None = None) -> str | None:
    """The compiler's path: ``explicit`` (which must exist), else ``edgetpu_compiler`` on PATH, else None.

    Raises:
        Unavailable: ``explicit`` is not an executable file.
    """
    if explicit is None:
        return shutil.which(EXECUTABLE)
    p = Path(explicit)
    found = shutil.which(explicit) if p.parent == Path(".") and not p.exists() else None
    if found:
        return found
    if not p.is_file():
        raise Unavailable(f"compiler not found: {explicit}", INSTALL_HINT)
    if not os.access(p, os.X_OK):
        raise Unavailable(f"compiler is not executable: {explicit}", f"chmod +x {explicit}")
    return str(p.resolve())  # "./edgetpu_compiler": run that file, not a search of PATH, from any cwd


@dataclass(frozen=True)
class Run:
    args: list[str]
    returncode: int
    output: str  # stdout then stderr
    duration_s: float


def run(args: list[str], timeout_s: float, cwd: str | None = None) -> Run:
    """Run the compiler in its own process group; kill the group on timeout.

    Raises:
        ConversionFailed: it did not finish within ``timeout_s``.
        Unavailable: it could not be started (not an x86-64 Linux binary, permissions).
    """
    start = time.monotonic()
    try:
        proc = procs.run(
            args,
            timeout_s,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",  # the compiler forks a child ("Compilation child process ..."): procs ends both
        )
    except subprocess.TimeoutExpired as exc:
        raise ConversionFailed(
            f"edgetpu_compiler did not finish within {timeout_s:g} s",
            "raise --timeout-s (and the compiler's own --compiler-timeout-sec), or simplify the model",
            details={"command": args, "output": tail(_text(exc.output) + _text(exc.stderr))},
        ) from None
    except OSError as exc:
        raise Unavailable(f"cannot run {args[0]}: {exc.strerror or exc}", INSTALL_HINT) from exc
    return Run(args, proc.returncode, str(proc.stdout) + str(proc.stderr), time.monotonic() - start)


def _text(out: str | bytes | None) -> str:
    return out.decode(errors="replace") if isinstance(out, bytes) else out or ""


def tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def version(compiler: str, timeout_s: float = VERSION_TIMEOUT_S) -> str:
    """``edgetpu_compiler --version`` -> "16.0.384591198" ("unknown" when it prints something else); asked
    once per process per executable file (a build's cache key and its compile share the answer).

    Raises:
        Unavailable: it cannot be started or does not answer.
    """
    try:
        text = toolversions.answer(compiler, ("--version",), min(timeout_s, VERSION_TIMEOUT_S))
    except subprocess.TimeoutExpired:
        raise Unavailable(f"{compiler} --version did not answer", INSTALL_HINT) from None
    except OSError as exc:
        raise Unavailable(f"cannot run {compiler}: {exc.strerror or exc}", INSTALL_HINT) from exc
    return parse_version(text)


def parse_version(text: str) -> str:
    """The version in the compiler's ``--version`` answer ("unknown" when it is not there)."""
    return logparse.parse_console(text).version or "unknown"


def failure_of(run_: Run, report: logparse.ConsoleReport) -> str | None:
    """Why a finished run is a failure, in the compiler's words where it gave some; None when it succeeded."""
    if report.failure:
        errors = [e for e in report.errors if "Registration failed" not in e]
        return report.failure + (f" [{'; '.join(errors)}]" if errors else "")
    if report.succeeded is False:
        return "Compilation failed!" + (f" ({report.errors[-1]})" if report.errors else "")
    if run_.returncode != 0:
        last = next((ln for ln in reversed(run_.output.splitlines()) if ln.strip()), "")
        return f"edgetpu_compiler exited with code {run_.returncode}" + (f": {last.strip()}" if last else "")
    zero = [m.input_model or "model" for m in report.models if m.num_subgraphs == 0]
    if zero:
        return f"Number of Edge TPU subgraphs: 0 for {', '.join(zero)} (nothing runs on the Edge TPU)"
    return None


def failure_hint(message: str, cfg: CompileConfig) -> str:
    if "Model not quantized" in message or "subgraphs: 0" in message:
        hint = "quantize with --mode int8 --data CALIBRATION.npz and check with: edgeq check MODEL --target coral"
        if cfg.min_runtime_version is not None and "subgraphs: 0" in message:
            hint += f"; -m {cfg.min_runtime_version} may be too old for the model's ops"
        return hint
    if "could not be parsed" in message or "Didn't find op" in message:
        return "the model uses an op version newer than the compiler knows; re-convert with an older converter"
    if "dynamic-sized tensors" in message:
        return "quantize the float model with a static input shape (edgeq quantize FLOAT_MODEL --input-shape 1xHxWxC)"
    if "large activation tensors" in message:
        return "reduce the input resolution, or try -m with an older runtime or -a"
    return "see the compiler output in the error details; run edgeq check MODEL --target coral"
