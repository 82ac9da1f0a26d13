"""Guest code under QEMU cannot run a command on this machine (issue #19, defence in depth).

Semihosting, which the proof and ``bench --runtime c`` use for file I/O, also offers guest code
SYS_SYSTEM: a host shell command (newlib's ``system()`` calls it). The generated code is built from
escaped text (tests/mcu/test_names_hostile.py), and QEMU runs under its seccomp sandbox with spawning
denied, so even firmware that calls ``system()`` creates nothing. The control run without the sandbox
shows the test can fail.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from edgeq.errors import EdgeqError
from edgeq.targets.mcu.cgen import generate, toolchain
from tests.adversarial import codegen

pytestmark = pytest.mark.skipif(
    not (shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")), reason="no Arm toolchain or QEMU"
)
CORE = "cortex-m4"


@pytest.fixture(scope="module")
def calls_system(tmp_path_factory):
    """An ELF whose main() asks semihosting SYS_SYSTEM to run "touch MARKER"; returns (elf, marker)."""
    tmp = tmp_path_factory.mktemp("sandbox")
    marker = tmp / "MARKER"
    project = tmp / "project"
    generate(codegen.SEED.read_bytes(), "m").write(project)
    command = f"touch {marker}"
    (project / "main_qemu.c").write_text(
        "#include <stdio.h>\n#include <stdint.h>\n"
        "extern void initialise_monitor_handles(void);\n"
        "int main(void) {\n  initialise_monitor_handles();\n"
        f'  static const char cmd[] = "{command}";\n'
        f"  uint32_t block[2] = {{(uint32_t)cmd, {len(command)}u}};\n"
        # SYS_SYSTEM (0x12) by the Thumb semihosting trap, as newlib's libgloss issues it
        '  register uint32_t r0 __asm("r0") = 0x12u;\n  register uint32_t r1 __asm("r1") = (uint32_t)block;\n'
        '  __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");\n'
        '  printf("EQ system %ld\\n", (long)r0);\n  return 0;\n}\n'
    )
    elf = toolchain.arm_build(project, tmp / "build", CORE)["elf"]
    return elf, marker


def _run(elf: str) -> None:
    with pytest.raises(EdgeqError):  # the firmware runs no inference: QEMU's run is a failed proof either way
        toolchain.qemu_run(elf, CORE, np.zeros((1, 4), dtype=np.int8), 4)


def test_guest_system_call_runs_nothing_on_the_host(calls_system):
    elf, marker = calls_system
    _run(elf)
    assert not marker.exists(), "guest code ran a host command through semihosting"


def test_without_the_sandbox_the_guest_would_run_it(calls_system, monkeypatch):
    elf, marker = calls_system
    monkeypatch.setattr(toolchain, "QEMU_SANDBOX", [])
    _run(elf)
    assert marker.exists(), "the control: without the sandbox SYS_SYSTEM reaches the host"
    marker.unlink()
