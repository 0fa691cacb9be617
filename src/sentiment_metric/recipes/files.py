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
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import torch

__all__ = [
    "FAULT_HOOK",
    "append_jsonl",
    "atomic_write",
    "fault_point",
    "jsonable",
    "remove_stale_temporaries",
    "truncate_jsonl",
    "write_json",
    "write_jsonl",
]

FAULT_HOOK: Callable[[str], None] | None = None
"""Fault injection for the kill tests: when set, called at every write point with its name
(``"write:<file>"`` once the temporary file is complete, ``"replaced:<file>"`` after it
replaced the target, ``"append:<file>"`` / ``"appended:<file>"`` around a log line); raising
from it stops the run there, as a kill would."""

_TMP_MARK = ".tmp-"


def fault_point(where: str) -> None:
    """Call :data:`FAULT_HOOK` (a no-op unless a test set it)."""
    if FAULT_HOOK is not None:
        FAULT_HOOK(where)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists, owned by someone else (or cannot tell): leave its file
    return True


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files (``.<name>.tmp-<pid>``) that writes interrupted by a kill
    left in ``folder``, those of processes no longer running; returns what was removed."""
    removed: list[Path] = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for p in folder.iterdir():
        name = p.name
        if not (name.startswith(".") and _TMP_MARK in name and p.is_file()):
            continue
        pid = name.rsplit(_TMP_MARK, 1)[1]
        if pid.isdigit() and not _pid_alive(int(pid)):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object]) -> Path:
    """Write ``path`` atomically: ``write(file)`` fills a temporary file, which replaces it.

    The folder is created when missing. If ``write`` raises, the temporary file is removed and
    the old ``path`` (if any) is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}{_TMP_MARK}{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        fault_point(f"write:{path.name}")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    fault_point(f"replaced:{path.name}")
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
    name = Path(path).name
    fault_point(f"append:{name}")
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, sort_keys=False) + "\n")
        f.flush()
    fault_point(f"appended:{name}")


def write_jsonl(path: str | os.PathLike[str], records: Sequence[Mapping[str, Any]]) -> Path:
    """Write ``records`` as the whole JSON-lines file ``path``, atomically (the metrics log
    rewritten from a checkpoint on resume)."""
    text = "".join(json.dumps(r, sort_keys=False) + "\n" for r in records)
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


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
