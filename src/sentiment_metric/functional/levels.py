"""Pair levels: how far apart two labels are on the wheel, per (batch, reference) pair.

Level 0: the same emotion, 1: the same polarity (a *relative*), 2: the opposite polarity (a
*negative*); ``-1`` marks a self-pair (a sample against itself), which no constraint uses. The
constraint sums, the explicit triplets and the miner read their pairs here.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._checks import check_labels, check_shape
from ..errors import SentimentMetricError
from ._inputs import check_level
from .distance import exclude_self

__all__ = ["level_masks", "pair_levels"]


def _check_pair_labels(
    labels: Tensor, ref_labels: Tensor | None, c: int | None, r: int | None, validate: bool
) -> tuple[Tensor, Tensor | None]:
    """Labels (and reference labels) as int64 in ``[0, c)``; ``r``: the reference size."""
    labels = check_labels(labels, c, validate=validate)
    if ref_labels is not None:
        ref_labels = check_labels(
            ref_labels, c, length=r, name="ref_labels", length_name="dist's columns",
            validate=validate,
        )  # fmt: skip
        ref_labels = ref_labels.to(labels.device)
    return labels, ref_labels


def _resolve_self_index(
    self_index: Tensor | None, ref_labels: Tensor | None, labels: Tensor
) -> Tensor | None:
    """Self-pairs are excluded when the reference set *is* the batch (PML's rule)."""
    if self_index is not None:
        self_index = check_shape(self_index, ("B",), "self_index")
        if self_index.is_floating_point() or self_index.dtype == torch.bool:
            raise SentimentMetricError(
                f"self_index must hold integer column indices, got dtype {self_index.dtype}"
            )
        if self_index.shape[0] != labels.shape[0]:
            raise SentimentMetricError(
                f"self_index has {self_index.shape[0]} entries but labels has "
                f"{labels.shape[0]}; they must match"
            )
        return self_index.to(device=labels.device, dtype=torch.long)
    if ref_labels is None:
        return torch.arange(labels.shape[0], device=labels.device)
    return None


def pair_levels(
    labels: Tensor,
    level: Tensor,
    ref_labels: Tensor | None = None,
    self_index: Tensor | None = None,
    *,
    validate: bool = True,
) -> Tensor:
    """The level of every (batch, reference) pair, with self-pairs marked ``-1``.

    Args:
        labels: ``(B,)`` class indices of the batch.
        level: ``(C, C)`` level matrix (``LabelRelations.level``): 0 same class, 1 same
            polarity, 2 opposite polarity.
        ref_labels: ``(R,)`` class indices of the reference set; ``None``: the batch itself.
        self_index: ``(B,)`` column of the reference set that holds the same *sample* as each
            row (``-1``: none). ``None``: ``arange(B)`` when ``ref_labels`` is ``None`` (the
            reference set is the batch), else no self-pairs (PML's rule).
        validate: check the label range (reads values).

    Returns:
        ``(B, R)`` ``torch.int8`` matrix of levels, ``-1`` on self-pairs.

    Raises:
        SentimentMetricError: ``level`` not a square integer matrix, labels not 1-D integers
            (or, with ``validate``, out of ``[0, C)``), ``self_index`` of the wrong length or
            dtype.

    Example:
        >>> import torch
        >>> level = torch.tensor([[0, 1, 2], [1, 0, 2], [2, 2, 0]])
        >>> pair_levels(torch.tensor([0, 0, 2]), level).tolist()
        [[-1, 0, 2], [0, -1, 2], [2, 2, -1]]
    """
    level = check_level(level)
    labels, ref_labels = _check_pair_labels(labels, ref_labels, level.shape[0], None, validate)
    if self_index is None and ref_labels is None:  # the batch against itself: the diagonal
        lev = level.to(device=labels.device, dtype=torch.int8)[:, labels][labels]
        return lev.fill_diagonal_(-1)
    self_index = _resolve_self_index(self_index, ref_labels, labels)
    if ref_labels is None:
        ref_labels = labels
    lev = level.to(device=labels.device, dtype=torch.int8)[:, ref_labels][labels]
    return exclude_self(lev, self_index, -1, validate=validate)


def level_masks(
    labels: Tensor,
    level: Tensor,
    ref_labels: Tensor | None = None,
    self_index: Tensor | None = None,
    *,
    validate: bool = True,
) -> tuple[Tensor, Tensor, Tensor]:
    """Boolean ``(B, R)`` masks of the positive, relative and negative pairs.

    Same arguments as :func:`pair_levels`; self-pairs are in none of the masks.

    Returns:
        ``(same, relative, negative)``: level 0 (self excluded), level 1, level 2.

    Example:
        >>> import torch
        >>> level = torch.tensor([[0, 1, 2], [1, 0, 2], [2, 2, 0]])
        >>> same, rel, neg = level_masks(torch.tensor([0, 1, 2]), level)
        >>> rel.int().tolist()
        [[0, 1, 0], [1, 0, 0], [0, 0, 0]]
    """
    lev = pair_levels(labels, level, ref_labels, self_index, validate=validate)
    return lev == 0, lev == 1, lev == 2
