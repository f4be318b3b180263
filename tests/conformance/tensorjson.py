"""Tensors of the fixtures as JSON text: exact, diffable, and no binary file in git (binary artifacts go to DVC).

``{"name": {"dtype": "float32", "shape": [2, 3], "hex": "<little-endian bytes>"}}``; bool tensors are packed bits
(``numpy.packbits``, C order). numpy only, so the drivers that run the released code can write it too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import numpy as np

DTYPES = ("bool", "int8", "int32", "int64", "float32", "float64", "uint8")


def encode(arrays: Mapping[str, np.ndarray]) -> dict:
    out = {}
    for name, a in arrays.items():
        a = np.ascontiguousarray(a)
        if a.dtype.name not in DTYPES:
            raise ValueError(f"{name}: dtype {a.dtype} is not one of {', '.join(DTYPES)}")
        data = np.packbits(a.reshape(-1)) if a.dtype == bool else a.astype(a.dtype.newbyteorder("<"))
        out[name] = {"dtype": a.dtype.name, "shape": list(a.shape), "hex": data.tobytes().hex()}
    return out


def decode(data: Mapping[str, dict]) -> dict[str, np.ndarray]:
    out = {}
    for name, d in data.items():
        if d["dtype"] not in DTYPES:
            raise ValueError(f"{name}: dtype {d['dtype']!r} is not one of {', '.join(DTYPES)}")
        raw = bytes.fromhex(d["hex"])
        n = int(np.prod(d["shape"])) if d["shape"] else 1
        if d["dtype"] == "bool":
            a = np.unpackbits(np.frombuffer(raw, dtype=np.uint8))[:n].astype(bool)
        else:
            a = np.frombuffer(raw, dtype=np.dtype(d["dtype"]).newbyteorder("<")).astype(d["dtype"])
        out[name] = a.reshape(d["shape"])
    return out


def save(path: str | Path, arrays: Mapping[str, np.ndarray]) -> None:
    Path(path).write_text(json.dumps(encode(arrays), indent=0, sort_keys=True) + "\n")


def load(path: str | Path) -> dict[str, np.ndarray]:
    return decode(json.loads(Path(path).read_text()))
