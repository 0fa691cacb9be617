"""The exhaustive constraint sums' engine: every ranked triplet's hinge, without a B×R×R tensor.

For one anchor ``a`` and one closer ``c`` with ``t = q(a,c) + α``, the hinge summed over all
farther samples ``f`` is ``n·t - Σ_{k<n} s_k`` with ``s`` the anchor's farther values sorted
and ``n = #{f : q(a,f) < t}``: one sort per row, a :func:`torch.searchsorted` and a prefix sum
per level. :func:`sentiment_metric.functional.constraint_sums` is the public entry point.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["ExhaustiveConstraint"]

_CHUNK_ELEMENTS = 1 << 22  # rows per chunk in the exhaustive pass: about 4M (row, ref) entries


class _Level(NamedTuple):
    """One level's values of a chunk of rows, compacted (still sorted) to the front."""

    srt: Tensor  # (rows, width) sorted values, +inf past each row's count
    ind: Tensor | None  # (rows, width) their columns (for the gradient)
    cnt: Tensor  # (rows,) values per row
    valid: Tensor  # (rows, width) entry < count
    pre: Tensor  # (rows, width + 1) prefix sums of the valid values


def _compact_level(vals: Tensor, idx: Tensor, lsorted: Tensor, lvl: int, need_grad: bool) -> _Level:
    """Stable partition by cumsum + scatter: the level's sorted values at the front of a row."""
    device, dtype = vals.device, vals.dtype
    rows = vals.shape[0]
    m = lsorted == lvl
    c = m.sum(dim=1)
    width = int(c.max()) if rows > 0 else 0
    # flat position of each kept entry; the others go to one dump slot at the end
    base = torch.arange(rows, device=device).unsqueeze(1) * width - 1
    pos = torch.where(m, m.cumsum(dim=1) + base, rows * width).flatten()
    sv = torch.full((rows * width + 1,), float("inf"), dtype=dtype, device=device)
    srt = sv.scatter_(0, pos, vals.flatten())[:-1].view(rows, width)
    ind = None
    if need_grad:
        si = torch.zeros(rows * width + 1, dtype=torch.long, device=device)
        ind = si.scatter_(0, pos, idx.flatten())[:-1].view(rows, width)
    valid = torch.arange(width, device=device) < c.unsqueeze(1)
    pre = torch.nn.functional.pad(torch.where(valid, srt, 0.0).cumsum(dim=1), (1, 0))
    return _Level(srt, ind, c, valid, pre)


class ExhaustiveConstraint(torch.autograd.Function):
    """Sums of the hinge over all ranked triplets, by sort + searchsorted + prefix sums.

    ``cons`` lists ``(closer level, farther level, margin, output slot)`` (see
    :func:`~sentiment_metric.functional.constraint_sums`). Gradient, for one constraint with
    margin α: every term ``[q_c + α - q_f]_+`` with a positive value adds ``+1`` to
    ``∂/∂q_c`` and ``-1`` to ``∂/∂q_f``. So ``∂/∂q(a,c) = n(a,c)`` (farther samples under the
    threshold) and ``∂/∂q(a,f) = -m(a,f)`` with ``m`` the number of closers ``c`` with
    ``q_c + α > q_f``: a
    second searchsorted, in the sorted closers.
    """

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        q: Tensor,
        lev: Tensor,
        cons: list[tuple[int, int, float, int]],
    ) -> tuple[Tensor, Tensor, Tensor]:
        b, r = q.shape
        dtype, device = q.dtype, q.device
        levels_needed = sorted({c[0] for c in cons} | {c[1] for c in cons})
        need_grad = bool(ctx.needs_input_grad[0])  # type: ignore[attr-defined]
        sums = torch.zeros(2, dtype=dtype, device=device)
        nonzero = torch.zeros(2, dtype=torch.float64, device=device)
        count = torch.zeros(2, dtype=torch.float64, device=device)
        grads = torch.zeros(2, b, r, dtype=dtype, device=device) if need_grad else None
        step = max(1, _CHUNK_ELEMENTS // max(r, 1))
        for r0 in range(0, b, step):
            # one sort per row; each level's values are then compacted, still sorted
            vals, idx = q[r0 : r0 + step].sort(dim=1)
            lsorted = lev[r0 : r0 + step].gather(1, idx)
            lv = {k: _compact_level(vals, idx, lsorted, k, need_grad) for k in levels_needed}
            for kc, kf, alpha, slot in cons:
                c, f = lv[kc], lv[kf]
                thr = c.srt + alpha  # the closers' thresholds t, sorted (monotone rounding)
                n = torch.searchsorted(f.srt, thr, side="left")  # farthers with q_f < t
                nf = n.to(dtype)
                sums[slot] += torch.where(c.valid, nf * thr - f.pre.gather(1, n), 0.0).sum()
                nonzero[slot] += torch.where(c.valid, n, 0).sum().to(torch.float64)
                count[slot] += (c.cnt.to(torch.float64) * f.cnt.to(torch.float64)).sum()
                if grads is not None and c.ind is not None and f.ind is not None:
                    g = grads[slot, r0 : r0 + step]
                    g.scatter_add_(1, c.ind, torch.where(c.valid, nf, 0.0))
                    # closers whose threshold exceeds each farther value
                    m_ = c.cnt.unsqueeze(1) - torch.searchsorted(thr, f.srt, side="right")
                    g.scatter_add_(1, f.ind, torch.where(f.valid, -m_.to(dtype), 0.0))
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
    ) -> tuple[Tensor | None, None, None]:
        (grads,) = ctx.saved_tensors  # type: ignore[attr-defined]
        if grads.numel() == 0:
            return None, None, None
        g = grads[0] * grad_sums[0] + grads[1] * grad_sums[1]
        return g, None, None
