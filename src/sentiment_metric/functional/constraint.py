"""The sentiment constraints of Yang et al. (AAAI 2018), as pure tensor maths.

A *ranked triplet* ``(anchor, closer, farther)`` has ``level(anchor, closer) + 1 ==
level(anchor, farther)`` (level 0: same emotion, 1: same polarity, 2: opposite polarity). With
the weighted distance ``D*(i, j) = θ(y_i, y_j) · D(i, j)`` the two constraints are

.. math::

    E_{sml} = \\sum_{(a,p,r)} [D^*(a,p) - D^*(a,r) + \\alpha_1]_+
            + \\sum_{(a,r,n)} [D^*(a,r) - D^*(a,n) + \\alpha_2]_+

The *relative* sub-loss sums the first kind (closer at level 0, farther at level 1), the
*negative* sub-loss the second (closer at level 1, farther at level 2). A *skip-level* triplet
(closer at level 0, farther at level 2, which PML's own miners produce) is not ranked; with
``skip_level="sum_margins"`` it is checked with margin ``α1 + α2`` and summed into the negative
sub-loss (the chain of the two constraints implies ``D*(a,p) + α1 + α2 < D*(a,n)``).

**Orientation.** Everything here works on a *smaller-is-closer* quantity ``q``: ``q = θ·D`` for
a distance and ``q = θ·(1 - S)`` for a similarity ``S`` (``inverted=True``, e.g. PML's
``CosineSimilarity``): the weight always multiplies a *dissimilarity*, so collapsed embeddings
never satisfy a constraint (``-θ·S`` would: identical embeddings give ``q(a,c) - q(a,f) =
(θ_f - θ_c)·S < 0``). With ``θ = 1`` the differences ``q(a,c) - q(a,f)`` are exactly PML's
``distance.margin(D(a,c), D(a,f))`` in both cases.

**Wheel margins.** An optional ``(C, C)`` ``offset`` is subtracted from ``q``; with
``offset = β·dis`` a triplet's margin grows by ``β`` per wheel step between its farther and
its closer class: ``[q(a,c) - q(a,f) + α + β·(dis(a,f) - dis(a,c))]_+`` (the loss's
``wheel_margin``).

The exact sums over every ranked triplet are in :mod:`sentiment_metric.functional.constraint_sums`,
the pair levels in :mod:`sentiment_metric.functional.levels`, the explicit triplets in
:mod:`sentiment_metric.functional.triplets`. The weights ``θ`` come in as a ``(C, C)`` tensor;
the rule that makes them from the label relations is :mod:`sentiment_metric.weighting`
(:meth:`LabelRelations.weights <sentiment_metric.LabelRelations.weights>`).
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor

from .._checks import check_finite
from ._inputs import check_dist, check_dist_labels, check_tables

__all__ = [
    "REDUCTIONS",
    "SKIP_LEVEL_OPTIONS",
    "Reduction",
    "SkipLevel",
    "Thresholds",
    "level_margin",
    "weighted_distances",
]

Reduction = Literal["avg_nonzero", "mean", "sum"]
REDUCTIONS: tuple[str, ...] = ("avg_nonzero", "mean", "sum")
"""The values ``reduction`` accepts."""

SkipLevel = Literal["ignore", "sum_margins"]
SKIP_LEVEL_OPTIONS: tuple[str, ...] = ("ignore", "sum_margins")
"""The values ``skip_level`` accepts."""

Thresholds = tuple[tuple[float | None, float | None], tuple[float | None, float | None]]
"""Per sub-loss ``(low, high)`` of PML's ``ThresholdReducer`` (``None``: no bound)."""


def level_margin(closer_level: int, farther_level: int, margins: tuple[float, float]) -> float:
    """The margin of a triplet with its closer at ``closer_level`` and farther at ``farther_level``.

    The margins of the level steps between the two, summed: ``(0, 1)`` → ``α1`` (relative),
    ``(1, 2)`` → ``α2`` (negative), ``(0, 2)`` → ``α1 + α2`` (skip-level: the chain of the two
    constraints), an equal level → 0. The loss, its exhaustive sums and the miner's semi-hard
    band all read their margins here.

    Example:
        >>> level_margin(0, 1, (0.2, 0.1)), level_margin(1, 2, (0.2, 0.1))
        (0.2, 0.1)
        >>> round(level_margin(0, 2, (0.2, 0.1)), 10)
        0.3
    """
    return float(sum(margins[closer_level:farther_level]))


def weighted_distances(
    dist: Tensor,
    labels: Tensor,
    ref_labels: Tensor | None = None,
    theta: Tensor | None = None,
    *,
    inverted: bool = False,
    offset: Tensor | None = None,
    validate: bool = True,
) -> Tensor:
    """The weighted, *smaller-is-closer* matrix ``q`` that every constraint compares.

    .. math::

        q(i, j) = \\begin{cases} \\theta(y_i, y'_j)\\, D(i, j) - o(y_i, y'_j)
        & \\text{a distance} \\\\
        \\theta(y_i, y'_j)\\, (1 - S(i, j)) - o(y_i, y'_j)
        & \\text{a similarity (inverted)} \\end{cases}

    The weight multiplies a dissimilarity in both cases, so identical embeddings never
    satisfy a constraint; with ``θ = 1`` and no offset, ``q(a,c) - q(a,f)`` equals PML's
    ``distance.margin(D(a,c), D(a,f))``.

    Args:
        dist: ``(B, R)`` distances (or similarities when ``inverted``) between the batch and
            the reference set.
        labels: ``(B,)`` class indices of the batch.
        ref_labels: ``(R,)`` class indices of the reference set; ``None``: ``labels``.
        theta: ``(C, C)`` weights (e.g. ``LabelRelations.weights("inverse_wheel")``); ``None``:
            no weighting.
        inverted: ``True`` when ``dist`` is a similarity (larger is closer).
        offset: ``(C, C)`` per-class-pair offset ``o`` subtracted from ``q`` (``β·dis`` for a
            wheel margin ``β``); ``None``: none.
        validate: check the label range and that ``dist``, ``theta`` and ``offset`` are
            finite (reads values: a host sync). The library's own callers, whose inputs are
            already checked, pass ``False``.

    Returns:
        ``(B, R)`` tensor ``q`` in the dtype of ``dist``.

    Raises:
        SentimentMetricError: ``dist`` not 2-D floating point (or on the meta device, with
            ``validate``), labels of the wrong length or (``validate``) out of the range of
            ``theta``/``offset``, ``theta``/``offset`` not ``(C, C)``, (``validate``) a NaN or
            Inf.

    Example:
        >>> import torch
        >>> d = torch.tensor([[0.0, 2.0], [2.0, 0.0]])
        >>> theta = torch.tensor([[1.0, 0.5], [0.5, 1.0]])
        >>> weighted_distances(d, torch.tensor([0, 1]), theta=theta).tolist()
        [[0.0, 1.0], [1.0, 0.0]]
        >>> offset = 0.5 * torch.tensor([[1.0, 2.0], [2.0, 1.0]])  # 0.5 per step of dis
        >>> weighted_distances(d, torch.tensor([0, 1]), offset=offset).tolist()
        [[-0.5, 1.0], [1.0, -0.5]]
    """
    dist = check_dist(dist)
    c = check_tables(theta, offset)
    table = "theta" if theta is not None else "offset"
    labels, ref_labels = check_dist_labels(
        dist, labels, ref_labels, c, validate=validate, classes_from=table
    )
    if validate:
        for name, t in (("dist", dist), ("theta", theta), ("offset", offset)):
            if t is not None:
                check_finite(t, name)
    ref_labels = labels if ref_labels is None else ref_labels
    q = 1.0 - dist if inverted else dist
    if theta is not None:
        theta = theta.to(device=dist.device, dtype=dist.dtype)
        q = theta[:, ref_labels][labels] * q  # columns first: faster
    if offset is not None:
        offset = offset.to(device=dist.device, dtype=dist.dtype)
        q = q - offset[:, ref_labels][labels]
    return q
