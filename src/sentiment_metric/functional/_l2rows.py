"""The rows' L2 normalisation of the sentiment vector, and the ``validate`` read folded into it.

:class:`L2Rows` is ``y = u / max(‖u‖₂, ε)`` per row with a hand-written backward. With a
:class:`NormRead` its forward also reads the row norms once, for the ``validate`` check of
:func:`~sentiment_metric.functional.sentiment_vector` and
:class:`~sentiment_metric.GramSentimentVector` (issue 18): when every norm is finite and above
``ε``, no floor is needed in the forward nor a mask in the backward, so the check costs no
operator over the unchecked path.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["L2Rows", "NormRead", "may_read"]


def may_read(tensors: Sequence[torch.Tensor]) -> bool:
    """A value read is allowed: not while :func:`torch.compile` traces, nor while a CUDA graph
    is captured (a read would break the graph or the capture)."""
    return not (
        torch.compiler.is_compiling()
        or any(t.is_cuda and torch.cuda.is_current_stream_capturing() for t in tensors)
    )


class NormRead:
    """What the ``validate`` read of :class:`L2Rows` found (set by its forward).

    ``in_range``: every row's norm is finite and above the floor ``ε``, so the output is
    finite, no row is floored, and the backward needs no mask.
    """

    __slots__ = ("in_range",)

    def __init__(self) -> None:
        self.in_range = False


@functools.lru_cache(maxsize=8)
def _norm_bounds(eps: float, dtype: torch.dtype) -> tuple[float, float]:
    """The smallest ``dtype`` value above ``ε`` and the largest finite one: a norm that a clamp
    to these bounds leaves unchanged is finite and not floored."""
    lo = torch.nextafter(torch.tensor(eps, dtype=dtype), torch.tensor(math.inf, dtype=dtype))
    return float(lo), float(torch.finfo(dtype).max)


class L2Rows(torch.autograd.Function):
    r"""``y = u / max(‖u‖₂, ε)`` per row, with the hand-written backward
    ``ū = (ȳ - y ⟨y, ȳ⟩ [‖u‖ > ε]) / max(‖u‖, ε)`` (the projection drops where the floor
    holds). Returns ``(y, n)``, ``n`` the floored norm, so that double backward sees ``n``.

    With a :class:`NormRead` (the ``validate`` check), the forward reads the norms once
    (``torch.equal`` with their clamp to ``(ε, max]``: one op and one sync) instead of flooring
    them: when every norm is finite and above ``ε`` (``in_range``), no floor and no backward
    mask are needed, so the check costs no operator over the unchecked path; otherwise the
    norms are floored as usual and the caller reads the result to tell a floored row from a
    NaN or Inf.
    """

    @staticmethod
    def forward(
        ctx: Any, u: torch.Tensor, eps: float, read: NormRead | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        nrm = torch.linalg.vector_norm(u, dim=1, keepdim=True)
        ctx.floored = True
        if read is not None:
            lo, hi = _norm_bounds(eps, nrm.dtype)
            read.in_range = torch.equal(nrm.clamp(lo, hi), nrm)  # NaN is never equal
            ctx.floored = not read.in_range
        n = nrm.clamp_min(eps) if ctx.floored else nrm
        y = u / n
        ctx.eps = eps
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(y, n, nrm)
        return y, n

    @staticmethod
    def backward(
        ctx: Any, dy: torch.Tensor | None, dn: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, None, None]:
        y, n, nrm = ctx.saved_tensors
        du = None
        if dy is not None:
            s = (y * dy).sum(dim=1, keepdim=True)
            if ctx.floored:
                s = torch.ops.aten.threshold_backward(s, nrm, ctx.eps)  # 0 where ‖u‖ <= ε
            du = torch.addcmul(dy, y, s, value=-1.0) / n
        if dn is not None:  # only in double backward: ∂n/∂u = y where ‖u‖ > ε
            if ctx.floored:
                dn = torch.ops.aten.threshold_backward(dn, nrm, ctx.eps)
            dn_u = y * dn
            du = dn_u if du is None else du + dn_u
        return du, None, None
