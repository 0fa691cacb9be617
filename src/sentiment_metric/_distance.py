"""The default distance of the loss and the miner: PML's ``LpDistance(power=2)``, via a matmul."""

from __future__ import annotations

from typing import Any

import torch
from pytorch_metric_learning.distances import LpDistance
from torch import Tensor

from .functional.gram import _Gram


class SquaredEuclideanDistance(LpDistance):
    """PML's ``LpDistance(p=2, power=2)``: squared Euclidean between L2-normalised embeddings.

    The same matrix as ``LpDistance(power=2)`` (same recorded ``p``, ``power`` and norm stats,
    ``normalize_embeddings=True`` by default), computed as
    ``‖q‖² + ‖r‖² − 2 q rᵀ`` clamped at 0: one matrix product (the batch against itself: a
    Gram matrix, with the one-product backward of :func:`~sentiment_metric.functional.gram_matrix`),
    instead of ``torch.cdist`` followed by a square (``cdist``'s backward is the
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
                raise ValueError(f"SquaredEuclideanDistance has {key}={value} fixed")
        super().__init__(p=2, power=2, **kwargs)

    def forward(self, query_emb: Tensor, ref_emb: Tensor | None = None) -> Tensor:
        self.reset_stats()
        self.check_shapes(query_emb, ref_emb)
        q = self.maybe_normalize(query_emb)
        if ref_emb is None:
            ref_emb, r = query_emb, q
        else:
            r = self.maybe_normalize(ref_emb)
        self.set_default_stats(query_emb, ref_emb, q, r)
        if r is q and q.dtype in (torch.float32, torch.float64):
            # the batch against itself: q qᵀ is a Gram matrix, whose backward needs one
            # product, not two; its diagonal gives the squared norms (and an exact 0 diagonal)
            g = _Gram.apply(q.unsqueeze(0)).squeeze(0)
            sq = g.diagonal()
            mat = sq.unsqueeze(1) + sq.unsqueeze(0) - 2.0 * g
        else:
            q_sq = (q * q).sum(dim=1, keepdim=True)
            r_sq = q_sq if r is q else (r * r).sum(dim=1, keepdim=True)
            mat = torch.addmm(q_sq + r_sq.T, q, r.T, beta=1.0, alpha=-2.0)
        return mat.clamp_min(0.0)
