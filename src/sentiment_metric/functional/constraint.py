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
from typing import Literal, NamedTuple

import torch
from torch import Tensor

from .._checks import check_choice, check_finite, check_labels, check_margins, check_shape
from ..errors import SentimentMetricError
from ._exhaustive import ConstraintSpec, ExhaustiveConstraint
from .distance import exclude_self

__all__ = [
    "REDUCTIONS",
    "SKIP_LEVEL_OPTIONS",
    "WEIGHTINGS",
    "ConstraintSums",
    "Reduction",
    "SkipLevel",
    "Thresholds",
    "Weighting",
    "constraint_sums",
    "level_margin",
    "level_masks",
    "pair_levels",
    "sentiment_constraint_loss",
    "theta_matrix",
    "weighted_distances",
]

Reduction = Literal["avg_nonzero", "mean", "sum"]
REDUCTIONS: tuple[str, ...] = ("avg_nonzero", "mean", "sum")
"""The values ``reduction`` accepts."""

SkipLevel = Literal["ignore", "sum_margins"]
SKIP_LEVEL_OPTIONS: tuple[str, ...] = ("ignore", "sum_margins")
"""The values ``skip_level`` accepts."""

Weighting = Literal["inverse_wheel", "none"]
WEIGHTINGS: tuple[str, ...] = ("inverse_wheel", "none")
"""The named values ``weighting`` accepts (a ``(C, C)`` tensor is accepted too)."""

Thresholds = tuple[tuple[float | None, float | None], tuple[float | None, float | None]]
"""Per sub-loss ``(low, high)`` of PML's ``ThresholdReducer`` (``None``: no bound)."""

_HALF = (torch.float16, torch.bfloat16)


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in _HALF else dtype


def theta_matrix(
    dis: Tensor, weighting: str | Tensor = "inverse_wheel", *, dtype: torch.dtype | None = None
) -> Tensor:
    """The ``(C, C)`` distance weights ``θ`` of ``D*(i, j) = θ(y_i, y_j) · D(i, j)``.

    .. math::

        \\theta = 1 / \\mathrm{dis} \\ (\\texttt{"inverse_wheel"}, \\text{the paper}), \\qquad
        \\theta = 1 \\ (\\texttt{"none"}), \\qquad \\text{or a given } (C, C) \\text{ tensor.}

    Args:
        dis: ``(C, C)`` wheel distances (``LabelRelations.dis``), ``>= 1``.
        weighting: ``"inverse_wheel"``, ``"none"`` or a ``(C, C)`` tensor of positive finite
            weights.
        dtype: the result's dtype (default: torch's default dtype); the loss and the miner use
            ``float64``, which keeps ``1/dis`` exact before it meets the distances' dtype.

    Returns:
        ``(C, C)`` on the CPU.

    Raises:
        SentimentMetricError: an unknown name, or a tensor of the wrong shape or with a value
            that is not finite and ``> 0``.

    Example:
        >>> import torch
        >>> theta_matrix(torch.tensor([[1.0, 2.0], [2.0, 1.0]])).tolist()
        [[1.0, 0.5], [0.5, 1.0]]
    """
    dtype = torch.get_default_dtype() if dtype is None else dtype
    if isinstance(weighting, Tensor):
        c = dis.shape[0]
        if tuple(weighting.shape) != (c, c):
            raise SentimentMetricError(
                f"weighting as a tensor must have shape ({c}, {c}), got {tuple(weighting.shape)}"
            )
        w = weighting.detach().to(device="cpu", dtype=dtype)
        if not bool(torch.isfinite(w).all()) or bool((w <= 0).any()):
            raise SentimentMetricError("weighting must be finite and > 0 everywhere")
        return w
    if weighting == "inverse_wheel":
        return 1.0 / dis.detach().to(device="cpu", dtype=dtype)
    if weighting == "none":
        return torch.ones(dis.shape, dtype=dtype)
    raise SentimentMetricError(
        f"weighting must be one of {', '.join(repr(w) for w in WEIGHTINGS)} or a (C, C) "
        f"tensor; got {weighting!r}"
    )


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


def check_level(level: Tensor) -> Tensor:
    """A square ``(C, C)`` integer level matrix (shape and dtype only: no values read)."""
    level = check_shape(level, ("C", "C"), "level")
    if level.is_floating_point() or level.dtype == torch.bool or level.shape[0] != level.shape[1]:
        raise SentimentMetricError(
            f"level must be a square (C, C) integer matrix, got shape {tuple(level.shape)} "
            f"and dtype {level.dtype}"
        )
    return level


def check_tables(theta: Tensor | None, offset: Tensor | None) -> int | None:
    """``theta`` and ``offset`` square ``(C, C)`` of one ``C`` (shapes only); that ``C``."""
    c = None
    for name, t in (("theta", theta), ("offset", offset)):
        if t is None:
            continue
        t = check_shape(t, ("C", "C"), name)
        if t.shape[0] != t.shape[1] or (c is not None and t.shape[0] != c):
            raise SentimentMetricError(
                f"{name} must be a square (C, C) table like the others, got {tuple(t.shape)}"
            )
        c = t.shape[0]
    return c


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
        validate: check the label range (reads values).

    Returns:
        ``(B, R)`` tensor ``q`` in the dtype of ``dist``.

    Raises:
        SentimentMetricError: ``dist`` not 2-D floating point, labels of the wrong length or
            (``validate``) out of range, ``theta``/``offset`` not ``(C, C)``.

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
    dist = check_shape(dist, ("B", "R"), "dist")
    if not dist.is_floating_point():
        raise SentimentMetricError(f"dist must be a floating-point tensor, got {dist.dtype}")
    c = check_tables(theta, offset)
    labels = check_labels(labels, c, length=dist.shape[0], length_name="dist", validate=validate)
    if ref_labels is None:
        if dist.shape[0] != dist.shape[1]:
            raise SentimentMetricError(
                f"dist has shape {tuple(dist.shape)}: without ref_labels it must be square"
            )
        ref_labels = labels
    else:
        ref_labels = check_labels(
            ref_labels, c, length=dist.shape[1], name="ref_labels",
            length_name="dist's columns", validate=validate,
        ).to(labels.device)  # fmt: skip
    q = 1.0 - dist if inverted else dist
    if theta is not None:
        theta = theta.to(device=dist.device, dtype=dist.dtype)
        q = theta[:, ref_labels][labels] * q  # columns first: faster
    if offset is not None:
        offset = offset.to(device=dist.device, dtype=dist.dtype)
        q = q - offset[:, ref_labels][labels]
    return q


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
    return exclude_self(lev, self_index, -1)


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


def _check_common(
    dist: Tensor, labels: Tensor, level: Tensor, ref_labels: Tensor | None, validate: bool
) -> tuple[Tensor, Tensor, Tensor | None]:
    dist = check_shape(dist, ("B", "R"), "dist")
    if not dist.is_floating_point():
        raise SentimentMetricError(f"dist must be a floating-point tensor, got {dist.dtype}")
    level = check_level(level)
    c = level.shape[0]
    labels = check_labels(labels, c, length=dist.shape[0], length_name="dist", validate=validate)
    if ref_labels is None:
        if dist.shape[0] != dist.shape[1]:
            raise SentimentMetricError(
                f"dist has shape {tuple(dist.shape)}: without ref_labels the reference set is "
                "the batch itself and dist must be square (B, B)"
            )
    else:
        ref_labels = check_labels(
            ref_labels,
            c,
            length=dist.shape[1],
            name="ref_labels",
            length_name="dist's columns",
            validate=validate,
        )
    return dist, labels, ref_labels


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
        margins: ``(α1, α2)``, each ``>= 0``.
        inverted: ``dist`` is a similarity.
        self_index: see :func:`pair_levels`.
        skip_level: ``"ignore"`` or ``"sum_margins"``.
        validate: check the label range and that ``dist`` is finite (reads values).
        offset: ``(C, C)`` offset subtracted from ``q`` (wheel margins), see
            :func:`weighted_distances`.
        thresholds: per sub-loss ``(low, high)`` (``None``: unbounded): keep only the hinge
            values ``low < v < high``, as PML's ``ThresholdReducer``; ``None``: all.

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
    dist, labels, ref_labels = _check_common(dist, labels, level, ref_labels, validate)
    a1, a2 = check_margins(margins)
    check_choice(skip_level, SKIP_LEVEL_OPTIONS, "skip_level")
    spec = _spec((a1, a2), skip_level == "sum_margins", thresholds)
    for name, table in (("theta", theta), ("offset", offset)):
        if table is not None:
            check_shape(table, tuple(level.shape), name)
            if validate:
                check_finite(table, name)
    if validate:
        check_finite(dist, "dist")
    lev = pair_levels(labels, level, ref_labels, self_index, validate=False)
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
