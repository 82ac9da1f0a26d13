"""The EdgeqError tree: the one place exit codes live.

Every error carries a one-line ``message`` that names the problem and a ``hint`` that
names the fix. Only the CLI turns them into exit codes; the library just raises.
"""

from __future__ import annotations

from collections.abc import Iterable

OK = 0
INTERNAL = 1
USAGE = 2
BAD_INPUT = 3
CONVERSION_FAILED = 4
UNAVAILABLE = 5
QUALITY_GATE = 6
INTERRUPTED = 130

EXIT_CODES = {
    OK: "ok",
    INTERNAL: "internal error",
    USAGE: "usage error",
    BAD_INPUT: "bad input (model, data, config)",
    CONVERSION_FAILED: "conversion or compile failed",
    UNAVAILABLE: "tool, target or device unavailable",
    QUALITY_GATE: "quality gate failed",
    INTERRUPTED: "interrupted",
}

# A sweep (several models in one build) exits with its worst model's code. Worst first: interrupted, then
# the failures in the order of the codes (a defect in edgeq, a usage error, bad input, a failed conversion,
# a missing tool or device, a missed quality gate), then ok. The lower a failure's code, the earlier in the
# chain it stops a model (bad input builds nothing; a missed gate built everything), so a partly failed
# sweep says what stopped the most work; every model's own code is in its summary row.
SEVERITY = (INTERRUPTED, INTERNAL, USAGE, BAD_INPUT, CONVERSION_FAILED, UNAVAILABLE, QUALITY_GATE, OK)


def worst_exit_code(codes: Iterable[int]) -> int:
    """The exit code of a sweep whose models ended with ``codes`` (:data:`SEVERITY`; OK for none); a code
    edgeq does not define counts as an internal error."""
    rank = {code: i for i, code in enumerate(SEVERITY)}
    known = [code if code in rank else INTERNAL for code in codes]
    return min(known, key=rank.__getitem__, default=OK)


class EdgeqError(Exception):
    """Base of every error edgeq raises on purpose."""

    exit_code = INTERNAL
    kind = "internal"

    def __init__(self, message: str, hint: str = "", details: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details or {}

    def one_line(self) -> str:
        return f"{self.message}; {self.hint}" if self.hint else self.message

    def to_dict(self) -> dict:
        return {
            "type": self.kind,
            "message": self.message,
            "hint": self.hint,
            "exit_code": self.exit_code,
            "details": self.details,
        }


class UsageError(EdgeqError):
    """Options that contradict each other or are missing."""

    exit_code = USAGE
    kind = "usage"


class BadInput(EdgeqError):
    """A model, data set or config that edgeq cannot use as given."""

    exit_code = BAD_INPUT
    kind = "bad_input"


class OutputExists(BadInput):
    kind = "output_exists"


class EnvironmentProblem(BadInput):
    """The machine, not the model or edgeq, stopped the work: a full disk, a path that cannot be written."""

    kind = "environment"


class UnsupportedOp(BadInput):
    """The runtime cannot resolve an op of the model (for example a custom op)."""

    kind = "unsupported_op"


class ConversionFailed(EdgeqError):
    """The converter or compiler failed, or produced something other than what was asked."""

    exit_code = CONVERSION_FAILED
    kind = "conversion_failed"


class Unavailable(EdgeqError):
    """A tool, target or device is not there."""

    exit_code = UNAVAILABLE
    kind = "unavailable"


class QualityGateFailed(EdgeqError):
    exit_code = QUALITY_GATE
    kind = "quality_gate"
