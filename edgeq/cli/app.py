"""The CLI's shared state and output: stdout is data, stderr is people.

A command body builds a config, calls one API function and hands the result to
:meth:`App.done`. :func:`run` renders it (human text or exactly one JSON document) and maps
errors to exit codes; nothing else in the CLI prints results or exits.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import math
import os
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import click

from edgeq import SCHEMA_VERSION
from edgeq.errors import BAD_INPUT, INTERNAL, INTERRUPTED, OK, USAGE, EdgeqError
from edgeq.paths import mount_point, printable
from edgeq.report.fmt import ms, pct, table  # noqa: F401  (re-exported for the commands)

# where the output cannot go (full or read-only disk, no permission, a name too long): the
# environment, not a bug in edgeq, so exit 3 with the fix instead of exit 1
_ENVIRONMENT_ERRNOS = {
    errno.ENOSPC: "free some disk space or choose another location with -o",
    errno.EDQUOT: "free some disk space or choose another location with -o",
    errno.EROFS: "choose a writable location with -o",
    errno.EACCES: "check the permissions of that path, or choose another location with -o",
    errno.EPERM: "check the permissions of that path, or choose another location with -o",
    errno.ENAMETOOLONG: "choose a shorter name",
    # e.g. XDG_CACHE_HOME naming a file: the cache folder goes below it
    errno.ENOTDIR: "a part of that path is a file, not a folder; choose another location (or point "
    "XDG_CACHE_HOME / EDGEQ_CACHE_DIR at a folder if the path is the cache)",
}
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
# commands a rerun continues: build from its stage cache, train from its checkpoints
_RESUMABLE = {"build": "rerun the same command to resume", "train": "rerun the same command with --resume to continue"}


def _environment_error(exc: OSError) -> dict | None:
    """The exit-3 error for an OSError the environment caused, None for any other (a bug: exit 1)."""
    # errno is None for an OSError raised with a message alone
    hint = None if exc.errno is None else _ENVIRONMENT_ERRNOS.get(exc.errno)
    if hint is None:
        return None
    where = f": {exc.filename}" if exc.filename else ""
    message = f"{exc.strerror or os.strerror(exc.errno or 0)}{where}"
    if exc.errno in _NO_SPACE and exc.filename:
        message = f"{exc.strerror or os.strerror(exc.errno)} (the disk mounted at {mount_point(exc.filename)}){where}"
    return {
        "type": "environment",
        "message": message,
        "hint": hint,
        "exit_code": BAD_INPUT,
    }


def _interrupted(command: str, args: list[str], exc: BaseException) -> dict:
    hint = _RESUMABLE.get(command, "")
    if command == "train" and "--resume" in args:
        hint = "rerun the same command to resume"
    message = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
    return {"type": "interrupted", "message": message, "hint": hint, "exit_code": INTERRUPTED}


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C raises KeyboardInterrupt, so both end a run the same way: outputs
    staged so far removed, child process groups killed, one JSON document, exit 130."""


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` (once: a second one while cleaning up is ignored)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigterm(_signum: int, _frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclass
class App:
    json_mode: bool = False
    verbosity: int = 0  # -1 quiet, 0 normal, 1+ verbose
    command: str = ""
    result: Any = None
    artifacts: list[str] = field(default_factory=list)
    human: str = ""
    warnings: list[str] = field(default_factory=list)

    def done(
        self, result: Any, human: str = "", artifacts: list[str] | None = None, warnings: list[str] | None = None
    ) -> None:
        self.result = result
        self.human = human
        self.artifacts = list(artifacts or [])
        self.warnings = list(warnings or [])

    def say(self, text: str) -> None:
        """Progress for people, on stderr, unless quiet or JSON."""
        if self.verbosity >= 0 and not self.json_mode:
            click.echo(printable(text), err=True)


pass_app = click.make_pass_decorator(App, ensure=True)


def _finite(obj: Any) -> Any:
    """JSON has no Infinity/NaN: write them as strings ("inf"). Nor lone surrogates, which stand
    for file-name bytes that are not UTF-8: write those as ``\\xff`` (see edgeq.paths)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, str):
        return printable(obj)
    if isinstance(obj, dict):
        return {printable(k) if isinstance(k, str) else k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def document(command: str, ok: bool, result: Any, artifacts: list[str], error: dict | None) -> str:
    doc = {
        "schema_version": SCHEMA_VERSION,
        "command": command,
        "ok": ok,
        "result": result,
        "artifacts": artifacts,
        "error": error,
    }
    return json.dumps(_finite(doc), indent=2, default=str)


def _command_name(cli: click.Group, args: list[str]) -> str:
    for a in args:
        if not a.startswith("-") and a in cli.commands:
            return a
    return ""


GLOBAL_FLAGS = ("--json", "-v", "-vv", "--verbose", "-q", "--quiet")


def hoist_global_flags(args: list[str]) -> list[str]:
    """Accept the global flags anywhere (``edgeq quantize ... --json``), as people type them."""
    end = args.index("--") if "--" in args else len(args)
    flags = [a for a in args[:end] if a in GLOBAL_FLAGS]
    return flags + [a for a in args[:end] if a not in GLOBAL_FLAGS] + args[end:]


@contextlib.contextmanager
def native_stderr_silenced(enabled: bool) -> Iterator[None]:
    """Send what C++ libraries write to file descriptor 2 to /dev/null, keep Python's stderr.

    TensorFlow and LiteRT log at import and first use (oneDNN, CUDA probing, XNNPACK);
    people should see edgeq's messages, not that. ``-v`` lets it through.
    """
    if not enabled:
        yield
        return
    sys.stderr.flush()
    kept = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    saved_stderr = sys.stderr
    # backslashreplace: a message that still holds a lone surrogate must not crash the report of an error.
    sys.stderr = io.TextIOWrapper(
        os.fdopen(os.dup(kept), "wb", buffering=0), write_through=True, errors="backslashreplace"
    )
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr = saved_stderr
        os.dup2(kept, 2)
        os.close(kept)


def run(cli: click.Group, args: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (the console script exits with it)."""
    args = hoist_global_flags(list(sys.argv[1:] if args is None else args))
    verbose = "-v" in args or "--verbose" in args or "-vv" in args
    with native_stderr_silenced(not verbose), sigterm_as_interrupt():
        return _run(cli, args, verbose)


def _run(cli: click.Group, args: list[str], verbose: bool) -> int:
    if not verbose:  # TensorFlow's deprecation notices are not for edgeq's users
        warnings.simplefilter("ignore")
    app = App(json_mode="--json" in args, verbosity=1 if verbose else 0)
    app.command = _command_name(cli, args)
    code, error = OK, None
    try:
        # not cli.main(): it turns Ctrl-C into Abort after printing an empty line
        with cli.make_context("edgeq", list(args), obj=app) as ctx:
            cli.invoke(ctx)
    except click.exceptions.Exit as exc:  # --help, --version
        return exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt) as exc:
        code, error = INTERRUPTED, _interrupted(app.command, args, exc)
        if not app.json_mode:
            click.echo(error["message"] + (f"; {error['hint']}" if error["hint"] else ""), err=True)
    except click.ClickException as exc:
        code = USAGE if isinstance(exc, click.UsageError) else exc.exit_code
        error = {"type": "usage", "message": exc.format_message(), "hint": "see --help", "exit_code": code}
        if not app.json_mode:
            failed_ctx = getattr(exc, "ctx", None)  # the subcommand's context, which has its usage line
            if failed_ctx is not None:
                click.echo(failed_ctx.get_usage(), err=True)
            click.echo(printable(f"error: {exc.format_message()}"), err=True)
    except EdgeqError as exc:
        code, error = exc.exit_code, exc.to_dict()
        if app.verbosity > 0:
            traceback.print_exc()
        if not app.json_mode:
            click.echo(printable(f"error: {exc.one_line()}"), err=True)
    except OSError as exc:
        env_error = _environment_error(exc)
        if env_error is not None:
            code, error = BAD_INPUT, env_error
            if app.verbosity > 0:
                traceback.print_exc()
            if not app.json_mode:
                click.echo(printable(f"error: {env_error['message']}; {env_error['hint']}"), err=True)
        else:
            code, error = _internal(exc, app)
    except MemoryError as exc:  # str(MemoryError()) is empty: say what ran out, and what to try
        code, error = BAD_INPUT, _out_of_memory(exc, app)
    except Exception as exc:  # a bug: say so plainly, traceback only with -v
        code, error = _internal(exc, app)
    if app.json_mode:
        click.echo(document(app.command, code == OK, app.result, app.artifacts, error))
    elif code == OK:
        for w in app.warnings:
            click.secho(printable(f"WARNING: {w}"), err=True, fg="yellow", bold=True)
        if app.human and app.verbosity >= 0:
            click.echo(printable(app.human))
    return code


def _out_of_memory(exc: MemoryError, app: App) -> dict:
    """Exit 3: the model, data or options need more memory than this machine gives."""
    detail = f" ({printable(str(exc))})" if str(exc) else ""
    error = {
        "type": "environment",
        "message": f"out of memory while running edgeq {app.command or ''}".rstrip() + detail,
        "hint": "use fewer or smaller samples (--samples, --resize, --runs) or a smaller model, or more memory",
        "exit_code": BAD_INPUT,
    }
    if app.verbosity > 0:
        traceback.print_exc()
    if not app.json_mode:
        click.echo(f"error: {error['message']}; {error['hint']}", err=True)
    return error


def _internal(exc: Exception, app: App) -> tuple[int, dict]:
    """A bug: say so plainly, traceback only with -v."""
    error = {
        "type": "internal",
        "message": f"{type(exc).__name__}: {exc}",
        "hint": "rerun with -v for the traceback",
        "exit_code": INTERNAL,
    }
    if app.verbosity > 0:
        traceback.print_exc()
    if not app.json_mode:
        click.echo(
            printable(f"internal error: {type(exc).__name__}: {exc} (rerun with -v for the traceback)"), err=True
        )
    return INTERNAL, error
