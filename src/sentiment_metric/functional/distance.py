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

from .._checks import check_shape
from ..errors import SentimentMetricError

__all__ = [
    "check_self_index",
    "check_self_index_range",
    "exclude_self",
    "full_precision_region",
    "gram",
    "squared_euclidean",
]


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

    Raises:
        SentimentMetricError: ``query`` or ``ref`` is not 2-D, or their widths ``D`` differ
            (shapes only: no value is read).

    Example:
        >>> import torch
        >>> x = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
        >>> squared_euclidean(x).tolist()
        [[0.0, 25.0], [25.0, 0.0]]
        >>> squared_euclidean(x, torch.tensor([[0.0, 1.0]])).tolist()
        [[1.0], [18.0]]
    """
    query = check_shape(query, ("Q", "D"), "query")
    if ref is not None:
        ref = check_shape(ref, ("R", "D"), "ref")
        if ref.shape[1] != query.shape[1]:
            raise SentimentMetricError(
                f"ref must have the width D of query: query has shape {tuple(query.shape)} "
                f"(D = {query.shape[1]}), ref has shape {tuple(ref.shape)} (D = {ref.shape[1]})"
            )
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


def exclude_self(
    scores: Tensor, self_index: Tensor | None, fill: float, *, validate: bool = True
) -> Tensor:
    """``scores`` with entry ``(i, self_index[i])`` set to ``fill``: a sample never meets itself.

    ``self_index[i] == -1`` means that row ``i``'s sample is not in the reference set: the row
    is kept as it is. One gather and one scatter; the input is not modified (the result is a
    new tensor, differentiable elsewhere).

    Args:
        scores: ``(Q, R)`` distances, similarities or levels.
        self_index: ``(Q,)`` integer column of each row's own sample in ``[0, R)``, or ``-1``
            (none); or ``None`` (nothing excluded: ``scores`` is returned unchanged).
        fill: the value of the excluded entries (e.g. ``inf`` for a distance, ``-1`` for a
            level).
        validate: refuse entries outside ``[-1, R)`` (:func:`check_self_index_range`).
            Unchecked, such an entry counts as ``-1`` (the row is kept as it is; a negative
            index never wraps around). Reads values (one ``aminmax`` and one read, a GPU
            sync): turn it off where the indices are in range by construction.

    Raises:
        SentimentMetricError: ``scores`` is not 2-D; ``self_index`` is not a 1-D integer
            tensor of length ``Q``; with ``validate``, an entry outside ``[-1, R)``.

    Example:
        >>> import torch
        >>> exclude_self(torch.zeros(2, 3), torch.tensor([2, -1]), float("inf")).tolist()
        [[0.0, 0.0, inf], [0.0, 0.0, 0.0]]
    """
    if self_index is None:
        return scores
    scores = check_shape(scores, ("Q", "R"), "scores")
    if isinstance(fill, bool) or not isinstance(fill, (int, float)):
        raise SentimentMetricError(f"fill must be a number, got {fill!r}")
    q, r = scores.shape
    self_index = check_self_index(self_index, q, r, validate=validate).to(scores.device)
    if r == 0:
        return scores
    keep = (self_index >= 0) & (self_index < r)
    col = self_index.clamp(0, r - 1).unsqueeze(1)
    filled = torch.where(keep.unsqueeze(1), fill, scores.gather(1, col)).to(scores.dtype)
    return scores.scatter(1, col, filled)


def check_self_index(self_index: Any, q: int, r: int, *, validate: bool = True) -> Tensor:
    """A ``(q,)`` integer ``self_index`` (columns of a reference set of ``r`` rows, ``-1``:
    none), as ``int64``; with ``validate`` its range too (:func:`check_self_index_range`).

    The one check of every ``self_index`` (the loss, the miner, :func:`exclude_self`).

    Example:
        >>> import torch
        >>> check_self_index(torch.tensor([1, -1], dtype=torch.int32), 2, 3)
        tensor([ 1, -1])
    """
    self_index = check_shape(self_index, (q,), "self_index")
    if self_index.is_floating_point() or self_index.is_complex() or self_index.dtype == torch.bool:
        raise SentimentMetricError(
            f"self_index must hold integer column indices, got dtype {self_index.dtype}"
        )
    self_index = self_index.to(dtype=torch.long)
    if validate:
        check_self_index_range(self_index, r)
    return self_index


def check_self_index_range(self_index: Tensor, r: int) -> None:
    """Refuse entries of a ``(Q,)`` integer ``self_index`` outside ``[-1, r)``.

    The value check of :func:`exclude_self` (``validate=True``), for a caller that checks
    once and then calls it with ``validate=False``. Reads values: one ``aminmax`` and one
    read (a GPU sync); nothing for an empty ``self_index``.

    Raises:
        SentimentMetricError: an entry ``< -1`` or ``>= r`` (the message gives the first).

    Example:
        >>> import torch
        >>> check_self_index_range(torch.tensor([2, -1]), 3)
        >>> check_self_index_range(torch.tensor([0, 3]), 3)
        Traceback (most recent call last):
        ...
        sentiment_metric.errors.SentimentMetricError: self_index ... [0, 3) ... got 3 at row 1 ...
    """
    if self_index.numel() == 0:
        return
    lo, hi = (int(v) for v in torch.aminmax(self_index))
    if lo < -1 or hi >= r:
        bad = lo if lo < -1 else hi
        row = int((self_index == bad).nonzero()[0, 0])
        raise SentimentMetricError(
            f"self_index must hold column indices in [0, {r}) or -1 (no own sample), got "
            f"{bad} at row {row} (negative indices do not wrap around)"
        )
