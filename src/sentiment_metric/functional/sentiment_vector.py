"""Gram matrices of feature maps and the sentiment vector (texture statistics of conv layers).

The maths of :class:`sentiment_metric.GramSentimentVector`, written once here: for each layer a
batched Gram matrix (one ``bmm`` per layer, no per-sample loop), its upper triangle with the
diagonal taken with cached indices, the layers concatenated and L2-normalised.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from .._checks import check_shape
from ..errors import SentimentMetricError
from .distance import full_precision_region, gram

__all__ = ["gram_matrix", "sentiment_vector", "sentiment_vector_size"]

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _check_features_map(x: object, name: str) -> torch.Tensor:
    x = check_shape(x, ("B", "C", "H", "W"), name)
    if not x.is_floating_point():
        raise SentimentMetricError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    return x


class _TriuGram(torch.autograd.Function):
    """The upper triangle of ``F Fᵀ``, flattened by ``index``; backward scatters the gradient
    to both triangles (``index`` and its transpose ``index_t``) and does one ``bmm``."""

    @staticmethod
    def forward(
        ctx: Any, f: torch.Tensor, index: torch.Tensor, index_t: torch.Tensor
    ) -> torch.Tensor:
        ctx.save_for_backward(f, index, index_t)
        b, c, _ = f.shape
        return torch.bmm(f, f.transpose(1, 2)).reshape(b, c * c).index_select(1, index)

    @staticmethod
    def backward(ctx: Any, dv: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        f, index, index_t = ctx.saved_tensors
        b, c, _ = f.shape
        with full_precision_region(f.device):
            s = dv.new_zeros(b, c * c)
            s = s.index_add(1, index, dv).index_add(1, index_t, dv)  # dΦ + dΦᵀ
            return torch.bmm(s.view(b, c, c), f), None, None


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
        SentimentMetricError: ``x`` is not a 4-D floating-point tensor.

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


def _triu_pair(c: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    rows, cols = torch.triu_indices(c, c, device=device)
    return rows * c + cols, cols * c + rows


@functools.lru_cache(maxsize=64)
def _cached_triu_flat_index(c: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    # Never inference tensors (they are saved for backward), even when the first call happens
    # under torch.inference_mode().
    with torch.inference_mode(False):
        return _triu_pair(c, device)


def _triu_flat_index(c: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat indices ``i * C + j`` of the upper triangle with the diagonal (row-major order),
    and of its transpose ``j * C + i``; cached per ``(C, device)`` (built in the graph when
    compiling)."""
    if torch.compiler.is_compiling():
        return _triu_pair(c, device)
    return _cached_triu_flat_index(c, device)


def sentiment_vector_size(channels: Sequence[int]) -> int:
    r"""Length of the sentiment vector of layers with ``channels`` channels.

    .. math::

        D = \sum_l C_l (C_l + 1) / 2

    Example:
        >>> from sentiment_metric.functional import sentiment_vector_size
        >>> sentiment_vector_size([16, 16, 16])
        408
    """
    return sum(int(c) * (int(c) + 1) // 2 for c in channels)


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
    return maps


def sentiment_vector(
    features: Sequence[torch.Tensor],
    normalize_size: bool = False,
    layer_norm: bool = False,
    power_norm: bool = False,
    eps: float = 1e-12,
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

    Returns:
        ``(B, D)`` with ``D = Σ_l C_l (C_l + 1) / 2``; rows of unit L2 norm (or all zero).
        ``float32`` for ``float16``/``bfloat16`` inputs and under autocast.

    Raises:
        SentimentMetricError: ``features`` is empty or not a sequence, a map is not 4-D or
            not floating point, or the batch sizes differ.

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
    parts = []
    with full_precision_region(maps[0].device):
        for x in maps:
            c, h, w = x.shape[1], x.shape[2], x.shape[3]
            index, index_t = _triu_flat_index(c, x.device)
            v = _TriuGram.apply(_flat(x), index, index_t)
            if normalize_size:
                v = v / float(h * w)
            if power_norm:
                v = _signed_sqrt(v, eps)
            if layer_norm:
                v = F.normalize(v, p=2.0, dim=1, eps=eps)
            parts.append(v)
        out = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        return F.normalize(out, p=2.0, dim=1, eps=eps)
