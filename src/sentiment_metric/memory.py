"""PML's cross-batch memory, with the sentiment constraints' exact path against the memory."""

from __future__ import annotations

from typing import Any

import torch
from pytorch_metric_learning.losses import CrossBatchMemory
from pytorch_metric_learning.utils import common_functions as c_f
from torch import Tensor

from ._checks import check_embeddings, check_labels, check_positive_int, check_tensor
from .constraint import SentimentConstraintLoss
from .errors import SentimentMetricError

__all__ = ["SentimentCrossBatchMemory"]


class SentimentCrossBatchMemory(CrossBatchMemory):
    """PML's ``CrossBatchMemory`` that also accepts :class:`SentimentConstraintLoss`.

    PML whitelists the losses ``CrossBatchMemory`` wraps by class name; this subclass adds
    ``"SentimentConstraintLoss"``. Without a miner and without ``indices_tuple``, PML would
    hand the loss every *pair* against the memory (a 4-tuple); here our loss instead runs its
    exact exhaustive path against the memory (every ranked triplet, each sample's own memory
    slot excluded: the slots are handed to the loss as ``self_index=``), in ``O(B·M)`` memory.
    With a miner or an ``indices_tuple``, PML's own path is used.

    .. math::

        E = E_{sml}(\\text{batch}, \\text{memory})

    Args:
        loss: the wrapped loss (ours or any loss PML's ``CrossBatchMemory`` supports).
        embedding_size: ``D``.
        memory_size: ``M``, the number of stored embeddings.
        miner: optional PML miner called against the memory.

    Every call is checked first (a :class:`~sentiment_metric.SentimentMetricError` naming the
    argument): ``embeddings`` ``(B, embedding_size)``, ``labels`` ``(B,)`` of any integer dtype
    (stored as ``int64``), ``B <= memory_size``, ``enqueue_mask`` a ``(B,)`` bool tensor.
    The value checks (finiteness, label range) follow the wrapped loss's ``validate``.

    Example:
        >>> import torch
        >>> import sentiment_metric as sm
        >>> loss = sm.SentimentConstraintLoss(class_names=sm.MIKELS_WHEEL.emotions)
        >>> xbm = sm.SentimentCrossBatchMemory(loss, embedding_size=8, memory_size=64)
        >>> g = torch.Generator().manual_seed(0)
        >>> out = xbm(torch.randn(16, 8, generator=g), torch.arange(16) % 8)
        >>> out.shape, xbm.queue_idx
        (torch.Size([]), 16)
    """

    embedding_memory: Tensor
    label_memory: Tensor

    def __init__(
        self,
        loss: torch.nn.Module,
        embedding_size: int,
        memory_size: int = 1024,
        miner: torch.nn.Module | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(loss, torch.nn.Module):
            raise SentimentMetricError(
                f"loss must be a loss module (a PML loss), got {type(loss).__name__}"
            )
        if miner is not None and not isinstance(miner, torch.nn.Module):
            raise SentimentMetricError(
                f"miner must be a PML miner (a torch.nn.Module) or None, got "
                f"{type(miner).__name__} {miner!r}"
            )
        check_positive_int(embedding_size, "embedding_size")
        check_positive_int(memory_size, "memory_size")
        super().__init__(loss, embedding_size, memory_size=memory_size, miner=miner, **kwargs)

    def _check_call(
        self, embeddings: Any, labels: Any, indices_tuple: Any, enqueue_mask: Any
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """The checked ``(embeddings, labels as int64, enqueue_mask)`` of a call."""
        validate = bool(getattr(self.loss, "validate", True))
        rel = getattr(self.loss, "relations", None)
        num_classes = getattr(rel, "num_classes", None)
        embeddings = check_embeddings(embeddings, "embeddings", validate=validate)
        if embeddings.shape[1] != self.embedding_size:
            raise SentimentMetricError(
                f"embeddings must have embedding_size={self.embedding_size} columns, got shape "
                f"{tuple(embeddings.shape)}"
            )
        if labels is None:
            raise SentimentMetricError("labels are required: the memory stores each label")
        b = embeddings.shape[0]
        labels = check_labels(labels, num_classes, length=b, validate=validate)
        if indices_tuple is not None and enqueue_mask is not None:
            raise SentimentMetricError(
                "indices_tuple and enqueue_mask are mutually exclusive; give one or neither"
            )
        if enqueue_mask is None:
            if b > self.memory_size:
                raise SentimentMetricError(
                    f"embeddings has {b} rows but memory_size is {self.memory_size}; a batch "
                    "must fit in the memory (use a larger memory_size or an enqueue_mask)"
                )
            return embeddings, labels, None
        mask = check_tensor(enqueue_mask, "enqueue_mask")
        if mask.dtype != torch.bool or mask.shape != (b,):
            raise SentimentMetricError(
                f"enqueue_mask must be a bool tensor of shape ({b},) like the batch, got shape "
                f"{tuple(mask.shape)} and dtype {mask.dtype}"
            )
        if validate and int(mask.sum()) > self.memory_size:
            raise SentimentMetricError(
                f"enqueue_mask enqueues {int(mask.sum())} rows but memory_size is "
                f"{self.memory_size}"
            )
        return embeddings, labels, mask.to(embeddings.device)

    @staticmethod
    def supported_losses() -> list[str]:
        return [*CrossBatchMemory.supported_losses(), "SentimentConstraintLoss"]

    def forward(
        self,
        embeddings: Tensor,
        labels: Tensor,
        indices_tuple: Any = None,
        enqueue_mask: Tensor | None = None,
    ) -> Any:
        embeddings, labels, enqueue_mask = self._check_call(
            embeddings, labels, indices_tuple, enqueue_mask
        )
        if (
            self.miner is not None
            or indices_tuple is not None
            or not isinstance(self.loss, SentimentConstraintLoss)
        ):
            return super().forward(embeddings, labels, indices_tuple, enqueue_mask)
        # PML's steps, with the exhaustive loss against the memory: the batch's own memory
        # slots are excluded by index (when the whole batch was enqueued)
        self.reset_stats()
        labels = c_f.to_device(labels, device=embeddings.device)
        self.embedding_memory = c_f.to_device(
            self.embedding_memory, device=embeddings.device, dtype=embeddings.dtype
        )
        self.label_memory = c_f.to_device(
            self.label_memory, device=labels.device, dtype=labels.dtype
        )
        queue_emb, queue_labels = embeddings, labels
        if enqueue_mask is not None:
            queue_emb, queue_labels = embeddings[enqueue_mask], labels[enqueue_mask]
            embeddings, labels = embeddings[~enqueue_mask], labels[~enqueue_mask]
        self.add_to_memory(queue_emb, queue_labels, len(queue_emb))
        if embeddings.shape[0] == 0:  # an enqueue-only step (every row masked): 0, as PML
            return queue_emb[:0].sum()  # 0, still connected to the graph
        n = len(self.embedding_memory) if self.has_been_filled else self.queue_idx
        self_index = self.curr_batch_idx if enqueue_mask is None else None
        return self.loss(
            embeddings,
            labels,
            None,
            self.embedding_memory[:n],
            self.label_memory[:n],
            self_index=self_index,
        )
