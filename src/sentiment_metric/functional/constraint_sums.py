"""The exact sums of the sentiment constraints over every ranked triplet, and the loss.

The constraints, the weighted distances ``q`` and the margins are in
:mod:`sentiment_metric.functional.constraint`; this module sums the hinges of **every** ranked
triplet of a batch without building one.

**Exhaustive mode without a B×B×B tensor.** For one anchor ``a`` and one closer ``c`` with
``t = q(a,c) + α``, the hinge summed over all farther samples ``f`` is

.. math::

    \\sum_f [t - q(a,f)]_+ = n \\cdot t - \\sum_{k < n} s_k,
    \\qquad n = \\#\\{f : q(a,f) < t\\}

with ``s`` the anchor's farther values sorted ascending: one sort per row (all levels at
once), a :func:`torch.searchsorted` and per-level prefix sums, the constraints batched. ``n``
is also the number of non-zero terms (what ``AvgNonZeroReducer`` divides by). A window
``low < [t - s]_+ < high`` (PML's ``ThresholdReducer``) is ``t - high < s < t - low``: two more
searchsorted. The gradient is written by hand (a custom autograd function), so nothing of size
``B × R × R`` is ever built and memory grows like ``B · R``.

**One expression.** Every hinge, exhaustive or explicit, is ``[(q(a,c) + α) - q(a,f)]_+``
evaluated in float64 (for float32 and half inputs too): the exhaustive path's ``q(a,f) < t``
and the explicit triplets' ``(q(a,c) + α) - q(a,f) > 0`` are then the same test, so the two
paths count the same non-zero terms even where ``α`` is below the distances' float32
resolution (unnormalised distances).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from .._checks import check_choice, check_finite, check_margins, check_shape
from ..errors import SentimentMetricError
from ._exhaustive import ConstraintSpec, ExhaustiveConstraint
from ._inputs import check_dist, check_dist_labels, check_level
from .constraint import (
    REDUCTIONS,
    SKIP_LEVEL_OPTIONS,
    Reduction,
    SkipLevel,
    Thresholds,
    level_margin,
    weighted_distances,
)
from .levels import pair_levels
from .triplets import mask_levels

__all__ = ["ConstraintSums", "constraint_sums", "sentiment_constraint_loss"]

_HALF = (torch.float16, torch.bfloat16)


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in _HALF else dtype


class ConstraintSums(NamedTuple):
    """Sums and counts over every ranked triplet, per sub-loss (0-D tensors).

    ``*_sum`` is the sum of the hinge terms (differentiable), ``*_count`` the number of
    triplets and ``*_nonzero`` the number of strictly positive terms (both float, no grad).
    With ``thresholds`` (PML's ``ThresholdReducer``) ``*_sum`` and ``*_nonzero`` hold the
    kept terms only (``low < v < high``; zeros are kept when ``low < 0 < high``). The sums
    are float64 (float32 inputs are evaluated in float64, see the module's docstring).
    """

    relative_sum: Tensor
    relative_count: Tensor
    relative_nonzero: Tensor
    negative_sum: Tensor
    negative_count: Tensor
    negative_nonzero: Tensor

    def reduce(
        self, reduction: Reduction | tuple[Reduction, Reduction] = "avg_nonzero"
    ) -> tuple[Tensor, Tensor]:
        """``(relative, negative)`` reduced like PML's reducers on the per-triplet losses.

        ``"mean"`` divides by the number of triplets (``MeanReducer``), ``"avg_nonzero"`` by
        the number of non-zero terms (``AvgNonZeroReducer``), ``"sum"`` does not divide
        (``SumReducer``). A pair gives each sub-loss its own reduction. An empty set gives 0
        (still connected to the graph).
        """
        kinds = (reduction, reduction) if isinstance(reduction, str) else tuple(reduction)
        out = []
        for kind, (s, n, nz) in zip(
            kinds,
            (
                (self.relative_sum, self.relative_count, self.relative_nonzero),
                (self.negative_sum, self.negative_count, self.negative_nonzero),
            ),
        ):
            check_choice(kind, REDUCTIONS, "reduction")
            if kind == "sum":
                out.append(s)
            else:
                d = n if kind == "mean" else nz
                out.append(s / d.clamp(min=1).to(s.dtype))
        return out[0], out[1]


def _spec(
    margins: tuple[float, float], sum_skip_level: bool, thresholds: Thresholds | None
) -> ConstraintSpec:
    """The kinds of triplet (closer level, farther level, margin, output slot) and windows."""
    kinds = [(0, 1, 0), (1, 2, 1)] + ([(0, 2, 1)] if sum_skip_level else [])
    windows = None
    if thresholds is not None:
        if len(thresholds) != 2:
            raise SentimentMetricError(
                f"thresholds must be one (low, high) pair per sub-loss, got {thresholds!r}"
            )
        ws = []
        for i, (low, high) in enumerate(thresholds):
            lo = -math.inf if low is None else float(low)
            hi = math.inf if high is None else float(high)
            if math.isnan(lo) or math.isnan(hi) or not lo < hi:
                raise SentimentMetricError(
                    f"thresholds[{i}] must have low < high, got ({low!r}, {high!r})"
                )
            ws.append((max(lo, 0.0), max(hi, 0.0), lo < 0.0 < hi))
        windows = (ws[0], ws[1])
    return ConstraintSpec(
        closer=tuple(k[0] for k in kinds),
        farther=tuple(k[1] for k in kinds),
        alpha=tuple(level_margin(k[0], k[1], margins) for k in kinds),
        slot=tuple(k[2] for k in kinds),
        windows=windows,
    )


def constraint_sums(
    dist: Tensor,
    labels: Tensor,
    level: Tensor,
    *,
    ref_labels: Tensor | None = None,
    theta: Tensor | None = None,
    margins: tuple[float, float] = (0.2, 0.1),
    inverted: bool = False,
    self_index: Tensor | None = None,
    skip_level: SkipLevel = "ignore",
    validate: bool = True,
    offset: Tensor | None = None,
    thresholds: Thresholds | None = None,
    allowed: Tensor | None = None,
) -> ConstraintSums:
    """Exact sums and counts of the hinge over **every** ranked triplet, in ``O(B·R)`` memory.

    .. math::

        S_1 = \\sum_{a}\\sum_{c:\\,l(a,c)=0}\\sum_{f:\\,l(a,f)=1} [q(a,c) - q(a,f) + \\alpha_1]_+,
        \\quad
        S_2 = \\sum_{a}\\sum_{c:\\,l(a,c)=1}\\sum_{f:\\,l(a,f)=2} [q(a,c) - q(a,f) + \\alpha_2]_+

    with ``q`` from :func:`weighted_distances`; with ``skip_level="sum_margins"``, ``S_2`` also
    holds every ``(level 0, level 2)`` triplet with margin ``α1 + α2``. Each hinge is
    evaluated as ``(q(a,c) + α) - q(a,f)`` in float64 (the sums come back in float64), the
    expression of the explicit triplets. The gradient is exact and written by hand (first
    derivatives only: no double backward).

    Args:
        dist: ``(B, R)`` distances (similarities if ``inverted``).
        labels: ``(B,)`` class indices. ``ref_labels``: ``(R,)``, ``None`` for the batch.
        level: ``(C, C)`` level matrix. ``theta``: ``(C, C)`` weights or ``None``.
        margins: ``(α1, α2)``, each ``>= 0``. ``inverted``: ``dist`` is a similarity.
        self_index: see :func:`pair_levels`.
        skip_level: ``"ignore"`` or ``"sum_margins"``.
        validate: check the label range and that ``dist`` is finite (reads values).
        offset: ``(C, C)`` offset subtracted from ``q`` (wheel margins), see
            :func:`weighted_distances`.
        thresholds: per sub-loss ``(low, high)`` (``None``: unbounded): keep only the hinge
            values ``low < v < high``, as PML's ``ThresholdReducer``; ``None``: all.
        allowed: ``(B, R)`` bool: the pairs that may be compared (``triplets.allowed_pairs``
            of a PML 4-tuple), the others excluded like self-pairs; ``None``: all.

    Returns:
        :class:`ConstraintSums`.

    Raises:
        SentimentMetricError: a bad shape, dtype, label, margin or option; with
            ``validate``, a NaN or Inf in ``dist``.

    Example:
        >>> import torch
        >>> level = torch.tensor([[0, 1, 2], [1, 0, 2], [2, 2, 0]])
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.nn.functional.normalize(torch.randn(6, 4, generator=g))
        >>> s = constraint_sums(torch.cdist(x, x) ** 2, torch.tensor([0, 0, 1, 1, 2, 2]), level)
        >>> s.relative_count.item(), s.negative_count.item()  # 4 anchors·1 pos·2 rel; 4·2·2
        (8.0, 16.0)
    """
    dist, level = check_dist(dist), check_level(level)
    labels, ref_labels = check_dist_labels(
        dist, labels, ref_labels, level.shape[0], validate=validate
    )
    a1, a2 = check_margins(margins)
    check_choice(skip_level, SKIP_LEVEL_OPTIONS, "skip_level")
    spec = _spec((a1, a2), skip_level == "sum_margins", thresholds)
    for name, table in (("theta", theta), ("offset", offset), ("dist", dist)):
        if table is not None and table is not dist:
            check_shape(table, tuple(level.shape), name)
        if table is not None and validate:
            check_finite(table, name)
    lev = mask_levels(pair_levels(labels, level, ref_labels, self_index, validate=False), allowed)
    q = weighted_distances(
        dist, labels, ref_labels, theta, inverted=inverted, offset=offset, validate=False
    )
    q = q.to(_compute_dtype(q.dtype))
    sums, nonzero, count = ExhaustiveConstraint.apply(q, lev, spec)
    return ConstraintSums(sums[0], count[0], nonzero[0], sums[1], count[1], nonzero[1])


def sentiment_constraint_loss(
    dist: Tensor,
    labels: Tensor,
    level: Tensor,
    *,
    ref_labels: Tensor | None = None,
    theta: Tensor | None = None,
    margins: tuple[float, float] = (0.2, 0.1),
    inverted: bool = False,
    self_index: Tensor | None = None,
    skip_level: SkipLevel = "ignore",
    reduction: Reduction = "avg_nonzero",
    validate: bool = True,
    offset: Tensor | None = None,
) -> Tensor:
    """The sentiment-constraint loss over every ranked triplet of a batch.

    .. math::

        E_{sml} = \\mathrm{red}\\big([D^*(a,p) - D^*(a,r) + \\alpha_1]_+\\big)
                + \\mathrm{red}\\big([D^*(a,r) - D^*(a,n) + \\alpha_2]_+\\big)

    each sub-loss reduced over its own triplets (``reduction``: ``"avg_nonzero"`` divides by
    the number of non-zero terms, ``"mean"`` by the number of triplets, ``"sum"`` nothing),
    exactly what PML's reducers give on the explicit per-triplet losses. Never builds a
    ``B × R × R`` tensor; see :func:`constraint_sums` for the arguments. The result is a 0-D
    tensor in the dtype of ``dist`` (float32 for float16/bfloat16 input); a batch with no
    ranked triplet (one class only) gives 0 with a zero gradient.

    Example:
        >>> import torch
        >>> import sentiment_metric as sm
        >>> rel = sm.MIKELS_WHEEL.relations(sm.MIKELS_WHEEL.emotions)
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.nn.functional.normalize(torch.randn(16, 8, generator=g))
        >>> y = torch.arange(16) % 8
        >>> loss = sentiment_constraint_loss(torch.cdist(x, x) ** 2, y, rel.level,
        ...                                  theta=rel.weights("inverse_wheel"))
        >>> loss.shape, bool(loss > 0)
        (torch.Size([]), True)
    """
    check_choice(reduction, REDUCTIONS, "reduction")
    sums = constraint_sums(
        dist,
        labels,
        level,
        ref_labels=ref_labels,
        theta=theta,
        margins=margins,
        inverted=inverted,
        self_index=self_index,
        skip_level=skip_level,
        validate=validate,
        offset=offset,
    )
    rel, neg = sums.reduce(reduction)
    return (rel + neg).to(_compute_dtype(dist.dtype))
