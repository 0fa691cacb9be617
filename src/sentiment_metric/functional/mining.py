r"""Mining ranked triplets ``(anchor, closer, farther)`` for the sentiment constraints.

A *ranked triplet* has ``level(anchor, closer) + 1 == level(anchor, farther)``: a positive
(level 0) is closer than a relative (level 1), which is closer than a negative (level 2). The
triplets come in two kinds:

- *relative-level* triplets ``(a, p, r)``: every anchor–positive pair with one or more
  relatives, checked by the first constraint ``D*(a,p) + α1 < D*(a,r)``;
- *negative-level* triplets ``(a, r, n)``: every anchor–relative pair with one or more
  negatives, checked by the second constraint ``D*(a,r) + α2 < D*(a,n)``.

Every ``(anchor, closer)`` pair of the batch is used; the strategy only picks the ``farther``
samples. Nothing here builds a dense ``B × B × B`` tensor and nothing loops over anchors or
pairs: each row of the ``(B, R)`` weighted distances is sorted once, grouped by level (each
level moved into its own disjoint frame of values, in float64), so the samples of one level are
a contiguous, sorted range of the row; a semi-hard band is a sub-range found with
:func:`torch.searchsorted`; samples are drawn as uniform offsets inside the range (Floyd's
algorithm when ``per_pair > 1``, so they are distinct). Memory grows like ``B · R`` plus the
output.

The strategies, for a pair ``(a, c)`` at level ``L`` and the samples ``f`` of level ``L + 1``:

- ``"semihard"``: ``per_pair`` distinct samples drawn uniformly from the band

  .. math::

      D^*(a, c) < D^*(a, f) < D^*(a, c) + \alpha_{L+1}

  (the triplets that violate the margin without being inverted; FaceNet's semi-hard
  negatives, Schroff et al. 2015). When the band is empty, from the whole level instead
  (counted in ``num_empty_band``).
- ``"hard"``: the ``per_pair`` samples of level ``L + 1`` with the *smallest*
  ``D^*(a, f)`` (the hardest negatives of FaceNet and of batch-hard mining, Hermans et al.
  2017): the same for every ``closer`` of that anchor and level, whether they violate the
  margin or not.
- ``"random"``: ``per_pair`` distinct samples drawn uniformly from the level.
- ``"all"``: every ranked triplet, exactly once (``per_pair`` is ignored); the output has
  ``Σ_(a,c) n_{L+1}(a)`` triplets (about ``B·R²``), enumerated in chunks of anchors by
  :func:`~sentiment_metric.functional.all_ranked_triplets`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, NamedTuple

import torch
from torch import Tensor

from .._checks import check_choice, check_finite, check_margins, check_positive_int, check_shape
from ._inputs import check_dist, check_dist_labels, check_level
from .constraint import level_margin, weighted_distances
from .levels import pair_levels
from .triplets import all_ranked_triplets

__all__ = [
    "MINING_STRATEGIES",
    "MinedTriplets",
    "MiningStrategy",
    "mine_ranked_triplets",
    "ranked_triplet_means",
]

MiningStrategy = Literal["semihard", "hard", "random", "all"]
"""The mining strategies: ``"semihard"``, ``"hard"``, ``"random"`` and ``"all"``."""
MINING_STRATEGIES: tuple[str, ...] = ("semihard", "hard", "random", "all")
"""The values ``strategy`` accepts, in the order the messages list them."""


class MinedTriplets(NamedTuple):
    """The output of :func:`mine_ranked_triplets`.

    ``anchor``, ``closer`` and ``farther`` are ``(T,)`` ``torch.long`` tensors (``anchor``
    indexes the batch, ``closer`` and ``farther`` the reference set). The first
    ``num_relative`` triplets are relative-level (closer at level 0, farther at level 1), the
    ``num_negative`` that follow are negative-level (closer at level 1, farther at level 2).
    ``num_empty_band`` counts the triplets whose ``farther`` was drawn from the whole level
    because the semi-hard band of their pair was empty (always 0 for the other strategies).
    """

    anchor: Tensor
    closer: Tensor
    farther: Tensor
    num_relative: int
    num_negative: int
    num_empty_band: int

    def as_tuple(self) -> tuple[Tensor, Tensor, Tensor]:
        """The PML 3-tuple ``(anchor, closer, farther)``."""
        return self.anchor, self.closer, self.farther


def _sample_offsets(
    pool: Tensor, k: int, generator: torch.Generator | None
) -> tuple[Tensor, Tensor]:
    """``min(k, pool[i])`` distinct uniform offsets in ``[0, pool[i])`` for every row ``i``.

    Robert Floyd's algorithm, vectorised over the rows: step ``s`` draws ``t`` uniformly in
    ``[0, j]`` with ``j = n - m + s`` (``m`` draws of ``n``) and keeps ``j`` instead when ``t``
    was already drawn, which gives a uniform ``m``-subset. A loop over ``k`` only.

    Returns:
        ``offsets`` ``(P, k)`` long and ``valid`` ``(P, k)`` bool (``offsets`` is only
        meaningful where ``valid``).
    """
    p = pool.shape[0]
    device = pool.device
    m = pool.clamp(max=k)
    if generator is None:
        u = torch.rand((p, k), device=device, dtype=torch.float64)
    else:
        u = torch.rand((p, k), generator=generator, device=generator.device, dtype=torch.float64)
        u = u.to(device)
    if k == 1:  # every row draws one offset (callers give pool >= 1)
        t = torch.minimum((u[:, 0] * pool.to(u.dtype)).long(), pool - 1)
        return t[:, None], (pool > 0)[:, None]
    out = torch.empty((p, k), dtype=torch.long, device=device)
    for s in range(k):
        j = pool - m + s
        t = torch.minimum((u[:, s] * (j + 1).to(u.dtype)).long(), j)
        if s > 0:
            dup = (out[:, :s] == t[:, None]).any(dim=1)
            t = torch.where(dup, j, t)
        out[:, s] = t
    valid = torch.arange(k, device=device)[None, :] < m[:, None]
    return out, valid


def _level_frames(q: Tensor, lv: Tensor, alphas: tuple[float, float]) -> tuple[Tensor, float]:
    """The keys ``q`` (float64, see :func:`weighted_distances`) moved into one disjoint frame per
    level.

    ``shifted = q - min q + (level + 1) · span`` with ``span > max q - min q + max α``: sorting
    a row once sorts it by level (self-pairs ``-1`` first), then by ``q`` within each level,
    and ``shifted(a, c) + span`` is ``q(a, c)`` read in the frame of the next level, where a
    :func:`torch.searchsorted` finds the band. Non-finite keys (only with ``validate=False``)
    are clamped to the finite range (NaN: the far end).

    Returns:
        ``shifted`` ``(B, R)`` float64 and ``span`` (a Python float).
    """
    key = q
    lo, hi = torch.aminmax(key)
    lo_f, hi_f = torch.stack([lo, hi]).tolist()
    if not math.isfinite(hi_f - lo_f):  # only with validate=False: NaN or Inf keys
        key = torch.nan_to_num(key, nan=float("inf"), posinf=float("inf"), neginf=-float("inf"))
        finite = torch.isfinite(key)
        hi_f = float(key.masked_fill(~finite, -float("inf")).amax())
        lo_f = float(key.masked_fill(~finite, float("inf")).amin())
        if not math.isfinite(hi_f):  # no finite key at all
            hi_f = lo_f = 0.0
        key = torch.minimum(torch.maximum(key, key.new_tensor(lo_f)), key.new_tensor(hi_f))
    key = key.sub_(lo_f)  # in place: q is a temporary of mine_ranked_triplets
    span = (hi_f - lo_f) + max(alphas) + 1.0  # float64 arithmetic, as on the tensors
    return key.add_((lv + 1).to(torch.float64).mul_(span)), span


class _Pairs(NamedTuple):
    """The ``(anchor, closer)`` pairs that get a farther sample, relative level first."""

    anchor: Tensor
    closer: Tensor
    num_relative: int  # pairs at level 0 (they come first)
    first: Tensor  # sorted position of the pair's farther level in its anchor's row
    n_far: Tensor  # samples of that level


def _closer_pairs(lv: Tensor) -> _Pairs:
    """Every pair at level 0 or 1 whose anchor has a sample one level up, row-major.

    Each row sorted once groups its samples by level (self, 0, 1, 2); the farther samples of a
    pair are positions ``[first, first + n_far)`` of its anchor's sorted row.
    """
    b = lv.shape[0]
    # samples per row and level (self, 0, 1, 2): one broadcast comparison
    lvl_ids = torch.arange(-1, 3, device=lv.device, dtype=lv.dtype)
    is_level = lv.unsqueeze(0) == lvl_ids[:, None, None]  # (4, B, R): self, 0, 1, 2
    n_stack = is_level.count_nonzero(dim=2)  # (4, B)
    # only anchors with a farther sample; one nonzero over the stacked (2, B, R) masks
    has_far = (n_stack[2:] > 0).unsqueeze(2)  # (2, B, 1): levels 1 and 2
    pair_mask = is_level[1:3] & has_far
    pair_level, a, c = pair_mask.nonzero().unbind(1)
    group_start = torch.cumsum(n_stack, 0) - n_stack
    far_flat = (pair_level + 2) * b + a
    both_flat = torch.stack([far_flat, far_flat + 4 * b])
    first, n_far = torch.stack([group_start, n_stack]).view(-1)[both_flat]
    return _Pairs(a, c, int(pair_mask[0].sum()), first, n_far)


def _semihard_band(
    shifted: Tensor,
    span: float,
    sorted_val: Tensor,
    lv: Tensor,
    pairs: _Pairs,
    margins: tuple[float, float],
) -> tuple[Tensor, Tensor, Tensor]:
    """Where each pair draws from: its band, or the whole farther level when the band is empty.

    The band of a pair is the sorted positions ``[lo, hi)`` of the farther level with
    ``key(a,c) < key(a,f) < key(a,c) + α``, found in that level's frame. On the integer bit
    patterns, "<= x" is "< x + 1": both ends in one searchsorted.

    Returns:
        ``start``, ``pool`` (the range's first position and size) and ``empty`` (bool), each
        ``(P,)``.
    """
    b, r = shifted.shape
    both = torch.empty((b, 2 * r), dtype=shifted.dtype, device=shifted.device)
    query, upper = both[:, :r], both[:, r:]
    torch.add(shifted, span, out=query)
    # the pair's margin (its farther level is one up): the one rule, read per closer level
    upper.fill_(level_margin(1, 2, margins)).masked_fill_(lv == 0, level_margin(0, 1, margins))
    upper.add_(query)
    both_int = both.view(torch.int64)
    both_int[:, :r].add_(1)  # after upper: "<= query" is "< query + 1"
    found = torch.searchsorted(sorted_val, both_int, right=False).view(-1)
    flat = pairs.anchor * (2 * r) + pairs.closer
    lo, hi = found[torch.stack([flat, flat + r])]
    first, last = pairs.first, pairs.first + pairs.n_far
    lo = torch.minimum(torch.maximum(lo, first), last)
    hi = torch.minimum(torch.maximum(hi, first), last)
    empty = hi <= lo
    return torch.where(empty, first, lo), torch.where(empty, pairs.n_far, hi - lo), empty


def _triplets_at(
    order: Tensor,
    pairs: _Pairs,
    start: Tensor,
    offsets: Tensor,
    valid: Tensor,
    empty: Tensor | None,
) -> MinedTriplets:
    """The farther samples at sorted positions ``start + offsets`` (where ``valid``)."""
    r = order.shape[1]
    a, c = pairs.anchor, pairs.closer
    pos = start[:, None] + offsets
    k = valid.shape[1]
    if k == 1:
        # every pair has its one triplet: pool >= 1 (the pairs' anchors have a farther
        # sample; an empty band falls back to the whole level)
        farther = order.view(-1)[a * r + pos[:, 0]]
        num_empty = 0 if empty is None else int(empty.sum())
        return MinedTriplets(
            a, c, farther, pairs.num_relative, len(a) - pairs.num_relative, num_empty
        )
    pos.masked_fill_(~valid, 0)
    farther = order.view(-1)[(a * r)[:, None] + pos][valid]
    counts = valid.sum(dim=1)
    anchor = a[:, None].expand(-1, k)[valid]
    closer = c[:, None].expand(-1, k)[valid]
    num_rel = int(counts[: pairs.num_relative].sum())
    num_empty = 0 if empty is None else int((counts * empty).sum())
    return MinedTriplets(anchor, closer, farther, num_rel, len(anchor) - num_rel, num_empty)


def _check_mining_input(
    dist: Tensor,
    labels: Tensor,
    ref_labels: Tensor | None,
    level: Tensor,
    theta: Tensor | None,
    offset: Tensor | None,
    validate: bool,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Check ``dist``, the labels, ``level``, ``theta`` and ``offset``; labels come back on
    dist's device."""
    dist, level = check_dist(dist), check_level(level)
    num_classes = int(level.shape[0])
    labels, ref_labels = check_dist_labels(dist, labels, ref_labels, num_classes, validate=validate)
    for name, table in (("theta", theta), ("offset", offset)):
        if table is not None:
            check_shape(table, (num_classes, num_classes), name)
    if validate:
        check_finite(dist, "dist")
    ref_labels = None if ref_labels is None else ref_labels.to(dist.device)
    return dist, labels.to(dist.device), ref_labels


def _every_triplet(
    labels: Tensor, level: Tensor, ref_labels: Tensor | None, self_index: Tensor | None
) -> MinedTriplets:
    """The ``"all"`` strategy: every ranked triplet, exactly once."""
    t = all_ranked_triplets(
        labels, level, ref_labels=ref_labels, self_index=self_index, validate=False
    )
    num_rel = int((t.closer_level == 0).sum())
    return MinedTriplets(t.anchor, t.closer, t.farther, num_rel, len(t.anchor) - num_rel, 0)


def _mine_in_levels(
    q: Tensor,
    lv: Tensor,
    alphas: tuple[float, float],
    strategy: str,
    per_pair: int,
    generator: torch.Generator | None,
) -> MinedTriplets:
    """The ``"semihard"``, ``"hard"`` and ``"random"`` strategies on the pair levels ``lv``."""
    pairs = _closer_pairs(lv)
    start, pool, empty = pairs.first, pairs.n_far, None
    if strategy == "random":  # grouped by level only
        order = lv.to(torch.int16).sort(dim=1, stable=True).indices
    else:
        shifted, span = _level_frames(q, lv, alphas)
        # the shifted keys are finite and >= 0, so their IEEE-754 bit patterns read as
        # int64 sort (and compare) exactly as the floats do, and an integer sort is faster
        sorted_val, order = shifted.view(torch.int64).sort(dim=1)
        if strategy == "semihard":
            start, pool, empty = _semihard_band(shifted, span, sorted_val, lv, pairs, alphas)
    if strategy == "hard":
        k = min(per_pair, lv.shape[1])
        offsets = torch.arange(k, device=lv.device).expand(pairs.anchor.shape[0], k)
        valid = offsets < pairs.n_far[:, None]
    else:
        offsets, valid = _sample_offsets(pool, per_pair, generator)
    return _triplets_at(order, pairs, start, offsets, valid, empty)


def mine_ranked_triplets(
    dist: Tensor,
    labels: Tensor,
    ref_labels: Tensor | None = None,
    *,
    level: Tensor,
    theta: Tensor | None = None,
    margins: Sequence[float] = (0.2, 0.1),
    strategy: MiningStrategy = "semihard",
    per_pair: int = 1,
    inverted: bool = False,
    self_index: Tensor | None = None,
    generator: torch.Generator | None = None,
    validate: bool = True,
    offset: Tensor | None = None,
) -> MinedTriplets:
    r"""Mine ranked triplets ``(anchor, closer, farther)`` from a distance matrix.

    On the loss's ``q`` (:func:`~sentiment_metric.functional.weighted_distances`), each
    ``(anchor, closer)`` pair at level ``L`` (0 anchor–positive, 1 anchor–relative; never a
    sample with itself) gets ``min(per_pair, pool size)`` ``farther`` samples of level
    ``L + 1`` picked by ``strategy`` (``"semihard"``: in the band ``q(a,c) < q(a,f) <
    q(a,c) + α_{L+1}``; see the module's docstring); none when its anchor has no sample of level
    ``L + 1`` (an empty batch: none). Deterministic given ``generator``: relative level first.

    Args:
        dist: ``(B, R)`` distances (or similarities) between the batch and the reference set.
        labels: ``(B,)``; ``ref_labels``: ``(R,)``, or ``None`` for the batch (``R = B``).
        level: ``(C, C)`` integer levels (``LabelRelations.level``).
        theta: ``(C, C)`` weights ``θ`` (``LabelRelations.weights(...)``); ``None``: ones.
        margins: ``(α1, α2)``, the band widths of the relative and negative levels.
        strategy: ``"semihard"``, ``"hard"``, ``"random"`` or ``"all"``.
        per_pair: farther samples per ``(anchor, closer)`` pair (not for ``"all"``).
        inverted: ``dist`` holds similarities (larger is closer).
        self_index: ``(B,)`` column of each row's own sample (``-1``: none), as in
            :func:`~sentiment_metric.functional.pair_levels`.
        generator: the :class:`torch.Generator` of the draws (any device); ``None``: torch's.
        validate: check label ranges and that ``dist`` is finite (reads values).
        offset: ``(C, C)`` wheel-margin offset ``β·dis`` subtracted from ``q``; ``None``: none.

    Returns:
        :class:`MinedTriplets`; ``.as_tuple()`` is PML's 3-tuple.

    Raises:
        SentimentMetricError: on a bad argument or input.

    Example:
        >>> import torch
        >>> import sentiment_metric as sm
        >>> rel = sm.LabelRelations.from_groups([0, 0, 1])  # classes 0, 1 relatives; 2 apart
        >>> labels = torch.tensor([0, 0, 1, 2])
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.nn.functional.normalize(torch.randn(4, 8, generator=g), dim=1)
        >>> dist = torch.cdist(x, x) ** 2
        >>> out = mine_ranked_triplets(dist, labels, level=rel.level, strategy="all")
        >>> torch.stack(out.as_tuple()).T.tolist()
        [[0, 1, 2], [1, 0, 2], [0, 2, 3], [1, 2, 3], [2, 0, 3], [2, 1, 3]]
        >>> out.num_relative, out.num_negative
        (2, 4)
    """
    strategy = check_choice(strategy, MINING_STRATEGIES, "strategy")  # type: ignore[assignment]
    alphas = check_margins(margins)
    per_pair = check_positive_int(per_pair, "per_pair")
    dist, labels, ref_labels = _check_mining_input(
        dist, labels, ref_labels, level, theta, offset, validate
    )
    if strategy == "all":
        return _every_triplet(labels, level, ref_labels, self_index)
    if dist.numel() == 0:  # an empty batch or reference set: no triplet (and nothing to sort)
        none = torch.zeros(0, dtype=torch.long, device=dist.device)
        return MinedTriplets(none, none, none, 0, 0, 0)
    with torch.no_grad():
        lv = pair_levels(labels, level, ref_labels, self_index, validate=False)
        q = weighted_distances(
            dist.detach().to(torch.float64), labels, ref_labels, theta, inverted=inverted,
            offset=offset, validate=False,
        )  # fmt: skip
        if q.data_ptr() == dist.data_ptr():  # no weighting at all: never write into dist
            q = q.clone()
        return _mine_in_levels(q, lv, alphas, strategy, per_pair, generator)


def ranked_triplet_means(
    dist: Tensor,
    labels: Tensor,
    ref_labels: Tensor | None = None,
    *,
    level: Tensor,
    theta: Tensor | None = None,
    inverted: bool = False,
    self_index: Tensor | None = None,
    offset: Tensor | None = None,
) -> tuple[float, float, float]:
    r"""PML's ``TripletMarginMiner`` statistics, over every ranked triplet of the batch.

    PML averages over every candidate triplet (before the miner keeps some); here the
    candidates are the ranked triplets ``(a, c, f)`` (``level(a,f) = level(a,c) + 1``), and

    .. math::

                ext{pos\_pair\_dist} = \overline{D(a, c)}, \quad
                ext{neg\_pair\_dist} = \overline{D(a, f)}, \quad
                ext{avg\_triplet\_margin} = \overline{q(a, f) - q(a, c)}

    with ``D`` the distance matrix as given (a similarity when ``inverted``, as PML reports
    it) and ``q`` the weighted dissimilarity the constraints compare
    (:func:`~sentiment_metric.functional.weighted_distances`): with ``θ = 1`` and no offset,
    PML's ``an - ap`` (``ap - an`` for a similarity). Exact, in ``O(B·R)``: each pair is
    weighted by the number of triplets it is in. ``nan`` when there is no ranked triplet.

    Example:
        >>> import torch
        >>> level = torch.tensor([[0, 1], [1, 0]])
        >>> d = torch.tensor([[0.0, 1.0, 3.0], [1.0, 0.0, 2.0], [3.0, 2.0, 0.0]])
        >>> ranked_triplet_means(d, torch.tensor([0, 0, 1]), level=level)
        (1.0, 2.5, 1.5)
    """
    dist, labels, ref_labels = _check_mining_input(
        dist, labels, ref_labels, level, theta, offset, True
    )
    with torch.no_grad():
        lv = pair_levels(labels, level, ref_labels, self_index, validate=False)
        d = dist.detach().to(torch.float64)
        q = weighted_distances(
            d, labels, ref_labels, theta, inverted=inverted, offset=offset, validate=False
        )
        onehot = (lv.unsqueeze(0) == torch.arange(3, device=lv.device).view(3, 1, 1)).double()
        n = onehot.sum(dim=2, keepdim=True)  # (3, B, 1) samples per level
        closer = onehot[:2] * n[1:]  # each (a, c) pair is in n_{L+1}(a) triplets
        farther = onehot[1:] * n[:2]  # each (a, f) pair in n_L(a) triplets
        total = (n[:2] * n[1:]).sum()
        vals = (
            torch.stack(
                [(closer * d).sum(), (farther * d).sum(), (farther * q).sum() - (closer * q).sum()]
            )
            / total
        )
        pos, neg, margin = vals.tolist()
    return pos, neg, margin
