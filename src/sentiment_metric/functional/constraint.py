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

**Orientation.** Everything here works on a *smaller-is-closer* quantity ``q``: ``q = D*`` for
a distance and ``q = -θ·S`` for a similarity ``S`` (``inverted=True``, e.g. PML's
``CosineSimilarity``). Then ``[q(a,c) - q(a,f) + α]_+`` is exactly PML's
``relu(distance.margin(D*(a,c), D*(a,f)) + α)`` in both cases.

**Exhaustive mode without a B×B×B tensor.** For one anchor ``a`` and one closer ``c`` with
``t = q(a,c) + α``, the hinge summed over all farther samples ``f`` is

.. math::

    \\sum_f [t - q(a,f)]_+ = n \\cdot t - \\sum_{k < n} s_k,
    \\qquad n = \\#\\{f : q(a,f) < t\\}

with ``s`` the anchor's farther values sorted ascending: one sort per level and row, a
:func:`torch.searchsorted` and a prefix sum. ``n`` is also the number of non-zero terms (what
``AvgNonZeroReducer`` divides by). The gradient is written by hand (a custom autograd function),
so nothing of size ``B × R × R`` is ever built and memory grows like ``B · R``.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
from torch import Tensor

from .._checks import (
    SentimentMetricError,
    check_choice,
    check_labels,
    check_margins,
    check_shape,
    check_tensor,
)

__all__ = [
    "REDUCTIONS",
    "SKIP_LEVEL_OPTIONS",
    "ConstraintSums",
    "RankedTriplets",
    "all_ranked_triplets",
    "constraint_sums",
    "level_masks",
    "pair_levels",
    "rank_triplets",
    "sentiment_constraint_loss",
    "triplet_constraint_losses",
    "weighted_distances",
]

Reduction = Literal["avg_nonzero", "mean", "sum"]
REDUCTIONS: tuple[str, ...] = ("avg_nonzero", "mean", "sum")
"""The values ``reduction`` accepts."""

SkipLevel = Literal["ignore", "sum_margins"]
SKIP_LEVEL_OPTIONS: tuple[str, ...] = ("ignore", "sum_margins")
"""The values ``skip_level`` accepts."""

_CHUNK_ELEMENTS = 1 << 22  # rows per chunk in the exhaustive pass: about 4M (row, ref) entries
_ENUM_ELEMENTS = 1 << 24  # (anchor, ref, ref) mask entries per chunk when enumerating triplets
_HALF = (torch.float16, torch.bfloat16)


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in _HALF else dtype


def _resolve_self_index(
    self_index: Tensor | None, ref_labels: Tensor | None, labels: Tensor
) -> Tensor | None:
    """Self-pairs are excluded when the reference set *is* the batch (PML's rule)."""
    if self_index is not None:
        self_index = check_shape(self_index, ("B",), "self_index")
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
) -> Tensor:
    """The weighted, *smaller-is-closer* matrix ``q`` that every constraint compares.

    .. math::

        q(i, j) = \\begin{cases} \\theta(y_i, y'_j)\\, D(i, j) & \\text{a distance} \\\\
        -\\theta(y_i, y'_j)\\, S(i, j) & \\text{a similarity (inverted)} \\end{cases}

    so that ``q(a,c) - q(a,f)`` equals PML's ``distance.margin(D*(a,c), D*(a,f))`` either way.

    Args:
        dist: ``(B, R)`` distances (or similarities when ``inverted``) between the batch and
            the reference set.
        labels: ``(B,)`` class indices of the batch.
        ref_labels: ``(R,)`` class indices of the reference set; ``None``: ``labels``.
        theta: ``(C, C)`` weights (e.g. ``LabelRelations.weights("inverse_wheel")``); ``None``:
            no weighting.
        inverted: ``True`` when ``dist`` is a similarity (larger is closer).

    Returns:
        ``(B, R)`` tensor ``q`` in the dtype of ``dist``.

    Example:
        >>> import torch
        >>> d = torch.tensor([[0.0, 2.0], [2.0, 0.0]])
        >>> theta = torch.tensor([[1.0, 0.5], [0.5, 1.0]])
        >>> weighted_distances(d, torch.tensor([0, 1]), theta=theta).tolist()
        [[0.0, 1.0], [1.0, 0.0]]
    """
    if ref_labels is None:
        ref_labels = labels
    q = dist
    if theta is not None:
        theta = theta.to(device=dist.device, dtype=dist.dtype)
        q = theta[:, ref_labels][labels] * q  # columns first: faster
    return -q if inverted else q


def pair_levels(
    labels: Tensor,
    level: Tensor,
    ref_labels: Tensor | None = None,
    self_index: Tensor | None = None,
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

    Returns:
        ``(B, R)`` ``torch.int8`` matrix of levels, ``-1`` on self-pairs.

    Example:
        >>> import torch
        >>> level = torch.tensor([[0, 1, 2], [1, 0, 2], [2, 2, 0]])
        >>> pair_levels(torch.tensor([0, 0, 2]), level).tolist()
        [[-1, 0, 2], [0, -1, 2], [2, 2, -1]]
    """
    if self_index is None and ref_labels is None:  # the batch against itself: the diagonal
        lev = level.to(device=labels.device, dtype=torch.int8)[:, labels][labels]
        return lev.fill_diagonal_(-1)
    self_index = _resolve_self_index(self_index, ref_labels, labels)
    if ref_labels is None:
        ref_labels = labels
    lev = level.to(device=labels.device, dtype=torch.int8)[:, ref_labels][labels]
    if self_index is not None and lev.shape[1] > 0:
        # one column per row: rows without a self-pair keep their value (no nonzero/sync)
        keep = (self_index >= 0) & (self_index < lev.shape[1])
        col = self_index.clamp(0, lev.shape[1] - 1).unsqueeze(1)
        marked = torch.where(keep.unsqueeze(1), -1, lev.gather(1, col)).to(lev.dtype)
        lev.scatter_(1, col, marked)
    return lev


def level_masks(
    labels: Tensor,
    level: Tensor,
    ref_labels: Tensor | None = None,
    self_index: Tensor | None = None,
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
    lev = pair_levels(labels, level, ref_labels, self_index)
    return lev == 0, lev == 1, lev == 2


class ConstraintSums(NamedTuple):
    """Sums and counts over every ranked triplet, per sub-loss (0-D tensors).

    ``*_sum`` is the sum of the hinge terms (differentiable), ``*_count`` the number of
    triplets and ``*_nonzero`` the number of strictly positive terms (both float, no grad).
    """

    relative_sum: Tensor
    relative_count: Tensor
    relative_nonzero: Tensor
    negative_sum: Tensor
    negative_count: Tensor
    negative_nonzero: Tensor

    def reduce(self, reduction: str | tuple[str, str] = "avg_nonzero") -> tuple[Tensor, Tensor]:
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


def _constraints(
    margins: tuple[float, float], skip_margin: float | None
) -> list[tuple[int, int, float, int]]:
    """(closer level, farther level, margin, output slot) for each kind of triplet."""
    out = [(0, 1, margins[0], 0), (1, 2, margins[1], 1)]
    if skip_margin is not None:
        out.append((0, 2, skip_margin, 1))
    return out


class _ExhaustiveConstraint(torch.autograd.Function):
    """Sums of the hinge over all ranked triplets, by sort + searchsorted + prefix sums.

    Gradient, for one constraint with margin α: every term ``[q_c + α - q_f]_+`` with a
    positive value adds ``+1`` to ``∂/∂q_c`` and ``-1`` to ``∂/∂q_f``. So ``∂/∂q(a,c) = n(a,c)``
    (farther samples under the threshold) and ``∂/∂q(a,f) = -m(a,f)`` with ``m`` the number of
    closers ``c`` with ``q_c + α > q_f``: a second searchsorted, in the sorted closers.
    """

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        q: Tensor,
        lev: Tensor,
        margins: tuple[float, float],
        skip_margin: float | None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        b, r = q.shape
        dtype, device = q.dtype, q.device
        cons = _constraints(margins, skip_margin)
        levels_needed = sorted({c[0] for c in cons} | {c[1] for c in cons})
        need_grad = bool(ctx.needs_input_grad[0])  # type: ignore[attr-defined]
        sums = torch.zeros(2, dtype=dtype, device=device)
        nonzero = torch.zeros(2, dtype=torch.float64, device=device)
        count = torch.zeros(2, dtype=torch.float64, device=device)
        grads = torch.zeros(2, b, r, dtype=dtype, device=device) if need_grad else None
        step = max(1, _CHUNK_ELEMENTS // max(r, 1))
        for r0 in range(0, b, step):
            # one sort per row; each level's values are then compacted, still sorted, to the
            # front of a (rows, M_level) matrix (stable partition by cumsum + scatter)
            vals, idx = q[r0 : r0 + step].sort(dim=1)
            lsorted = lev[r0 : r0 + step].gather(1, idx)
            rows = vals.shape[0]
            srt: dict[int, Tensor] = {}
            ind: dict[int, Tensor] = {}
            cnt: dict[int, Tensor] = {}
            valid: dict[int, Tensor] = {}
            pre: dict[int, Tensor] = {}
            for lvl in levels_needed:
                m = lsorted == lvl
                c = m.sum(dim=1)
                width = int(c.max()) if rows > 0 else 0
                # flat position of each kept entry; the others go to one dump slot at the end
                base = torch.arange(rows, device=device).unsqueeze(1) * width - 1
                pos = torch.where(m, m.cumsum(dim=1) + base, rows * width).flatten()
                sv = torch.full((rows * width + 1,), float("inf"), dtype=dtype, device=device)
                srt[lvl] = sv.scatter_(0, pos, vals.flatten())[:-1].view(rows, width)
                if need_grad:
                    si = torch.zeros(rows * width + 1, dtype=torch.long, device=device)
                    ind[lvl] = si.scatter_(0, pos, idx.flatten())[:-1].view(rows, width)
                cnt[lvl] = c
                valid[lvl] = torch.arange(width, device=device) < c.unsqueeze(1)
                csum = torch.where(valid[lvl], srt[lvl], 0.0).cumsum(dim=1)
                pre[lvl] = torch.nn.functional.pad(csum, (1, 0))
            for kc, kf, alpha, slot in cons:
                thr = srt[kc] + alpha  # the closers' thresholds t, sorted (monotone rounding)
                n = torch.searchsorted(srt[kf], thr, side="left")  # farthers with q_f < t
                below = pre[kf].gather(1, n)
                vc = valid[kc]
                nf = n.to(dtype)
                sums[slot] += torch.where(vc, nf * thr - below, 0.0).sum()
                nonzero[slot] += torch.where(vc, n, 0).sum().to(torch.float64)
                count[slot] += (cnt[kc].to(torch.float64) * cnt[kf].to(torch.float64)).sum()
                if grads is not None:
                    g = grads[slot, r0 : r0 + step]
                    g.scatter_add_(1, ind[kc], torch.where(vc, nf, 0.0))
                    # closers whose threshold exceeds each farther value
                    m_ = cnt[kc].unsqueeze(1) - torch.searchsorted(thr, srt[kf], side="right")
                    g.scatter_add_(1, ind[kf], torch.where(valid[kf], -m_.to(dtype), 0.0))
        ctx.mark_non_differentiable(nonzero, count)
        ctx.save_for_backward(grads if grads is not None else torch.empty(0))
        return sums, nonzero, count

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(
        ctx: torch.autograd.function.FunctionCtx,
        grad_sums: Tensor,
        _grad_nonzero: Tensor,
        _grad_count: Tensor,
    ) -> tuple[Tensor | None, None, None, None]:
        (grads,) = ctx.saved_tensors  # type: ignore[attr-defined]
        if grads.numel() == 0:
            return None, None, None, None
        g = grads[0] * grad_sums[0] + grads[1] * grad_sums[1]
        return g, None, None, None


def _check_common(
    dist: Tensor, labels: Tensor, level: Tensor, ref_labels: Tensor | None, validate: bool
) -> tuple[Tensor, Tensor, Tensor | None]:
    dist = check_shape(dist, ("B", "R"), "dist")
    if not dist.is_floating_point():
        raise SentimentMetricError(f"dist must be a floating-point tensor, got {dist.dtype}")
    level = check_shape(level, ("C", "C"), "level")
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
    skip_level: str = "ignore",
    validate: bool = True,
) -> ConstraintSums:
    """Exact sums and counts of the hinge over **every** ranked triplet, in ``O(B·R)`` memory.

    .. math::

        S_1 = \\sum_{a}\\sum_{c:\\,l(a,c)=0}\\sum_{f:\\,l(a,f)=1} [q(a,c) - q(a,f) + \\alpha_1]_+,
        \\quad
        S_2 = \\sum_{a}\\sum_{c:\\,l(a,c)=1}\\sum_{f:\\,l(a,f)=2} [q(a,c) - q(a,f) + \\alpha_2]_+

    with ``q`` from :func:`weighted_distances`; with ``skip_level="sum_margins"``, ``S_2`` also
    holds every ``(level 0, level 2)`` triplet with margin ``α1 + α2``. Float16/bfloat16 are
    computed in float32 (the sums come back in float32). The gradient is exact and written by
    hand (first derivatives only: no double backward).

    Args:
        dist: ``(B, R)`` distances (similarities if ``inverted``).
        labels: ``(B,)`` class indices. ``ref_labels``: ``(R,)``, ``None`` for the batch.
        level: ``(C, C)`` level matrix. ``theta``: ``(C, C)`` weights or ``None``.
        margins: ``(α1, α2)``, each ``>= 0``.
        inverted: ``dist`` is a similarity.
        self_index: see :func:`pair_levels`.
        skip_level: ``"ignore"`` or ``"sum_margins"``.
        validate: check the label range (reads values).

    Returns:
        :class:`ConstraintSums`.

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
    lev = pair_levels(labels, level, ref_labels, self_index)
    q = weighted_distances(dist, labels, ref_labels, theta, inverted=inverted)
    q = q.to(_compute_dtype(q.dtype))
    skip = a1 + a2 if skip_level == "sum_margins" else None
    sums, nonzero, count = _ExhaustiveConstraint.apply(q, lev, (a1, a2), skip)
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
    skip_level: str = "ignore",
    reduction: str = "avg_nonzero",
    validate: bool = True,
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
    )
    rel, neg = sums.reduce(reduction)
    return rel + neg


class RankedTriplets(NamedTuple):
    """Triplets read as ``(anchor, closer, farther)`` by their label levels.

    All fields are ``(T,)`` tensors: ``anchor``, ``closer``, ``farther`` (long),
    ``closer_level`` and ``farther_level`` (long), and ``swapped`` (bool: the given tuple had
    the farther sample in the middle).
    """

    anchor: Tensor
    closer: Tensor
    farther: Tensor
    closer_level: Tensor
    farther_level: Tensor
    swapped: Tensor


def rank_triplets(
    labels: Tensor,
    level: Tensor,
    anchors: Tensor,
    x: Tensor,
    y: Tensor,
    ref_labels: Tensor | None = None,
) -> RankedTriplets:
    """Read PML 3-tuples ``(a, x, y)`` as ``(anchor, closer, farther)`` by label levels.

    The sample of lower level to the anchor is the closer one (``x`` and ``y`` are swapped
    when ``level(a, x) > level(a, y)``). Nothing is dropped here: the caller decides what to do
    with equal-level (``closer_level == farther_level``) and skip-level (``0`` and ``2``)
    tuples.

    Args:
        labels: ``(B,)`` class indices of the batch (``anchors`` index it).
        level: ``(C, C)`` level matrix.
        anchors, x, y: ``(T,)`` indices; ``x`` and ``y`` index the reference set.
        ref_labels: ``(R,)`` class indices of the reference set; ``None``: ``labels``.

    Returns:
        :class:`RankedTriplets`.

    Example:
        >>> import torch
        >>> level = torch.tensor([[0, 1, 2], [1, 0, 2], [2, 2, 0]])
        >>> t = rank_triplets(torch.tensor([0, 0, 1]), level, torch.tensor([0]),
        ...                   torch.tensor([2]), torch.tensor([1]))
        >>> t.closer.tolist(), t.farther.tolist(), t.swapped.tolist()
        ([1], [2], [True])
    """
    if ref_labels is None:
        ref_labels = labels
    lvl = level.to(device=labels.device, dtype=torch.long)
    # both levels in one gather from the flat (C, C) matrix
    ya = labels[anchors] * lvl.shape[1]
    lx, ly = lvl.reshape(-1)[torch.stack([ya + ref_labels[x], ya + ref_labels[y]])]
    swapped = lx > ly
    closer = torch.where(swapped, y, x)
    farther = torch.where(swapped, x, y)
    return RankedTriplets(
        anchors, closer, farther, torch.minimum(lx, ly), torch.maximum(lx, ly), swapped
    )


def triplet_constraint_losses(
    dist: Tensor,
    labels: Tensor,
    anchors: Tensor,
    closers: Tensor,
    farthers: Tensor,
    margins: float | Tensor,
    *,
    ref_labels: Tensor | None = None,
    theta: Tensor | None = None,
    inverted: bool = False,
) -> Tensor:
    """Per-triplet hinge losses for explicit ``(anchor, closer, farther)`` indices.

    .. math::

        \\ell_t = [\\,\\mathrm{margin}(D^*(a_t, c_t), D^*(a_t, f_t)) + \\alpha_t\\,]_+

    with PML's ``margin(x, y) = x - y`` for a distance and ``y - x`` for a similarity
    (``inverted``), and ``D* = θ·dist``.

    Args:
        dist: ``(B, R)`` distances (similarities if ``inverted``).
        labels: ``(B,)``; ``ref_labels``: ``(R,)`` or ``None`` for ``labels``.
        anchors, closers, farthers: ``(T,)`` long indices (anchors into rows, the others
            into columns of ``dist``).
        margins: one margin for all or a ``(T,)`` tensor of per-triplet margins.
        theta: ``(C, C)`` weights or ``None``.
        inverted: ``dist`` is a similarity.

    Returns:
        ``(T,)`` losses in the dtype of ``dist``.

    Example:
        >>> import torch
        >>> d = torch.tensor([[0.0, 0.5, 0.4]])
        >>> triplet_constraint_losses(d, torch.tensor([0]), torch.tensor([0]), torch.tensor([1]),
        ...     torch.tensor([2]), 0.2, ref_labels=torch.tensor([0, 0, 1])).tolist()
        [0.30000001192092896]
    """
    if ref_labels is None:
        ref_labels = labels
    if isinstance(margins, Tensor):
        margins = margins.to(device=dist.device, dtype=dist.dtype)
    b, r = dist.shape
    n = anchors.shape[0]
    in_range = n > 0
    if in_range:
        ends = torch.stack([e for x in (anchors, closers, farthers) for e in torch.aminmax(x)])
        lo_a, hi_a, lo_c, hi_c, lo_f, hi_f = ends.tolist()
        in_range = min(lo_a, lo_c, lo_f) >= 0 and hi_a < b and max(hi_c, hi_f) < r
    if in_range and theta is not None and b * r <= 4 * n:
        # dense path: weight the (B, R) matrix once, then one gather of both columns from
        # its flat view (the same products θ·D as below; one gather, one backward add)
        q = weighted_distances(dist, labels, ref_labels, theta, inverted=inverted)
        base = anchors * r
        qc, qf = (
            q.reshape(-1).index_select(0, torch.cat([base + closers, base + farthers])).split(n)
        )
        return torch.relu(qc - qf + margins)
    if in_range:
        base = anchors * r
        dc, df = (
            dist.reshape(-1).index_select(0, torch.cat([base + closers, base + farthers])).split(n)
        )
    else:  # empty, or indices to wrap (negative) or to reject (too large): as indexing does
        dc = dist[anchors, closers]
        df = dist[anchors, farthers]
    if theta is not None:
        theta = theta.to(device=dist.device, dtype=dist.dtype)
        ya = labels[anchors]
        dc = theta[ya, ref_labels[closers]] * dc
        df = theta[ya, ref_labels[farthers]] * df
    diff = df - dc if inverted else dc - df
    return torch.relu(diff + margins)


def all_ranked_triplets(
    labels: Tensor,
    level: Tensor,
    *,
    ref_labels: Tensor | None = None,
    self_index: Tensor | None = None,
    include_skip_level: bool = False,
    max_triplets: int | None = None,
) -> RankedTriplets:
    """Every ranked triplet, enumerated explicitly in chunks of anchors.

    The relative-level triplets (levels 0 → 1) come first, then the negative-level ones
    (1 → 2), then (with ``include_skip_level``) the skip-level ones (0 → 2). The output holds
    one entry per triplet, so its size grows like the number of triplets (about ``B·R²``):
    this is for small batches, tests and reducers that need per-triplet values; the chunks
    only bound the temporary masks (about ``2**24`` entries each).

    Args:
        labels: ``(B,)``; ``ref_labels``: ``(R,)`` or ``None`` (the batch itself).
        level: ``(C, C)`` level matrix.
        self_index: see :func:`pair_levels`.
        include_skip_level: also give the ``(0, 2)`` triplets.
        max_triplets: raise :class:`SentimentMetricError` (before allocating) when there are
            more triplets than this.

    Returns:
        :class:`RankedTriplets` (``swapped`` all ``False``).

    Example:
        >>> import torch
        >>> level = torch.tensor([[0, 1, 2], [1, 0, 2], [2, 2, 0]])
        >>> t = all_ranked_triplets(torch.tensor([0, 0, 1, 2]), level)
        >>> len(t.anchor), t.closer_level.tolist().count(0)
        (6, 2)
    """
    labels = check_tensor(labels, "labels")
    lev = pair_levels(labels, level, ref_labels, self_index)
    kinds = [(0, 1), (1, 2)] + ([(0, 2)] if include_skip_level else [])
    cnt = {k: (lev == k).sum(dim=1).to(torch.float64) for k in (0, 1, 2)}
    total = int(sum(float((cnt[kc] * cnt[kf]).sum()) for kc, kf in kinds))
    if max_triplets is not None and total > max_triplets:
        raise SentimentMetricError(
            f"enumerating every ranked triplet would give {total} triplets, more than "
            f"max_triplets={max_triplets}; use the exact fast path (MeanReducer, "
            "AvgNonZeroReducer or SumReducer) or a miner"
        )
    b, r = lev.shape
    step = max(1, _ENUM_ELEMENTS // max(r * r, 1))
    out: list[list[Tensor]] = [[], [], [], [], []]
    for kc, kf in kinds:
        for r0 in range(0, b, step):
            lc = lev[r0 : r0 + step]
            mask = (lc == kc).unsqueeze(2) & (lc == kf).unsqueeze(1)
            a, c, f = torch.nonzero(mask, as_tuple=True)
            out[0].append(a + r0)
            out[1].append(c)
            out[2].append(f)
            out[3].append(torch.full_like(a, kc))
            out[4].append(torch.full_like(a, kf))
    dev = labels.device
    cat = [torch.cat(x) if x else torch.zeros(0, dtype=torch.long, device=dev) for x in out]
    return RankedTriplets(
        cat[0], cat[1], cat[2], cat[3], cat[4], torch.zeros_like(cat[0], dtype=torch.bool)
    )
