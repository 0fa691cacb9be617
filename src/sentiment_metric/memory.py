"""PML's cross-batch memory, with the sentiment constraints' exact path against the memory."""

from __future__ import annotations

from typing import Any

from pytorch_metric_learning.losses import CrossBatchMemory
from pytorch_metric_learning.utils import common_functions as c_f
from torch import Tensor

from .constraint import SentimentConstraintLoss

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
            assert len(enqueue_mask) == len(embeddings)
            queue_emb, queue_labels = embeddings[enqueue_mask], labels[enqueue_mask]
            embeddings, labels = embeddings[~enqueue_mask], labels[~enqueue_mask]
        else:
            assert len(embeddings) <= len(self.embedding_memory)
        self.add_to_memory(queue_emb, queue_labels, len(queue_emb))
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
