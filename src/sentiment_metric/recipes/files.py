"""Files a run writes: one atomic writer, JSON documents and the metrics log.

Every file the recipes write whole (a checkpoint, ``split.json``, the truncated metrics log)
goes through :func:`atomic_write`: a temporary file in the same folder, flushed and
``fsync``-ed, then :func:`os.replace` over the target. A crash mid-write leaves the previous
file intact, never a truncated one.

Example:
    >>> import tempfile, os, torch
    >>> from sentiment_metric.recipes.files import jsonable, write_json
    >>> jsonable({"a": torch.tensor([1, 2]), "b": float("nan")})
    {'a': [1, 2], 'b': None}
    >>> path = write_json(os.path.join(tempfile.mkdtemp(), "x.json"), {"k": 1})
    >>> open(path).read()
    '{\\n "k": 1\\n}\\n'
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import torch

__all__ = ["append_jsonl", "atomic_write", "jsonable", "truncate_jsonl", "write_json"]


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object]) -> Path:
    """Write ``path`` atomically: ``write(file)`` fills a temporary file, which replaces it.

    The folder is created when missing. If ``write`` raises, the temporary file is removed and
    the old ``path`` (if any) is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def write_json(path: str | os.PathLike[str], payload: Any, *, indent: int = 1) -> Path:
    """Write ``payload`` as JSON (with a final newline), atomically."""
    text = json.dumps(payload, indent=indent) + "\n"
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def jsonable(x: Any) -> Any:
    """``x`` with tensors and NumPy values as lists and numbers, and NaN/Inf as ``None``."""
    if isinstance(x, torch.Tensor):
        return x.tolist() if x.dim() else x.item()
    if isinstance(x, Mapping):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if hasattr(x, "tolist"):  # numpy
        return x.tolist()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def append_jsonl(path: str | os.PathLike[str], record: Mapping[str, Any]) -> None:
    """Append one JSON line to ``path`` (the metrics log)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, sort_keys=False) + "\n")
        f.flush()


def truncate_jsonl(path: str | os.PathLike[str], last_epoch: int) -> None:
    """Keep only the lines of epochs ``<= last_epoch`` (a run killed after logging an epoch
    but before its checkpoint must not log it twice)."""
    path = Path(path)
    if not path.exists():
        return
    keep = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if int(json.loads(line).get("epoch", 0)) <= last_epoch:
                keep.append(line)
        except (ValueError, AttributeError):
            continue
    text = "".join(k + "\n" for k in keep)
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
