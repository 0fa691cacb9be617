"""Standard torchvision transforms for photographs (FI, EmoSet, ArtPhoto, Abstract, folders).

Train: ``RandomResizedCrop(size)``, ``RandomHorizontalFlip``, ``ToTensor``, ImageNet
``Normalize``. Eval: ``Resize(round(size * 256 / 224))``, ``CenterCrop(size)``, ``ToTensor``,
ImageNet ``Normalize`` -- the recipe of torchvision's ImageNet references and of the public
EmoSet code. Both return ``(3, size, size)`` float tensors.
"""

from __future__ import annotations

from typing import Any

from .._checks import check_positive_int

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "eval_transform", "train_transform"]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
"""ImageNet per-channel mean (RGB, in [0, 1])."""
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
"""ImageNet per-channel standard deviation (RGB)."""


def train_transform(
    size: int = 224, scale: tuple[float, float] = (0.08, 1.0), flip: bool = True
) -> Any:
    """Training transform for photographs: random resized crop, flip, tensor, normalise.

    Args:
        size: side of the output, ``(3, size, size)``.
        scale: area range of ``RandomResizedCrop``.
        flip: add ``RandomHorizontalFlip``.

    Example:
        >>> from PIL import Image
        >>> from sentiment_metric.recipes import train_transform
        >>> train_transform(32)(Image.new("RGB", (50, 40))).shape
        torch.Size([3, 32, 32])
    """
    from torchvision import transforms as T

    size = check_positive_int(size, "size")
    steps: list[Any] = [T.RandomResizedCrop(size, scale=scale)]
    if flip:
        steps.append(T.RandomHorizontalFlip())
    steps += [T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    return T.Compose(steps)


def eval_transform(size: int = 224, resize: int | None = None) -> Any:
    """Evaluation transform for photographs: resize, centre crop, tensor, normalise.

    Args:
        size: side of the output, ``(3, size, size)``.
        resize: shorter side before the crop; default ``round(size * 256 / 224)``.

    Example:
        >>> from PIL import Image
        >>> from sentiment_metric.recipes import eval_transform
        >>> eval_transform(32)(Image.new("RGB", (50, 40))).shape
        torch.Size([3, 32, 32])
    """
    from torchvision import transforms as T

    size = check_positive_int(size, "size")
    resize = round(size * 256 / 224) if resize is None else check_positive_int(resize, "resize")
    return T.Compose(
        [
            T.Resize(resize),
            T.CenterCrop(size),
            T.ToTensor(),
            T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )
