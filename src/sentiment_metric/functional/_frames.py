"""Level frames: the one sorted-row search behind :func:`mine_ranked_triplets` and the miner.

Each ``(anchor, sample)`` pair gets the key ``q(a, x) + m·s``: its weighted distance ``q``
moved into the *frame* ``m = level + 1`` of its level, with a frame spacing ``s > 4·max|q| +
max α``. Sorting a row once sorts it by level, then by ``q`` within a level. Every question the
mining asks of a pair ``(a, c)`` at level ``L`` is then a count of the keys of row ``a`` at or
below one value, in the frame ``L + 2`` of the farther level:

- ``lo``: keys ``<= q(a,c) + (L+2)·s`` (the samples not farther than ``c``);
- ``hi``: keys ``<= q(a,c) + α_L + (L+2)·s`` (``q(a,f) <= q(a,c) + α``: the band's far end);
- ``first``/``last``: keys ``<= q(a,c) + (L+1.5)·s`` / ``+ (L+2.5)·s``, two points in the gaps
  around the farther frame (``s > 4·max|q|`` keeps them there), so the farther level is the
  sorted positions ``[first, last)`` and the semi-hard band ``[lo, hi)``.

The key and the four counts (``lo, hi, first, last``; a pair at level 2 gets four equal
counts, an empty range) are five planes of one ``(5, B, R)`` tensor, built by one fused
multiply-add from per-class-pair tables read once, and answered by one
:func:`torch.searchsorted`; the two closer levels are two *slots* (0/1 planes of the same
tables) only when the pairs are listed. A sample excluded from its own row (a self-pair) gets
the key ``-inf``: it sorts first and its own counts are all equal (no farther sample).

From :data:`LISTED_MIN_PAIRS` entries on (no longer launch-bound), :func:`draw_listed` gives the
same triplets with less work: three planes (key, ``lo``, ``hi``; ``first``/``last`` are each
row's level counts, read from the slots), one search of two planes, and only the listed closer
pairs get a range and a draw. There the keys and queries (positive or ``-inf``) are sorted and
searched as their float64 bit patterns read as int64: the same comparisons, so the same order
(ties included), and an integer sort is faster.

Memory grows like ``8·B·R``; nothing is ``B × R × R``. The band's far end is the one place a
count reads ``<=`` for a strict ``<``: a sample with ``q(a,f) = q(a,c) + α`` exactly in the
frame's rounding (a tie of measure zero) counts as inside.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

__all__ = [
    "LISTED_MIN_PAIRS",
    "Drawn",
    "draw_farther",
    "draw_listed",
    "frame_tables",
    "gram_planes",
    "gram_tables",
    "q_planes",
    "sample_offsets",
    "search_planes",
]

_NULL = 0.5  # no farther level: below frame 1, so the four counts are equal


def frame_tables(level: Tensor, margins: tuple[float, float]) -> tuple[Tensor, Tensor, Tensor]:
    """Per class pair: the ``(5, C, C)`` frame multipliers ``m`` and margins ``α`` of the planes
    (key, lo, hi, first, last), and the ``(2, C, C)`` slots (closer at level 0, at level 1).

    Plane ``k`` of a pair of classes ``(y_a, y_x)`` is ``q(a, x) + α_k + m_k·s``. Float64, on
    ``level``'s device.
    """
    lv = level.to(torch.float64)
    c = lv.shape[0]
    mult = torch.full((5, c, c), _NULL, dtype=torch.float64, device=level.device)
    alpha = torch.zeros_like(mult)
    mult[0] = lv + 1.0
    slots = torch.stack([level == 0, level == 1]).to(torch.float64)
    for closer in (0, 1):  # the farther level's frame is closer + 2
        on = level == closer
        for k, m in ((1, closer + 2.0), (2, closer + 2.0), (3, closer + 1.5), (4, closer + 2.5)):
            mult[k].masked_fill_(on, m)
        alpha[2].masked_fill_(on, float(margins[closer]))
    return mult, alpha, slots


def frame_spacing(bound: float, margins: tuple[float, float]) -> float:
    """``s = 4·M + max α + 1`` for keys ``|q| <= M``: the frames and their gaps stay apart."""
    return 4.0 * bound + max(margins) + 1.0


def gram_tables(
    level: Tensor, theta: Tensor, offset: Tensor | None, margins: tuple[float, float]
) -> Tensor:
    """``(8, C, C)`` tables of :func:`gram_planes` for unit rows (``D = 2 - 2·G``).

    With ``q = θ·(2 - 2G) - o`` and ``|G| <= 1``: ``|q| <= 4·max θ + max o`` (plus 1 of slack
    for rounding) bounds the keys, so the spacing is a constant and plane ``k`` is
    ``base_k - 2θ·G`` with ``base_k = α_k + m_k·s + 2θ - o``.
    """
    theta = theta.to(device=level.device, dtype=torch.float64)
    off = torch.zeros_like(theta) if offset is None else offset.to(theta)
    bound = 4.0 * float(theta.max()) + float(off.abs().max()) + 1.0
    mult, alpha, slots = frame_tables(level, margins)
    base = alpha + mult * frame_spacing(bound, margins) + (2.0 * theta - off)
    return torch.cat([base, (-2.0 * theta)[None], slots])


def gram_planes(tables: Tensor, rows: Tensor, cols: Tensor, gram: Tensor) -> tuple[Tensor, Tensor]:
    """The ``(5, B, R)`` planes from the cosines ``gram`` ``(B, R)`` of unit rows, and the
    ``(2, B, R)`` slots.

    ``rows`` ``(B, C)`` and ``cols`` ``(R, C)`` are the classes one-hot (float64): the tables
    are read per pair as ``rows · table · colsᵀ``, exactly (every other term is an exact 0),
    and on the CPU twice as fast as indexing ``table[:, y_a, y_x]``.
    """
    base, slope, slots = torch.einsum("bi,kij,rj->kbr", rows, tables, cols).split([5, 1, 2])
    return torch.addcmul(base, slope, gram), slots


def q_planes(
    q: Tensor, tables: Tensor, rows: Tensor, cols: Tensor, margins: tuple[float, float]
) -> tuple[Tensor, Tensor]:
    """The ``(5, B, R)`` planes from float64 keys ``q`` (finite, ``-inf`` on self-pairs), and
    the slots. ``tables`` is ``torch.cat(frame_tables(...))`` ``(12, C, C)``, ``rows``/``cols``
    the one-hot classes (as in :func:`gram_planes`); the spacing is read from the finite keys
    (:func:`frame_spacing`, as a tensor)."""
    spacing = 4.0 * torch.where(q.isfinite(), q.abs(), 0.0).amax() + (max(margins) + 1.0)
    mult, alpha, slots = torch.einsum("bi,kij,rj->kbr", rows, tables, cols).split([5, 5, 2])
    return torch.addcmul(alpha + q, mult, spacing), slots


def search_planes(
    planes: Tensor, band: bool = True
) -> tuple[Tensor, Tensor | None, Tensor | None, Tensor, Tensor]:
    """Sort each row's keys once; count the keys at or below the query planes' values.

    Returns:
        ``order`` ``(B, R)`` (the row's samples in key order) and the counts ``lo, hi,
        first, last``, each ``(B, R)`` (``band=False``: the level only, ``lo = hi = None``).
    """
    key, queries = planes.split([1, 4])  # float64: an int64 view is one op more (issue 12)
    keys, order = key[0].sort(dim=1)
    if not band:  # "hard" and "random": the whole farther level
        first, last = torch.searchsorted(keys.repeat(2, 1, 1), queries[2:], right=True)
        return order, None, None, first, last
    lo, hi, first, last = torch.searchsorted(keys.repeat(4, 1, 1), queries, right=True)
    return order, lo, hi, first, last


class Drawn(NamedTuple):
    """Triplets drawn from the frames; ``slot`` (closer level) and ``empty`` per triplet."""

    anchor: Tensor
    closer: Tensor
    farther: Tensor
    slot: Tensor
    empty: Tensor | None  # semi-hard only: drawn from the whole level (empty band)


def _ranges(
    lo: Tensor | None, hi: Tensor | None, first: Tensor, last: Tensor
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Each pair's draw range ``[start, start + width)`` (``width`` 0: no triplet)."""
    if lo is None or hi is None:  # "hard" and "random": the whole farther level
        return first, last - first, None
    band = hi > lo
    start = torch.where(band, lo, first)
    return start, torch.where(band, hi, last) - start, band


def sample_offsets(
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
    m = pool.clamp(max=k)
    u = _uniform(torch.Size((p, k)), generator, pool.device)
    out = torch.empty((p, k), dtype=torch.long, device=pool.device)
    for s in range(k):
        j = pool - m + s
        t = torch.minimum((u[:, s] * (j + 1).to(u.dtype)).long(), j)
        if s > 0:
            dup = (out[:, :s] == t[:, None]).any(dim=1)
            t = torch.where(dup, j, t)
        out[:, s] = t
    valid = torch.arange(k, device=pool.device)[None, :] < m[:, None]
    return out, valid


def _uniform(shape: torch.Size, generator: torch.Generator | None, device: torch.device) -> Tensor:
    if generator is None:
        return torch.rand(shape, device=device, dtype=torch.float64)
    u = torch.rand(shape, generator=generator, device=generator.device, dtype=torch.float64)
    return u if u.device == device else u.to(device)


def draw_farther(
    order: Tensor,
    lo: Tensor | None,
    hi: Tensor | None,
    first: Tensor,
    last: Tensor,
    slots: Tensor,
    *,
    strategy: str,
    per_pair: int,
    generator: torch.Generator | None,
    count_empty: bool = True,
) -> Drawn:
    """One farther sample per pair (``per_pair == 1``), else ``min(per_pair, width)`` each.

    ``per_pair == 1``: one uniform draw per ``(anchor, sample)`` entry of the ``(B, R)`` grid
    (``torch.rand((B, R))``), whichever pairs have a triplet, so the draws do not depend on the
    pair count. The pairs with a farther sample (``width`` and ``slots``, ``(2, B, R)``)
    come out slot-major (relative level first), row-major within a slot.
    ``count_empty=False`` leaves ``Drawn.empty`` out (``None``).
    """
    start, width, band = _ranges(lo, hi, first, last)
    if not count_empty:
        band = None
    pos = start
    if per_pair == 1 and strategy != "hard":
        u = _uniform(width.shape, generator, width.device)
        pos = start + (u * width).long()  # floor(u·w) < w: u <= 1 - 2^-53, w < 2^52
    slot, a, c = torch.nonzero(torch.logical_and(width, slots), as_tuple=True)
    if per_pair == 1:
        farther = order[a, pos[a, c]]
        return Drawn(a, c, farther, slot, None if band is None else ~band[a, c])
    band_p = None if band is None else band[a, c]
    return _draw_many(order, a, c, slot, start[a, c], width[a, c], band_p, strategy=strategy,
                      per_pair=per_pair, generator=generator)  # fmt: skip


def _draw_many(
    order: Tensor,
    a: Tensor,
    c: Tensor,
    slot: Tensor,
    st: Tensor,
    w: Tensor,
    band: Tensor | None,
    *,
    strategy: str,
    per_pair: int,
    generator: torch.Generator | None,
) -> Drawn:
    """``min(per_pair, w)`` farther samples of each listed pair (``per_pair > 1``): sorted
    positions ``st + offsets`` of its anchor's row, spread per triplet. ``per_pair`` is capped
    at the row's width ``R`` (no pair has more farther samples): a huge ``per_pair`` costs
    what ``R`` does, for every strategy."""
    k = min(per_pair, order.shape[1])
    if strategy == "hard":
        offsets = torch.arange(k, device=w.device).expand(w.shape[0], k)
        valid = offsets < w[:, None]
    else:
        offsets, valid = sample_offsets(w, k, generator)
    pos = (st[:, None] + offsets).masked_fill_(~valid, 0)
    farther = order[a[:, None], pos][valid]
    k = valid.shape[1]

    def spread(t: Tensor) -> Tensor:
        return t[:, None].expand(-1, k)[valid]

    empty = None if band is None else spread(~band)
    return Drawn(spread(a), spread(c), farther, spread(slot), empty)


LISTED_MIN_PAIRS = 1 << 16
"""From this many ``(anchor, sample)`` entries on, :func:`draw_listed` (no longer launch-bound)."""

_LISTED_BAND = [0, 5, 6, 7, 1, 2]  # gram_tables rows: key; slope; the slots; lo, hi
_LISTED_LEVEL = [0, 5, 6, 7]  # "hard", "random": the level only


def _listed_planes(
    tables: Tensor, rows: Tensor, cols: Tensor, gram: Tensor, band: bool
) -> tuple[Tensor, Tensor, Tensor | None]:
    """The key plane ``(B, R)`` and, when ``band``, the ``lo``/``hi`` planes side by side in
    each row ``(B, 2R)`` (one search, no copy), as int64 bit patterns (see the module's
    docstring), and the slots ``(2, B, R)``: :func:`gram_planes`'s values."""
    picked = tables[_LISTED_BAND if band else _LISTED_LEVEL]
    tab = torch.einsum("bi,kij,rj->kbr", rows, picked, cols)
    key = torch.addcmul(tab[0], tab[1], gram).view(torch.int64)
    if not band:
        return key, tab[2:4], None
    b, r = gram.shape
    both = tab.new_empty((b, 2, r))
    torch.addcmul(tab[4:6], tab[1], gram, out=both.transpose(0, 1))
    return key, tab[2:4], both.view(b, 2 * r).view(torch.int64)


def draw_listed(
    tables: Tensor,
    rows: Tensor,
    cols: Tensor,
    gram: Tensor,
    *,
    batch: bool,
    strategy: str,
    per_pair: int,
    generator: torch.Generator | None,
    count_empty: bool,
) -> Drawn:
    """:func:`gram_planes`, :func:`search_planes` and :func:`draw_farther` for large batches:
    the same triplets, with less work.

    The planes ``lo``/``hi`` are the same values (``first``/``last`` are not built: they are
    each row's level counts, read from the slots, the self-pair's ``-inf`` key first when
    ``batch``), one sort and one search of two planes; the pairs with a farther sample are
    listed first (one :func:`torch.nonzero`, the same order) and only they get a range and a
    draw (the same ``torch.rand((B, R))`` entries).
    """
    band_mode = strategy == "semihard"
    key, slots, both = _listed_planes(tables, rows, cols, gram, band_mode)
    keys, order = key.sort(dim=1)
    b, r = keys.shape
    if batch:  # the self-pair (key -inf, first in its row) has no triplet
        slots[0].fill_diagonal_(0.0)
    n = slots.sum(dim=2)  # (2, B): non-self level-0 and level-1 samples per row
    n0 = n[0] + 1.0 if batch else n[0]
    cum = torch.stack([n0, n0 + n[1], torch.full_like(n0, r)]).long()  # level 1, 2 starts; R
    far = (cum.diff(dim=0) > 0)[:, :, None]
    slot, a, c = torch.nonzero(torch.logical_and(slots, far), as_tuple=True)
    # flat indices: index_select is about 3x faster than [a, c] on the CPU
    flat, at = torch.add(c, a, alpha=r), torch.add(a, slot, alpha=b)
    first, last = cum.view(-1).index_select(0, at), cum[1:].reshape(-1).index_select(0, at)
    band: Tensor | None = None
    if both is not None:
        found = torch.searchsorted(keys, both, right=True).view(-1)  # (B, 2R): lo | hi
        lo_at = torch.add(c, a, alpha=2 * r)
        lo, hi = found.index_select(0, lo_at), found.index_select(0, lo_at + r)
        band = hi > lo
        start = torch.where(band, lo, first)
        width = torch.where(band, hi, last) - start
    else:
        start, width = first, last - first
    if not count_empty:
        band = None
    if per_pair > 1:
        return _draw_many(order, a, c, slot, start, width, band, strategy=strategy,
                          per_pair=per_pair, generator=generator)  # fmt: skip
    pos = start
    if strategy != "hard":
        u = _uniform(torch.Size((b, r)), generator, gram.device)
        pos = start + (u.view(-1).index_select(0, flat) * width).long()
    farther = order.view(-1).index_select(0, torch.add(pos, a, alpha=r))
    return Drawn(a, c, farther, slot, None if band is None else ~band)
