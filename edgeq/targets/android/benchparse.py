"""Reading what TFLite's ``benchmark_model`` prints, in every spelling it has published.

The tool's output changed over the years; each spelling below was seen in a real, public run
(tests/data/android/SOURCE.md lists them):

- the header: ``Num threads: [4]``, ``NNAPI accelerators available: [qti-default,qti-dsp,...]``;
  newer builds prefix every line with ``INFO:``/``WARNING:``/``ERROR:``/``VERBOSE:``, the Android
  benchmark app writes them to logcat (``05-31 10:31:13.022 21767 21767 I tflite  : ...``), and
  documentation often indents them;
- one statistics line per phase after ``Running benchmark for at least N iterations ...``:
  ``count=50 first=249042 curr=250889 min=247067 max=254474 avg=249684 std=1442`` (microseconds),
  ``count=1 curr=637079`` when every run took the same time, ``p5=... median=... p95=...`` appended
  by newer builds, and C++ stream formatting that turns large numbers into ``1.24027e+06``;
- the summary ``Inference timings in us: Init: X, First inference: Y, Warmup (avg): Z, Inference
  (avg): W`` (before 2019: ``Average inference timings in us: Warmup: Z, Init: X, no stats: W``);
- memory as ``Peak memory footprint (MB): init=a overall=b`` (older) or ``Memory footprint delta from
  the start of the tool (MB): init=a overall=b`` plus ``Overall peak memory footprint (MB) via
  periodic monitoring: p``;
- what each delegate did: ``Explicitly applied NNAPI delegate, and the model graph will be
  partially executed by the delegate w/ 3 delegate kernels.``, ``Though NNAPI delegate is
  explicitly applied, the model graph will not be executed by the delegate.``, ``Failed to apply
  NNAPI delegate.``, ``Replacing 31 out of 31 node(s) with delegate (TfLiteNnapiDelegate) node,
  yielding 1 partitions``;
- ``--enable_op_profiling=true`` tables (``Run Order``, ``Top by Computation Time``, ``Summary by
  node type``) for initialization and for the regular runs, tab- or space-separated.

Nothing here runs anything; :func:`parse` takes text and returns a frozen :class:`BenchmarkOutput`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf)"
_LOGCAT = re.compile(r"^\d\d-\d\d\s+\d\d:\d\d:\d\d\.\d+\s+\d+\s+\d+\s+([VDIWEF])\s+[^:]*?\s*:\s?")
_LOGCAT_LEVELS = {"E": "ERROR", "F": "ERROR", "W": "WARNING"}
_LEVEL = re.compile(r"^(INFO|WARNING|WARN|ERROR|VERBOSE|DEBUG):\s?")
_PARAM = re.compile(r"^([^\[\]=:][^\[\]=]*?)\s*:\s*\[(.*)\]\s*$")
_RUNNING = re.compile(r"Running benchmark for at least (\d+) iterations")
_KV = re.compile(rf"(\w+)=({_NUM})")
_TIMINGS = re.compile(
    rf"Inference timings in us:\s*Init:\s*({_NUM}),\s*First inference:\s*({_NUM}),\s*"
    rf"Warmup \(avg\):\s*({_NUM}),\s*Inference \(avg\):\s*({_NUM})"
)
_OLD_TIMINGS = re.compile(
    rf"Average inference timings in us:\s*Warmup:\s*({_NUM}),\s*Init:\s*({_NUM}),\s*no stats:\s*({_NUM})"
)
_MEM_PEAK_OLD = re.compile(rf"Peak memory footprint \(MB\):\s*init=({_NUM})\s+overall=({_NUM})")
_MEM_DELTA = re.compile(
    rf"Memory footprint delta from the start of the tool \(MB\):\s*init=({_NUM})\s+overall=({_NUM})"
)
_MEM_MONITOR = re.compile(rf"Overall peak memory footprint \(MB\) via periodic monitoring:\s*({_NUM})")
_MODEL_SIZE = re.compile(rf"The input model file size \(MB\):\s*({_NUM})")
_SESSION = re.compile(rf"Initialized session in\s*({_NUM})\s*ms")
_VERSION = re.compile(r"Tensorflow Version\s*:\s*(\S+)")
_APPLIED = re.compile(
    r"Explicitly applied (\w+) delegate, and the model graph will be (completely|partially) executed"
    r"(?: by the delegate)?(?: w/ (\d+) delegate kernels)?"
)
_NOT_EXECUTED = re.compile(r"Though (\w+) delegate is explicitly applied, the model graph will not be executed")
_FAILED_APPLY = re.compile(r"Failed to apply (\w+) delegate")
_CREATED = re.compile(r"(?:Created TensorFlow Lite (?:(\w+) )?delegate for (\w+)|(\w+) delegate created)")
_REPLACING = re.compile(
    r"Replacing (\d+)(?: out of (\d+))? node\(s\) with delegate \(([^)]+)\) node, yielding (\d+) partitions"
)
_GPU_SPLIT = re.compile(
    r"(?:First )?(\d+) operations will run on the GPU, and the remaining (\d+) (?:operations will run )?on the CPU"
)
_GPU_UNSUPPORTED = re.compile(r"operations are not supported by GPU delegate")
_GPU_OP_LINE = re.compile(r"^([A-Z][A-Z0-9_]*):\s*(.*?)\s*$")
_UNCONSUMED = re.compile(r"Unconsumed cmdline flags:\s*(.*)")
_PROFILE_HEAD = re.compile(r"^(Operator-wise )?Profiling Info for (.*?):?\s*$")
_TABLE_TITLE = re.compile(r"^=+\s*(.*?)\s*=+$")
_TIMINGS_PROFILE = re.compile(r"^Timings \(microseconds\):\s*(.*)$")
_NODES_OBSERVED = re.compile(r"^(\d+) nodes observed")

# The delegate names benchmark_model prints, keyed by the flag that asks for them.
DELEGATE_NAMES = {"NNAPI": "nnapi", "GPU": "gpu", "XNNPACK": "xnnpack", "EXTERNAL": "external", "HEXAGON": "hexagon"}
# The node types delegate partitions show up as in op-profiling tables.
DELEGATE_NODE_TYPES = {
    "TfLiteNnapiDelegate": "nnapi",
    "TfLiteGpuDelegateV2": "gpu",
    "TfLiteGpuDelegate": "gpu",
    "TfLiteXNNPackDelegate": "xnnpack",
    "TfLiteHexagonDelegate": "hexagon",
}
# Shell words that mean the binary cannot run on this device at all (wrong ABI, not a binary).
EXEC_FAILURES = (
    "not executable: 64-bit ELF file",
    "not executable: 32-bit ELF file",
    "not executable: magic",
    "Exec format error",
    "cannot execute binary file",
    "CANNOT LINK EXECUTABLE",
    "syntax error: unexpected",
)


def _num(text: str) -> float:
    return float(text)


def clean_line(raw: str) -> tuple[str, str]:
    """Strip a logcat prefix, indentation and the ``INFO:``-style level; return (level, text)."""
    line = raw.rstrip("\r\n")
    logcat = _LOGCAT.match(line)
    level = ""
    if logcat:
        level = _LOGCAT_LEVELS.get(logcat.group(1), "")
        line = line[logcat.end() :]
    line = line.strip()
    m = _LEVEL.match(line)
    if m:
        level = "WARNING" if m.group(1) == "WARN" else m.group(1)
        return level, line[m.end() :].strip()
    return level, line


@dataclass(frozen=True)
class RunStats:
    """One ``count=... first=... curr=... min=... max=... avg=... std=...`` line, in microseconds."""

    count: int
    first_us: float | None = None
    curr_us: float | None = None
    min_us: float | None = None
    max_us: float | None = None
    avg_us: float | None = None
    std_us: float | None = None
    p5_us: float | None = None
    median_us: float | None = None
    p95_us: float | None = None
    all_same: bool = False
    requested_runs: int | None = None  # N of "Running benchmark for at least N iterations"

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


def parse_stats(text: str, requested_runs: int | None = None) -> RunStats | None:
    """A statistics line (``count=...``) into :class:`RunStats`; None when it is not one."""
    pairs = {k: _num(v) for k, v in _KV.findall(text)}
    if "count" not in pairs:
        return None
    count = int(pairs["count"])
    all_same = "(all same)" in text or (count > 0 and "min" not in pairs)
    curr = pairs.get("curr")
    if all_same and curr is not None:
        # every run took curr us: min = max = avg = curr, std 0 (the tool prints only curr)
        return RunStats(
            count=count,
            first_us=pairs.get("first", curr),
            curr_us=curr,
            min_us=curr,
            max_us=curr,
            avg_us=curr,
            std_us=0.0,
            p5_us=pairs.get("p5"),
            median_us=pairs.get("median"),
            p95_us=pairs.get("p95"),
            all_same=True,
            requested_runs=requested_runs,
        )
    return RunStats(
        count=count,
        first_us=pairs.get("first"),
        curr_us=curr,
        min_us=pairs.get("min"),
        max_us=pairs.get("max"),
        avg_us=pairs.get("avg"),
        std_us=pairs.get("std"),
        p5_us=pairs.get("p5"),
        median_us=pairs.get("median"),
        p95_us=pairs.get("p95"),
        all_same=False,
        requested_runs=requested_runs,
    )


@dataclass(frozen=True)
class DelegateVerdict:
    """What benchmark_model said about one delegate it was asked to apply."""

    name: str  # nnapi | gpu | xnnpack | external | hexagon (lower case)
    created: bool = False
    applied: str = "unknown"  # all | partial | none | failed | unknown
    kernels: int | None = None  # "w/ N delegate kernels" (partitions run by the delegate)
    nodes_delegated: int | None = None  # "Replacing N out of M node(s)"
    nodes_total: int | None = None
    partitions: int | None = None
    gpu_ops: int | None = None  # "N operations will run on the GPU, and the remaining M ... on the CPU"
    cpu_ops: int | None = None
    unsupported_ops: tuple = ()  # ({"op": "UNPACK", "reason": "Operation is not supported."}, ...)

    @property
    def falls_back_to_cpu(self) -> bool | None:
        """Whether some (partial) or all (none) of the model runs on the CPU instead."""
        if self.applied in ("partial", "none"):
            return True
        if self.applied == "all":
            return False
        return None

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["unsupported_ops"] = [dict(u) for u in self.unsupported_ops]
        d["falls_back_to_cpu"] = self.falls_back_to_cpu
        return d


@dataclass(frozen=True)
class ProfileRow:
    node_type: str
    values: dict  # column name (lower case, no brackets) -> float or str
    name: str = ""

    def to_dict(self) -> dict:
        return {"node_type": self.node_type, **self.values, **({"name": self.name} if self.name else {})}


@dataclass(frozen=True)
class ProfileSection:
    """One op-profiling block: its tables by title, the profiler's run totals, nodes observed."""

    title: str  # "Benchmark Initialization" | "Regular Benchmark Runs" | ...
    tables: dict = field(default_factory=dict)  # "Run Order" -> tuple[ProfileRow, ...]
    timings: RunStats | None = None
    nodes_observed: int | None = None

    @property
    def by_node_type(self) -> tuple[ProfileRow, ...]:
        return self.tables.get("Summary by node type", ())

    @property
    def run_order(self) -> tuple[ProfileRow, ...]:
        return self.tables.get("Run Order", ())

    def to_dict(self) -> dict:
        return {
            "title": self.title,
            "tables": {k: [r.to_dict() for r in rows] for k, rows in self.tables.items()},
            "timings": self.timings.to_dict() if self.timings else None,
            "nodes_observed": self.nodes_observed,
        }


@dataclass(frozen=True)
class BenchmarkOutput:
    """Everything :func:`parse` could read from one benchmark_model run (times in microseconds)."""

    params: dict  # header "Name: [value]" lines
    tflite_version: str | None
    nnapi_accelerators: tuple[str, ...]
    model_size_mb: float | None
    init_session_ms: float | None
    warmup: RunStats | None
    inference: RunStats | None
    init_us: float | None
    first_inference_us: float | None
    warmup_avg_us: float | None
    inference_avg_us: float | None
    memory: dict
    delegates: tuple[DelegateVerdict, ...]
    profiles: tuple[ProfileSection, ...]
    errors: tuple[str, ...]
    warnings: tuple[str, ...]
    unconsumed_flags: tuple[str, ...]
    failed: bool  # "Benchmarking failed." or a delegate that could not be applied
    failure: str | None  # the line that says why
    exec_failure: str | None  # the shell could not run the binary (wrong ABI, not a binary)

    @property
    def has_timings(self) -> bool:
        return self.inference_avg_us is not None or (self.inference is not None and self.inference.avg_us is not None)

    def delegate(self, name: str) -> DelegateVerdict | None:
        for d in self.delegates:
            if d.name == name:
                return d
        return None

    def profile(self, title_part: str) -> ProfileSection | None:
        for p in self.profiles:
            if title_part.lower() in p.title.lower():
                return p
        return None

    def to_dict(self) -> dict:
        return {
            "params": dict(self.params),
            "tflite_version": self.tflite_version,
            "nnapi_accelerators": list(self.nnapi_accelerators),
            "model_size_mb": self.model_size_mb,
            "init_session_ms": self.init_session_ms,
            "warmup": self.warmup.to_dict() if self.warmup else None,
            "inference": self.inference.to_dict() if self.inference else None,
            "init_us": self.init_us,
            "first_inference_us": self.first_inference_us,
            "warmup_avg_us": self.warmup_avg_us,
            "inference_avg_us": self.inference_avg_us,
            "memory": dict(self.memory),
            "delegates": [d.to_dict() for d in self.delegates],
            "profiles": [p.to_dict() for p in self.profiles],
            "errors": list(self.errors),
            "warnings": list(self.warnings),
            "unconsumed_flags": list(self.unconsumed_flags),
            "failed": self.failed,
            "failure": self.failure,
            "exec_failure": self.exec_failure,
        }


class _Delegates:
    """Collects what the log says about each delegate, in the order they appear."""

    def __init__(self) -> None:
        self.order: list[str] = []
        self.info: dict[str, dict] = {}

    def get(self, raw_name: str) -> dict:
        name = DELEGATE_NAMES.get(raw_name.upper(), raw_name.lower())
        if name not in self.info:
            self.order.append(name)
            self.info[name] = {"name": name}
        return self.info[name]

    def frozen(self) -> tuple[DelegateVerdict, ...]:
        out = []
        for n in self.order:
            info = dict(self.info[n])
            info["unsupported_ops"] = tuple(info.get("unsupported_ops", ()))
            out.append(DelegateVerdict(**info))
        return tuple(out)


_COLUMN_KEYS = {
    "node type": "node_type",
    "start": "start_ms",
    "first": "first_ms",
    "avg ms": "avg_ms",
    "%": "pct",
    "cdf%": "cdf_pct",
    "avg %": "avg_pct",
    "cdf %": "cdf_pct",
    "mem kb": "mem_kb",
    "times called": "times_called",
    "count": "count",
    "name": "name",
}


def _split_header(line: str) -> list[str]:
    names = [h.strip().lower() for h in re.findall(r"\[([^\]]+)\]", line)]
    return [_COLUMN_KEYS.get(n, n.replace(" ", "_")) for n in names]


def _parse_row(line: str, columns: list[str]) -> ProfileRow | None:
    """A profiling table row. Columns are whitespace-separated; only the last (``Name``) may hold spaces."""
    has_name = bool(columns) and columns[-1] == "name"
    n_fixed = len(columns) - 1 if has_name else len(columns)
    parts = line.split("\t") if "\t" in line else line.split()
    parts = [p.strip() for p in parts if p.strip() != ""]
    if len(parts) < n_fixed:
        return None
    fixed, rest = parts[:n_fixed], parts[n_fixed:]
    values: dict = {}
    for col, text in zip(columns[1:n_fixed], fixed[1:], strict=True):
        t = text.rstrip("%")
        try:
            values[col] = float(t)
        except ValueError:
            return None  # not a table row after all
    return ProfileRow(node_type=fixed[0], values=values, name=" ".join(rest) if has_name else "")


def parse(text: str) -> BenchmarkOutput:
    """Parse one benchmark_model run (stdout and stderr together, in any published spelling)."""
    parser = _Parser()
    for raw in text.splitlines():
        level, line = clean_line(raw)
        if line:
            parser.feed(level, line)
    return parser.result()


class _Parser:
    """The state of one parse. Each kind of line has its method, tried in order; the first that takes the
    line ends its handling (op-profiling sections and the GPU delegate's list of unsupported ops span lines)."""

    def __init__(self) -> None:
        self.params: dict[str, str] = {}
        self.version: str | None = None
        self.accelerators: tuple[str, ...] = ()
        self.model_size: float | None = None
        self.session_ms: float | None = None
        self.stats: list[RunStats] = []
        self.pending_runs: int | None = None
        self.timings: dict = {}
        self.memory: dict = {}
        self.delegates = _Delegates()
        self.profiles: list[ProfileSection] = []
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.unconsumed: tuple[str, ...] = ()
        self.failed = False
        self.failure: str | None = None
        self.exec_failure: str | None = None
        self.gpu_unsupported: list[dict] | None = None  # collecting the lines after "not supported by GPU delegate"
        # op-profiling state
        self.section: dict | None = None
        self.table_title: str | None = None
        self.columns: list[str] = []

    def feed(self, level: str, line: str) -> None:
        if any(marker in line for marker in EXEC_FAILURES) and self.exec_failure is None:
            self.exec_failure = line
            self.fail(line)
        if self.profile_line(line) or self.gpu_list_line(line):
            return
        if level == "ERROR" or line.startswith("ERROR"):
            self.errors.append(line)
        elif level in ("WARNING",):
            self.warnings.append(line)
        for take in (self.run_line, self.memory_line, self.tool_line, self.delegate_line, self.param_line):
            if take(line):
                return

    def fail(self, line: str) -> None:
        self.failed = True
        self.failure = self.failure or line

    # --- lines spanning sections -------------------------------------------------------------------

    def close_section(self) -> None:
        if self.section is not None:
            self.profiles.append(
                ProfileSection(
                    title=self.section["title"],
                    tables={k: tuple(v) for k, v in self.section["tables"].items()},
                    timings=self.section["timings"],
                    nodes_observed=self.section["nodes"],
                )
            )
        self.section = None

    def profile_line(self, line: str) -> bool:
        """A line of an op-profiling section (its head, table titles and headers, rows, timings)."""
        head = _PROFILE_HEAD.match(line)
        if head:
            self.close_section()
            self.section = {"title": head.group(2).strip(), "tables": {}, "timings": None, "nodes": None}
            self.table_title, self.columns = None, []
            return True
        section = self.section
        if section is None:
            return False
        title = _TABLE_TITLE.match(line)
        if title:
            self.table_title, self.columns = title.group(1), []
            section["tables"].setdefault(self.table_title, [])
            return True
        if line.startswith("[") and "node type" in line.lower():
            self.columns = _split_header(line)
            return True
        tm = _TIMINGS_PROFILE.match(line)
        if tm:
            section["timings"] = parse_stats(tm.group(1))
            return True
        nm = _NODES_OBSERVED.match(line)
        if nm:
            section["nodes"] = int(nm.group(1))
            self.close_section()
            self.table_title, self.columns = None, []
            return True
        if line.startswith("Memory (bytes):") or line.startswith("Number of nodes executed"):
            return True
        if self.table_title and self.columns:
            row = _parse_row(line, self.columns)
            if row is not None:
                section["tables"][self.table_title].append(row)
                return True
        return False

    def gpu_list_line(self, line: str) -> bool:
        """The GPU delegate's list of the ops it does not support, one "OP: reason" a line."""
        if self.gpu_unsupported is not None:
            op_line = _GPU_OP_LINE.match(line)
            if op_line and not _GPU_SPLIT.search(line):
                self.gpu_unsupported.append({"op": op_line.group(1), "reason": op_line.group(2)})
                return True
            self.delegates.get("GPU")["unsupported_ops"] = list(self.gpu_unsupported)
            self.gpu_unsupported = None
        if _GPU_UNSUPPORTED.search(line):
            self.gpu_unsupported = []
            self.errors.append(line)
            return True
        return False

    # --- one-line facts ------------------------------------------------------------------------------

    def run_line(self, line: str) -> bool:
        """The version, the runs asked for, the timings and the statistics of a run."""
        m = _VERSION.search(line)
        if m:
            self.version = m.group(1)
            return True
        m = _RUNNING.search(line)
        if m:
            self.pending_runs = int(m.group(1))
            return True
        m = _TIMINGS.search(line)
        if m:
            keys = ("init_us", "first_inference_us", "warmup_avg_us", "inference_avg_us")
            self.timings = dict(zip(keys, map(_num, m.groups()), strict=True))
            return True
        m = _OLD_TIMINGS.search(line)
        if m:
            warm, init, inf = map(_num, m.groups())
            self.timings = {"init_us": init, "first_inference_us": None, "warmup_avg_us": warm, "inference_avg_us": inf}
            return True
        if line.startswith("count=") or line.startswith("curr="):
            s = parse_stats(line, self.pending_runs)
            if s is not None:
                self.stats.append(s)
                self.pending_runs = None
                return True
        return False

    def memory_line(self, line: str) -> bool:
        m = _MEM_DELTA.search(line)
        if m:
            self.memory.update(kind="delta_from_tool_start", init_mb=_num(m.group(1)), overall_mb=_num(m.group(2)))
            return True
        m = _MEM_PEAK_OLD.search(line)
        if m:
            self.memory.update(kind="peak", init_mb=_num(m.group(1)), overall_mb=_num(m.group(2)))
            return True
        m = _MEM_MONITOR.search(line)
        if m:
            self.memory["peak_mb"] = _num(m.group(1))
            return True
        if line.startswith("- VmRSS") or line.startswith("+ Rss"):
            key, _, value = line[2:].partition(":")
            self.memory[key.strip().lower().replace(" + ", "_plus_").replace(" ", "_")] = value.strip()
            return True
        return False

    def tool_line(self, line: str) -> bool:
        """The model's size, the session's start-up and the flags the tool did not take."""
        m = _MODEL_SIZE.search(line)
        if m:
            self.model_size = _num(m.group(1))
            return True
        m = _SESSION.search(line)
        if m:
            self.session_ms = _num(m.group(1))
            return True
        m = _UNCONSUMED.search(line)
        if m:
            self.unconsumed = tuple(f for f in m.group(1).split() if f)
            return True
        return False

    def delegate_line(self, line: str) -> bool:
        """What a delegate did: applied wholly or in part, not executed, failed, nodes replaced, created."""
        m = _APPLIED.search(line)
        if m:
            d = self.delegates.get(m.group(1))
            d["applied"] = "all" if m.group(2) == "completely" else "partial"
            d["kernels"] = int(m.group(3)) if m.group(3) else (1 if m.group(2) == "completely" else None)
            d.setdefault("created", True)
            return True
        m = _NOT_EXECUTED.search(line)
        if m:
            d = self.delegates.get(m.group(1))
            d["applied"] = "none"
            d["kernels"] = 0
            d.setdefault("created", True)
            return True
        m = _FAILED_APPLY.search(line)
        if m:
            self.delegates.get(m.group(1))["applied"] = "failed"
            self.fail(line)
            return True
        m = _REPLACING.search(line)
        if m:
            owner = DELEGATE_NODE_TYPES.get(m.group(3))
            if owner is None and self.delegates.order:  # an external delegate names its node its own way
                owner = self.delegates.order[-1]
            d = self.delegates.get(owner or m.group(3))
            d["nodes_delegated"] = int(m.group(1))
            d["nodes_total"] = int(m.group(2)) if m.group(2) else None
            d["partitions"] = int(m.group(4))
            return True
        return self.gpu_split_line(line) or self.created_line(line)

    def gpu_split_line(self, line: str) -> bool:
        m = _GPU_SPLIT.search(line)
        if m:
            d = self.delegates.get("GPU")
            d["gpu_ops"], d["cpu_ops"] = int(m.group(1)), int(m.group(2))
            if d.get("applied", "unknown") == "unknown":
                d["applied"] = "none" if d["gpu_ops"] == 0 else ("partial" if d["cpu_ops"] else "all")
            return True
        return False

    def created_line(self, line: str) -> bool:
        m = _CREATED.search(line)
        if m:
            # "Created TensorFlow Lite XNNPACK delegate for CPU." names the delegate first,
            # "Created TensorFlow Lite delegate for NNAPI." last, "GPU delegate created." alone
            self.delegates.get(m.group(1) or m.group(2) or m.group(3))["created"] = True
            return True
        return False

    def param_line(self, line: str) -> bool:
        """The end of a failed run, or one of the parameters the tool echoes ("Num threads: [4]")."""
        if line.startswith("Benchmarking failed"):
            self.fail(self.errors[-1] if self.errors else line)
            return True
        pm = _PARAM.match(line)
        if pm and not line.startswith("["):
            key, value = pm.group(1).strip(), pm.group(2).strip()
            self.params[key] = value
            if key == "NNAPI accelerators available":
                self.accelerators = tuple(a.strip() for a in value.split(",") if a.strip())
            return True
        return False

    def result(self) -> BenchmarkOutput:
        self.close_section()
        if self.gpu_unsupported is not None:  # the text ended inside the list
            self.delegates.get("GPU")["unsupported_ops"] = list(self.gpu_unsupported)
        warmup, inference = _assign_stats(self.stats, self.timings)
        t = self.timings
        return BenchmarkOutput(
            params=self.params,
            tflite_version=self.version,
            nnapi_accelerators=self.accelerators,
            model_size_mb=self.model_size,
            init_session_ms=self.session_ms,
            warmup=warmup,
            inference=inference,
            init_us=t.get("init_us"),
            first_inference_us=t.get("first_inference_us"),
            warmup_avg_us=t.get("warmup_avg_us"),
            inference_avg_us=t.get("inference_avg_us"),
            memory=self.memory,
            delegates=self.delegates.frozen(),
            profiles=tuple(self.profiles),
            errors=tuple(self.errors),
            warnings=tuple(self.warnings),
            unconsumed_flags=self.unconsumed,
            failed=self.failed,
            failure=self.failure,
            exec_failure=self.exec_failure,
        )


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None or math.isnan(a) or math.isnan(b):
        return False
    return abs(a - b) <= max(1.0, 1e-4 * abs(b))


def _assign_stats(stats: list[RunStats], timings: dict) -> tuple[RunStats | None, RunStats | None]:
    """Which statistics line is the warm-up and which the regular runs.

    The tool prints the warm-up phase first and the regular runs second. A pasted excerpt may keep
    only one line; it is the regular runs unless its average is the warm-up average and not the
    inference average.
    """
    if len(stats) >= 2:
        return stats[-2], stats[-1]
    if len(stats) == 1:
        only = stats[0]
        inf_avg, warm_avg = timings.get("inference_avg_us"), timings.get("warmup_avg_us")
        if _close(only.avg_us, warm_avg) and not _close(only.avg_us, inf_avg):
            return only, None
        return None, only
    return None, None
