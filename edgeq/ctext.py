"""Model and path strings as generated C/C++ text: the one place they are escaped.

A tensor, op, signature or metadata name, and a file or folder name, is untrusted data. Generated
sources carry such a string only through one of these functions, one per output context:

- :func:`comment_text`: the body of a C/C++ comment, safe inside ``/* ... */`` and after ``//``;
- :func:`c_string`: a C/C++ string literal (with its quotes) whose value is the string's UTF-8 bytes;
- :func:`identifier`: a valid C/C++ identifier made from any string, injective and bounded.

Linker scripts, Makefiles and assembler input carry no model or path strings at all (the toolchain
is run on relative file names), so they need no escaping function.

Strings may be ``str`` (lone surrogates from ``surrogateescape`` decoding stand for the original
bytes) or ``bytes`` (decoded as UTF-8 with ``surrogateescape``).
"""

from __future__ import annotations

import hashlib

# printable ASCII that means nothing inside a comment on its own; '*' and '?' are never emitted raw
# (no '*/' or '/*', no '??/' trigraph that could splice a // comment onto the next line), '\' neither
# (a trailing backslash splices), and '/' only where no neighbour is '/' or the comment's edge
_COMMENT_SAFE = frozenset(chr(c) for c in range(0x20, 0x7F)) - set("*?\\")
_IDENT_KEEP = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_STRING_SAFE = frozenset(chr(c) for c in range(0x20, 0x7F)) - set('"\\?')
COMMENT_LIMIT = 160
IDENTIFIER_LIMIT = 63  # C99 guarantees 63 significant characters in an internal identifier

# C11, C23 and C++20 keywords and alternative tokens: an identifier made here is none of them
KEYWORDS = frozenset(
    """alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t
    char32_t class compl concept const consteval constexpr constinit const_cast continue co_await
    co_return co_yield decltype default delete do double dynamic_cast else enum explicit export extern
    false float for friend goto if inline int long mutable namespace new noexcept not not_eq nullptr
    operator or or_eq private protected public register reinterpret_cast requires restrict return short
    signed sizeof static static_assert static_cast struct switch template this thread_local throw true
    try typedef typeid typename typeof typeof_unqual union unsigned using virtual void volatile wchar_t
    while xor xor_eq _Alignas _Alignof _Atomic _BitInt _Bool _Complex _Decimal128 _Decimal32
    _Decimal64 _Generic _Imaginary _Noreturn _Pragma _Static_assert _Thread_local""".split()
)


def _text(value: str | bytes) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)


def _utf8(value: str | bytes) -> bytes:
    if isinstance(value, bytes):
        return value
    # lone surrogates that surrogateescape cannot restore are kept as their (invalid) UTF-8 form
    return value.encode("utf-8", "surrogateescape" if _escapable(value) else "surrogatepass")


def _escapable(text: str) -> bool:
    return all(not 0xD800 <= ord(ch) <= 0xDFFF or 0xDC80 <= ord(ch) <= 0xDCFF for ch in text)


def _code(ch: str) -> str:
    """``ch`` as printable ASCII text that holds no '*', '/', '?' or '\\' at its end."""
    c = ord(ch)
    if 0xDC80 <= c <= 0xDCFF:  # a byte surrogateescape could not decode: show the byte
        return f"\\x{c - 0xDC00:02x}"
    if c < 0x100:
        return f"\\x{c:02x}"
    return f"\\u{c:04x}" if c < 0x10000 else f"\\U{c:08x}"


def comment_text(value: str | bytes, limit: int = COMMENT_LIMIT) -> str:
    """``value`` as the body of a C/C++ comment: safe inside ``/* ... */`` and after ``//``.

    The result is printable ASCII with no ``*``, ``?`` or ``\\`` and no ``/`` next to another ``/``
    or at either end; everything else is shown as ``\\xNN`` / ``\\uNNNN`` text. Strings longer than
    ``limit`` characters are cut and end in ``...``.
    """
    text = _text(value)
    cut = len(text) > limit
    text = text[:limit]
    out: list[str] = []
    for i, ch in enumerate(text):
        if ch == "/":
            edge = i == 0 or i == len(text) - 1 and not cut
            out.append("\\x2f" if edge or text[i - 1] == "/" else "/")
        else:
            out.append(ch if ch in _COMMENT_SAFE else _code(ch))
    return "".join(out) + ("..." if cut else "")


def c_string(value: str | bytes) -> str:
    """``value`` as one C/C++ string literal, quotes included, whose bytes are ``value``'s UTF-8.

    Everything but printable ASCII is an octal escape of three digits (a hex escape would swallow a
    following hex digit); ``"``, ``\\`` and ``?`` (trigraphs) are escaped.
    """
    out = []
    for b in _utf8(value):
        ch = chr(b)
        if ch in _STRING_SAFE:
            out.append(ch)
        elif ch in '"\\?':
            out.append("\\" + ch)
        else:
            out.append(f"\\{b:03o}")
    return '"' + "".join(out) + '"'


def identifier(value: str | bytes, prefix: str = "eq", limit: int = IDENTIFIER_LIMIT) -> str:
    """A C/C++ identifier for ``value``: ``prefix``, then ``value`` with ASCII letters and digits kept and
    every other character (``_`` too) written as ``_<hex code point>x``.

    Deterministic and injective (two strings never share an identifier), never a keyword, never reserved
    (no leading ``_``, no ``__``). Longer than ``limit``, it is cut between characters and ends in ``_h``
    and 16 hex digits of the string's SHA-256 (``_h`` starts no escape, so it cannot equal an uncut one).

    Raises:
        ValueError: ``prefix`` is not ASCII letters and digits starting with a letter.
    """
    if not (prefix.isascii() and prefix.isalnum() and prefix[0].isalpha()) or limit < len(prefix) + 18:
        raise ValueError(f"identifier prefix {prefix!r} (limit {limit}) cannot start an identifier")
    pieces = [ch if ch in _IDENT_KEEP else f"_{ord(ch):x}x" for ch in _text(value)]
    ident = prefix + "".join(pieces)
    if len(ident) > limit:
        budget, kept = limit - 18, prefix
        for piece in pieces:
            if len(kept) + len(piece) > budget:
                break
            kept += piece
        ident = kept + "_h" + hashlib.sha256(_utf8(value)).hexdigest()[:16]
    return ident + "_k" if ident in KEYWORDS else ident
