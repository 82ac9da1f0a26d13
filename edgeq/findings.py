"""What a target found about a model, as typed data from the target to the report.

A target's check, compile and benchmark each return :class:`Findings`; the build merges them (a later
stage's figure replaces an earlier one's: the compiler's placement over the check's prediction, a linked
firmware's measured flash over the check's estimate), writes them to the manifest with
:meth:`Findings.to_dict`, and the report and the CLI read them back with :meth:`Findings.from_dict` and judge
them with one function (:func:`edgeq.verdict.judge`). Nothing outside ``edgeq/targets`` reads a target's
private keys, and no one tells a warning from a note by its words: every message carries its level.

Every figure carries its basis: *measured* (and where, and how it got here: "over SSH"), *compiled* (a
compiler's report), *predicted* (by which rule), or *estimated* (how, with what error). A core module: it
imports nothing of edgeq, so targets, the build and the report can all share it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

FINDINGS_FORMAT = 1


class Level(enum.StrEnum):
    """How much a message matters: a neutral fact, a problem a person should read, a failure."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class Basis(enum.StrEnum):
    """What a figure rests on, strongest first."""

    MEASURED = "measured"  # run and counted or timed (``where`` says on what)
    COMPILED = "compiled"  # reported by the target's compiler (edgetpu_compiler, Vela, the linker)
    PREDICTED = "predicted"  # by a documented rule, without the tool (``how`` names the rule)
    ESTIMATED = "estimated"  # by a model of the hardware (``how`` says which, ``error`` how far off it may be)


@dataclass(frozen=True)
class Message:
    level: Level
    text: str

    def to_dict(self) -> dict[str, str]:
        return {"level": self.level.value, "text": self.text}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Message:
        return cls(Level(str(doc["level"])), str(doc["text"]))


def info(text: str) -> Message:
    return Message(Level.INFO, text)


def warning(text: str) -> Message:
    return Message(Level.WARNING, text)


def error(text: str) -> Message:
    return Message(Level.ERROR, text)


@dataclass(frozen=True)
class Figure:
    """One number with its unit and its basis.

    Args:
        value: the figure (``latency_ms`` as ms, sizes as bytes, counts as counts).
        unit: "ms", "bytes", "instructions", "cycles", ...
        basis: what it rests on.
        where: the device, board or machine it is about ("Pixel 7", "nrf52840", "QEMU mps2-an386 (cortex-m4)").
        how: the rule, model or method ("p50 of 50 runs", "MACs x cycles per MAC of the Cortex-M4 profile").
        error: how far off an estimate may be, in words ("within 30% on the reference models"); "" if unknown.
        via: how a measured figure reached this machine ("over SSH", "over adb"); "" when measured here.
        low, high: the range of the measurements or the estimate, when known.
    """

    value: float
    unit: str
    basis: Basis
    where: str = ""
    how: str = ""
    error: str = ""
    via: str = ""
    low: float | None = None
    high: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "unit": self.unit,
            "basis": self.basis.value,
            "where": self.where,
            "how": self.how,
            "error": self.error,
            "via": self.via,
            "low": self.low,
            "high": self.high,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Figure:
        low, high = doc.get("low"), doc.get("high")
        return cls(
            value=float(doc["value"]) if not isinstance(doc["value"], int) else doc["value"],
            unit=str(doc["unit"]),
            basis=Basis(str(doc["basis"])),
            where=str(doc.get("where") or ""),
            how=str(doc.get("how") or ""),
            error=str(doc.get("error") or ""),
            via=str(doc.get("via") or ""),
            low=None if low is None else float(low),
            high=None if high is None else float(high),
        )


@dataclass(frozen=True)
class Placement:
    """Where the ops run: ``on`` ops on the accelerator, ``off`` on the CPU.

    Args:
        accelerator: as people call it ("Edge TPU", "Ethos-U55 NPU").
        basis: COMPILED (the compiler mapped them) or PREDICTED (the check's rules).
        first_off: the first op that leaves the accelerator, and why ("MEAN: reduces over the batch"), or "".
    """

    accelerator: str
    on: int
    off: int
    basis: Basis
    first_off: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "accelerator": self.accelerator,
            "on": self.on,
            "off": self.off,
            "basis": self.basis.value,
            "first_off": self.first_off,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Placement:
        return cls(
            str(doc["accelerator"]),
            int(doc["on"]),
            int(doc["off"]),
            Basis(str(doc["basis"])),
            str(doc.get("first_off") or ""),
        )


@dataclass(frozen=True)
class Board:
    """The board a model was judged against (``--board``): its name, core as the maker writes it, title."""

    name: str
    core: str = ""  # "Cortex-M4"
    title: str = ""  # "Nordic nRF52840 DK"

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "core": self.core, "title": self.title}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Board:
        return cls(str(doc["name"]), str(doc.get("core") or ""), str(doc.get("title") or ""))


@dataclass(frozen=True)
class Fit:
    """RAM and flash against the board's limits.

    Args:
        ram: the RAM needed (bytes), with its basis; ``ram_what`` says what it counts ("arena",
            "RAM (static + stack)").
        flash: the flash needed (bytes), with its basis.
        ram_limit_bytes, flash_limit_bytes: what the board offers.
    """

    ram: Figure
    flash: Figure
    ram_limit_bytes: int
    flash_limit_bytes: int
    ram_what: str = "arena"

    @property
    def ok(self) -> bool:
        return self.ram.value <= self.ram_limit_bytes and self.flash.value <= self.flash_limit_bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "ram": self.ram.to_dict(),
            "flash": self.flash.to_dict(),
            "ram_limit_bytes": self.ram_limit_bytes,
            "flash_limit_bytes": self.flash_limit_bytes,
            "ram_what": self.ram_what,
            "ok": self.ok,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Fit:
        return cls(
            Figure.from_dict(doc["ram"]),
            Figure.from_dict(doc["flash"]),
            int(doc["ram_limit_bytes"]),
            int(doc["flash_limit_bytes"]),
            str(doc.get("ram_what") or "arena"),
        )


@dataclass(frozen=True)
class Proof:
    """A bit-exactness check: ``exact`` of ``total`` inferences matched the reference, run where."""

    exact: int
    total: int
    reference: str  # "TFLM's reference kernels"
    where: str = ""  # "QEMU mps2-an386 (Cortex-M4)"

    @property
    def ok(self) -> bool:
        return self.total > 0 and self.exact == self.total

    def to_dict(self) -> dict[str, Any]:
        return {"exact": self.exact, "total": self.total, "reference": self.reference, "where": self.where}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Proof:
        return cls(int(doc["exact"]), int(doc["total"]), str(doc["reference"]), str(doc.get("where") or ""))


@dataclass(frozen=True)
class Findings:
    """Everything a target's stage found, typed.

    Args:
        placement: ops on and off the accelerator; None for a target without one.
        no_accelerator: for a target without one, what runs the ops ("all ops on the Cortex-M4",
            "delegates GPU, NNAPI: which one runs is decided on the phone"); "" otherwise.
        board: the board judged against; None without one.
        fit: RAM and flash against the board; None without limits.
        latency: the latency on the target (ms), measured or estimated.
        instructions: instructions per inference where counted (the generated C under QEMU).
        proof: a bit-exactness proof, where one ran.
        memory: other named figures (bytes) a person looks at for a why ("parameters on the Edge TPU").
        messages: what the stage says, each with its level.
    """

    placement: Placement | None = None
    no_accelerator: str = ""
    board: Board | None = None
    fit: Fit | None = None
    latency: Figure | None = None
    instructions: Figure | None = None
    proof: Proof | None = None
    memory: Mapping[str, Figure] = field(default_factory=dict)
    messages: tuple[Message, ...] = ()

    def infos(self) -> list[str]:
        return [m.text for m in self.messages if m.level == Level.INFO]

    def warnings(self) -> list[str]:
        return [m.text for m in self.messages if m.level != Level.INFO]

    def then(self, later: Findings) -> Findings:
        """These findings updated by a later stage's: each figure the later stage has replaces this one's
        (the compiler's placement over the prediction, a measured fit over an estimate); memory figures
        merge by name; messages add up, once each."""
        seen = set(self.messages)
        return Findings(
            placement=later.placement or self.placement,
            no_accelerator=later.no_accelerator or self.no_accelerator,
            board=later.board or self.board,
            fit=later.fit or self.fit,
            latency=later.latency or self.latency,
            instructions=later.instructions or self.instructions,
            proof=later.proof or self.proof,
            memory={**self.memory, **later.memory},
            messages=self.messages + tuple(m for m in later.messages if m not in seen),
        )

    def with_messages(self, messages: Iterable[Message]) -> Findings:
        return replace(self, messages=self.messages + tuple(messages))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FINDINGS_FORMAT,
            "placement": self.placement.to_dict() if self.placement else None,
            "no_accelerator": self.no_accelerator,
            "board": self.board.to_dict() if self.board else None,
            "fit": self.fit.to_dict() if self.fit else None,
            "latency": self.latency.to_dict() if self.latency else None,
            "instructions": self.instructions.to_dict() if self.instructions else None,
            "proof": self.proof.to_dict() if self.proof else None,
            "memory": {k: f.to_dict() for k, f in self.memory.items()},
            "messages": [m.to_dict() for m in self.messages],
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Findings:
        def opt(key: str, parse: Any) -> Any:
            value = doc.get(key)
            return None if value is None else parse(value)

        return cls(
            placement=opt("placement", Placement.from_dict),
            no_accelerator=str(doc.get("no_accelerator") or ""),
            board=opt("board", Board.from_dict),
            fit=opt("fit", Fit.from_dict),
            latency=opt("latency", Figure.from_dict),
            instructions=opt("instructions", Figure.from_dict),
            proof=opt("proof", Proof.from_dict),
            memory={str(k): Figure.from_dict(v) for k, v in (doc.get("memory") or {}).items()},
            messages=tuple(Message.from_dict(m) for m in doc.get("messages") or ()),
        )


NONE = Findings()
