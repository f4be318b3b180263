"""Every file the suite writes goes through here: atomic, typed, and with readable errors.

A killed job must never leave a file that looks complete, so every writer stages its bytes in a
temporary file in the destination folder and renames it into place (rename is atomic on POSIX).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from .errors import ArtifactError, TicketbenchError

if TYPE_CHECKING:
    import torch

# torch and safetensors are imported by the functions that handle tensors, so that the stages that only read and
# write JSON (check, collect, report) start without them.

META_KEY = "ticketbench"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise ArtifactError(path, f"cannot be written ({_why(e)}); choose a writable output folder") from None
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        # mkstemp creates 0600 files; give the result the mode a plain open() would (0666 minus umask).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except TicketbenchError:
        raise
    except OSError as e:  # a full disk, a folder in the file's place: one line, and the old file stays
        raise ArtifactError(path, f"could not be written ({_why(e)}); nothing was replaced") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def _why(e: OSError) -> str:
    """The OS's reason without the path it repeats (the message already names the file)."""
    return e.strerror or type(e).__name__


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode())


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    torch = sys.modules.get("torch")  # a tensor can only exist if torch is imported already
    if torch is not None and isinstance(o, torch.Tensor):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"cannot write {type(o).__name__} as JSON")


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(path, "file not found")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtifactError(path, f"not valid JSON ({e}); the file is damaged or was cut short") from None
    except RecursionError:
        raise ArtifactError(path, TOO_DEEP) from None


# Python's JSON parser recurses once per level of nesting; no file the suite writes nests more than a few levels.
TOO_DEEP = "JSON nested too deeply to be a file the suite wrote; the file is damaged or was not written by ticketbench"


def save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> None:
    """Save tensors as safetensors, with ``metadata`` stored as one JSON string in the header."""
    from safetensors.torch import save as st_save

    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    header = {META_KEY: json.dumps(metadata, sort_keys=True, default=_json_default)}
    write_bytes(path, st_save(tensors, metadata=header))


def load_tensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load a file written by :func:`save_tensors`; damaged files raise an :class:`ArtifactError` naming the file."""
    from safetensors import SafetensorError
    from safetensors.torch import load as st_load

    path = Path(path)
    if not path.is_file():
        raise ArtifactError(path, "file not found")
    data = path.read_bytes()
    hint = "not a readable safetensors file ({}); it is damaged or was cut short: re-run the stage or `dvc pull` it"
    try:
        # safetensors returns its tensors in a different order in every process; sorted names make
        # any code that walks a loaded file (a generator drawn layer by layer, a concatenation) repeatable.
        loaded = st_load(data)
        tensors = {k: loaded[k] for k in sorted(loaded)}
        meta = _read_header(data).get("__metadata__") or {}
        return tensors, _metadata(path, meta)
    except (SafetensorError, ValueError, struct.error) as e:
        raise ArtifactError(path, hint.format(str(e).splitlines()[0] if str(e) else type(e).__name__)) from None
    except RecursionError:
        raise ArtifactError(path, f"its metadata is {TOO_DEEP}") from None


def _metadata(path: Path, header_meta: Any) -> dict[str, Any]:
    """The suite's JSON metadata of a safetensors header; anything but a JSON object is one line naming the file."""
    text = header_meta.get(META_KEY, "{}") if isinstance(header_meta, dict) else None
    try:
        meta = json.loads(text) if isinstance(text, str) else None
    except json.JSONDecodeError:
        meta = None
    if not isinstance(meta, dict):
        raise ArtifactError(path, f"its {META_KEY!r} metadata is not a JSON object; the file is damaged or was not "
                            "written by ticketbench")
    return meta


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """Only the JSON metadata of a safetensors file (reads the header, not the tensors)."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(path, "file not found")
    with open(path, "rb") as f:
        head = f.read(8)
        try:
            (n,) = struct.unpack("<Q", head)
            header = json.loads(f.read(n))
            if not isinstance(header, dict):
                raise ValueError(f"the header is {type(header).__name__}, not an object")
            return _metadata(path, header.get("__metadata__") or {})
        except (struct.error, ValueError, UnicodeDecodeError, MemoryError, OverflowError) as e:
            raise ArtifactError(path, f"not a readable safetensors header ({e}); the file is damaged") from None
        except RecursionError:
            raise ArtifactError(path, f"its header is {TOO_DEEP}") from None


def _read_header(data: bytes) -> dict[str, Any]:
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n])


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def state_hash(tensors: dict[str, torch.Tensor]) -> str:
    """A content hash of a state dict that does not depend on file layout (names, dtypes, shapes, bytes)."""
    import torch

    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu().reshape(-1)
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()
