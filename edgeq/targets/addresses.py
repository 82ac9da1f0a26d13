"""Host names and device serials from the command line, validated before any tool sees them.

``ssh`` and ``scp`` read an argument that starts with ``-`` as an option, and an option such as
``-oProxyCommand=...`` runs a local command: a host string is therefore parsed here into its
parts (``[user@]host[:port]``, IPv6 in brackets) and refused unless every part has the shape of a
user name, a host name or address, and a port. The runners then put ``--`` before the
destination in every argv as a second guard. adb serials get the same treatment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from edgeq.errors import UsageError

# A user name as POSIX and OpenSSH accept it in practice; never starting with "-".
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,31}")
# A DNS name, an IPv4 address or an ssh_config alias: letters, digits, "-", "_", "."; no leading "-".
_NAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252})")
# An IPv6 address (optionally with a zone, fe80::1%eth0), written in brackets.
_IPV6 = re.compile(r"[0-9A-Fa-f:.]{2,45}(?:%[A-Za-z0-9_.-]{1,32})?")
# adb serials: USB serials (R58M12ABCDE), emulator-5554, 192.168.1.5:5555, mDNS names
# (adb-XXXX-yyyy._adb-tls-connect._tcp), usb:1-1 paths.
_SERIAL = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.:@\-]{0,127}")

HOST_HINT = "give --host as [USER@]HOST[:PORT], e.g. --host mendel@coral.local or --host pi@192.168.1.20:2222"


@dataclass(frozen=True)
class SshDestination:
    """A parsed ``[user@]host[:port]``."""

    host: str
    user: str | None = None
    port: int | None = None

    @property
    def ipv6(self) -> bool:
        return ":" in self.host

    def login(self) -> str:
        """``user@host`` as ssh takes it (no port: that goes to ``-p``)."""
        return f"{self.user}@{self.host}" if self.user else self.host

    def scp_prefix(self) -> str:
        """``user@host`` as scp takes it before ``:path`` (IPv6 in brackets)."""
        host = f"[{self.host}]" if self.ipv6 else self.host
        return f"{self.user}@{host}" if self.user else host

    def __str__(self) -> str:
        host = f"[{self.host}]" if self.ipv6 else self.host
        text = f"{self.user}@{host}" if self.user else host
        return f"{text}:{self.port}" if self.port else text


def _bad(text: str, why: str) -> UsageError:
    return UsageError(f"bad --host {text!r}: {why}", HOST_HINT)


def check_port(port: int | None, flag: str = "--port") -> int | None:
    if port is not None and not 1 <= port <= 65535:
        raise UsageError(f"{flag} must be from 1 to 65535, got {port}", "e.g. --port 2222")
    return port


def ssh_destination(text: str | None, port: int | None = None) -> SshDestination:
    """Parse and validate ``--host`` (and ``--port``).

    Raises:
        UsageError: empty, starts with ``-``, has characters no host name has, a bad port, or a
            port in the host that disagrees with ``port``.
    """
    if text is None or not text.strip():
        raise UsageError("--host is empty", "pass --host USER@BOARD, e.g. --host mendel@coral.local")
    if text.startswith("-"):
        raise _bad(text, "a host cannot start with '-' (ssh would read it as an option)")
    if len(text) > 300:
        raise _bad(text[:40] + "...", "too long for a host name")
    user, sep, rest = text.rpartition("@")
    if sep and not _USER.fullmatch(user):
        raise _bad(text, f"{user!r} is not a user name")
    user_or_none = user if sep else None
    host, host_port = _split_port(text, rest)
    check_port(host_port, "the port in --host")
    check_port(port)
    if host_port is not None and port is not None and host_port != port:
        raise UsageError(f"--host says port {host_port} and --port says {port}", "give the port once")
    return SshDestination(host=host, user=user_or_none, port=host_port if host_port is not None else port)


def _split_port(text: str, rest: str) -> tuple[str, int | None]:
    if rest.startswith("["):  # [v6] or [v6]:port
        end = rest.find("]")
        if end < 0 or not _IPV6.fullmatch(rest[1:end]):
            raise _bad(text, "an IPv6 address goes in brackets, e.g. [fe80::1]:22")
        tail = rest[end + 1 :]
        if tail and not re.fullmatch(r":\d{1,5}", tail):
            raise _bad(text, f"{tail!r} after the address is not a :PORT")
        return rest[1:end], int(tail[1:]) if tail else None
    name, colon, port_text = rest.partition(":")
    if colon and not re.fullmatch(r"\d{1,5}", port_text):
        raise _bad(text, f"{port_text!r} is not a port (IPv6 addresses go in brackets)")
    if not _NAME.fullmatch(name):
        raise _bad(text, "a host name has only letters, digits, '.', '-' and '_', and no leading '-'")
    return name, int(port_text) if colon else None


def adb_serial(text: str | None, flag: str = "--serial") -> str | None:
    """Validate an adb serial (None passes: adb then picks the only device).

    Raises:
        UsageError: empty, starts with ``-``, or has characters no adb serial has.
    """
    if text is None:
        return None
    if not text.strip():
        raise UsageError(f"{flag} is empty", "pass the serial adb devices -l lists, e.g. --serial emulator-5554")
    if not _SERIAL.fullmatch(text):
        raise UsageError(
            f"bad {flag} {text!r}: an adb serial has only letters, digits and '.', ':', '@', '-', '_', "
            "and does not start with '-'",
            "copy the serial from adb devices -l",
        )
    return text
