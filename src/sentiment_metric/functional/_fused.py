"""The default loss in a few operators: distance, constraint sums and gradient in one function.

For the default distance (squared Euclidean between L2-normalised embeddings) and the exact
reducers, :class:`FusedExhaustive` computes the loss over every ranked triplet of a batch
against itself and :class:`FusedTriplets` the loss of given ``(anchor, x, y)`` triplets, each
as one :class:`torch.autograd.Function` whose forward (under no grad) normalises, forms the
distances, sums the hinges, reduces, and writes the closed-form gradient with respect to the
embeddings; the backward is one multiplication. No host synchronisation, no branching on
values, no loop: the operator count does not depend on the batch (issue 12), and
``torch.compile(fullgraph=True)`` and CUDA graphs can capture it.

**The same numbers as the general path.** The distances are formed exactly as
:func:`~sentiment_metric.functional.squared_euclidean` forms them (``‖x_i‖² + ‖x_j‖² -
2 x_i·x_j`` from one Gram product, clamped at 0), weighted in the embeddings' dtype, and
every hinge is decided in float64 on ``t = q(a,c) + α`` as in
:mod:`~sentiment_metric.functional.constraint_sums`: both paths count the same triplets.

**Planes.** One ``(5, C, C)`` float64 table per configuration (:func:`fused_plane_table`) holds,
per class pair, the search-key offset of each farther level (``α`` where the pair's level is a
closer of a triplet kind with that farther level, else ``-1e300``), the value offset of each
farther level (``0`` where the pair's level is that level, else ``+1e290``) and ``θ``. Two
``index_select`` give every pair's planes; a row's farther values of level ``k`` are its plane
``k`` sorted (the others pushed past every key), and ``searchsorted`` of the keys counts, per
closer, the farther samples with ``s < t``. Self-pairs get ``-1e150`` added (``eye``): their
keys fall below every value and their values stay above every key.

**Gradient.** ``∂/∂q(a,c) = n`` (the farther samples counted) and ``∂/∂q(a,f) = -m`` (the closers
whose key exceeds ``q(a,f)``: a histogram of the search positions, cumulated); then
``∂/∂D = θ ∂/∂q``, ``∂D_ij/∂x_i = 2(x_i - x_j)`` and the normalisation's projection
``(g - x (x·g)) / max(‖e‖, ε)`` (only ``g / ε`` where the norm is clamped, as
:func:`torch.nn.functional.normalize`). The rounding clamp of ``D`` at 0 is treated as the
identity: ``D`` is a square and ``2(x_i - x_j)`` its exact derivative.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import Tensor

from .constraint import level_margin

__all__ = [
    "MAX_THETA",
    "FusedExhaustive",
    "FusedTriplets",
    "fused_loss",
    "fused_plane_table",
    "pair_signs",
    "self_eye",
]

_KEY_OFF = -1e300  # key of an entry that closes no triplet of the plane: below every value
_VALUE_OFF = 1e290  # value of an entry that is no farther sample of the plane (R·1e290 finite)
_SELF = -1e150  # added to a self-pair: key below every value, value (+1e290) above every key
_NORM_EPS = 1e-12  # torch.nn.functional.normalize's eps
MAX_THETA = 1e100  # larger weights (or offsets) would meet the offsets above: general path


def fused_plane_table(
    level: Tensor, theta: Tensor, margins: tuple[float, float], sum_skip_level: bool
) -> Tensor:
    """The ``(5, C, C)`` float64 planes: two key offsets, two value offsets and ``θ``.

    Plane ``k`` (0: farther level 1, the relative sub-loss; 1: farther level 2, the negative
    one) has key offset ``α`` on the class pairs whose level closes a triplet kind with that
    farther level (level 0 → ``α1``; level 1 → ``α2``, level 0 → ``α1 + α2`` when skip-level
    triplets are summed) and value offset 0 on the pairs of that farther level.

    Example:
        >>> lev = torch.tensor([[0, 1, 2], [1, 0, 2], [2, 2, 0]])
        >>> t = fused_plane_table(lev, torch.ones(3, 3), (0.2, 0.1), False)
        >>> t.shape, t[0, 0, 0].item(), t[2, 0, 1].item()
        (torch.Size([5, 3, 3]), 0.2, 0.0)
    """
    lev = level.detach().to(dtype=torch.long)
    f64 = torch.float64
    key_off = torch.tensor(_KEY_OFF, dtype=f64, device=lev.device)
    rel = torch.where(lev == 0, level_margin(0, 1, margins), key_off)  # float64 throughout
    neg = torch.where(lev == 1, level_margin(1, 2, margins), key_off)
    if sum_skip_level:
        neg = torch.where(lev == 0, level_margin(0, 2, margins), neg)
    value_off = torch.tensor(_VALUE_OFF, dtype=f64, device=lev.device)
    val = [torch.where(lev == k, 0.0, value_off) for k in (1, 2)]
    return torch.stack([rel, neg, val[0], val[1], theta.detach().to(lev.device, f64)])


def self_eye(b: int, device: torch.device) -> Tensor:
    """``(b, b)`` float64: ``-1e150`` on the diagonal (self-pairs), 0 elsewhere."""
    return torch.diag(torch.full((b,), _SELF, dtype=torch.float64, device=device))


def _distances(emb: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(x, n̄, D)``: the normalised rows, their clamped norms and the clamped squared
    distances, formed as :func:`~sentiment_metric.functional.squared_euclidean` forms them."""
    nb = torch.linalg.vector_norm(emb, dim=1, keepdim=True).clamp_min(_NORM_EPS)
    x = emb / nb
    g = torch.mm(x, x.mT)
    sq = g.diagonal()
    return x, nb, torch.add(sq.unsqueeze(1) + sq, g, alpha=-2.0).clamp_min_(0.0)


def _embedding_grad(wd: Tensor, x: Tensor, nb: Tensor) -> Tensor:
    """``∂L/∂e`` from ``wd = ∂L/∂D`` (``(B, B)``, the batch against itself): ``∂L/∂x``, then
    the projection off ``x``, none where the norm is clamped (as
    :func:`torch.nn.functional.normalize`)."""
    s = wd + wd.mT
    dx = torch.addmm(s.sum(1, keepdim=True) * x, s, x, beta=2.0, alpha=-2.0)
    c = (x * dx).sum(1, keepdim=True) * (nb > _NORM_EPS)
    return torch.addcmul(dx, x, c, value=-1.0) / nb


def _save_gradient(ctx: Any, emb: Tensor, wd: Tensor, x: Tensor, nb: Tensor) -> None:
    """Save ``∂L/∂e`` (the backward's one multiplication) and what double backward needs:
    ``emb`` and ``wd = ∂L/∂D``, which is constant almost everywhere (counts of hinges over
    their denominators), so the second derivative flows through the distances only."""
    ctx.save_for_backward(_embedding_grad(wd, x, nb), emb, wd)


def _saved_gradient(ctx: Any) -> Tensor:
    """``∂L/∂e``: the saved one; under grad mode (``create_graph=True``: a gradient penalty,
    a second-order term) rebuilt from ``emb`` by differentiable operators, so that its own
    gradient is right (issue 19: it was silently zero)."""
    de, emb, wd = ctx.saved_tensors
    if not (torch.is_grad_enabled() and emb.requires_grad):
        return de
    nb = torch.linalg.vector_norm(emb, dim=1, keepdim=True).clamp_min(_NORM_EPS)
    return _embedding_grad(wd, emb / nb, nb)


def _denominators(kinds: tuple[str, str], nz: Tensor, count: Tensor | None) -> Tensor:
    """Per sub-loss: the number of non-zero terms, of triplets (``mean``) or 1 (``sum``)."""
    if kinds == ("avg_nonzero", "avg_nonzero"):
        return nz.clamp(min=1.0)
    cols = []
    for i, kind in enumerate(kinds):
        if kind == "sum":
            cols.append(torch.ones_like(nz[i]))
        else:
            cols.append((nz[i] if kind == "avg_nonzero" else count[i]).clamp(min=1.0))  # type: ignore[index]
    return torch.stack(cols)


class FusedExhaustive(torch.autograd.Function):
    """The reduced loss over every ranked triplet of ``emb`` against itself (see the module).

    ``forward(emb (B, D), labels (B,) int64, table (5, C, C) f64, eye (B, B) f64, kinds,
    uniform) -> ()``: ``kinds`` the two sub-losses' reductions (``"avg_nonzero"``, ``"mean"``,
    ``"sum"``), ``uniform`` (``θ`` all ones: no weighting op). The result is in ``emb``'s
    dtype, ``relative + negative`` as PML's ``MultipleReducers`` adds them.
    """

    @staticmethod
    def forward(
        ctx: Any,
        emb: Tensor,
        labels: Tensor,
        table: Tensor,
        eye: Tensor,
        kinds: tuple[str, str],
        uniform: bool,
    ) -> Tensor:
        x, nb, d = _distances(emb)
        planes, theta = table.index_select(1, labels).index_select(2, labels).split([4, 1])
        q = d if uniform else d * theta.to(d.dtype)
        key, seg = (planes + (q + eye)).split(2)  # float64: the hinge's dtype
        r = float(key.shape[2])
        sseg, order = seg.sort(dim=2)
        prefix = torch.nn.functional.pad(sseg, (1, 0)).cumsum(dim=2)
        pos = torch.searchsorted(sseg, key)  # per closer: the farther values s < t
        pf = pos.to(torch.float64)
        nz = pf.sum(dim=(1, 2))
        count = _triplet_counts(key, seg) if "mean" in kinds else None
        hist = torch.zeros_like(prefix).scatter_(2, pos, 1.0, reduce="add")
        sums = torch.einsum("kbr,kbr->k", pf, key) - torch.einsum("kbr,kbr->k", hist, prefix)
        den = _denominators(kinds, nz, count)
        loss = (sums / den).sum(dtype=emb.dtype)
        if ctx.needs_input_grad[0]:
            # -m at each farther value's sorted position, scattered back; +n at each closer
            # (the source's last column, past the sorted positions, is not read)
            grad_q = pf.scatter_add_(2, order, hist.cumsum(dim=2) - r)
            w = den.reciprocal()
            if uniform:
                wd = torch.einsum("kbr,k->br", grad_q, w)
            else:
                wd = torch.einsum("kbr,k,jbr->br", grad_q, w, theta)
            _save_gradient(ctx, emb, wd.to(emb.dtype), x, nb)
        return loss

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        return grad * _saved_gradient(ctx), None, None, None, None, None


def _triplet_counts(key: Tensor, seg: Tensor) -> Tensor:
    """``(2,)`` float64: per plane, the closers times the farther samples, summed over rows."""
    closers = (key > _SELF / 2).sum(dim=2)
    farther = (seg < _VALUE_OFF / 2).sum(dim=2)
    return (closers * farther).sum(dim=1).to(torch.float64)


_PAIR_SIGNS = ((1.0, -1.0), (-1.0, 1.0))  # ∂/∂q of pair (a,x) and (a,y) per orientation


def pair_signs(device: torch.device) -> tuple[Tensor, Tensor]:
    """``(signs, pick)`` float64 constants of :class:`FusedTriplets`.

    ``signs`` ``(2, 2)``: the sign of a hinge's derivative for pair ``p`` (row: ``(a, x)``,
    ``(a, y)``) in orientation ``o`` (column: ``x`` closer, ``y`` closer). ``pick``
    ``(2, 2, 4, 2)``: ``hinge[k, o] = Σ pick[k, o] · planes`` selects ``key_k`` of the closer
    pair minus ``value_k`` of the other one (one ``+1``, one ``-1``: the difference is exact).

    Example:
        >>> signs, pick = pair_signs(torch.device("cpu"))
        >>> signs.tolist(), pick[0, 1].tolist()
        ([[1.0, -1.0], [-1.0, 1.0]], [[0.0, 1.0], [0.0, 0.0], [-1.0, 0.0], [0.0, 0.0]])
    """
    pick = torch.zeros((2, 2, 4, 2), dtype=torch.float64)
    for k in range(2):
        for o in range(2):
            pick[k, o, k, o] = 1.0  # key of plane k at the closer pair (a, x) or (a, y)
            pick[k, o, 2 + k, 1 - o] = -1.0  # value of plane k at the other pair
    return torch.tensor(_PAIR_SIGNS, dtype=torch.float64, device=device), pick.to(device)


class FusedTriplets(torch.autograd.Function):
    """The reduced loss of given tuples ``(a, x, y)`` of ``emb`` against itself.

    ``forward(emb (B, D), labels (B,), anchors (T,), xy (2, T), table (5, C, C) f64,
    signs, pick (:func:`pair_signs`), kinds, uniform) -> ()``. Each tuple is read in both
    orientations, per plane: ``[key(a, x) - value(a, y)]_+`` and ``[key(a, y) - value(a,
    x)]_+`` — at most one is a triplet of the plane (the closer's level is below the
    farther's), the others meet an offset and vanish, so equal-level and (without
    ``sum_margins``) skip-level tuples drop out and a swapped tuple counts as its ranked
    reading, as in the general path. The distances are the full matrix's, gathered (the
    general path's values: one ``B × B`` product beats ``T·D`` per-pair work, as a miner
    gives ``T ~ B²/2`` tuples); the hinges are summed, each sub-loss divided and the two
    added in float64, the result rounded once to the embeddings' dtype (the general path
    adds per-triplet losses in that dtype: the two agree to its rounding).
    """

    @staticmethod
    def forward(
        ctx: Any,
        emb: Tensor,
        labels: Tensor,
        anchors: Tensor,
        xy: Tensor,
        table: Tensor,
        signs: Tensor,
        pick: Tensor,
        kinds: tuple[str, str],
        uniform: bool,
    ) -> Tensor:
        x, nb, d = _distances(emb)
        planes, theta = table[:, labels[anchors], labels[xy]].split([4, 1])
        dg = d[anchors, xy]
        q = dg if uniform else dg * theta.to(d.dtype)
        kv = planes + q  # float64 (2 key planes + 2 value planes, 2 pairs, T)
        hinge = torch.einsum("kopq,pqt->kot", pick, kv).relu_()  # (plane, orientation, T)
        ind = hinge.sign()
        nz = ind.sum(dim=(1, 2))
        count = None
        if "mean" in kinds:
            key, val = kv.split(2)
            valid = (key > _KEY_OFF / 2) & (val.flip(1) < _VALUE_OFF / 2)
            count = valid.sum(dim=(1, 2)).to(torch.float64)
        w = _denominators(kinds, nz, count).reciprocal()
        loss = torch.einsum("kot,k->", hinge, w).to(emb.dtype)  # float64, rounded once
        if ctx.needs_input_grad[0]:
            if uniform:
                gq = torch.einsum("kot,k,po->pt", ind, w, signs)
            else:
                gq = torch.einsum("kot,k,po,jpt->pt", ind, w, signs, theta)
            wd = torch.zeros(d.shape, dtype=gq.dtype, device=d.device)
            wd.index_put_((anchors, xy), gq, accumulate=True)
            _save_gradient(ctx, emb, wd.to(emb.dtype), x, nb)
        return loss

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        return (grad * _saved_gradient(ctx),) + (None,) * 8


def _cached(cache: dict[tuple[Any, ...], Any] | None, key: tuple[Any, ...], build: Any) -> Any:
    """``cache[key]``, built on a miss; always built without a cache (while ``torch.compile``
    traces: into the graph, from the buffers, nothing stale and no guard on the cache)."""
    if cache is None or torch.compiler.is_compiling():
        return build()
    hit = cache.get(key)
    if hit is None:
        hit = build()
        if len(cache) > 16:
            cache.clear()
        cache[key] = hit
    return hit


def fused_loss(
    emb: Tensor,
    labels: Tensor,
    triplets: Sequence[Tensor] | None,
    level: Tensor,
    theta: Tensor,
    margins: tuple[float, float],
    sum_skip_level: bool,
    kinds: tuple[str, str],
    cache: dict[tuple[Any, ...], Any] | None,
) -> Tensor | None:
    """The reduced loss of ``emb`` against itself: every ranked triplet (``triplets=None``) or
    the given ``(a, x, y)``, by :class:`FusedExhaustive` or :class:`FusedTriplets`; ``None``
    where ``θ`` is too large for the offsets (then use the general path).

    ``cache`` (a dict the caller keeps, e.g. on its module; ``None``: none) holds the plane
    table per device and configuration (keyed by the buffers' identity, held by the entry,
    and version, so an in-place change or a new buffer rebuilds it), the self-pair ``eye`` per
    batch size, and the pair signs.
    """
    dev = emb.device
    if not torch.is_grad_enabled():  # no_grad: needs_input_grad would still say True
        emb = emb.detach()

    def table() -> tuple[Tensor | None, bool, Tensor, Tensor]:
        planes = fused_plane_table(level, theta, margins, sum_skip_level)
        if torch.compiler.is_compiling():  # no value read while tracing: always weigh
            return planes.to(dev), False, theta, level
        if theta.numel() and bool(theta.abs().max() > MAX_THETA):
            return None, False, theta, level
        return planes.to(dev), bool((theta == 1).all()), theta, level  # (keeps the ids alive)

    key = ("table", dev, margins, sum_skip_level) + (
        () if torch.compiler.is_compiling()
        else (id(theta), theta._version, id(level), level._version)
    )  # fmt: skip
    planes, uniform = _cached(cache, key, table)[:2]
    if planes is None:
        return None
    if triplets is None:
        b = emb.shape[0]
        eye = _cached(cache, ("eye", b, dev), lambda: self_eye(b, dev))
        return cast(Tensor, FusedExhaustive.apply(emb, labels, planes, eye, kinds, uniform))
    a, x, y = triplets
    signs, pick = _cached(cache, ("signs", dev), lambda: pair_signs(dev))
    xy = torch.stack([x, y])
    args = (emb, labels, a, xy, planes, signs, pick, kinds, uniform)  # a (T,) broadcasts
    return cast(Tensor, FusedTriplets.apply(*args))
