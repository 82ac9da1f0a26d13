"""Model strings are data (issue #19, defects 1, 3 and the assembler break of 10): names reach generated
C/C++ only through edgeq.ctext, and the toolchain sees no path it could misread.

The end-to-end tests run the real CLI in a child process (``compile --runtime c`` builds and runs the
generated code on this machine) with a marker file the defect-1 payload would create; the generated
sources must tokenise, comments dropped, to the same tokens as with plain names.
"""

from __future__ import annotations

import json
import shutil

import pytest

from edgeq import ctext
from tests.adversarial import codegen
from tests.adversarial import codegen_tokens as ct

DEFECT_1 = (
    b"x */ __attribute__((constructor)) static void p(void){extern int system(const char*); "
    b'system("touch MARKER");} /* y'
)
DEFECT_3 = b"evil\nint edgeq_injected = 1;\nx"
HOSTILE = [
    DEFECT_1,
    DEFECT_3,
    b"/* a // b */ c ??/",
    b"end \\",
    b"\\\r\n",
    b"??/??=??'",
    b"a\x00b\xff\xfe\xc0\x80",
    b"\r\x0b\x0c\x1b[31m",
    "\u2028\u2029\ufeff\U0001f600".encode(),
    b"*/" * 100,
]
CPP_KEYWORDS = ("int", "class", "_Bool", "and", "co_await")


# -- ctext on its own -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", HOSTILE, ids=range(len(HOSTILE)))
@pytest.mark.parametrize("as_text", [False, True], ids=["bytes", "str"])
def test_a_comment_stays_a_comment(name, as_text):
    value = name.decode("utf-8", "surrogateescape") if as_text else name
    body = ctext.comment_text(value)
    assert body.isascii() and body.isprintable()
    for snippet in ("int a; /* {} */ int b;", "int a; /*{}*/ int b;", "int a; // {}\nint b;", "int a; //{}\nint b;"):
        assert ct.tokens(snippet.format(body)) == ["int", "a", ";", "int", "b", ";"], body


def test_comment_text_keeps_a_plain_name_readable_and_bounds_a_long_one():
    assert ctext.comment_text("model/conv2d/Relu;model/conv2d/Conv2D") == "model/conv2d/Relu;model/conv2d/Conv2D"
    assert ctext.comment_text("a//b/") == "a/\\x2fb\\x2f"
    assert ctext.comment_text(b"\xff\x00") == "\\xff\\x00"
    long = ctext.comment_text("x" * 10_000)
    assert long.endswith("...") and len(long) == ctext.COMMENT_LIMIT + 3


@pytest.mark.parametrize("name", HOSTILE, ids=range(len(HOSTILE)))
def test_a_string_literal_is_one_literal_holding_the_bytes(name):
    lit = ctext.c_string(name)
    toks = ct.tokens(f"const char* s = {lit}; int b;")
    assert len(toks) == 10 and toks[5] == lit
    assert ct.string_value(lit) == name
    assert "??" not in lit


@pytest.mark.parametrize("name", [*HOSTILE, *[k.encode() for k in CPP_KEYWORDS], b"", b"_", b"__x", b"9"])
def test_an_identifier_is_valid_unreserved_and_injective(name):
    ident = ctext.identifier(name)
    assert ct.IDENTIFIER.match(ident) and "__" not in ident and not ident.startswith("_")
    assert ident not in ctext.KEYWORDS and len(ident) <= ctext.IDENTIFIER_LIMIT
    assert ctext.identifier(name) == ident  # deterministic
    assert ctext.identifier(name + b"x") != ident and ctext.identifier(b"_" + name) != ident


def test_identifiers_of_long_names_differ_by_their_hash_and_keywords_are_avoided():
    a, b = ctext.identifier("a" * 100 + "1"), ctext.identifier("a" * 100 + "2")
    assert a != b and len(a) == len(b) <= ctext.IDENTIFIER_LIMIT
    assert ctext.identifier("t", prefix="in") == "int_k"
    assert ctext.identifier("model/dense") == "eqmodel_2fxdense"
    with pytest.raises(ValueError):
        ctext.identifier("x", prefix="_eq")


# -- through the CLI, in a child process ----------------------------------------------------------------

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc: the C proof cannot run here")


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("names")


@pytest.fixture(scope="module")
def plain(work):
    """Tokens of both commands' sources for the seed model with plain names."""
    return codegen.baselines(work / "plain")


def _judge(work, plain, field: str, value: bytes, command: str) -> codegen.Outcome:
    marker = work / "MARKER"
    value = value.replace(b"MARKER", str(marker).encode())
    case = codegen.Case(command, field, (value,))
    return codegen.judge(case, command, work / f"{field}-{command}", marker, plain)


@needs_gcc
def test_defect_1_a_tensor_name_never_runs_as_code(work, plain):
    """The issue's payload as an intermediate tensor's name: the old code wrote it raw into model.c's memory
    plan comment, its */ ended the comment, and the proof's host run executed the constructor."""
    o = _judge(work, plain, "one_tensor", DEFECT_1, "compile-c")
    assert not o.marker, "the tensor name ran as code on this machine"
    assert o.code == 0 and o.problems == [], o.problems


@needs_gcc
def test_defect_3_a_file_name_never_becomes_firmware_code(work, plain):
    """A model file named evil<newline>int edgeq_injected = 1;<newline>x.tflite: the old TFLM export put the
    middle line live into model_data.cc."""
    o = _judge(work, plain, "file", DEFECT_3, "compile-tflm")
    assert o.code == 0 and o.problems == [], o.problems


@needs_gcc
def test_defect_10_a_newline_and_a_comma_in_the_output_folder_build_for_arm(work, plain, tmp_path):
    """gcc writes the source's path raw into its assembler text before inline asm: a newline in the folder
    broke the Arm build (exit 4 "report this"); a comma would split -Wl, and QEMU's -kernel."""
    model = tmp_path / "m.tflite"
    model.write_bytes(codegen.SEED.read_bytes())
    out = tmp_path / "a\nb,c d"
    code, stdout, stderr = codegen.run_cli([*codegen.COMMANDS["compile-c"], str(model), "-o", str(out)], tmp_path)
    assert code == 0, (stdout + stderr)[-600:]
    proof = json.loads(stdout)["result"]["proof"]
    assert proof["host"]["bit_exact"] == 4
    if shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm"):
        assert proof["not_proven"] == [] and all(q["bit_exact"] == 4 for q in proof["qemu"].values()), proof


@needs_gcc
def test_a_tensor_name_litert_cannot_decode_is_a_clean_refusal(work, plain):
    """LiteRT's Python API decodes tensor names as UTF-8: the proof's reference raised UnicodeDecodeError
    (exit 1); it is bad input (exit 3) that says so."""
    o = _judge(work, plain, "tensor", b"\xff\xfe name", "compile-c")
    assert o.code == 3 and o.refused and not o.marker, o.problems


@needs_gcc
@pytest.mark.parametrize("command", ["compile-c", "compile-tflm"])
def test_a_model_file_named_in_bytes_that_are_not_utf8(work, plain, command):
    """The parity reference opened LiteRT by path: pybind refuses a str holding surrogate escapes (exit 1)."""
    o = _judge(work, plain, "file", b"\xff\xfe name", command)
    assert o.code == 0 and o.problems == [], o.problems


@pytest.mark.skipif(
    not (shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")), reason="no Arm toolchain or QEMU"
)
def test_defect_1_through_bench_under_qemu(work, tmp_path):
    """bench --runtime c builds the same project and runs it under QEMU, whose semihosting SYS_SYSTEM would
    run the constructor's command on this machine too."""
    marker = tmp_path / "MARKER"
    case = codegen.Case("bench", "one_tensor", (DEFECT_1.replace(b"MARKER", str(marker).encode()),))
    model, _ = codegen.place(case, tmp_path)
    args = ["--json", "bench", str(model), "--target", "mcu", "--runtime", "c", "--runs", "2", "--warmup", "0"]
    code, stdout, stderr = codegen.run_cli(args, tmp_path)
    assert not marker.exists(), "the tensor name ran as code under QEMU"
    assert code == 0, (stdout + stderr)[-600:]
