"""The default distance of the loss and the miner: PML's ``LpDistance(power=2)``, via a matmul."""

from __future__ import annotations

from typing import Any

from pytorch_metric_learning.distances import LpDistance
from torch import Tensor

from .errors import SentimentMetricError
from .functional.distance import squared_euclidean

__all__ = ["SquaredEuclideanDistance"]


class SquaredEuclideanDistance(LpDistance):
    """PML's ``LpDistance(p=2, power=2)``: squared Euclidean between L2-normalised embeddings.

    The same matrix as ``LpDistance(power=2)`` (same recorded ``p``, ``power`` and norm stats,
    ``normalize_embeddings=True`` by default), computed by
    :func:`~sentiment_metric.functional.squared_euclidean` as ``‖q‖² + ‖r‖² − 2 q rᵀ`` clamped
    at 0: one matrix product (the batch against itself: a Gram matrix, with a one-product
    backward), instead of ``torch.cdist`` followed by a square (``cdist``'s backward is the
    slow part of a small-batch step on the CPU). Values agree with ``LpDistance(power=2)`` to
    rounding.

    Example:
        >>> import torch
        >>> from pytorch_metric_learning.distances import LpDistance
        >>> x = torch.randn(5, 3, dtype=torch.float64)
        >>> fast = SquaredEuclideanDistance()(x)
        >>> torch.allclose(fast, LpDistance(power=2)(x), atol=1e-12)
        True
    """

    def __init__(self, **kwargs: Any) -> None:
        for key, value in (("p", 2), ("power", 2)):
            if kwargs.pop(key, value) != value:
                raise SentimentMetricError(f"SquaredEuclideanDistance has {key}={value} fixed")
        super().__init__(p=2, power=2, **kwargs)

    def forward(self, query_emb: Tensor, ref_emb: Tensor | None = None) -> Tensor:
        self.reset_stats()
        self.check_shapes(query_emb, ref_emb)
        q = self.maybe_normalize(query_emb)
        r = None if ref_emb is None else self.maybe_normalize(ref_emb)
        self.set_default_stats(
            query_emb, query_emb if ref_emb is None else ref_emb, q, q if r is None else r
        )
        return squared_euclidean(q, r)
