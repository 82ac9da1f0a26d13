"""Fixtures for the Android target: recorded benchmark_model outputs, synthetic ELF headers, the
stand-in adb (tests/android/standin_adb.py, NOT adb) wrapped as an executable, and the real adb
with its server on a private port."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import struct
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ANDROID_DATA = HERE.parent / "data" / "android"
STANDIN = HERE / "standin_adb.py"

EM_AARCH64, EM_ARM, EM_X86_64 = 0xB7, 0x28, 0x3E


def recorded(name: str) -> Path:
    """A real benchmark_model output kept in tests/data/android (sources in SOURCE.md)."""
    path = ANDROID_DATA / name
    assert path.exists(), path
    return path


def elf_bytes(machine: int = EM_AARCH64, bits: int = 64, interp: str | None = "/system/bin/linker64") -> bytes:
    """The smallest ELF header and one PT_INTERP program header: enough for edgeq.targets.android.elf."""
    payload = (interp.encode() + b"\0") if interp else b""
    if bits == 64:
        header = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
        header += struct.pack("<HHIQQQIHHHHHH", 3, machine, 1, 0, 64, 0, 0, 64, 56, 1 if interp else 0, 0, 0, 0)
        phdr = struct.pack("<IIQQQQQQ", 3, 4, 64 + 56, 0, 0, len(payload), len(payload), 1) if interp else b""
    else:
        header = b"\x7fELF" + bytes([1, 1, 1, 0]) + bytes(8)
        header += struct.pack("<HHIIIIIHHHHHH", 3, machine, 1, 0, 52, 0, 0, 52, 32, 1 if interp else 0, 0, 0, 0)
        phdr = struct.pack("<IIIIIIII", 3, 52 + 32, 0, 0, len(payload), len(payload), 4, 1) if interp else b""
    return header + phdr + payload


@pytest.fixture
def fake_binary(tmp_path) -> Path:
    """A file with an arm64 Android ELF header standing for benchmark_model (the stand-in never runs it)."""
    path = tmp_path / "android_aarch64_benchmark_model"
    path.write_bytes(elf_bytes())
    return path


PHONE_PROPS = {  # test inputs, not a recording of a phone
    "ro.product.manufacturer": "Xiaomi",
    "ro.product.model": "Mi 11",
    "ro.product.device": "venus",
    "ro.soc.manufacturer": "Qualcomm",
    "ro.soc.model": "SM8350",
    "ro.board.platform": "lahaina",
    "ro.product.cpu.abi": "arm64-v8a",
    "ro.product.cpu.abilist": "arm64-v8a,armeabi-v7a,armeabi",
    "ro.build.version.release": "12",
    "ro.build.version.sdk": "31",
}


@pytest.fixture
def standin(tmp_path, monkeypatch):
    """``standin(**scenario)`` -> (path of an executable 'adb' that runs the stand-in, path of its call log)."""

    def make(**scenario) -> tuple[str, Path]:
        folder = tmp_path / "standin-bin"
        folder.mkdir(exist_ok=True)
        log = tmp_path / "adb-calls.jsonl"
        scenario.setdefault("log", str(log))
        scenario.setdefault(
            "devices", [["R5CR1234567", "device", "usb:1-1 product:venus model:M2011K2G device:venus transport_id:1"]]
        )
        scenario.setdefault("getprop", PHONE_PROPS)
        path = tmp_path / "scenario.json"
        path.write_text(json.dumps(scenario))
        monkeypatch.setenv("EDGEQ_STANDIN_ADB_SCENARIO", str(path))
        exe = folder / "adb"
        exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{STANDIN}" "$@"\n')
        exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return str(exe), log

    return make


def calls(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def real_adb():
    """The real adb with its server on a private port, killed at the end of the session."""
    path = shutil.which("adb")
    if path is None:
        pytest.skip("adb is not installed (Debian: apt-get install adb)")
    port = str(_free_port())
    old = os.environ.get("ANDROID_ADB_SERVER_PORT")
    os.environ["ANDROID_ADB_SERVER_PORT"] = port
    try:
        yield path
    finally:
        subprocess.run([path, "kill-server"], capture_output=True, timeout=30, check=False)
        if old is None:
            os.environ.pop("ANDROID_ADB_SERVER_PORT", None)
        else:
            os.environ["ANDROID_ADB_SERVER_PORT"] = old
