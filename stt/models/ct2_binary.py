"""Read CTranslate2's model.bin container without CTranslate2's runtime.

ctranslate2's Python package can write model.bin but offers no way to read the
weights back, and importing a faster-whisper model for fine-tuning needs them.
The layout mirrors `ModelSpec._serialize` in ctranslate2/specs/model_spec.py
and the loader in src/models/model.cc (all integers little-endian):

    uint32 binary_version, string spec_name, uint32 spec_revision,
    uint32 n_variables, then per variable:
        string name, uint8 rank, uint32 dims[rank], uint8 dtype_id,
        uint32 num_bytes, bytes data
    uint32 n_aliases, then per alias: string alias, string target

where a string is a uint16 length (counting a trailing NUL) followed by the
UTF-8 bytes and the NUL.
"""
from __future__ import annotations

import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from stt.models.model_format import ModelFormatError

# Index = dtype id; the order of the DataType enum in include/ctranslate2/types.h.
DTYPE_NAMES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
# numpy has no bfloat16, so its raw 16-bit patterns are read as uint16 and widened below.
_NUMPY_DTYPES = {"float32": "<f4", "int8": "i1", "int16": "<i2", "int32": "<i4",
                 "float16": "<f2", "bfloat16": "<u2"}
# Version 4 introduced the dtype id field this reader relies on; Whisper support
# arrived in CTranslate2 3.x, whose files are version 5 or later, so nothing is lost.
_MIN_BINARY_VERSION = 4

_LAYER = re.compile(r"^(encoder|decoder)/layer_(\d+)/")


@dataclass(frozen=True)
class Ct2Variable:
    """Where one weight lives in model.bin; the data is read only on demand."""
    name: str
    shape: tuple[int, ...]
    dtype: str
    offset: int
    num_bytes: int


@dataclass(frozen=True)
class Ct2Header:
    """The spec and the variable table of a model.bin, aliases resolved to their targets."""
    binary_version: int
    spec_name: str
    spec_revision: int
    variables: dict[str, Ct2Variable]


def _unpack(stream: BinaryIO, fmt: str) -> tuple:
    size = struct.calcsize(fmt)
    raw = stream.read(size)
    if len(raw) != size:
        raise EOFError("model.bin ends in the middle of its header")
    return struct.unpack(fmt, raw)


def _string(stream: BinaryIO) -> str:
    (length,) = _unpack(stream, "<H")
    raw = stream.read(length)
    if len(raw) != length:
        raise EOFError("model.bin ends in the middle of a name")
    return raw[:-1].decode("utf-8")  # drop the NUL terminator


def read_header(model_bin: Path) -> Ct2Header:
    """Parse the variable table of `model_bin`, seeking past the weight data.

    Cheap even for multi-gigabyte models, which is what lets the exporter ask
    for an existing model's precision without loading it.
    """
    model_bin = Path(model_bin)
    try:
        with model_bin.open("rb") as stream:
            (version,) = _unpack(stream, "<I")
            if version < _MIN_BINARY_VERSION:
                raise ModelFormatError(
                    f"{model_bin} uses CTranslate2 binary version {version}, older than any Whisper model; "
                    "re-convert it with a current ctranslate2")
            spec_name = _string(stream)
            (revision, count) = _unpack(stream, "<II")
            variables: dict[str, Ct2Variable] = {}
            for _ in range(count):
                name = _string(stream)
                (rank,) = _unpack(stream, "<B")
                shape = _unpack(stream, f"<{rank}I") if rank else ()
                (dtype_id, num_bytes) = _unpack(stream, "<BI")
                if dtype_id >= len(DTYPE_NAMES):
                    raise ModelFormatError(f"{model_bin}: variable {name} has unknown dtype id {dtype_id}")
                variables[name] = Ct2Variable(name, tuple(shape), DTYPE_NAMES[dtype_id], stream.tell(), num_bytes)
                stream.seek(num_bytes, 1)
            (alias_count,) = _unpack(stream, "<I")
            for _ in range(alias_count):
                alias, target = _string(stream), _string(stream)
                if target in variables:  # model.cc also ignores aliases to unknown variables
                    variables[alias] = variables[target]
    except (EOFError, UnicodeDecodeError) as exc:
        raise ModelFormatError(f"{model_bin} is truncated or not a CTranslate2 model: {exc}") from None
    return Ct2Header(version, spec_name, revision, variables)


def _decode(raw: bytes, variable: Ct2Variable) -> np.ndarray:
    array = np.frombuffer(raw, dtype=_NUMPY_DTYPES[variable.dtype]).reshape(variable.shape)
    if variable.dtype == "bfloat16":
        # bfloat16 is the top half of a float32, so shifting it up is exact.
        return (array.astype(np.uint32) << 16).view(np.float32)
    if variable.dtype == "float16":
        return array.astype(np.float32)
    return array.copy()  # own the memory rather than pin the read buffer


def load_arrays(model_bin: Path, variables: Iterable[Ct2Variable]) -> dict[str, np.ndarray]:
    """The variables' data by name; float16 and bfloat16 come back as exact float32."""
    arrays: dict[str, np.ndarray] = {}
    with Path(model_bin).open("rb") as stream:
        for variable in variables:
            stream.seek(variable.offset)
            raw = stream.read(variable.num_bytes)
            if len(raw) != variable.num_bytes:
                raise ModelFormatError(f"{model_bin} is truncated inside variable {variable.name}")
            arrays[variable.name] = _decode(raw, variable)
    return arrays


def count_layers(header: Ct2Header, side: str) -> int:
    """How many consecutive layers one side of a Whisper spec has; a gap means a damaged model."""
    indices = {int(m.group(2)) for name in header.variables
               if (m := _LAYER.match(name)) and m.group(1) == side}
    if indices != set(range(len(indices))) or not indices:
        raise ModelFormatError(f"model.bin has no consecutive {side} layers (found {sorted(indices)})")
    return len(indices)
