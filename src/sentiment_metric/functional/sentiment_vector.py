"""Gram matrices of feature maps and the sentiment vector (texture statistics of conv layers).

The maths of :class:`sentiment_metric.GramSentimentVector`, written once here. The sentiment
vector of ``L`` layers takes a handful of operators whatever ``L``, forward and backward
(issue 12; ``benchmarks/bench_ops.py`` counts them): per layer one Gram product each way
(``einsum``, a ``bmm``); for all layers together one ``stack`` and one ``take`` of the upper
triangles (indices cached per channel counts, batch size, device and dtype), and the L2
normalisation with a hand-written backward. No host synchronisation, no Python branch on
values (but the ``validate=True`` finiteness check, which is skipped while compiling or
capturing): it traces whole under :func:`torch.compile` (``fullgraph=True``, dynamic batch)
and can be captured in a CUDA graph. The check costs no operator (issue 18): it reads the
row norms once, and that read, when every norm is finite and above the floor, replaces the
floor's clamp in the forward and its mask in the backward.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F

from .._checks import check_finite, check_positive_int, check_shape, check_values_readable
from ..errors import SentimentMetricError
from ._l2rows import L2Rows, NormRead, may_read
from .distance import full_precision_region, gram

__all__ = ["gram_matrix", "sentiment_vector", "sentiment_vector_size"]

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _check_features_map(x: object, name: str) -> torch.Tensor:
    """A ``(B, C, H, W)`` floating-point map with values and at least one position."""
    x = check_shape(x, ("B", "C", "H", "W"), name)
    if not x.is_floating_point():
        raise SentimentMetricError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    check_values_readable(x, name)
    if x.shape[2] * x.shape[3] == 0:
        raise SentimentMetricError(
            f"{name} has an empty spatial map (shape {tuple(x.shape)}, H * W = 0): its Gram "
            "matrix has no position to sum (and divided by H * W it is 0 / 0)"
        )
    return x


def _flat(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W) -> (B, C, H*W)`` in float32 for half inputs, else in ``x``'s dtype.

    A view for contiguous *and* channels-last maps (H and W merge in both); ``bmm`` reads the
    channels-last layout as a transposed matrix, without a copy.
    """
    b, c, h, w = x.shape
    f = x.float() if x.dtype in _LOW_PRECISION else x
    return f.reshape(b, c, h * w)


def _gram(x: torch.Tensor, normalize: bool) -> torch.Tensor:
    """The unchecked Gram matrix (shared by the checked entry points)."""
    h, w = x.shape[2], x.shape[3]
    with full_precision_region(x.device):
        g = gram(_flat(x))
        if normalize:
            g = g / float(h * w)
    return g


def gram_matrix(x: torch.Tensor, normalize: bool = False) -> torch.Tensor:
    r"""The Gram matrix of each feature map in a batch.

    With :math:`F \in \mathbb{R}^{C \times M}` the map of one sample flattened over its
    :math:`M = H W` positions,

    .. math::

        \Phi = F F^\top, \qquad \Phi_{ij} = \sum_{m=1}^{M} F_{im} F_{jm},

    exactly the paper's Gram matrix (no scaling) unless ``normalize=True``, which divides by
    :math:`M` so that the scale does not depend on the input size. One batched matrix product
    for the whole batch; the backward uses the symmetry,
    :math:`\partial L / \partial F = (\bar\Phi + \bar\Phi^\top) F` with
    :math:`\bar\Phi = \partial L / \partial \Phi`: one more product, not two. Under
    :func:`torch.autocast` (and for ``float16``/``bfloat16`` inputs) the product runs in
    ``float32`` and the result is ``float32``; other dtypes are kept.
    Contiguous and channels-last inputs are both read without a copy.

    Args:
        x: feature maps of shape ``(B, C, H, W)``, any ``H`` and ``W``.
        normalize: divide by ``H * W``.

    Returns:
        ``(B, C, C)``, symmetric and positive semi-definite.

    Raises:
        SentimentMetricError: ``x`` is not a 4-D floating-point tensor with values (not on
            the meta device) and at least one position (``H * W > 0``).

    Example:
        >>> import torch
        >>> from sentiment_metric.functional import gram_matrix
        >>> x = torch.ones(2, 3, 4, 5)
        >>> g = gram_matrix(x)
        >>> g.shape, g[0, 0, 0].item(), gram_matrix(x, normalize=True)[0, 0, 0].item()
        (torch.Size([2, 3, 3]), 20.0, 1.0)
    """
    x = _check_features_map(x, "x")
    return _gram(x, normalize)


class _Layout(NamedTuple):
    """Where the Gram triangles of a batch sit (see :func:`_build_layout`)."""

    gather: torch.Tensor  # forward: (B, D) flat positions in the Grams laid end to end
    scatter: torch.Tensor  # backward: position in v of every Gram entry, layer-major
    weight: torch.Tensor  # backward: 2 on the diagonals (dΦ + dΦᵀ), 1 elsewhere


def _build_layout(
    channels: tuple[int, ...], batch: int, device: torch.device, dtype: torch.dtype
) -> _Layout:
    """Index tensors for ``torch.take``.

    The Grams laid end to end are ``(B, C_1, C_1)`` then ``(B, C_2, C_2)``, …: a ``stack`` on
    a new first dimension when every ``C_l`` is equal, a ``cat`` of flattened Grams otherwise.
    The forward takes ``v[b]`` from there; the backward takes, for every entry ``(b, i, j)``
    of every layer, ``v̄[b]`` at the triangle position of ``(min(i, j), max(i, j))``, in the
    same end-to-end layout, so that each layer's block is contiguous (a fast ``bmm``).
    """
    b = torch.arange(batch, device=device)
    gathers, scatters, weights = [], [], []
    tri_offset = flat_offset = 0
    size = sentiment_vector_size(channels)
    for c in channels:
        r, k = torch.triu_indices(c, c, device=device)
        pos = torch.arange(r.numel(), device=device) + tri_offset
        sym = torch.zeros(c, c, dtype=torch.long, device=device)
        sym[r, k] = pos
        sym[k, r] = pos
        gathers.append(flat_offset + b[:, None] * (c * c) + (r * c + k)[None])
        scatters.append(b[:, None, None] * size + sym[None])
        weights.append(torch.eye(c, dtype=dtype, device=device) + 1.0)
        tri_offset += r.numel()
        flat_offset += batch * c * c
    gather = torch.cat(gathers, dim=1)
    if len(set(channels)) == 1:  # (L, B, C, C) and one (C, C) weight
        return _Layout(gather, torch.stack(scatters), weights[0])
    weight = torch.cat([w.expand(batch, -1, -1).flatten() for w in weights])
    return _Layout(gather, torch.cat([s.flatten() for s in scatters]), weight)


@functools.lru_cache(maxsize=8)  # a few batch sizes (the last batch, evaluation)
def _cached_layout(
    channels: tuple[int, ...], batch: int, device: torch.device, dtype: torch.dtype
) -> _Layout:
    # Never inference tensors (they are saved for backward), even when the first call happens
    # under torch.inference_mode().
    with torch.inference_mode(False):
        return _build_layout(channels, batch, device, dtype)


def _layout(
    channels: tuple[int, ...], batch: int, device: torch.device, dtype: torch.dtype
) -> _Layout:
    """The index tensors of the triangles, cached per ``(channels, batch, device, dtype)``
    (built in the graph when compiling, so that the batch size may vary)."""
    if torch.compiler.is_compiling():
        return _build_layout(channels, batch, device, dtype)
    return _cached_layout(channels, batch, device, dtype)


class _TriuGrams(torch.autograd.Function):
    """``[triu(F_1 F_1ᵀ); …; triu(F_L F_Lᵀ)]`` for maps ``F_l`` of shape ``(B, C_l, H_l, W_l)``.

    Forward: one ``einsum`` (a ``bmm``) per layer, one ``stack`` (a ``cat`` when the ``C_l``
    differ) and one ``take`` for all layers. Backward: one ``take`` of ``v̄`` into the
    symmetric ``Φ̄_l + Φ̄_lᵀ`` of every layer, one product with the diagonal weight, one
    ``einsum`` per layer. Differentiable again (double backward): the backward only uses the
    maps and ``v̄``.
    """

    @staticmethod
    def forward(ctx: Any, equal: bool, *tensors: torch.Tensor) -> torch.Tensor:
        # tensors: gather, scatter and weight (see _Layout), then the maps. (A plain first
        # argument: with a tensor there, dynamo of torch 2.14 took ctx for a tensor.)
        gather, scatter, weight, *maps = tensors
        ctx.equal = equal
        ctx.save_for_backward(scatter, weight, *maps)
        grams = [torch.einsum("bchw,bdhw->bcd", f, f) for f in maps]
        if equal:
            return torch.take(torch.stack(grams), gather)
        return torch.take(torch.cat([g.flatten() for g in grams]), gather)

    @staticmethod
    def backward(ctx: Any, dv: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        scatter, weight, *maps = ctx.saved_tensors
        sym = torch.take(dv, scatter) * weight  # dΦ_l + dΦ_lᵀ, every layer at once
        if ctx.equal:
            parts: Sequence[torch.Tensor] = sym.unbind(0)
        else:
            sizes = [f.shape[0] * f.shape[1] ** 2 for f in maps]
            shapes = [(f.shape[0], f.shape[1], f.shape[1]) for f in maps]
            parts = [p.view(shape) for p, shape in zip(sym.split(sizes), shapes)]
        grads = [torch.einsum("bcd,bdhw->bchw", p, f) for p, f in zip(parts, maps)]
        return (None, None, None, None, *grads)


def _triu_grams(maps: list[torch.Tensor]) -> torch.Tensor:
    """The layers' Gram triangles side by side, ``(B, Σ_l C_l (C_l + 1) / 2)``."""
    channels = tuple(int(x.shape[1]) for x in maps)
    lay = _layout(channels, maps[0].shape[0], maps[0].device, maps[0].dtype)
    out: torch.Tensor = _TriuGrams.apply(
        len(set(channels)) == 1, lay.gather, lay.scatter, lay.weight, *maps
    )
    return out


def sentiment_vector_size(channels: Sequence[int]) -> int:
    r"""Length of the sentiment vector of layers with ``channels`` channels.

    .. math::

        D = \sum_l C_l (C_l + 1) / 2

    Raises:
        SentimentMetricError: ``channels`` is not a non-empty sequence of ints >= 1.

    Example:
        >>> from sentiment_metric.functional import sentiment_vector_size
        >>> sentiment_vector_size([16, 16, 16])
        408
    """
    if isinstance(channels, (str, bytes)) or not isinstance(channels, Sequence):
        raise SentimentMetricError(
            f"channels must be a sequence of channel counts, one per layer, got {channels!r}"
        )
    if len(channels) == 0:
        raise SentimentMetricError("channels must name at least one layer, got []")
    cs = [check_positive_int(c, f"channels[{i}]") for i, c in enumerate(channels)]
    return sum(c * (c + 1) // 2 for c in cs)


def check_finite_result(
    results: Sequence[torch.Tensor], inputs: Sequence[tuple[str, torch.Tensor]], otherwise: str
) -> None:
    """Raise unless every tensor of ``results`` is finite, naming the input that is not.

    The ``validate=True`` check of :func:`sentiment_vector`,
    :class:`~sentiment_metric.GramSentimentVector` and :class:`~sentiment_metric.SentimentModel`:
    on the results, which NaN or Inf anywhere upstream (inputs, parameters, overflow) reaches,
    one sum per result and one read (a GPU sync). Only when that fails are the ``(name,
    tensor)`` ``inputs`` read one by one, to name the culprit (:func:`check_finite`); if they are
    all finite, the message is ``otherwise``. Skipped while :func:`torch.compile` traces and
    while a CUDA graph is captured (a value read would break the graph or the capture).
    """
    for name, x in inputs:
        check_values_readable(x, name)
    if not may_read(results):
        return
    with torch.no_grad():
        total = results[0].sum()
        for r in results[1:]:
            total = total + r.sum()
        if math.isfinite(total.item()) or all(bool(torch.isfinite(r).all()) for r in results):
            return  # (the second test: a finite result whose sum overflowed)
    for name, x in inputs:
        check_finite(x, name)
    raise SentimentMetricError(otherwise)


def _signed_sqrt(v: torch.Tensor, eps: float) -> torch.Tensor:
    # sign(v) * sqrt(|v| + eps): finite gradient everywhere, exactly 0 at v == 0.
    return torch.sign(v) * torch.sqrt(v.abs() + eps)


def _check_feature_list(features: object) -> list[torch.Tensor]:
    """A non-empty list of 4-D floating maps sharing the batch size and the device."""
    if isinstance(features, torch.Tensor) or not isinstance(features, Sequence):
        raise SentimentMetricError(
            "features must be a list of (B, C_l, H_l, W_l) tensors, one per layer, got "
            f"{type(features).__name__}"
            + (
                f" of shape {tuple(features.shape)} (wrap a single map in a list)"
                if isinstance(features, torch.Tensor)
                else ""
            )
        )
    if len(features) == 0:
        raise SentimentMetricError("features must hold at least one feature map, got an empty list")
    maps = [_check_features_map(x, f"features[{i}]") for i, x in enumerate(features)]
    batch = maps[0].shape[0]
    for i, x in enumerate(maps):
        if x.shape[0] != batch:
            raise SentimentMetricError(
                f"features must share the batch size: features[0] has {batch} rows, "
                f"features[{i}] has {x.shape[0]}"
            )
        if x.device != maps[0].device:
            raise SentimentMetricError(
                f"features must be on one device: features[0] is on {maps[0].device}, "
                f"features[{i}] on {x.device}"
            )
        if _compute_dtype(x) != _compute_dtype(maps[0]):
            raise SentimentMetricError(
                f"features must share one dtype: features[0] is {maps[0].dtype}, "
                f"features[{i}] is {x.dtype} (float16/bfloat16 count as float32)"
            )
    return maps


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float32 if x.dtype in _LOW_PRECISION else x.dtype


def _check_eps(eps: object) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < math.inf:
        raise SentimentMetricError(f"eps must be a finite float > 0, got {eps!r}")
    return float(eps)


def sentiment_vector(
    features: Sequence[torch.Tensor],
    normalize_size: bool = False,
    layer_norm: bool = False,
    power_norm: bool = False,
    eps: float = 1e-12,
    validate: bool = True,
) -> torch.Tensor:
    r"""The sentiment vector: the layers' Gram upper triangles, concatenated, L2-normalised.

    For each layer :math:`l` with (already reduced) maps :math:`F_l` of shape
    ``(B, C_l, H_l, W_l)``, :math:`\Phi_l = F_l F_l^\top` (see :func:`gram_matrix`), and

    .. math::

        v_l = \operatorname{triu}(\Phi_l) \in \mathbb{R}^{C_l (C_l + 1) / 2}, \qquad
        v = \frac{[v_1; \dots; v_L]}{\max(\lVert [v_1; \dots; v_L] \rVert_2, \epsilon)},

    where :math:`\operatorname{triu}` keeps the upper triangle with the diagonal, row by row.
    Options, applied in this order to each :math:`v_l` before the concatenation:
    ``normalize_size`` divides :math:`\Phi_l` by :math:`H_l W_l`; ``power_norm`` takes the
    signed square root :math:`\operatorname{sign}(v_l)\sqrt{|v_l| + \epsilon}` (exactly 0 at
    0, with a finite gradient); ``layer_norm`` L2-normalises each :math:`v_l` (the same lab's
    later code does this), so every layer weighs the same.

    Zero feature maps (e.g. everything below a ReLU's threshold) give a finite output: the
    all-zero vector for that sample (its norm is 0, not 1), with finite gradients; no NaN.

    Args:
        features: a non-empty sequence of ``L`` maps ``(B, C_l, H_l, W_l)``, one per layer,
            with the same ``B``; sizes may differ between layers.
        normalize_size: divide each Gram matrix by ``H_l * W_l``.
        layer_norm: L2-normalise each layer's part before the concatenation.
        power_norm: signed square root of every entry.
        eps: the floor of the norms (and the offset inside the square root).
        validate: refuse NaN or Inf, in the features or from an overflow of the Gram
            products or of their norm. Reads values (one GPU sync: the row norms, compared
            with their clamp to ``(eps, max]``), which makes the floor's clamp and its mask in
            the backward unnecessary, so no operator more than ``validate=False`` (a floored
            row or a NaN/Inf costs one more read); skipped while :func:`torch.compile` traces
            or a CUDA graph is captured.

    Returns:
        ``(B, D)`` with ``D = Σ_l C_l (C_l + 1) / 2``; rows of unit L2 norm (or all zero).
        ``float32`` for ``float16``/``bfloat16`` inputs and under autocast.

    Raises:
        SentimentMetricError: ``features`` is empty or not a sequence, a map is not 4-D or
            not floating point, the batch sizes, devices or dtypes differ (``float16`` and
            ``bfloat16`` count as ``float32``), or ``eps`` is not a finite float > 0; with
            ``validate``, a map that holds NaN or Inf (named), or finite maps whose Gram
            products overflow.

    Example:
        >>> import torch
        >>> from sentiment_metric.functional import sentiment_vector
        >>> g = torch.Generator().manual_seed(0)
        >>> feats = [torch.rand(2, 4, 8, 8, generator=g), torch.rand(2, 3, 4, 4, generator=g)]
        >>> v = sentiment_vector(feats)
        >>> v.shape, [round(n, 4) for n in v.norm(dim=1).tolist()]
        (torch.Size([2, 16]), [1.0, 1.0])
        >>> sentiment_vector([torch.zeros(1, 2, 3, 3)])
        tensor([[0., 0., 0.]])
    """
    maps = _check_feature_list(features)
    return checked_sentiment_vector(
        maps,
        normalize_size,
        layer_norm,
        power_norm,
        eps,
        culprits=[(f"features[{i}]", x) for i, x in enumerate(maps)] if validate else None,
        otherwise=f"features are finite but their sentiment vector is not: the Gram products "
        f"overflow {_compute_dtype(maps[0])} (scale the features down, or normalize_size=True)",
    )


def checked_sentiment_vector(
    maps: Sequence[torch.Tensor],
    normalize_size: bool,
    layer_norm: bool,
    power_norm: bool,
    eps: float,
    *,
    culprits: Sequence[tuple[str, torch.Tensor]] | None,
    otherwise: str = "",
) -> torch.Tensor:
    """:func:`sentiment_vector` with the inputs to name when its result is not finite.

    ``maps`` are checked as :func:`sentiment_vector` checks ``features`` (shapes, batch sizes,
    devices, dtypes: no value read). ``culprits`` (``None``: no check, as ``validate=False``):
    the ``(name, tensor)`` inputs to name when the result is not finite, ``otherwise`` the
    message when they are all finite (see :func:`check_finite_result`). The check is the norm
    read of ``L2Rows`` (``_l2rows.py``): no operator over the unchecked path when every row's
    norm is finite and above ``eps``; a floored row or a NaN/Inf costs one more read.
    Shared by :func:`sentiment_vector` and :class:`~sentiment_metric.GramSentimentVector`.
    """
    maps = _check_feature_list(maps)
    eps = _check_eps(eps)
    read = None
    if culprits is not None:
        for name, x in culprits:
            check_values_readable(x, name)
        read = NormRead() if may_read(maps) else None
    with full_precision_region(maps[0].device):
        flat = [x.float() if x.dtype in _LOW_PRECISION else x for x in maps]
        u = _triu_grams(flat)
        if normalize_size or power_norm or layer_norm:
            u = _layer_options(u, flat, normalize_size, power_norm, layer_norm, eps)
        out, n = L2Rows.apply(u, eps, read)
    if read is not None and not read.in_range:  # a floored row, or a NaN/Inf: tell which
        check_finite_result([out, n], culprits or [], otherwise)
    return out


def _layer_options(
    u: torch.Tensor,
    maps: list[torch.Tensor],
    normalize_size: bool,
    power_norm: bool,
    layer_norm: bool,
    eps: float,
) -> torch.Tensor:
    """The per-layer options of :func:`sentiment_vector`, in its order, on the triangles."""
    sizes = [int(x.shape[1]) * (int(x.shape[1]) + 1) // 2 for x in maps]
    parts = []
    for v, x in zip(u.split(sizes, dim=1), maps):
        if normalize_size:
            v = v / (x.shape[2] * x.shape[3])
        if power_norm:
            v = _signed_sqrt(v, eps)
        if layer_norm:
            v = F.normalize(v, p=2.0, dim=1, eps=eps)
        parts.append(v)
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
