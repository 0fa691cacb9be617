"""Processes and devices: ``torchrun``'s world, the device of this process, and sharded
M-per-class sampling.

Under ``torchrun`` the loop reads ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``
(:func:`init_distributed`), uses NCCL on CUDA and gloo on CPU, and draws its batches from
:class:`DistributedMPerClassSampler`: every process builds the same global list of
M-per-class batches and keeps its share.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import torch
from pytorch_metric_learning import samplers

from .. import SentimentMetricError

__all__ = [
    "DistributedMPerClassSampler",
    "init_distributed",
    "process_rank",
    "resolve_device",
    "world_size",
]


def world_size() -> int:
    """Processes in the ``torch.distributed`` group (1 when there is none)."""
    d = torch.distributed
    return d.get_world_size() if d.is_available() and d.is_initialized() else 1


def process_rank() -> int:
    """This process's rank in the ``torch.distributed`` group (0 when there is none)."""
    d = torch.distributed
    return d.get_rank() if d.is_available() and d.is_initialized() else 0


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; a CUDA name without CUDA is an error.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError) as err:
        raise SentimentMetricError(f"device must be auto, cpu or cuda[:N], got {name!r}") from err
    if dev.type not in ("cpu", "cuda"):
        raise SentimentMetricError(
            f"device must be auto, cpu or cuda[:N], got {name!r} (the recipes run on the CPU "
            "or on CUDA GPUs only)"
        )
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SentimentMetricError(
            f"device {name!r} asked for CUDA, but torch.cuda.is_available() is False"
        )
    return dev


def init_distributed(device_name: str) -> tuple[bool, torch.device]:
    """Start the process group when launched by ``torchrun``; pick this process's device.

    Returns:
        ``(started, device)``: whether this call started the process group (and so should
        destroy it), and the device (``cuda:LOCAL_RANK`` under ``torchrun`` on CUDA).
    """
    device = resolve_device(device_name)
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False, device
    started = False
    dist = torch.distributed
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        started = True
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return started, torch.device("cuda", local)
    return started, device


class DistributedMPerClassSampler(samplers.MPerClassSampler):
    """PML's ``MPerClassSampler``, seeded per epoch and sharded over processes.

    Every batch holds ``batch_size / m`` emotions with ``m`` images each (with replacement only
    for an emotion with fewer than ``m`` images), exactly PML's scheme. Unlike PML's sampler,
    which draws from NumPy's global generator, this one draws from a generator seeded by
    ``(seed, epoch)``, so its whole state is two integers (:meth:`state_dict`) and every
    process builds the same global list of batches, then keeps its share
    (batches ``rank, rank + W, ...``): a ``DistributedSampler``-style M-per-class sampler.
    Call :meth:`set_epoch` at the start of every epoch.

    Args:
        labels: ``(N,)`` integer labels of the dataset.
        m: images per class in a batch.
        batch_size: images per batch **per process**; ``m`` must divide it and
            ``m * (number of classes) >= batch_size``.
        length_before_new_iter: indices per epoch over all processes (default ``len(labels)``),
            rounded down to whole batches (at least one batch per process).
        num_replicas: number of processes (default: the ``torch.distributed`` world size).
        rank: this process's rank (default: from ``torch.distributed``).
        seed: the sampling seed.

    Example:
        >>> labels = [0] * 10 + [1] * 10 + [2] * 10 + [3] * 10
        >>> s = DistributedMPerClassSampler(labels, m=4, batch_size=8, seed=0)
        >>> s.set_epoch(0); idx = list(s); len(idx)
        40
        >>> sorted({labels[i] for i in idx[:4]}) == [labels[idx[0]]]   # 4 of one class
        True
    """

    def __init__(
        self,
        labels: Sequence[int] | torch.Tensor | np.ndarray,
        m: int,
        batch_size: int,
        length_before_new_iter: int | None = None,
        num_replicas: int | None = None,
        rank: int | None = None,
        seed: int = 0,
    ) -> None:
        labels_np = np.asarray(
            labels.cpu().numpy() if isinstance(labels, torch.Tensor) else labels
        ).reshape(-1)
        if labels_np.size == 0:
            raise SentimentMetricError("labels is empty: nothing to sample from")
        n_classes = len(np.unique(labels_np))
        if isinstance(m, bool) or not isinstance(m, int) or m < 1:
            raise SentimentMetricError(f"m must be an int >= 1, got {m!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise SentimentMetricError(f"batch_size must be an int >= 1, got {batch_size!r}")
        if batch_size % m:
            raise SentimentMetricError(f"m ({m}) must divide batch_size ({batch_size})")
        if m * n_classes < batch_size:
            raise SentimentMetricError(
                f"a batch of {batch_size} with {m} per class needs {batch_size // m} classes, "
                f"but the labels hold only {n_classes}; raise m (m_per_class) to at least "
                f"{math.ceil(batch_size / n_classes)} or lower batch_size"
            )
        if num_replicas is None:
            num_replicas = world_size()
        if rank is None:
            rank = process_rank()
        if not 0 <= rank < num_replicas:
            raise SentimentMetricError(f"rank must lie in [0, {num_replicas - 1}], got {rank}")
        total = len(labels_np) if length_before_new_iter is None else int(length_before_new_iter)
        per_replica = max(batch_size, (total // num_replicas) // batch_size * batch_size)
        super().__init__(
            labels_np, m, batch_size=batch_size, length_before_new_iter=per_replica * num_replicas
        )
        self.num_replicas = num_replicas
        self.rank = rank
        self.seed = int(seed)
        self.epoch = 0
        self.num_samples = per_replica

    def set_epoch(self, epoch: int) -> None:
        """Use the batches of ``epoch`` (call before iterating, every epoch)."""
        self.epoch = int(epoch)

    def state_dict(self) -> dict[str, int]:
        """``{"seed", "epoch"}``: all it takes to redraw the same batches."""
        return {"seed": self.seed, "epoch": self.epoch}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        self.seed = int(state["seed"])
        self.epoch = int(state["epoch"])

    def __len__(self) -> int:
        return self.num_samples

    def __iter__(self) -> Iterator[int]:
        rng = np.random.RandomState([self.seed % 2**32, self.epoch % 2**32])
        classes = sorted(self.labels_to_indices)
        batch_size = int(self.batch_size or 0)
        per_batch = batch_size // self.m_per_class
        n_batches = self.num_samples // batch_size * self.num_replicas
        out: list[int] = []
        for b in range(n_batches):
            order = list(classes)
            rng.shuffle(order)
            batch: list[int] = []
            for label in order[:per_batch]:
                pool = self.labels_to_indices[label]
                replace = len(pool) < self.m_per_class
                batch.extend(
                    int(i) for i in rng.choice(pool, size=self.m_per_class, replace=replace)
                )
            if b % self.num_replicas == self.rank:
                out.extend(batch)
        return iter(out)
