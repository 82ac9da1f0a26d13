"""STAND-IN FOR adb, NOT adb. Test scaffolding only.

Used where the real adb cannot produce the case on a machine with no phone: several devices, an
unauthorized or offline device, a hung call, a binary the phone cannot execute, and benchmark_model
output. It prints adb's own wording (AOSP adb/transport.cpp; the ``error: `` prefix of Debian's adb
29, see tests/data/android/SOURCE.md) and replays real benchmark_model outputs kept in
tests/data/android. The real adb is tested in test_adb_real.py.

A scenario is a JSON file named by $EDGEQ_STANDIN_ADB_SCENARIO:

    devices:    list of [serial, state, extra] as ``adb devices -l`` would list them
    getprop:    {name: value} for ``adb shell getprop``
    benchmark:  {delegate: path of a recorded output}; the delegate is read from the flags
    exit_codes: {delegate: exit code} (default: 1 when the output says "Benchmarking failed.", else 0)
    hang:       verbs that never return: "devices", "getprop", "push", "benchmark"
    exec_error: a line the phone's shell prints instead of running the binary (wrong ABI)
    fail_shell: adb's own error for every shell/push (a phone that locked or left mid-run)
    log:        a file where every call's argv is appended as one JSON line
    pidfile:    a file where this process writes its PID before hanging
"""

from __future__ import annotations

import json
import os
import re
import sys
import time

UNAUTHORIZED = (
    "error: device unauthorized.\n"
    "This adb server's $ADB_VENDOR_KEYS is not set\n"
    "Try 'adb kill-server' if that seems wrong.\n"
    "Otherwise check for a confirmation dialog on your device."
)
REMOTE_PID = 4242


def hang(scenario: dict) -> None:
    if scenario.get("pidfile"):
        with open(scenario["pidfile"], "w") as fh:
            fh.write(str(os.getpid()))
    sys.stdout.flush()
    time.sleep(3600)


def delegate_of(command: str) -> str:
    if "--use_nnapi=true" in command:
        return "nnapi"
    if "--use_gpu=true" in command:
        return "gpu"
    if "--use_xnnpack=true" in command:
        return "xnnpack"
    return "cpu"


def main(argv: list[str]) -> int:
    scenario = json.load(open(os.environ["EDGEQ_STANDIN_ADB_SCENARIO"]))
    if scenario.get("log"):
        with open(scenario["log"], "a") as fh:
            fh.write(json.dumps(argv) + "\n")
    serial = None
    if argv[:1] == ["-s"]:
        serial, argv = argv[1], argv[2:]
    verb, rest = (argv[0], argv[1:]) if argv else ("", [])
    devices = scenario.get("devices", [])

    if verb == "devices":
        if "devices" in scenario.get("hang", []):
            hang(scenario)
        print("List of devices attached")
        for d_serial, state, extra in devices:
            line = f"{d_serial:<22} {state}" if "-l" in rest else f"{d_serial}\t{state}"
            print(line + (f" {extra}" if extra and "-l" in rest else ""))
        print()
        return 0

    # every other verb needs one device, chosen the way acquire_one_transport() does
    if serial is None:
        if not devices:
            print("error: no devices/emulators found", file=sys.stderr)
            return 1
        if len(devices) > 1:
            print("error: more than one device/emulator", file=sys.stderr)
            return 1
        serial = devices[0][0]
    match = [d for d in devices if d[0] == serial]
    if not match:
        print(f"error: device '{serial}' not found", file=sys.stderr)
        return 1
    state = match[0][1]
    if state == "unauthorized":
        print(UNAUTHORIZED, file=sys.stderr)
        return 1
    if state == "offline":
        print("error: device offline", file=sys.stderr)
        return 1
    if scenario.get("fail_shell") and verb in ("shell", "push"):
        print(scenario["fail_shell"], file=sys.stderr)
        return 1

    if verb == "push":
        if "push" in scenario.get("hang", []):
            hang(scenario)
        return 0
    if verb != "shell":
        print(f"stand-in adb: verb {verb!r} not modelled", file=sys.stderr)
        return 1
    command = " ".join(rest)
    if command == "getprop":
        if "getprop" in scenario.get("hang", []):
            hang(scenario)
        for name, value in scenario.get("getprop", {}).items():
            print(f"[{name}]: [{value}]")
        return 0
    if "benchmark_model" in command and "--graph=" in command:
        if command.startswith("echo EDGEQ_PID=$$;"):
            print(f"EDGEQ_PID={REMOTE_PID}")
        if scenario.get("exec_error"):
            print(scenario["exec_error"], file=sys.stderr)
            return 126
        if "benchmark" in scenario.get("hang", []):
            hang(scenario)
        delegate = delegate_of(command)
        path = scenario.get("benchmark", {}).get(delegate)
        if path is None:
            print("Benchmarking failed.")
            return 1
        text = open(path).read()
        sys.stdout.write(text)
        code = scenario.get("exit_codes", {}).get(delegate)
        if code is None:
            code = 1 if re.search(r"Benchmarking failed", text) else 0
        return int(code)
    return 0  # mkdir, chmod, rm, kill: nothing to say, as on a phone


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
