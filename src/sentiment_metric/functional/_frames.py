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

Memory grows like ``8·B·R``; nothing is ``B × R × R``. The band's far end is the one place a
count reads ``<=`` for a strict ``<``: a sample with ``q(a,f) = q(a,c) + α`` exactly in the
frame's rounding (a tie of measure zero) counts as inside.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

__all__ = [
    "Drawn",
    "draw_farther",
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
    key, queries = planes.split([1, 4])
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
    st, w = start[a, c], width[a, c]
    if strategy == "hard":
        k = min(per_pair, order.shape[1])
        offsets = torch.arange(k, device=w.device).expand(w.shape[0], k)
        valid = offsets < w[:, None]
    else:
        offsets, valid = sample_offsets(w, per_pair, generator)
    pos = (st[:, None] + offsets).masked_fill_(~valid, 0)
    farther = order[a[:, None], pos][valid]
    k = valid.shape[1]

    def spread(t: Tensor) -> Tensor:
        return t[:, None].expand(-1, k)[valid]

    empty = None if band is None else spread(~band[a, c])
    return Drawn(spread(a), spread(c), farther, spread(slot), empty)
