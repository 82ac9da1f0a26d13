"""A small C/C++ tokenizer for checking generated sources: what a compiler would see, comments dropped.

It follows the first translation phases of C99 as ``gcc -std=c99`` applies them: trigraphs are replaced,
backslash-newline pairs are spliced, then comments become nothing and the text is cut into
identifiers, numbers, string and character literals and single punctuation characters. That is
enough to compare two sources token for token, and to see that an escaped string stays one comment,
one literal or one identifier.
"""

from __future__ import annotations

import re

TRIGRAPHS = {"=": "#", "/": "\\", "'": "^", "(": "[", ")": "]", "!": "|", "<": "{", ">": "}", "-": "~"}
_TRIGRAPH = re.compile(r"\?\?([=/'()!<>-])")
_TOKEN = re.compile(
    r"""
    (?P<space>[ \t\r\n\f\v]+)
  | (?P<block>/\*.*?\*/)
  | (?P<line>//[^\n]*)
  | (?P<string>(?:u8|[uUL])?"(?:[^"\\\n]|\\.)*")
  | (?P<char>(?:[uUL])?'(?:[^'\\\n]|\\.)+')
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<number>\.?[0-9](?:[eEpP][+-]|[A-Za-z0-9_.'])*)
  | (?P<punct>[^\sA-Za-z0-9_"'])
    """,
    re.S | re.X,
)
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_SIMPLE = {"n": 10, "t": 9, "r": 13, "a": 7, "b": 8, "f": 12, "v": 11, "\\": 92, '"': 34, "'": 39, "?": 63}


class TokenError(ValueError):
    """The text does not tokenise: an unterminated comment or literal, or a stray character."""


def phases(text: str, trigraphs: bool = True) -> str:
    """Translation phases 1-2: trigraphs (C99; C++17 has none) and line splicing."""
    if trigraphs:
        text = _TRIGRAPH.sub(lambda m: TRIGRAPHS[m.group(1)], text)
    return text.replace("\\\n", "")


def tokens(text: str, trigraphs: bool = True) -> list[str]:
    """The tokens of ``text`` without comments and white space.

    Raises:
        TokenError: an unterminated ``/*`` comment, string or character literal, or a character that
            starts no token (a lone quote, a backslash outside a literal).
    """
    text = phases(text, trigraphs)
    out: list[str] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.lastgroup is None:
            raise TokenError(f"no token at offset {pos}: {text[pos : pos + 20]!r}")
        kind = m.lastgroup
        if kind == "punct" and m.group() in "\\'\"":
            raise TokenError(f"stray {m.group()!r} at offset {pos}")
        if kind == "punct" and text.startswith("/*", pos):
            raise TokenError(f"unterminated comment at offset {pos}")
        if kind not in ("space", "block", "line"):
            out.append(m.group())
        pos = m.end()
    return out


def string_value(literal: str) -> bytes:
    """The bytes of one plain C string literal (``"..."``), escapes decoded; non-ASCII characters as UTF-8.

    Raises:
        TokenError: not one plain string literal, or an escape C does not have.
    """
    if len(literal) < 2 or literal[0] != '"' or literal[-1] != '"':
        raise TokenError(f"not a plain string literal: {literal[:40]!r}")
    body, out, i = literal[1:-1], bytearray(), 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out += ch.encode("utf-8", "surrogatepass")
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _SIMPLE:
            out.append(_SIMPLE[nxt])
            i += 2
        elif nxt in "01234567":
            m = re.match(r"[0-7]{1,3}", body[i + 1 :])
            assert m is not None
            value = int(m.group(), 8)
            if value > 0xFF:
                raise TokenError(f"octal escape \\{m.group()} is more than a byte")
            out.append(value)
            i += 1 + len(m.group())
        elif nxt == "x":
            m = re.match(r"[0-9A-Fa-f]+", body[i + 2 :])
            if m is None or int(m.group(), 16) > 0xFF:
                raise TokenError("bad hex escape")
            out.append(int(m.group(), 16))
            i += 2 + len(m.group())
        else:
            raise TokenError(f"unknown escape \\{nxt}")
    return bytes(out)


_GUARD_HASH = re.compile(r"(EDGEQ_\w+_H)_[0-9A-F]{16}\Z")


def normalised(toks: list[str], numbers: bool = True) -> list[str]:
    """``toks`` with the model hash cut from include guards and (``numbers``) every number as ``0`` and a
    run of ``0 ,`` as one: two models that differ only in their bytes (an array of them) compare equal."""
    out: list[str] = []
    skipped = False
    for t in toks:
        t = "0" if numbers and (t[0].isdigit() or t[0] == "." and len(t) > 1) else _GUARD_HASH.sub(r"\1", t)
        if (t == "0" and out[-2:] == ["0", ","]) or (t == "," and skipped):
            skipped = t == "0"
            continue
        skipped = False
        out.append(t)
    return out
