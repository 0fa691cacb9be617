"""The exhaustive constraint sums' engine: every ranked triplet's hinge, without a B×R×R tensor.

For one anchor ``a`` and one closer ``c`` with ``t = q(a,c) + α``, the hinge summed over the
farther samples ``f`` of a level is ``n·t - Σ_{f: s_f < t} s_f`` with ``n = #{f : s_f < t}``.
Each row is sorted **once** (all levels together); per farther level, prefix counts and prefix
sums (float64) of that sorted row give ``n`` and the sum at the position
:func:`torch.searchsorted` finds for ``t``. Only the closers search: each entry of the row
searches once for the kind of triplet it is the closer of (kinds that share a closer or a
farther level go to separate passes; the default constraints need one pass). No loop over
levels, no host synchronisation.

``t = q(a,c) + α`` is formed in float64 for float32 inputs too, so ``s < t`` is decided on the
same ``t`` as the explicit triplets' hinge ``(q(a,c) + α) - q(a,f)``
(:func:`~sentiment_metric.functional.triplet_constraint_losses`). The search stays in the input
dtype, exactly: for a float32 ``s``, ``s < t`` holds iff ``s < ⌈t⌉`` with ``⌈t⌉`` the smallest
float32 ``>= t`` (and ``s <= t`` iff ``s <`` the smallest float32 ``> t``).

A *window* ``(lo, hi)`` per output slot keeps only the hinge values ``v`` with
``lo < v < hi`` (PML's ``ThresholdReducer``): ``v = t - s`` lies in it exactly when ``s`` lies
in ``(t - hi, t - lo)``, one more search key per closer. The gradient needs no further search:
the closers whose window holds the farther value at sorted position ``j`` are those whose
positions ``P(c)`` (found in the forward) exceed ``j``, a histogram of ``P`` and a cumulative
sum. :func:`sentiment_metric.functional.constraint_sums` is the public entry point.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["ConstraintSpec", "ExhaustiveConstraint", "engine_dtype"]

_CHUNK_ELEMENTS = 1 << 20  # (row, ref) entries per chunk of rows (bounds the temporaries)
_SLOTS = 2  # output slots: 0 relative, 1 negative


def engine_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the hinge is evaluated in: float64, unless the input is wider (never)."""
    return torch.float64 if dtype != torch.float64 else dtype


class ConstraintSpec(NamedTuple):
    """What :class:`ExhaustiveConstraint` sums: one entry per kind of triplet.

    ``closer``/``farther``: the levels; ``alpha``: the margins; ``slot``: the output each kind
    adds to (0 relative, 1 negative). ``windows``: per slot ``(lo, hi, zeros)`` with
    ``0 <= lo < hi <= inf`` — the positive values ``lo < v < hi`` are kept, and with
    ``zeros`` the zero values too — or ``None`` for every positive value.
    """

    closer: tuple[int, ...]
    farther: tuple[int, ...]
    alpha: tuple[float, ...]
    slot: tuple[int, ...]
    windows: tuple[tuple[float, float, bool], tuple[float, float, bool]] | None = None


class _Plan(NamedTuple):
    """Per-entry lookup tables, indexed by ``4·pass + level + 1`` (level ``-1``: self-pair).

    ``alpha``, ``lo``, ``hi``: of the kind the entry is the closer of (0 if none); ``tbase``:
    offset of that kind's farther level in the prefix tables (0 if none); ``cslot``: its output
    slot (``2`` if none); ``cflat``: that slot's offset in the flat ``(2, B, R)`` gradient (0
    if none: its count is 0); ``hbase``: offset of the entry's own level in the histogram of
    the pass's farther levels (the zero slot if none); ``fflat``: the gradient offset of the
    slot of the kind it is the farther of (0 if none: its count is 0).
    """

    passes: int
    farther: Tensor  # (1, nf, 1) the farther levels, int8
    alpha: Tensor  # (4·passes,) float64, and lo, hi
    lo: Tensor
    hi: Tensor
    tbase: Tensor  # (4·passes,) int64, and cslot, cflat, hbase, fflat
    cslot: Tensor
    cflat: Tensor
    hbase: Tensor
    fflat: Tensor
    lower: bool  # some window has a finite hi (a second search key)
    shift: bool  # some window has lo > 0
    zeros: Tensor | None  # (2,) keep-zeros per slot, float64


def _passes(spec: ConstraintSpec) -> list[list[int]]:
    """Kinds grouped so that no two in a pass share a closer or a farther level."""
    out: list[list[int]] = []
    for k in range(len(spec.slot)):
        for p in out:
            if all(spec.closer[j] != spec.closer[k] and spec.farther[j] != spec.farther[k]
                   for j in p):  # fmt: skip
                p.append(k)
                break
        else:
            out.append([k])
    return out


def _plan(spec: ConstraintSpec, b: int, r: int, device: torch.device) -> _Plan:
    """The lookup tables of ``spec`` for a ``(b, r)`` matrix."""
    levels = sorted(set(spec.farther))
    nf, w = len(levels), r + 1
    passes = _passes(spec)
    n = 4 * len(passes)
    real = [[0.0] * n for _ in range(3)]
    ints = [[0] * n, [_SLOTS] * n, [0] * n, [nf * w] * n, [0] * n]
    for p, kinds in enumerate(passes):
        for k in kinds:
            c, f = 4 * p + spec.closer[k] + 1, 4 * p + spec.farther[k] + 1
            fpos, slot = levels.index(spec.farther[k]), spec.slot[k]
            real[0][c] = spec.alpha[k]
            if spec.windows is not None:
                real[1][c], real[2][c] = spec.windows[slot][:2]
            ints[0][c], ints[1][c], ints[2][c] = fpos * w, slot, slot * b * r
            ints[3][f], ints[4][f] = fpos * w, slot * b * r
    wins = spec.windows or ()
    alpha, lo, hi = torch.tensor(real, dtype=torch.float64, device=device).unbind(0)
    tbase, cslot, cflat, hbase, fflat = torch.tensor(ints, device=device).unbind(0)
    return _Plan(
        passes=len(passes),
        farther=torch.tensor(levels, dtype=torch.int8, device=device).view(1, nf, 1),
        alpha=alpha,
        lo=lo,
        hi=hi,
        tbase=tbase,
        cslot=cslot,
        cflat=cflat,
        hbase=hbase,
        fflat=fflat,
        lower=any(not math.isinf(x[1]) for x in wins),
        shift=any(x[0] > 0 for x in wins),
        zeros=(
            torch.tensor([float(x[2]) for x in wins], dtype=torch.float64, device=device)
            if any(x[2] for x in wins)
            else None
        ),
    )


class ExhaustiveConstraint(torch.autograd.Function):
    """Sums of the hinge over all ranked triplets, by one sort + searchsorted + prefix sums.

    Gradient, for one constraint: every kept term ``t_c - q_f`` adds ``+1`` to ``∂/∂q_c`` and
    ``-1`` to ``∂/∂q_f``. So ``∂/∂q(a,c)`` is the number of kept farther samples (read in the
    forward) and ``∂/∂q(a,f) = -m(a,f)`` with ``m`` the number of closers ``c`` whose kept
    range holds ``q_f``. The per-slot gradients ``(2, B, R)`` are built in the forward; the
    backward is one weighted sum.
    """

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx, q: Tensor, lev: Tensor, spec: ConstraintSpec
    ) -> tuple[Tensor, Tensor, Tensor]:
        b, r = q.shape
        need_grad = bool(ctx.needs_input_grad[0])  # type: ignore[attr-defined]
        qd = q.detach()
        plan = _plan(spec, b, r, q.device)
        stats = torch.zeros((4, _SLOTS + 1), dtype=torch.float64, device=q.device)
        grads = q.new_zeros((_SLOTS, b, r)) if need_grad else None
        step = max(1, _CHUNK_ELEMENTS // max(r, 1))
        for r0 in range(0, b, step):
            vals, order = qd[r0 : r0 + step].sort(dim=1)
            ls = lev[r0 : r0 + step].gather(1, order)
            if grads is not None:  # flat positions of the unsorted columns
                rows = torch.arange(r0, r0 + vals.shape[0], device=q.device).view(-1, 1)
                order = order + rows * r
            _chunk(vals, ls, plan, stats, grads.view(-1) if grads is not None else None, order)
        sums, kept, count = stats[0, :_SLOTS], stats[1, :_SLOTS], stats[3, :_SLOTS]
        if plan.zeros is not None:  # the zero terms: every triplet past the threshold t
            kept = kept + plan.zeros * (count - stats[2, :_SLOTS])
        ctx.mark_non_differentiable(kept, count)
        ctx.save_for_backward(grads if grads is not None else torch.empty(0))
        return sums, kept, count

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(
        ctx: torch.autograd.function.FunctionCtx,
        grad_sums: Tensor,
        _grad_kept: Tensor,
        _grad_count: Tensor,
    ) -> tuple[Tensor | None, None, None]:
        (grads,) = ctx.saved_tensors  # type: ignore[attr-defined]
        if grads.numel() == 0:
            return None, None, None
        return torch.einsum("k,kbr->br", grad_sums.to(grads.dtype), grads), None, None


def _key(x: Tensor, dtype: torch.dtype, strict: bool) -> Tensor:
    """The smallest value of ``dtype`` that is ``>= x`` (``> x`` with ``strict``): for ``s`` of
    that dtype, ``s < key`` iff ``s < x`` (``s <= x`` with ``strict``)."""
    inf = torch.tensor(math.inf, dtype=dtype, device=x.device)
    if dtype == x.dtype:
        return torch.nextafter(x, inf) if strict else x
    y = x.to(dtype)
    return torch.where(y <= x if strict else y < x, torch.nextafter(y, inf), y)


def _chunk(
    vals: Tensor, ls: Tensor, plan: _Plan, stats: Tensor, grads: Tensor | None, order: Tensor
) -> None:
    """A chunk of sorted rows: adds to ``stats`` ``(4, 3)`` per slot (and a dump slot) the
    kept sum, the kept count, the count below the upper key and the triplet count; with
    ``grads`` (flat ``(2, B, R)``) adds the gradient at ``order`` (the entries' flat
    positions)."""
    rows, r = vals.shape
    w, nf = r + 1, plan.farther.shape[1]
    v64 = vals.to(torch.float64)
    onehot = ls.unsqueeze(1) == plan.farther  # (rows, nf, R)
    tab = v64.new_empty((2, rows, nf, w))  # prefix counts and sums per farther level
    tab[:, :, :, 0] = 0.0
    torch.cumsum(onehot, dim=2, dtype=torch.float64, out=tab[0, :, :, 1:])
    torch.cumsum(torch.where(onehot, v64.unsqueeze(1), 0.0), dim=2, out=tab[1, :, :, 1:])
    tab = tab.view(2, rows, nf * w)
    code = (ls.to(torch.long) + 1).view(-1)
    for p in range(plan.passes):
        c = code + 4 * p if p else code

        def look(table: Tensor, c: Tensor = c) -> Tensor:
            return table.index_select(0, c).view(rows, r)

        t = v64 + look(plan.alpha)
        tb, cs = look(plan.tbase), look(plan.cslot).view(-1)
        key = _key(t - look(plan.lo) if plan.shift else t, vals.dtype, strict=False)
        if plan.lower:
            key = torch.cat([key, _key(t - look(plan.hi), vals.dtype, strict=True)], dim=1)
        pos = torch.searchsorted(vals, key)
        pos = (pos.view(rows, 2, r) + tb.unsqueeze(1)).view(rows, 2 * r) if plan.lower else pos + tb
        n, s = tab.gather(2, pos.unsqueeze(0).expand(2, -1, -1)).unbind(0)
        n_up = n[:, :r] if plan.lower else n
        if plan.lower:
            n, s = n_up - n[:, r:], s[:, :r] - s[:, r:]
        stats[0].index_add_(0, cs, (n * t - s).view(-1))
        stats[1].index_add_(0, cs, n.view(-1))
        if plan.zeros is not None:
            stats[2].index_add_(0, cs, n_up.reshape(-1))
        stats[3].index_add_(0, cs, tab[0].gather(1, tb + r).view(-1))  # the triplets
        if grads is not None:
            closer = (cs < _SLOTS).view(rows, r)
            m = _closers_above(pos, plan, c, closer, nf, vals.dtype)
            n_c = torch.where(closer, n, 0.0).to(grads.dtype)
            grads.scatter_add_(0, (order + look(plan.cflat)).view(-1), n_c.view(-1))
            grads.scatter_add_(0, (order + look(plan.fflat)).view(-1), m.view(-1))


def _closers_above(
    pos: Tensor, plan: _Plan, c: Tensor, closer: Tensor, nf: int, dtype: torch.dtype
) -> Tensor:
    """``(rows, R)``: minus, for each entry that is a farther sample of the pass, the closers
    whose kept range holds it: ``#{c : P(c) > j} - #{c : P0(c) > j}`` at its sorted position
    ``j`` (``P``/``P0``: the closers' positions of the upper/lower key, offset, in ``pos``);
    0 for the other entries (they read the histogram's zero slot)."""
    rows, r = pos.shape[0], c.shape[0] // pos.shape[0]
    w = r + 1
    hist = torch.zeros((rows, (nf + 1) * w), dtype=dtype, device=pos.device)
    src = closer.to(dtype)  # the closers only
    if plan.lower:
        src = torch.cat([src, -src], dim=1)
    hist.scatter_add_(1, pos, src)
    cum = hist.view(rows, nf + 1, w).cumsum(dim=2)
    below = (cum - cum[:, :, -1:]).view(rows, -1)  # -#{c : P(c) > j}
    cols = torch.arange(r, device=pos.device)
    return below.gather(1, plan.hbase.index_select(0, c).view(rows, r) + cols)
