"""The one import of the .tflite schema (LiteRT's ``schema_py_generated``) and of ``flatbuffers``.

Private to :mod:`edgeq.tflite`: every other module asks the package for typed facts
(:mod:`edgeq.tflite.model`) or for an edit (:mod:`edgeq.tflite.edit`), never for the schema itself
(tests/unit/test_tflite_owner.py checks it).
"""

from __future__ import annotations

from functools import cache
from typing import Any

TFLITE_IDENTIFIER = b"TFL3"


@cache
def schema() -> Any:
    from ai_edge_litert import schema_py_generated

    return schema_py_generated


@cache
def enum_names(enum_name: str) -> dict[int, str]:
    """Value -> name of one of the schema's enums (``TensorType``, ``BuiltinOperator``...)."""
    enum_cls = getattr(schema(), enum_name)
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, int)}


def builtin_code(code: Any) -> int:
    """An operator code's builtin op (models before schema v3a keep it in the deprecated field)."""
    return max(int(code.builtinCode or 0), int(code.deprecatedBuiltinCode or 0))


def code_name(code: Any) -> str:
    """The builtin name of an operator code (``CONV_2D``), or its custom code."""
    builtin = builtin_code(code)
    if builtin == schema().BuiltinOperator.CUSTOM:
        return (code.customCode or b"?").decode(errors="replace")
    return enum_names("BuiltinOperator").get(builtin, f"OP{builtin}")


def unpack(data: bytes) -> Any:
    """The object tree (``ModelT``) of flatbuffer bytes, unchecked: callers bound or validate first."""
    return schema().ModelT.InitFromPackedBuf(data, 0)


def pack(model: Any, size_hint: int = 1024) -> bytes:
    """Serialize a ``ModelT`` to .tflite bytes, with the TFL3 file identifier."""
    import flatbuffers

    builder = flatbuffers.Builder(max(1024, size_hint))
    builder.Finish(model.Pack(builder), file_identifier=TFLITE_IDENTIFIER)
    return bytes(builder.Output())


def root(data: bytes) -> Any:
    """The lazy (table) reader of flatbuffer bytes, for counting before building objects."""
    return schema().Model.GetRootAs(data, 0)
