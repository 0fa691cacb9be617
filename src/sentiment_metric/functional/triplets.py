"""Explicit ranked triplets ``(anchor, closer, farther)``: read, listed, and their hinges.

A ranked triplet has ``level(anchor, closer) < level(anchor, farther)`` (0 same emotion, 1 same
polarity, 2 opposite polarity). :func:`rank_triplets` reads any PML 3-tuple this way;
:func:`all_ranked_triplets` enumerates every one of a batch (the loss's explicit path for
custom reducers, and the miner's ``"all"`` strategy); :func:`triplet_constraint_losses` gives
the hinge of each.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from .._checks import check_finite, check_labels, check_shape
from ..errors import SentimentMetricError
from ._exhaustive import engine_dtype
from ._inputs import check_dist, check_dist_labels, check_level, check_tables
from .constraint import level_margin, weighted_distances
from .levels import pair_levels

__all__ = [
    "RankedTriplets",
    "all_ranked_triplets",
    "allowed_pairs",
    "check_indices",
    "mark_in_range",
    "rank_triplets",
    "triplet_constraint_losses",
    "triplet_margins",
]

_ENUM_ELEMENTS = 1 << 24  # (anchor, ref, ref) mask entries per chunk when enumerating triplets


_IN_RANGE = "_sentiment_metric_in_range"


def mark_in_range(indices: Sequence[Tensor], sizes: Sequence[int]) -> None:
    """Mark int64 index tensors that a miner of this library made in ``[0, size)``, so that
    :func:`check_indices` need not read them again (one host sync less per step).

    The mark is an attribute holding the size and the tensor's version counter: any in-place
    change, or any new tensor made from it, loses it.
    """
    for idx, size in zip(indices, sizes):
        setattr(idx, _IN_RANGE, (size, idx._version))


def _marked_in_range(indices: Sequence[Tensor], sizes: Sequence[int]) -> bool:
    return all(
        getattr(idx, _IN_RANGE, None) == (size, idx._version) for idx, size in zip(indices, sizes)
    )


def check_indices(
    indices: Sequence[Tensor], sizes: Sequence[int], names: Sequence[str], validate: bool = True
) -> list[Tensor]:
    """1-D integer index tensors of one length, each in ``[0, size)``; returned as int64.

    Negative indices are refused, never wrapped around (a miner's ``-1`` padding is not a
    sample); with ``validate=False`` only shapes and dtypes are checked (no values read), nor
    are they for tensors a miner of this library marked in range (:func:`mark_in_range`).

    Example:
        >>> check_indices([torch.tensor([0, 2])], [3], ["anchors"])[0].tolist()
        [0, 2]
    """
    out: list[Tensor] = []
    for idx, name in zip(indices, names):
        idx = check_shape(idx, ("T",), name)
        if idx.is_floating_point() or idx.is_complex() or idx.dtype == torch.bool:
            raise SentimentMetricError(
                f"{name} must be a 1-D integer index tensor, got dtype {idx.dtype}"
            )
        if out and idx.shape[0] != out[0].shape[0]:
            raise SentimentMetricError(
                f"{name} has {idx.shape[0]} entries but {names[0]} has {out[0].shape[0]}; "
                "the index tensors must have one length"
            )
        out.append(idx if idx.dtype == torch.int64 else idx.long())
    if validate and out and out[0].numel() > 0 and not _marked_in_range(out, sizes):
        stacked = torch.stack(out)
        if len(set(sizes)) == 1:  # one range: the extremes of all at once, two reads
            lo_all, hi_all = (int(v) for v in torch.aminmax(stacked))
            ends = [[lo_all] * len(out), [hi_all] * len(out)]
        else:
            ends = torch.stack(torch.aminmax(stacked, dim=1)).tolist()  # one read
        for i, (name, size) in enumerate(zip(names, sizes)):
            if ends[0][i] >= 0 and ends[1][i] < size:
                continue
            lo, hi = (int(v) for v in torch.aminmax(out[i]))  # the failing tensor's own
            if lo < 0:
                raise SentimentMetricError(
                    f"{name} holds the negative index {lo}: indices must be in [0, {size}) "
                    "(negative indices are not wrapped around; a -1 padding is not a sample)"
                )
            if hi >= size:
                raise SentimentMetricError(f"{name} holds the index {hi}, out of range [0, {size})")
    return out


def allowed_pairs(pairs: Sequence[Tensor], b: int, r: int) -> Tensor:
    """The ``(B, R)`` boolean mask of the pairs a PML 4-tuple ``(a1, p, a2, n)`` gives.

    A 4-tuple is read as the set of **allowed** (anchor, reference) comparisons: both of its
    pair lists, whatever their labels (PML's "positive" and "negative" pairs alike). The
    constraint sums and :func:`all_ranked_triplets` then use every ranked triplet
    ``(a, c, f)`` whose pairs ``(a, c)`` and ``(a, f)`` are both allowed (``allowed=``).
    Indices are not checked here (the loss checks them first).

    Example:
        >>> m = allowed_pairs((torch.tensor([0]), torch.tensor([1]), torch.tensor([1]),
        ...                    torch.tensor([2])), 2, 3)
        >>> m.int().tolist()
        [[0, 1, 0], [0, 0, 1]]
    """
    a1, p, a2, n = pairs
    mask = torch.zeros((b, r), dtype=torch.bool, device=a1.device)
    mask[a1, p] = True
    mask[a2, n] = True
    return mask


def mask_levels(lev: Tensor, allowed: Tensor | None) -> Tensor:
    """``lev`` with the pairs outside ``allowed`` (``(B, R)`` bool) marked ``-1``, as
    self-pairs are: no constraint uses them."""
    if allowed is None:
        return lev
    allowed = check_shape(allowed, tuple(lev.shape), "allowed")
    if allowed.dtype != torch.bool:
        raise SentimentMetricError(f"allowed must be a boolean mask, got dtype {allowed.dtype}")
    return lev.masked_fill(~allowed.to(lev.device), -1)


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
    *,
    validate: bool = True,
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
        validate: check label and index ranges (reads values).

    Returns:
        :class:`RankedTriplets`.

    Raises:
        SentimentMetricError: a bad shape or dtype, or (``validate``) a label or index out of
            range (negative indices included: they are never wrapped around).

    Example:
        >>> import torch
        >>> level = torch.tensor([[0, 1, 2], [1, 0, 2], [2, 2, 0]])
        >>> t = rank_triplets(torch.tensor([0, 0, 1]), level, torch.tensor([0]),
        ...                   torch.tensor([2]), torch.tensor([1]))
        >>> t.closer.tolist(), t.farther.tolist(), t.swapped.tolist()
        ([1], [2], [True])
    """
    level = check_level(level)
    c = level.shape[0]
    labels = check_labels(labels, c, validate=validate)
    if ref_labels is None:
        ref_labels = labels
    else:
        ref_labels = check_labels(ref_labels, c, name="ref_labels", validate=validate)
    anchors, x, y = check_indices(
        [anchors, x, y],
        [labels.shape[0], ref_labels.shape[0], ref_labels.shape[0]],
        ["anchors", "x", "y"],
        validate,
    )
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


def triplet_margins(
    t: RankedTriplets, margins: tuple[float, float], skip_level: str
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(relative, negative sub-loss, skip-level, margin)`` of ranked tuples ``t``.

    The masks select each sub-loss's tuples (the negative one holds the skip-level tuples
    with ``skip_level="sum_margins"``); ``margin`` (float64) is every tuple's margin from the
    one rule :func:`~sentiment_metric.functional.level_margin`: ``α1`` (relative), ``α2``
    (negative), ``α1 + α2`` (skip-level, when summed).

    Example:
        >>> t = RankedTriplets(*(torch.tensor([0, 0]),) * 3, torch.tensor([0, 1]),
        ...                    torch.tensor([1, 2]), torch.tensor([False, False]))
        >>> rel, neg, skip, m = triplet_margins(t, (0.2, 0.1), "ignore")
        >>> rel.tolist(), neg.tolist(), m.tolist()
        ([True, False], [False, True], [0.2, 0.1])
    """
    lc, lf = t.closer_level, t.farther_level
    rel = (lc == 0) & (lf == 1)
    second = (lc == 1) & (lf == 2)
    skip = (lc == 0) & (lf == 2)
    margin = torch.full(lc.shape, level_margin(1, 2, margins), dtype=torch.float64)
    margin = margin.to(lc.device).masked_fill_(rel, level_margin(0, 1, margins))
    if skip_level == "sum_margins":
        second = second | skip
        margin.masked_fill_(skip, level_margin(0, 2, margins))
    return rel, second, skip, margin


def all_ranked_triplets(
    labels: Tensor,
    level: Tensor,
    *,
    ref_labels: Tensor | None = None,
    self_index: Tensor | None = None,
    include_skip_level: bool = False,
    max_triplets: int | None = None,
    validate: bool = True,
    allowed: Tensor | None = None,
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
        validate: check the label range (reads values).
        allowed: ``(B, R)`` boolean mask of the pairs that may be compared
            (:func:`allowed_pairs`); a triplet needs both of its pairs allowed. ``None``: all.

    Returns:
        :class:`RankedTriplets` (``swapped`` all ``False``).

    Example:
        >>> import torch
        >>> level = torch.tensor([[0, 1, 2], [1, 0, 2], [2, 2, 0]])
        >>> t = all_ranked_triplets(torch.tensor([0, 0, 1, 2]), level)
        >>> len(t.anchor), t.closer_level.tolist().count(0)
        (6, 2)
    """
    lev = mask_levels(
        pair_levels(labels, level, ref_labels, self_index, validate=validate), allowed
    )
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
    dev = lev.device
    cat = [torch.cat(x) if x else torch.zeros(0, dtype=torch.long, device=dev) for x in out]
    return RankedTriplets(
        cat[0], cat[1], cat[2], cat[3], cat[4], torch.zeros_like(cat[0], dtype=torch.bool)
    )


def _gather_pairs(
    dist: Tensor,
    labels: Tensor,
    ref_labels: Tensor | None,
    anchors: Tensor,
    closers: Tensor,
    farthers: Tensor,
    theta: Tensor | None,
    inverted: bool,
    offset: Tensor | None,
) -> tuple[Tensor, Tensor]:
    """``q(a, c)`` and ``q(a, f)`` of each triplet, gathered from ``dist`` then weighed."""
    n, r = anchors.shape[0], dist.shape[1]
    base = anchors * r
    cols = torch.cat([base + closers, base + farthers])
    qc, qf = dist.reshape(-1).index_select(0, cols).view(2, n).unbind(0)
    if inverted:
        qc, qf = 1.0 - qc, 1.0 - qf
    if theta is None and offset is None:
        return qc, qf
    rl = labels if ref_labels is None else ref_labels
    ya, yc, yf = labels[anchors], rl[closers], rl[farthers]
    if theta is not None:
        theta = theta.to(device=dist.device, dtype=dist.dtype)
        qc, qf = theta[ya, yc] * qc, theta[ya, yf] * qf
    if offset is not None:
        offset = offset.to(device=dist.device, dtype=dist.dtype)
        qc, qf = qc - offset[ya, yc], qf - offset[ya, yf]
    return qc, qf


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
    offset: Tensor | None = None,
    validate: bool = True,
) -> Tensor:
    """Per-triplet hinge losses for explicit ``(anchor, closer, farther)`` indices.

    .. math::

        \\ell_t = [\\,(q(a_t, c_t) + \\alpha_t) - q(a_t, f_t)\\,]_+

    with ``q`` of :func:`~sentiment_metric.functional.weighted_distances` (``θ·D`` for a
    distance, ``θ·(1 - S)`` for a similarity, minus the wheel-margin ``offset``), evaluated in
    float64 and returned in the dtype of ``dist``: the expression the exhaustive sums
    evaluate (:func:`~sentiment_metric.functional.constraint_sums`), so both count the same
    non-zero terms. With ``θ = 1`` and no offset, PML's ``relu(margin(D(a,c), D(a,f)) + α)``
    up to the last bit.

    Args:
        dist: ``(B, R)`` distances (similarities if ``inverted``).
        labels: ``(B,)``; ``ref_labels``: ``(R,)`` or ``None`` for ``labels``.
        anchors, closers, farthers: ``(T,)`` integer indices (anchors into rows, the others
            into columns of ``dist``), never negative.
        margins: one margin for all or a ``(T,)`` tensor of per-triplet margins.
        theta: ``(C, C)`` weights or ``None``.
        inverted: ``dist`` is a similarity.
        offset: ``(C, C)`` offset (wheel margins) or ``None``.
        validate: check index and label ranges and that tensor margins are finite (reads
            values); a number margin is always checked.

    Returns:
        ``(T,)`` losses in the dtype of ``dist``.

    Raises:
        SentimentMetricError: bad shapes or dtypes, or (``validate``) an index out of range.

    Example:
        >>> import torch
        >>> d = torch.tensor([[0.0, 0.5, 0.4]])
        >>> triplet_constraint_losses(d, torch.tensor([0]), torch.tensor([0]), torch.tensor([1]),
        ...     torch.tensor([2]), 0.2, ref_labels=torch.tensor([0, 0, 1])).tolist()
        [0.29999998211860657]
    """
    dist = check_dist(dist)
    b, r = dist.shape
    anchors, closers, farthers = check_indices(
        [anchors, closers, farthers], [b, r, r], ["anchors", "closers", "farthers"], validate
    )
    n = anchors.shape[0]
    c = check_tables(theta, offset)
    if isinstance(margins, Tensor):
        if tuple(margins.shape) not in ((), (n,)):
            raise SentimentMetricError(
                f"margins must be a number or a ({n},) tensor, got shape {tuple(margins.shape)}"
            )
        if validate:
            check_finite(margins, "margins")
    elif isinstance(margins, bool) or not isinstance(margins, (int, float)):
        raise SentimentMetricError(f"margins must be a number or a ({n},) tensor, got {margins!r}")
    elif not math.isfinite(margins):
        raise SentimentMetricError(f"margins must be finite, got {margins!r}")
    if theta is not None or offset is not None:  # the labels are only read to weigh
        table = "theta" if theta is not None else "offset"
        labels, ref_labels = check_dist_labels(
            dist, labels, ref_labels, c, validate=validate, classes_from=table
        )
        if b * r <= 4 * n:  # dense: weigh (B, R) once, then gather (the sparse path's values)
            dist = weighted_distances(
                dist, labels, ref_labels, theta, inverted=inverted, offset=offset, validate=False
            )
            theta, offset, inverted = None, None, False
    qc, qf = _gather_pairs(
        dist, labels, ref_labels, anchors, closers, farthers, theta, inverted, offset
    )
    ct = engine_dtype(dist.dtype)
    alpha = margins.to(device=dist.device, dtype=ct) if isinstance(margins, Tensor) else margins
    return torch.relu((qc.to(ct) + alpha) - qf.to(ct)).to(dist.dtype)
