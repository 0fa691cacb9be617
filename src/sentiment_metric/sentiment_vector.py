"""The sentiment vector as a layer: :class:`GramSentimentVector`.

It holds the 1×1 convolutions and calls :func:`sentiment_metric.functional.sentiment_vector`;
:class:`sentiment_metric.SentimentModel` (in :mod:`sentiment_metric.models`) puts it on a
backbone.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ._checks import check_positive_int, check_shape
from .errors import SentimentMetricError
from .functional.sentiment_vector import checked_sentiment_vector, sentiment_vector_size

__all__ = ["ActivationArg", "GramSentimentVector"]

ActivationArg = type[nn.Module] | Callable[[], nn.Module] | nn.Module | None


def _make_activation(activation: ActivationArg) -> nn.Module:
    if activation is None:
        return nn.Identity()
    if isinstance(activation, nn.Module):
        return copy.deepcopy(activation)
    if callable(activation):
        try:
            made = activation()
        except TypeError as err:  # a function of the input (torch.relu), not a factory
            raise SentimentMetricError(
                f"activation must be an nn.Module class (e.g. nn.ReLU), a factory returning an "
                f"nn.Module, an nn.Module or None; {activation!r} cannot be called without "
                f"arguments ({err}): for torch.relu pass nn.ReLU"
            ) from err
        if not isinstance(made, nn.Module):
            raise SentimentMetricError(
                "activation must be an nn.Module class (e.g. nn.ReLU), a factory returning an "
                f"nn.Module, an nn.Module or None; calling it returned {type(made).__name__}"
            )
        return made
    raise SentimentMetricError(
        "activation must be an nn.Module class (e.g. nn.ReLU), a factory returning an "
        f"nn.Module, an nn.Module or None; got {activation!r}"
    )


def check_input_matches(x: torch.Tensor, name: str, module: nn.Module, what: str) -> None:
    """``x`` can meet ``module``'s parameters: the same device, and the same dtype (under
    :func:`torch.autocast` for ``x``'s device, any dtype but ``float64``, which autocast does
    not cast). Shapes and dtypes only: no value is read, no device synchronisation.
    Shared by :class:`GramSentimentVector` and :class:`~sentiment_metric.SentimentModel`."""
    param = next(module.parameters(), None)
    if param is None:
        return
    if x.device != param.device:
        raise SentimentMetricError(
            f"{name} is on {x.device} but {what} is on {param.device}: move one to the other "
            f"({name}.to({str(param.device)!r}), or {what} with .to({str(x.device)!r}))"
        )
    if x.dtype == param.dtype:
        return
    if torch.is_autocast_enabled(x.device.type) and torch.float64 not in (x.dtype, param.dtype):
        return
    raise SentimentMetricError(
        f"{name} has dtype {x.dtype} but the parameters of {what} are {param.dtype}: convert "
        f"one to the other ({name}.to({param.dtype}), or {what} with .to({x.dtype})), or run "
        "under torch.autocast"
    )


def _activation_name(activation: ActivationArg) -> str:
    if activation is None:
        return "None"
    if isinstance(activation, nn.Module):
        return type(activation).__name__
    return getattr(activation, "__name__", repr(activation))


class GramSentimentVector(nn.Module):
    r"""The sentiment vector of several conv layers (the paper's texture representation).

    For each tapped layer :math:`l` with maps :math:`X_l` of shape ``(B, C_l, H_l, W_l)``:
    a 1×1 convolution to :math:`N'` = ``reduced_channels`` channels and a non-linearity
    :math:`\sigma`, then the Gram matrix, its upper triangle with the diagonal, the layers
    concatenated and L2-normalised (:func:`sentiment_metric.functional.sentiment_vector`):

    .. math::

        F_l = \sigma(W_l * X_l + b_l), \qquad
        \Phi_l = F_l F_l^\top, \qquad
        v = \frac{[\operatorname{triu}\Phi_1; \dots; \operatorname{triu}\Phi_L]}
                 {\lVert [\operatorname{triu}\Phi_1; \dots; \operatorname{triu}\Phi_L] \rVert_2}.

    ``out_features`` is :math:`L \cdot N'(N'+1)/2` (408 for three layers and :math:`N' = 16`).
    Almost all of its cost is the 1×1 convolutions; channels-last maps
    (``model.to(memory_format=torch.channels_last)`` and the images likewise) made them about
    2× faster on CPU in ``benchmarks/bench_sentiment_vector.py``, and the Gram step reads
    them without a copy. Forward and backward at three layers take 40 top-level operators,
    with the default ``validate=True`` as with ``validate=False`` (``benchmarks/bench_ops.py``):
    per layer the convolution, the activation and one Gram product each way, and a few for all
    layers together.

    Compilation: ``torch.compile(head, fullgraph=True, dynamic=True)`` traces it without a
    graph break, one graph for every batch size; a training step of a fixed shape can be
    captured in a CUDA graph (:class:`torch.cuda.CUDAGraph`) once one eager call (the warm-up
    that caches the gather indices) has run. The ``validate`` check is skipped while compiling
    or capturing (a value read there would break the graph).

    Args:
        in_channels: the channel count of each tapped layer, e.g. ``[480, 832, 1024]`` (an
            ``int`` for a single layer).
        reduced_channels: :math:`N'`, the channels after the 1×1 convolution (>= 1).
        activation: the non-linearity after each 1×1 convolution: an ``nn.Module`` class or a
            factory (called once per layer), an ``nn.Module`` (copied per layer), or ``None``
            for none. Default :class:`torch.nn.ReLU`.
        normalize_size: divide each Gram matrix by ``H_l * W_l`` (scale independent of the
            input size). Off by default, as in the paper.
        layer_norm: L2-normalise each layer's part before the concatenation.
        power_norm: signed square root of every entry before the normalisations.
        device: where the 1×1 convolutions are created, like ``torch.nn`` layers.
        dtype: their dtype.
        validate: check that the output is finite, and if not, name the feature map that
            holds NaN or Inf. Reads values (one GPU sync: the norms of the output's rows); no
            operator more than ``validate=False`` (the read replaces the norm floor's clamp
            and its backward mask; a floored row or a NaN/Inf costs one more read).

    Shape:
        - Input: a list of ``L`` tensors ``(B, C_l, H_l, W_l)``, in the order of
          ``in_channels``; ``H_l``, ``W_l`` are free.
        - Output: ``(B, out_features)``, rows of unit norm (an all-zero row where every
          reduced map is zero, e.g. all below the ReLU's threshold).

    Raises:
        SentimentMetricError: bad constructor arguments; in ``forward``, a list of the wrong
            length, a map that is not 4-D or not floating point, wrong channel counts (the
            message shows expected and got per layer), or a map whose dtype or device differs
            from the head's parameters (outside :func:`torch.autocast`); with ``validate``, a
            map holding NaN or Inf (named), or a non-finite output from finite maps (the
            head's parameters hold NaN/Inf, or an overflow).

    Example:
        >>> import torch
        >>> import sentiment_metric as sm
        >>> _ = torch.manual_seed(0)
        >>> head = sm.GramSentimentVector(in_channels=[8, 12], reduced_channels=4)
        >>> head
        GramSentimentVector(
          in_channels=(8, 12), reduced_channels=4, activation=ReLU, out_features=20,
          normalize_size=False, layer_norm=False, power_norm=False, validate=True
          (reducers): ModuleList(
            (0): Conv2d(8, 4, kernel_size=(1, 1), stride=(1, 1))
            (1): Conv2d(12, 4, kernel_size=(1, 1), stride=(1, 1))
          )
          (activations): ModuleList(
            (0-1): 2 x ReLU()
          )
        )
        >>> v = head([torch.randn(2, 8, 14, 14), torch.randn(2, 12, 7, 7)])
        >>> v.shape, round(v[0].norm().item(), 4)
        (torch.Size([2, 20]), 1.0)
    """

    def __init__(
        self,
        in_channels: Sequence[int] | int,
        reduced_channels: int = 16,
        activation: ActivationArg = nn.ReLU,
        normalize_size: bool = False,
        layer_norm: bool = False,
        power_norm: bool = False,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        validate: bool = True,
    ) -> None:
        super().__init__()
        if isinstance(in_channels, int) and not isinstance(in_channels, bool):
            in_channels = [in_channels]
        if isinstance(in_channels, (str, bytes)) or not isinstance(in_channels, Sequence):
            raise SentimentMetricError(
                "in_channels must be a list of channel counts, one per tapped layer, got "
                f"{in_channels!r}"
            )
        if len(in_channels) == 0:
            raise SentimentMetricError("in_channels must name at least one layer, got []")
        self.in_channels: tuple[int, ...] = tuple(
            check_positive_int(c, f"in_channels[{i}]") for i, c in enumerate(in_channels)
        )
        self.reduced_channels = check_positive_int(reduced_channels, "reduced_channels")
        self.normalize_size = bool(normalize_size)
        self.layer_norm = bool(layer_norm)
        self.power_norm = bool(power_norm)
        self.validate = bool(validate)
        self._activation_name = _activation_name(activation)
        self.reducers = nn.ModuleList(
            nn.Conv2d(c, self.reduced_channels, kernel_size=1, device=device, dtype=dtype)
            for c in self.in_channels
        )
        self.activations = nn.ModuleList(_make_activation(activation) for _ in self.in_channels)
        self.out_features = sentiment_vector_size([self.reduced_channels] * len(self.in_channels))

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, reduced_channels={self.reduced_channels}, "
            f"activation={self._activation_name}, out_features={self.out_features}, "
            f"normalize_size={self.normalize_size}, layer_norm={self.layer_norm}, "
            f"power_norm={self.power_norm}, validate={self.validate}"
        )

    def _check_features(self, features: Any) -> None:
        n = len(self.in_channels)
        if isinstance(features, torch.Tensor) or not isinstance(features, Sequence):
            raise SentimentMetricError(
                f"features must be a list of {n} tensors (B, C_l, H_l, W_l) with channels "
                f"{self.in_channels}, got {type(features).__name__}"
            )
        if len(features) != n:
            raise SentimentMetricError(
                f"features must hold {n} feature map(s) (in_channels={self.in_channels}), "
                f"got {len(features)}"
            )
        for i, x in enumerate(features):
            check_shape(x, ("B", "C", "H", "W"), f"features[{i}]")
            if not x.is_floating_point():
                raise SentimentMetricError(
                    f"features[{i}] must be a floating-point tensor, got dtype {x.dtype}"
                )
        got = tuple(int(x.shape[1]) for x in features)
        if got != self.in_channels:
            bad = "; ".join(
                f"layer {i}: expected {e}, got {g}"
                for i, (e, g) in enumerate(zip(self.in_channels, got))
                if e != g
            )
            raise SentimentMetricError(
                f"features have the wrong channel counts: expected {self.in_channels}, got "
                f"{got} ({bad})"
            )
        for i, x in enumerate(features):
            check_input_matches(x, f"features[{i}]", self, "the head")

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """Map the tapped layers' features to the sentiment vector.

        Args:
            features: ``L`` maps ``(B, C_l, H_l, W_l)``, in the order of ``in_channels``.

        Returns:
            ``(B, out_features)``.
        """
        self._check_features(features)
        reduced = [act(conv(x)) for x, conv, act in zip(features, self.reducers, self.activations)]
        culprits = [(f"features[{i}]", x) for i, x in enumerate(features)]
        return checked_sentiment_vector(
            reduced,
            self.normalize_size,
            self.layer_norm,
            self.power_norm,
            1e-12,
            culprits=culprits if self.validate else None,
            otherwise="features are finite but the head's output is not: its parameters hold "
            "NaN or Inf, or the Gram products overflow",
        )
