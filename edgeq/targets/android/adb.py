"""adb, the only way edgeq talks to a phone: find it, list devices, pick one, push, shell.

Every call runs in its own process group with a timeout, and a call that does not finish is killed
with its group, so nothing hangs. adb's own error wording (``error: no devices/emulators found``,
``more than one device/emulator``, ``device unauthorized.``, ``device offline``; AOSP
``adb/transport.cpp``) is turned into typed edgeq errors that name the fix.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from edgeq import procs
from edgeq.errors import Unavailable, UsageError
from edgeq.targets.addresses import adb_serial

INSTALL_HINT = (
    "install adb (Debian/Ubuntu: apt-get install adb; elsewhere: Android SDK platform-tools) or pass --adb PATH"
)
DEFAULT_TIMEOUT_S = 60.0  # one control call (devices, getprop, push of a model, chmod)
KILL_TIMEOUT_S = 10.0
REMOTE_DIR = "/data/local/tmp/edgeq"


@dataclass(frozen=True)
class AdbRun:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    duration_s: float

    @property
    def output(self) -> str:
        return self.stdout + ("\n" if self.stdout and self.stderr else "") + self.stderr


class AdbTimeout(Exception):
    """A call did not finish in time; its process group was killed. Carries what it printed."""

    def __init__(self, args: list[str], timeout_s: float, stdout: str, stderr: str) -> None:
        super().__init__(f"{' '.join(args)} did not finish within {timeout_s:g} s")
        self.args_ = list(args)
        self.timeout_s = timeout_s
        self.stdout = stdout
        self.stderr = stderr


def find(explicit: str | None = None) -> str:
    """The adb executable: ``explicit`` (a path or a name on PATH), else ``adb`` on PATH.

    Raises:
        Unavailable: adb is not installed, or ``explicit`` is not an executable file.
    """
    if explicit:
        p = Path(explicit)
        if p.is_file():
            if not os.access(p, os.X_OK):
                raise Unavailable(f"adb is not executable: {explicit}", f"chmod +x {explicit}")
            return str(p)
        found = shutil.which(explicit) if p.parent == Path(".") else None
        if found:
            return found
        raise Unavailable(f"adb not found: {explicit}", INSTALL_HINT)
    found = shutil.which("adb")
    if found is None:
        raise Unavailable("adb is not installed (not on PATH)", INSTALL_HINT)
    return found


def run(args: list[str], timeout_s: float) -> AdbRun:
    """Run ``args`` with a timeout; on timeout kill the whole process group and raise AdbTimeout.

    Output goes to temporary files, not pipes, so a child that keeps a pipe open (the adb server
    forks one) cannot block the read, and what was printed before a timeout is kept.

    Raises:
        AdbTimeout: the call did not finish within ``timeout_s``.
        Unavailable: the executable could not be started.
    """
    start = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            proc = procs.run(args, timeout_s, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise AdbTimeout(args, timeout_s, _read(out), _read(err)) from None
        except OSError as exc:
            raise Unavailable(f"cannot run {args[0]}: {exc.strerror or exc}", INSTALL_HINT) from exc
        return AdbRun(tuple(args), proc.returncode, _read(out), _read(err), time.monotonic() - start)


def _read(fh) -> str:
    fh.seek(0)
    return fh.read().decode(errors="replace")


# --- adb's words -------------------------------------------------------------------------------

# (kind, substring of adb's message). Order matters: "device unauthorized" before "device ... not found".
_ERRORS = (
    ("multiple", "more than one device"),
    ("multiple", "more than one emulator"),
    ("unauthorized", "device unauthorized"),
    ("offline", "device offline"),
    ("no_permissions", "no permissions"),
    ("no_permissions", "insufficient permissions"),
    ("connecting", "device still connecting"),
    ("connecting", "device still authorizing"),
    ("not_found", "not found"),
    ("no_device", "no devices/emulators found"),
    ("no_device", "no devices found"),
    ("no_device", "no emulators found"),
)


def classify(text: str) -> tuple[str, str] | None:
    """The kind of adb error in ``text`` and the line that says it; None for no known error.

    Only adb's own lines count: they start with a lower-case ``error:`` or ``adb:`` (adb 29 prints
    ``error: no devices/emulators found``, newer clients ``adb: error: ...``). benchmark_model's
    ``ERROR:`` lines and the phone shell's messages are not adb errors.
    """
    for raw in text.splitlines():
        line = raw.strip()
        if not (line.startswith("error:") or line.startswith("adb:")):
            continue
        low = line.lower()
        for kind, needle in _ERRORS:
            if needle in low:
                return kind, line
    return None


@dataclass(frozen=True)
class Device:
    """One line of ``adb devices -l``."""

    serial: str
    state: str  # device | unauthorized | offline | no permissions | recovery | sideload | ...
    attrs: dict = field(default_factory=dict)  # usb, product, model, device, transport_id

    def to_dict(self) -> dict:
        return {"serial": self.serial, "state": self.state, **self.attrs}


_ATTR = re.compile(r"^(usb|product|model|device|transport_id):(.*)$")


def parse_devices(text: str) -> list[Device]:
    """Parse ``adb devices [-l]`` (``serial<TAB>state`` or ``serial   state usb:1-1 product:... transport_id:1``)."""
    devices = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("List of devices") or line.startswith("*") or line.startswith("adb"):
            continue
        parts = line.split()
        if len(parts) < 2:
            continue
        serial, rest = parts[0], line[len(parts[0]) :].strip()
        if rest.startswith("no permissions"):
            state = "no permissions"
            tail = rest.split(";", 1)[1] if ";" in rest else ""
            tail_parts = [t for t in tail.split() if _ATTR.match(t)]
        else:
            state = rest.split()[0]
            tail_parts = rest.split()[1:]
        attrs = {}
        for token in tail_parts:
            m = _ATTR.match(token)
            if m:
                attrs[m.group(1)] = m.group(2)
        devices.append(Device(serial, state, attrs))
    return devices


def parse_getprop(text: str) -> dict[str, str]:
    """``[ro.product.model]: [Pixel 7]`` lines to a dict."""
    props = {}
    for line in text.splitlines():
        m = re.match(r"^\[(.+?)\]:\s*\[(.*)\]\s*$", line.strip())
        if m:
            props[m.group(1)] = m.group(2)
    return props


def _listing(devices: list[Device]) -> str:
    return ", ".join(f"{d.serial} ({d.state})" for d in devices) or "none"


def _state_error(device: Device) -> Unavailable | None:
    """The error for a device adb lists but cannot use; None when it is ready."""
    s, state = device.serial, device.state
    if state == "device":
        return None
    if state == "unauthorized":
        return Unavailable(
            f"device {s} is unauthorized: USB debugging has not been allowed for this computer",
            "unlock the phone and accept the 'Allow USB debugging?' dialog (tick 'Always allow'); if no dialog "
            "appears, revoke USB debugging authorizations in Developer options, replug, or run adb kill-server",
            details={"serial": s, "state": state},
        )
    if state == "offline":
        return Unavailable(
            f"device {s} is offline",
            "replug the cable or run adb reconnect; if it stays offline, adb kill-server and reconnect",
            details={"serial": s, "state": state},
        )
    if state == "no permissions":
        return Unavailable(
            f"no permission to open USB device {s}",
            "add udev rules for Android phones (Debian: apt-get install android-sdk-platform-tools-common), "
            "replug, and run edgeq as a user in the plugdev group",
            details={"serial": s, "state": state},
        )
    if state in ("connecting", "authorizing"):
        return Unavailable(
            f"device {s} is still {state}", "wait a few seconds and retry", details={"serial": s, "state": state}
        )
    return Unavailable(
        f"device {s} is in '{state}' state, not running Android",
        "boot the phone into Android (not recovery, sideload or the bootloader)",
        details={"serial": s, "state": state},
    )


def error_for(kind: str, line: str, serial: str | None) -> Exception:
    """A typed edgeq error for an adb error ``kind`` (see :func:`classify`)."""
    who = f"device {serial}" if serial else "the device"
    if kind == "multiple":
        return UsageError(f"adb: {line}", "pass --serial SERIAL (adb devices -l lists them)")
    if kind == "unauthorized":
        return _state_error(Device(serial or "?", "unauthorized")) or Unavailable(line)
    if kind == "offline":
        return _state_error(Device(serial or "?", "offline")) or Unavailable(line)
    if kind == "no_permissions":
        return _state_error(Device(serial or "?", "no permissions")) or Unavailable(line)
    if kind == "connecting":
        return Unavailable(f"{who} is still connecting ({line})", "wait a few seconds and retry")
    if kind == "not_found":
        return Unavailable(f"adb: {line}", "check --serial against adb devices -l")
    return Unavailable(
        f"no Android device attached (adb: {line})",
        "connect a phone with USB debugging on (Settings > Developer options), or adb connect HOST:PORT",
    )


class Adb:
    """adb bound to one device serial (or to none, for ``devices``)."""

    def __init__(self, path: str, serial: str | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.path = path
        self.serial = adb_serial(serial)  # never a "-..." that adb would read as an option
        self.timeout_s = timeout_s

    def with_serial(self, serial: str) -> Adb:
        return Adb(self.path, serial, self.timeout_s)

    def argv(self, *args: str) -> list[str]:
        """The full command line for an adb call."""
        base = [self.path] + (["-s", self.serial] if self.serial else [])
        return base + list(args)

    def call(self, *args: str, timeout_s: float | None = None, what: str | None = None, check: bool = True) -> AdbRun:
        """Run ``adb [-s SERIAL] ARGS``.

        Raises:
            Unavailable: the call hung (killed after the timeout), or adb reported a device problem.
            UsageError: several devices and no serial.
        """
        argv = self.argv(*args)
        limit = self.timeout_s if timeout_s is None else timeout_s
        try:
            r = run(argv, limit)
        except AdbTimeout as exc:
            raise Unavailable(
                f"'{what or shlex.join(['adb', *argv[1:]])}' did not answer within {limit:g} s (killed)",
                "the phone or the adb server is unresponsive: replug the phone, or run adb kill-server and retry",
                details={"command": argv, "output": (exc.stdout + exc.stderr)[-2000:]},
            ) from None
        if check and r.returncode != 0:
            found = classify(r.output)
            if found:
                raise error_for(found[0], found[1], self.serial)
        return r

    def devices(self) -> list[Device]:
        """``adb devices -l``, parsed (this also starts the adb server when it is not running)."""
        r = self.call("devices", "-l", what="adb devices -l")
        if r.returncode != 0:
            raise Unavailable(f"adb devices failed: {r.output.strip()[-300:]}", "run adb kill-server and retry")
        return parse_devices(r.stdout)

    def select(self, serial: str | None = None) -> Device:
        """The one device to use: ``serial`` if given, else the only one attached.

        Raises:
            Unavailable: none attached, ``serial`` not attached, or the device is unauthorized,
                offline, without USB permission, or not booted into Android.
            UsageError: several devices and no ``serial``.
        """
        devices = self.devices()
        if serial:
            matches = [d for d in devices if d.serial == serial]
            if not matches:
                raise Unavailable(
                    f"device {serial!r} not found (adb lists: {_listing(devices)})",
                    "check --serial against adb devices -l"
                    if devices
                    else "connect the phone and enable USB debugging",
                    details={"devices": [d.to_dict() for d in devices]},
                )
            device = matches[0]
        elif not devices:
            raise Unavailable(
                "no Android device attached (adb devices lists none)",
                "connect a phone with USB debugging on (Settings > Developer options), or adb connect HOST:PORT",
            )
        elif len(devices) > 1:
            raise UsageError(
                f"{len(devices)} devices attached ({_listing(devices)}); edgeq benchmarks on one",
                f"pass --serial with one of: {', '.join(d.serial for d in devices)}",
                details={"devices": [d.to_dict() for d in devices]},
            )
        else:
            device = devices[0]
        problem = _state_error(device)
        if problem is not None:
            raise problem
        return device

    def getprop(self) -> dict[str, str]:
        r = self.call("shell", "getprop", what="adb shell getprop")
        if r.returncode != 0:
            raise Unavailable(f"adb shell getprop failed: {r.output.strip()[-300:]}", "check the device with adb shell")
        return parse_getprop(r.stdout)

    def shell(self, command: str, timeout_s: float | None = None, what: str | None = None) -> AdbRun:
        """``adb shell COMMAND`` (one string, quoted for the device's sh)."""
        return self.call("shell", command, timeout_s=timeout_s, what=what)

    def push(self, local: str, remote: str, timeout_s: float | None = None) -> AdbRun:
        r = self.call("push", local, remote, timeout_s=timeout_s, what=f"adb push {Path(local).name}")
        if r.returncode != 0:
            raise Unavailable(
                f"adb push {local} {remote} failed: {r.output.strip()[-300:]}",
                "check free space on the phone (adb shell df /data/local/tmp) and the connection",
                details={"command": list(r.args), "output": r.output[-2000:]},
            )
        return r
