"""Fuzz the C emitter's escaping (edgeq.ctext): names in, tokens out.

    EDGEQ_FUZZ_SECONDS=600 python fuzz/fuzz_cemit.py

Each input becomes a name (raw bytes, UTF-8 with surrogate escapes, or UTF-16 code units with lone
surrogates) and goes through every ctext function; the result, put into a C snippet, must tokenise
(C99 with trigraphs, and C++ without) to exactly the snippet's own tokens: a comment stays a comment
on its line, a string literal stays one literal whose bytes are the name's, an identifier is one
identifier, never a keyword or reserved, and two names never share one. Any failed check is a finding.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

with atheris.instrument_imports(include=["edgeq.ctext", "tests.adversarial.codegen_tokens"]):
    from edgeq import ctext
    from tests.adversarial import codegen_tokens as ct

from common import main  # noqa: E402

AROUND = ["int", "a", ";", "int", "b", ";"]
SNIPPETS = (
    "int a; /* {} */ int b;\n",
    "int a; /*{}*/ int b;\n",
    "int a; // {}\nint b;\n",
    "int a; //{}\nint b;\n",
    "/* header\n * {}\n */\nint a; int b;\n",
    "int a;\n/*{}\n*/int b;",
)
SEEN: dict[str, str] = {}  # identifier -> the name it was made from (bounded)


def name_of(data: bytes) -> str | bytes:
    mode, rest = (data[0] % 3, data[1:]) if data else (0, b"")
    if mode == 0:
        return rest
    if mode == 1:
        return rest.decode("utf-8", "surrogateescape")
    return rest[: len(rest) // 2 * 2].decode("utf-16-le", "surrogatepass")


def check_comment(name: str | bytes) -> None:
    body = ctext.comment_text(name)
    assert body.isascii() and body.isprintable(), body
    assert len(body) <= 4 * 10 * ctext.COMMENT_LIMIT, len(body)
    for snippet in SNIPPETS:
        for trigraphs in (True, False):
            toks = ct.tokens(snippet.format(body), trigraphs)
            assert toks == AROUND, (snippet, body, toks)


def check_string(name: str | bytes) -> None:
    lit = ctext.c_string(name)
    for trigraphs in (True, False):
        toks = ct.tokens(f"const char* s = {lit};\nint b;", trigraphs)
        assert toks[:5] == ["const", "char", "*", "s", "="] and toks[6:] == [";", "int", "b", ";"], toks
        assert ct.string_value(toks[5]) == ctext._utf8(name), (name, lit)


def check_identifier(name: str | bytes) -> None:
    ident = ctext.identifier(name)
    assert ct.IDENTIFIER.match(ident), ident
    assert ident not in ctext.KEYWORDS and "__" not in ident and not ident.startswith("_"), ident
    assert len(ident) <= ctext.IDENTIFIER_LIMIT, ident
    assert ct.tokens(f"int {ident} = 0;") == ["int", ident, "=", "0", ";"]
    text = ctext._text(name)
    other = SEEN.setdefault(ident, text)
    assert other == text, f"{ident} stands for {other!r} and {text!r}"
    if len(SEEN) > 200_000:
        SEEN.clear()


def target(data: bytes) -> None:
    name = name_of(data)
    check_comment(name)
    check_string(name)
    check_identifier(name)


def seeds() -> list[bytes]:
    names = [
        b'x */ __attribute__((constructor)) static void p(void){extern int system(const char*); system("id");} /* y',
        b"evil\nint edgeq_injected = 1;\nx.tflite",
        b"a??/\nint b;",
        b"//\\\n/*",
        b"\x00\xff\xfe*/",
        "\u2028\ud800".encode("utf-16-le", "surrogatepass"),
        b"model/conv2d/Conv2D",
    ]
    return [bytes([m]) + n for n in names for m in range(3)]


if __name__ == "__main__":
    main("cemit", target, seeds(), [])
