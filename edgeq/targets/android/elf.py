"""Which Android ABI a ``benchmark_model`` binary is built for, read from its ELF header.

A binary for the wrong ABI fails on the phone with a shell message (``not executable: 64-bit ELF
file``) that does not name the fix; reading 64 bytes here lets edgeq say which binary to fetch
before anything is pushed. A dynamically linked Linux (glibc) build is refused too: Android's loader
is ``/system/bin/linker64`` (or ``linker``), and a desktop ``benchmark_model`` dies on the phone with
a confusing "No such file or directory".
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from edgeq.errors import Unavailable

# e_machine -> (ABI for a 32-bit file, ABI for a 64-bit file)
_MACHINES = {
    0x28: ("armeabi-v7a", None),  # EM_ARM
    0xB7: (None, "arm64-v8a"),  # EM_AARCH64
    0x03: ("x86", None),  # EM_386
    0x3E: (None, "x86_64"),  # EM_X86_64
    0xF3: ("riscv32", "riscv64"),  # EM_RISCV
}
PT_INTERP = 3


@dataclass(frozen=True)
class ElfInfo:
    abi: str | None  # arm64-v8a | armeabi-v7a | x86_64 | x86 | riscv64 | None (unknown machine)
    bits: int
    machine: int
    interpreter: str | None  # None for a static binary

    @property
    def is_android(self) -> bool | None:
        """True for Android's loader, False for another (glibc) loader, None when static."""
        if self.interpreter is None:
            return None
        return self.interpreter.startswith("/system/bin/linker")

    def to_dict(self) -> dict:
        return {"abi": self.abi, "bits": self.bits, "machine": self.machine, "interpreter": self.interpreter}


def read(path: str | Path) -> ElfInfo:
    """The ABI and loader of the executable at ``path``.

    Raises:
        Unavailable: not a file, or not an ELF executable.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise Unavailable(
            f"cannot read the benchmark binary {p} ({exc.strerror or exc})", "pass --benchmark-binary PATH"
        ) from exc
    if len(data) < 52 or data[:4] != b"\x7fELF":
        raise Unavailable(
            f"{p} is not an executable for Android (no ELF header)",
            "download the prebuilt android_aarch64_benchmark_model (see docs/android.md), not the APK or a script",
        )
    bits = {1: 32, 2: 64}.get(data[4])
    little = data[5] == 1
    if bits is None or not little:
        raise Unavailable(f"{p} is not a little-endian 32/64-bit ELF file", "use an Android benchmark_model build")
    machine = struct.unpack_from("<H", data, 18)[0]
    abi32, abi64 = _MACHINES.get(machine, (None, None))
    return ElfInfo(abi=abi64 if bits == 64 else abi32, bits=bits, machine=machine, interpreter=_interpreter(data, bits))


def _interpreter(data: bytes, bits: int) -> str | None:
    try:
        if bits == 64:
            phoff = struct.unpack_from("<Q", data, 32)[0]
            phentsize, phnum = struct.unpack_from("<HH", data, 54)
        else:
            phoff = struct.unpack_from("<I", data, 28)[0]
            phentsize, phnum = struct.unpack_from("<HH", data, 42)
        for i in range(phnum):
            off = phoff + i * phentsize
            p_type = struct.unpack_from("<I", data, off)[0]
            if p_type != PT_INTERP:
                continue
            if bits == 64:
                p_offset, p_filesz = (
                    struct.unpack_from("<Q", data, off + 8)[0],
                    struct.unpack_from("<Q", data, off + 32)[0],
                )
            else:
                p_offset, p_filesz = (
                    struct.unpack_from("<I", data, off + 4)[0],
                    struct.unpack_from("<I", data, off + 16)[0],
                )
            return data[p_offset : p_offset + p_filesz].split(b"\0", 1)[0].decode(errors="replace")
    except struct.error:
        return None
    return None
