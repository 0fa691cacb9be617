"""Checkpoints and random-number states: what an exact resume needs.

A checkpoint is one ``torch.save`` dict (``format``, ``version``, ``config``, ``class_names``,
``epoch``, ``step``, ``world_size``, the model, optimizer, scheduler, AMP scaler and sampler
states, ``rng`` (one :func:`get_rng_state` per process) and the epoch's ``metrics``), written
atomically by :func:`atomic_save` and read safely (``weights_only=True``) by
:func:`load_checkpoint`.

Random-number states: :func:`get_rng_state` captures the global generators (Python, NumPy,
torch, CUDA) and, explicitly, the private :class:`torch.Generator` s a caller names (a seeded
miner's); :func:`set_rng_state` restores them.

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> s = get_rng_state({"miner": g}); a = torch.rand(1); b = torch.rand(1, generator=g)
    >>> set_rng_state(s, {"miner": g})
    >>> bool(torch.rand(1) == a), bool(torch.rand(1, generator=g) == b)
    (True, True)
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import SentimentMetricError
from .files import atomic_write

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_NAME",
    "CHECKPOINT_VERSION",
    "atomic_save",
    "check_checkpoint_keys",
    "get_rng_state",
    "load_checkpoint",
    "seed_everything",
    "seed_worker",
    "set_rng_state",
]

CHECKPOINT_FORMAT = "sentiment-metric-checkpoint"
CHECKPOINT_VERSION = 1
CHECKPOINT_NAME = "last.pt"
"""The file name of a run's checkpoint inside its ``out`` folder."""


def atomic_save(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save`` through :func:`~sentiment_metric.recipes.files.atomic_write`.

    A crash mid-write leaves the previous checkpoint intact, never a truncated one.
    """
    return atomic_write(path, lambda f: torch.save(obj, f))


def load_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Read a checkpoint written by training (safely: ``weights_only=True``).

    Raises:
        SentimentMetricError: the file is missing, unreadable or not such a checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise SentimentMetricError(f"checkpoint {str(path)!r} does not exist (or is not a file)")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # pickle/zip errors of every kind
        raise SentimentMetricError(
            f"checkpoint {str(path)!r} could not be read ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''})"
        ) from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise SentimentMetricError(
            f"{str(path)!r} is not a sentiment-metric checkpoint (written by "
            "`sentiment-metric train` or sentiment_metric.recipes.loop.train)"
        )
    return ckpt


RESUME_KEYS = ("config", "class_names", "model", "epoch", "optimizer", "scheduler", "scaler",
               "sampler")  # fmt: skip
"""What a checkpoint must hold to continue its run."""


def check_checkpoint_keys(ckpt: Mapping[str, Any], keys: Sequence[str], purpose: str) -> None:
    """Raise unless ``ckpt`` holds every one of ``keys`` (not ``None``; the config, class
    names and weights not empty; ``epoch`` an int ``>= 0``), naming what is missing and what
    it was needed for (``purpose``, e.g. ``"rebuild its model"``): never a raw ``KeyError``
    later.
    """
    missing = [
        k for k in keys
        if ckpt.get(k) is None or (k in ("config", "class_names", "model") and not ckpt[k])
    ]  # fmt: skip
    if missing:
        raise SentimentMetricError(
            f"the checkpoint has no {', '.join(repr(k) for k in missing)}: it cannot {purpose} "
            "(was it written by `sentiment-metric train`?)"
        )
    epoch = ckpt.get("epoch", 0)
    if "epoch" in keys and (isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0):
        raise SentimentMetricError(
            f"the checkpoint's 'epoch' must be an int >= 0 (epochs trained), got {epoch!r}"
        )


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every GPU)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (PML samples from NumPy's global generator)
    torch.manual_seed(seed)


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn`` of a DataLoader: seed a worker's Python and NumPy from torch's seed."""
    s = torch.initial_seed() % 2**32
    np.random.seed(s)  # noqa: NPY002 (PML samples from NumPy's global generator)
    random.seed(s)


def get_rng_state(generators: Mapping[str, torch.Generator] | None = None) -> dict[str, Any]:
    """Every global random-number state, and those of ``generators``, in a form
    ``torch.load(weights_only=True)`` reads.

    Args:
        generators: private generators to save too, by name (``{"miner": miner.generator}``).

    Example:
        >>> s = get_rng_state(); a = torch.rand(1); set_rng_state(s); bool(torch.rand(1) == a)
        True
    """
    py = random.getstate()
    np_state: Any = np.random.get_state()  # noqa: NPY002 (PML samples from NumPy's global generator)
    return {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": {
            "name": str(np_state[0]),
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "generators": {name: g.get_state() for name, g in (generators or {}).items()},
    }


def set_rng_state(
    state: Mapping[str, Any], generators: Mapping[str, torch.Generator] | None = None
) -> None:
    """Restore what :func:`get_rng_state` returned (and the named ``generators`` it holds)."""
    py = state["python"]
    random.setstate((int(py[0]), tuple(int(v) for v in py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state(  # noqa: NPY002 (PML samples from NumPy's global generator)
        (
            n["name"],
            n["keys"].numpy().astype(np.uint32),
            int(n["pos"]),
            int(n["has_gauss"]),
            float(n["cached_gaussian"]),
        )
    )
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda") or []
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    saved = state.get("generators", {})
    for name, g in (generators or {}).items():
        if name in saved:
            g.set_state(saved[name])
