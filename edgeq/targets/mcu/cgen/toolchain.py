"""Building and running the generated project: the host's gcc, arm-none-eabi-gcc, and QEMU's Cortex-M boards.

Every function returns what it measured or raises a typed error naming the failed command; finding a
missing tool is :func:`missing`'s job, so callers can say what was not proven and why.

The tools run inside the project, build or QEMU folder on relative file names: gcc writes a source's path
into its assembler output raw (``@ 29 "path"`` before inline asm), ``-Wl,`` splits at commas and QEMU's
``-kernel`` at them too, so a folder named with a newline or a comma would break the build; no path
reaches those texts this way.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from edgeq import procs
from edgeq.errors import ConversionFailed, EnvironmentProblem, Unavailable
from edgeq.paths import no_space_where
from edgeq.targets.mcu.cgen import emit

HOST_SOURCES = emit.HOST_SOURCES
ARM_SOURCES = emit.ARM_SOURCES
# the firmware's own code and data, not the test driver
MODEL_OBJECTS = tuple(src.removesuffix(".c") + ".o" for src in ("model.c", *emit.KERNEL_SOURCES))
INSTALL = "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"
DEFAULT_TIMEOUT_S = 600.0


def missing(tools: tuple[str, ...]) -> list[str]:
    return [t for t in tools if shutil.which(t) is None]


# a tool that failed on a full disk or quota failed because of the machine, not the generated code
_NO_SPACE = ("No space left on device", "Disk quota exceeded")


def _run(cmd: list[str], cwd: Path, what: str, timeout_s: float, stdin: bytes | None = None) -> bytes:
    """Run a build tool (or the built program) in its own process group, ended as a whole on a timeout,
    Ctrl-C or SIGTERM (see :mod:`edgeq.procs`).

    Raises:
        Unavailable: the tool is not installed.
        ConversionFailed: it failed or did not finish in ``timeout_s``.
        EnvironmentProblem: it failed because the disk (or the user's quota) is full.
    """
    try:
        p = procs.run(cmd, timeout_s, cwd=cwd, input=stdin)
    except FileNotFoundError as exc:
        raise Unavailable(f"{cmd[0]} is not installed", INSTALL) from exc
    except subprocess.TimeoutExpired as exc:
        raise ConversionFailed(f"{what} timed out after {timeout_s:.0f} s", "raise --timeout-s") from exc
    if p.returncode != 0:
        text = (p.stderr or p.stdout).decode(errors="replace")
        tail = text.strip().splitlines()[-8:]
        if any(m in text for m in _NO_SPACE):
            raise EnvironmentProblem(
                f"{what} failed: No space left on device ({no_space_where(text, cwd)})",
                "free some disk space (or set TMPDIR to a roomier disk) or choose another -o",
                details={"command": cmd, "stderr": text[-4000:]},
            )
        raise ConversionFailed(
            f"{what} failed (exit {p.returncode}): {' | '.join(tail)}",
            "report this with the generated project attached",
            details={"command": cmd, "stderr": (p.stderr or b"").decode(errors="replace")[-4000:]},
        )
    return p.stdout


def host_build(project: Path, build: Path, timeout_s: float = DEFAULT_TIMEOUT_S) -> Path:
    """Compile the project with the host's gcc (-O2, C99); returns the executable."""
    project, build = project.resolve(), build.resolve()  # gcc runs in ``build``: relative paths would miss
    build.mkdir(parents=True, exist_ok=True)
    exe = build / "model_host"
    cmd = ["gcc", "-std=c99", "-O2", "-Wall", "-I", ".", *HOST_SOURCES]
    _run([*cmd, "-o", str(exe)], project, "host gcc build", timeout_s)
    return exe


def host_run(
    exe: Path, inputs: np.ndarray, out_size: int, timeout_s: float = DEFAULT_TIMEOUT_S, out_dtype: str = "int8"
) -> np.ndarray:
    """Run the host build on ``inputs`` (N x input size, the model's input type); returns N x ``out_size``
    of ``out_dtype``."""
    raw = _run([str(exe)], exe.parent, "host run", timeout_s, stdin=np.ascontiguousarray(inputs).tobytes())
    return np.frombuffer(raw, dtype=out_dtype).reshape(len(inputs), out_size)


def arm_build(project: Path, build: Path, core: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> dict:
    """Compile and link for ``core`` (a key of :data:`emit.BOARDS`); returns the ELF, map and sizes.

    Sizes come from the linked ELF (``arm-none-eabi-size``) and from the objects of the model and
    kernels alone (text + data is flash; data + bss is static RAM), so the test driver and newlib's
    semihosting I/O are reported apart.
    """
    project, build = project.resolve(), build.resolve()
    build.mkdir(parents=True, exist_ok=True)
    flags = _arm_flags(emit.BOARDS[core][1])
    objs = _arm_objects(project, build, ARM_SOURCES, flags, core, timeout_s)
    elf = build / "model.elf"
    link = [
        "arm-none-eabi-gcc",
        *flags,
        "--specs=rdimon.specs",
        "-nostartfiles",
        "-T",
        os.path.relpath(project / f"link_{core}.ld", build),
    ]
    link += ["-Wl,--gc-sections", "-Wl,-Map=model.map", *objs, "-o", elf.name]
    _run(link, build, f"arm link ({core})", timeout_s)
    elf_size = _berkeley(_run(["arm-none-eabi-size", elf.name], build, "arm-none-eabi-size", 60))
    return {
        "elf": str(elf),
        "map": str(build / "model.map"),
        "core": core,
        "elf_sections": elf_size,
        **_model_sizes(build),
    }


def _arm_flags(mcpu: str) -> list[str]:
    abi = "-mfloat-abi=" + emit.float_abi(mcpu)
    return ["-mcpu=" + mcpu, "-mthumb", abi, "-O2", "-std=c99", "-ffunction-sections", "-fdata-sections"]


def _arm_objects(
    project: Path, build: Path, sources: tuple[str, ...], flags: list[str], core: str, timeout_s: float
) -> list[str]:
    objs = []
    for src in sources:
        obj = build / (Path(src).stem + ".o")
        _run(
            ["arm-none-eabi-gcc", *flags, "-I", ".", "-c", src, "-o", str(obj)],
            project,
            f"arm-none-eabi-gcc {src} ({core})",
            timeout_s,
        )
        objs.append(obj.name)
    return objs


def _model_sizes(build: Path) -> dict:
    """Flash (text + data) and static RAM (data + bss) of the model's and kernels' objects."""
    model = {"text": 0, "data": 0, "bss": 0}
    out = _run(["arm-none-eabi-size", *MODEL_OBJECTS], build, "arm-none-eabi-size", 60)
    for line in out.decode().splitlines()[1:]:
        text, data, bss = (int(x) for x in line.split()[:3])
        model["text"] += text
        model["data"] += data
        model["bss"] += bss
    return {
        "model_flash_bytes": model["text"] + model["data"],
        "model_static_ram_bytes": model["data"] + model["bss"],
    }


def arm_objects_sizes(project: Path, build: Path, mcpu: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> dict:
    """Compile only the model and kernels for ``mcpu`` (no link, no test driver) and size them: the
    firmware's own flash and static RAM, for any Cortex-M core, with no QEMU machine needed."""
    project, build = project.resolve(), build.resolve()
    build.mkdir(parents=True, exist_ok=True)
    sources = tuple(Path(o).with_suffix(".c").name for o in MODEL_OBJECTS)
    _arm_objects(project, build, sources, _arm_flags(mcpu), mcpu, timeout_s)
    return {"mcpu": mcpu, **_model_sizes(build)}


def _berkeley(out: bytes) -> dict:
    line = out.decode().splitlines()[1].split()
    return {"text": int(line[0]), "data": int(line[1]), "bss": int(line[2])}


# Semihosting gives guest code the host's files and SYS_SYSTEM, a host shell command. The guest is edgeq's
# own generated code, but a second layer costs nothing: QEMU's seccomp sandbox forbids it to spawn a
# process (and to raise privileges), so no guest code, whatever it is, runs a command on this machine.
QEMU_SANDBOX = ["-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"]


def qemu_run(
    elf: Path,
    core: str,
    inputs: np.ndarray,
    out_size: int,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    out_dtype: str = "int8",
) -> dict:
    """Run the ELF on ``core``'s QEMU board with ``-icount shift=0``; returns outputs and instruction counts."""
    machine = emit.BOARDS[core][0]
    with tempfile.TemporaryDirectory(prefix="edgeq_qemu_") as tmp:
        work = Path(tmp)
        (work / "inputs.bin").write_bytes(np.ascontiguousarray(inputs).tobytes())
        shutil.copyfile(elf, work / "model.elf")
        cmd = ["qemu-system-arm", "-M", machine, "-nographic", "-semihosting", "-icount", "shift=0", *QEMU_SANDBOX]
        cmd += ["-monitor", "none", "-serial", "none", "-kernel", "model.elf"]
        log = _run(cmd, work, f"QEMU {machine}", timeout_s).decode(errors="replace")
        raw = (work / "outputs.bin").read_bytes() if (work / "outputs.bin").exists() else b""
    ticks = [int(m.group(2)) for m in re.finditer(r"^EQ ticks (\d+) (\d+)$", log, re.M)]
    cal = re.search(r"^EQ cal (\d+)$", log, re.M)
    stack = re.search(r"^EQ stack_used_max (\d+)$", log, re.M)
    itemsize = np.dtype(out_dtype).itemsize
    if cal is None or len(ticks) != len(inputs) or len(raw) != len(inputs) * out_size * itemsize:
        raise ConversionFailed(
            f"QEMU {machine} ran {len(ticks)} of {len(inputs)} inferences",
            "report this with the generated project attached",
            details={"log": log[-4000:]},
        )
    insns_per_tick = 2_000_000 / int(cal.group(1))
    return {
        "machine": machine,
        "outputs": np.frombuffer(raw, dtype=out_dtype).reshape(len(inputs), out_size),
        "instructions": [round(t * insns_per_tick) for t in ticks],
        "instructions_per_tick": round(insns_per_tick, 3),
        "stack_bytes": int(stack.group(1)) if stack else None,
        "per_op_log": [line for line in log.splitlines() if line.startswith("EQ op")],  # an EQ_PROFILE build's
    }
