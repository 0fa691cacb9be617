"""The one squared distance, the one self-exclusion, and the Gram product they rest on.

Every pairwise squared Euclidean distance of the library (the loss's and the miner's default
distance, the exact kNN of the retrieval measures) is :func:`squared_euclidean`; every "never
compare a sample with itself" is :func:`exclude_self`. :func:`gram` is the batched ``F Fᵀ``
with the one-product symmetric backward, shared with
:func:`~sentiment_metric.functional.gram_matrix`.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import Tensor

__all__ = ["exclude_self", "full_precision_region", "gram", "squared_euclidean"]


def full_precision_region(device: torch.device) -> contextlib.AbstractContextManager[None]:
    """A region where autocast is off for ``device`` (a no-op where autocast does not exist)."""
    # cpu/cuda first: torch.compile (dynamo, torch 2.11) cannot trace is_autocast_available.
    if device.type in ("cpu", "cuda") or (
        not torch.compiler.is_compiling() and torch.amp.is_autocast_available(device.type)
    ):
        return torch.autocast(device_type=device.type, enabled=False)
    return contextlib.nullcontext()


class _Gram(torch.autograd.Function):
    """``F Fᵀ`` with the symmetric backward ``dF = (dΦ + dΦᵀ) F``: one ``bmm`` instead of two."""

    @staticmethod
    def forward(ctx: Any, f: Tensor) -> Tensor:
        ctx.save_for_backward(f)
        return torch.bmm(f, f.transpose(1, 2))

    @staticmethod
    def backward(ctx: Any, dg: Tensor) -> Tensor:
        (f,) = ctx.saved_tensors
        with full_precision_region(f.device):
            return torch.bmm(dg + dg.transpose(1, 2), f)


def gram(f: Tensor) -> Tensor:
    r"""The batched Gram product :math:`\Phi = F F^\top` of ``(B, C, M)`` matrices, unchecked.

    The backward uses the symmetry, :math:`\partial L / \partial F = (\bar\Phi + \bar\Phi^\top)
    F`: one more ``bmm``, not two.

    Example:
        >>> import torch
        >>> gram(torch.ones(1, 2, 3)).tolist()
        [[[3.0, 3.0], [3.0, 3.0]]]
    """
    out: Tensor = _Gram.apply(f)
    return out


def squared_euclidean(query: Tensor, ref: Tensor | None = None) -> Tensor:
    r"""Squared Euclidean distances between the rows of ``query`` and of ``ref``.

    .. math::

        D(i, j) = \max\big(\lVert q_i \rVert^2 + \lVert r_j \rVert^2 - 2\, q_i^\top r_j,\ 0\big)

    One matrix product (``addmm``), not ``torch.cdist`` and a square. With ``ref=None`` (the
    batch against itself, float32/float64) the product is a Gram matrix, computed by
    :func:`gram` (one-product backward), whose diagonal gives the squared norms: the
    diagonal of the result is exactly 0. Nothing is normalised here: callers normalise.

    Args:
        query: ``(Q, D)``.
        ref: ``(R, D)``, or ``None`` for ``query`` itself.

    Returns:
        ``(Q, R)`` (``(Q, Q)`` without ``ref``), ``>= 0``, in the inputs' dtype.

    Example:
        >>> import torch
        >>> x = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
        >>> squared_euclidean(x).tolist()
        [[0.0, 25.0], [25.0, 0.0]]
        >>> squared_euclidean(x, torch.tensor([[0.0, 1.0]])).tolist()
        [[1.0], [18.0]]
    """
    if ref is None and query.dtype in (torch.float32, torch.float64):
        g = gram(query.unsqueeze(0)).squeeze(0)
        sq = g.diagonal()
        mat = sq.unsqueeze(1) + sq.unsqueeze(0) - 2.0 * g
    else:
        q_sq = (query * query).sum(dim=1, keepdim=True)
        r = query if ref is None else ref
        r_sq = q_sq if ref is None else (r * r).sum(dim=1, keepdim=True)
        mat = torch.addmm(q_sq + r_sq.T, query, r.T, beta=1.0, alpha=-2.0)
    return mat.clamp_min(0.0)


def exclude_self(scores: Tensor, self_index: Tensor | None, fill: float) -> Tensor:
    """``scores`` with entry ``(i, self_index[i])`` set to ``fill``: a sample never meets itself.

    Rows whose ``self_index`` lies outside ``[0, R)`` (e.g. ``-1``: the sample is not in the
    reference set) are kept as they are. One gather and one scatter, no host sync; the input
    is not modified (the result is a new tensor, differentiable elsewhere).

    Args:
        scores: ``(Q, R)`` distances, similarities or levels.
        self_index: ``(Q,)`` column of each row's own sample, or ``None`` (nothing excluded:
            ``scores`` is returned unchanged).
        fill: the value of the excluded entries (e.g. ``inf`` for a distance, ``-1`` for a
            level).

    Example:
        >>> import torch
        >>> exclude_self(torch.zeros(2, 3), torch.tensor([2, -1]), float("inf")).tolist()
        [[0.0, 0.0, inf], [0.0, 0.0, 0.0]]
    """
    if self_index is None or scores.shape[1] == 0:
        return scores
    r = scores.shape[1]
    self_index = self_index.to(device=scores.device, dtype=torch.long)
    keep = (self_index >= 0) & (self_index < r)
    col = self_index.clamp(0, r - 1).unsqueeze(1)
    filled = torch.where(keep.unsqueeze(1), fill, scores.gather(1, col)).to(scores.dtype)
    return scores.scatter(1, col, filled)
