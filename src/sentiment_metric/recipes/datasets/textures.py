"""AffectiveTextures: a generated affective-image dataset that follows Mikels' wheel.

No download, no files: images are drawn on the fly from a seed, in vectorised torch, in blocks
of :data:`BLOCK` images; image ``i`` depends only on ``(seed, split, i)``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch.utils.data import Dataset

from ... import MIKELS_WHEEL, SentimentMetricError
from ..._checks import check_choice, check_labels, check_positive_int

__all__ = ["BLOCK", "TEXTURE_MEAN", "TEXTURE_STD", "AffectiveTextures", "generate_textures"]

BLOCK = 256
"""Images are generated (and cached) in blocks of this many indices."""

TEXTURE_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
"""Per-channel mean used to normalise the tensors (ImageNet's, like the photo transforms)."""
TEXTURE_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
"""Per-channel standard deviation used to normalise the tensors (ImageNet's)."""

_SPLIT_IDS = {"train": 0, "val": 1, "test": 2}
_DEFAULT_SIZES = {"train": 4096, "val": 512, "test": 1024}
_TWO_PI = 2.0 * math.pi


def _block_seed(seed: int, split: str, block: int, stream: str) -> int:
    key = f"sentiment-metric/textures/{seed}/{split}/{block}/{stream}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:7], "little")


def _hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Vectorised HSV -> RGB; inputs broadcastable, ``h`` in turns; output stacks RGB at dim -1."""
    k = torch.tensor([5.0, 3.0, 1.0], dtype=h.dtype)
    hh = (h.unsqueeze(-1) * 6.0 + k) % 6.0
    f = torch.clamp(torch.minimum(hh, 4.0 - hh), 0.0, 1.0)
    return v.unsqueeze(-1) - v.unsqueeze(-1) * s.unsqueeze(-1) * f


def generate_textures(
    labels: torch.Tensor,
    image_size: int = 64,
    generator: torch.Generator | None = None,
    *,
    label_noise: float = 0.35,
    warmth_noise: float = 0.35,
    pixel_noise: float = 0.08,
) -> torch.Tensor:
    """Draw one image per label: textures whose parameters move smoothly around the wheel.

    Each image gets a latent wheel angle :math:`\\varphi` near its class's angle, and every
    visual parameter is a smooth periodic function of :math:`\\varphi`, so wheel neighbours
    look alike and the circle closes (anger looks like amusement):

    .. math::

        \\varphi = \\frac{2\\pi}{8}(c + \\epsilon), \\quad \\epsilon \\sim \\mathcal{N}(0,
        \\sigma_\\ell^2); \\qquad
        \\Delta = \\varphi / 2, \\quad f = f_0 + f_1 \\cos\\varphi, \\quad
        w = \\cos(\\varphi - \\varphi_+) + \\mathcal{N}(0, \\sigma_w^2)

    ``Δ`` is the angle between a strong and a weak grating (the pattern as a whole is rotated
    at random), ``f`` their spatial frequency, ``w`` the warmth of the palette (warm hues for
    the positive half of the wheel, centred at :math:`\\varphi_+` between contentment and
    awe, cold hues for the negative half, overlapping through the noise), and the blobs'
    size follows :math:`\\sin\\varphi`. Nuisances: global rotation, scale, phase, blob
    positions, saturation, brightness, pixel noise.

    Args:
        labels: ``(B,)`` class indices in :data:`~sentiment_metric.MIKELS_WHEEL` order.
        image_size: ``S``, the side of the images.
        generator: the random generator (all randomness is drawn from it).
        label_noise: ``σ_ℓ``, spread of the latent angle in wheel steps.
        warmth_noise: ``σ_w``, spread of the palette's warmth.
        pixel_noise: standard deviation of the additive pixel noise.

    Returns:
        ``(B, 3, S, S)`` float images in ``[0, 1]``.

    Example:
        >>> import torch
        >>> from sentiment_metric.recipes.datasets.textures import generate_textures
        >>> g = torch.Generator().manual_seed(0)
        >>> generate_textures(torch.arange(8), image_size=16, generator=g).shape
        torch.Size([8, 3, 16, 16])
    """
    labels = check_labels(labels, len(MIKELS_WHEEL))
    check_positive_int(image_size, "image_size")
    draw = _Draws(generator)
    b, dt = labels.shape[0], torch.float32
    phi = _TWO_PI / 8.0 * (labels.to(dt) + label_noise * draw.randn(b))
    lin = torch.linspace(-1.0, 1.0, image_size, dtype=dt)  # coordinates in [-1, 1]
    pattern = _gratings(phi, lin, draw)
    blobs = _blobs(phi, lin, draw)
    fg, bg, blob_c = _palette(phi, warmth_noise, draw)
    mix = ((pattern + 1.0) / 2.0)[:, None]  # (B, 1, S, S)
    img = bg[..., None, None] + (fg - bg)[..., None, None] * mix
    bl = (0.7 * blobs)[:, None]
    img += bl * (blob_c[..., None, None] - img)
    img += pixel_noise * draw.randn(b, 3, image_size, image_size)
    return img.clamp_(0.0, 1.0)


class _Draws:
    """Uniform and normal float32 draws from one generator, in the order they are asked."""

    def __init__(self, generator: torch.Generator | None) -> None:
        self.generator = generator

    def rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=self.generator, dtype=torch.float32)

    def randn(self, *shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=self.generator, dtype=torch.float32)


def _gratings(phi: torch.Tensor, lin: torch.Tensor, draw: _Draws) -> torch.Tensor:
    """Two gratings at relative angle ``Δ = φ / 2`` and frequency ``f(φ)``, the pattern
    rotated and scaled per image (nuisance): ``(B, S, S)`` in ``[-1, 1]``."""
    b = phi.shape[0]
    yy, xx = torch.meshgrid(lin, lin, indexing="ij")
    rot = math.pi * draw.rand(b)
    scale = torch.exp(0.15 * draw.randn(b))
    freq = (4.0 + 2.0 * torch.cos(phi)) * scale  # cycles per image side / 2

    def grating(angle: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
        u = torch.cos(angle)[:, None, None] * xx + torch.sin(angle)[:, None, None] * yy
        return torch.sin(math.pi * freq[:, None, None] * u + phase[:, None, None])

    pattern = grating(rot, _TWO_PI * draw.rand(b)) + 0.6 * grating(
        rot + phi / 2.0, _TWO_PI * draw.rand(b)
    )
    return pattern / 1.6


def _blobs(phi: torch.Tensor, lin: torch.Tensor, draw: _Draws, k: int = 3) -> torch.Tensor:
    """``k`` soft discs at random places, radius following ``sin(φ)``: ``(B, S, S)``."""
    b = phi.shape[0]
    cx = 1.6 * draw.rand(b, k) - 0.8
    cy = 1.6 * draw.rand(b, k) - 0.8
    radius = (0.22 + 0.12 * torch.sin(phi))[:, None] * torch.exp(0.15 * draw.randn(b, k))
    dx2 = (lin[None, None, None, :] - cx[..., None, None]) ** 2  # (B, K, 1, S)
    dy2 = (lin[None, None, :, None] - cy[..., None, None]) ** 2  # (B, K, S, 1)
    inside = (radius**2)[..., None, None] - dx2 - dy2  # (B, K, S, S)
    return torch.sigmoid(inside.amax(dim=1) * 60.0)  # sigmoid is monotone


def _palette(
    phi: torch.Tensor, warmth_noise: float, draw: _Draws
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Foreground, background and blob colours ``(B, 3)``: warmth from the polarity side of
    the wheel, with overlap."""
    b = phi.shape[0]
    phi_pos = _TWO_PI / 8.0 * 1.5
    warmth = torch.cos(phi - phi_pos) + warmth_noise * draw.randn(b)
    hue = (0.6 - 0.55 * (warmth.clamp(-1.2, 1.2) + 1.0) / 2.0) % 1.0  # warm ~0.05, cold ~0.6
    sat = 0.35 + 0.5 * draw.rand(b)
    val = 0.55 + 0.4 * draw.rand(b)
    fg = _hsv_to_rgb(hue, sat, val)
    bg = _hsv_to_rgb((hue + 0.08 * draw.randn(b)) % 1.0, 0.6 * sat, 0.35 * val)
    blob_c = _hsv_to_rgb(hue, sat * 0.5, torch.clamp(val + 0.2, max=1.0))
    return fg, bg, blob_c


class AffectiveTextures(Dataset):
    """Generated affective textures: 8 classes named after Mikels' emotions, no download.

    The embedded default dataset of the recipes and the demo. Each image shows two gratings,
    a few soft blobs and a two-colour palette whose parameters are smooth periodic functions
    of a latent wheel angle near the class's place on :data:`~sentiment_metric.MIKELS_WHEEL`
    (see :func:`generate_textures`): wheel neighbours look alike (anger looks like amusement,
    excitement like fear), the positive half of the wheel is painted in warm hues and the
    negative half in cold ones, with overlap. A plain classifier therefore errs mostly
    between wheel neighbours, and the wheel-aware loss has real structure to learn.
    Nuisances: global rotation, scale, grating phases, blob positions and sizes, saturation,
    brightness, pixel noise.

    **How hard it is (measured, not guessed).** A linear model on pixels: scikit-learn
    ``LogisticRegression(C=0.03)`` on standardised 8x8 average-pooled pixels (192 features),
    trained on 4,096 ``"train"`` images and tested on 2,048 ``"test"`` images (``seed=0``,
    64 px), reaches **38.0 %** accuracy (16x16 pixels: 37.4 %; chance 12.5 %), 89.5 %
    polarity accuracy, and 61 % of its errors are one wheel step away (18 % two, 15 % three,
    6 % four). A small 4-layer CNN (16-32-64-64 channels, Adam, batch 128, same 4,096 train
    images) reaches 64 % after 4 epochs with 98 % of its errors one wheel step away, so the
    signal is there for a network to learn, and its mistakes follow the wheel.

    ``classes`` is :attr:`MIKELS_WHEEL.emotions <sentiment_metric.EmotionWheel.emotions>` in
    wheel order (amusement, contentment, awe, excitement, fear, sadness, disgust, anger).
    Labels are balanced: every block of :data:`BLOCK` images holds ``BLOCK / 8`` of each class.

    Image ``i`` depends only on ``(seed, split, i)`` (not on ``num_images``); the three splits
    draw from separate seed streams. Images are generated in vectorised blocks of
    :data:`BLOCK` on first access (about 2,000 64 px images per CPU-second on one thread,
    15,000 at 32 px) and cached as ``uint8`` (12 KiB per 64 px image) when ``cache=True``.

    Args:
        num_images: ``N``; default 4096 for ``"train"``, 512 for ``"val"``, 1024 for ``"test"``.
        image_size: ``S``, the side of the images (at least 8).
        seed: the dataset seed.
        split: ``"train"`` (default), ``"val"`` or ``"test"``.
        transform: applied to each image (to the tensor, or to the PIL image with
            ``output="pil"``).
        output: ``"tensor"`` (default): ``(3, S, S)`` float32, normalised with
            :data:`TEXTURE_MEAN` / :data:`TEXTURE_STD` (ImageNet's statistics, like the photo
            transforms; ``normalize=False`` keeps ``[0, 1]``); ``"pil"``: an RGB
            :class:`PIL.Image.Image` (for torchvision transforms).
        cache: keep generated blocks in memory.
        normalize: normalise the tensors (``output="tensor"`` only).

    ``ds[i] -> (image, label)``; :meth:`tensors` returns everything at once. ``ds.skipped`` is
    always empty (nothing is read from disk).

    Example:
        >>> import sentiment_metric as sm
        >>> from sentiment_metric.recipes import AffectiveTextures
        >>> ds = AffectiveTextures(num_images=16, image_size=32, seed=0)
        >>> img, label = ds[0]
        >>> img.shape, img.dtype, len(ds.targets)
        (torch.Size([3, 32, 32]), torch.float32, 16)
        >>> ds.classes[:4]
        ['amusement', 'contentment', 'awe', 'excitement']
        >>> sm.MIKELS_WHEEL.relations(ds.classes).dis[0].tolist()
        [1.0, 2.0, 3.0, 4.0, 5.0, 4.0, 3.0, 2.0]
    """

    needs_root: ClassVar[bool] = False
    """Generated: built from ``num_images``, ``image_size`` and ``seed``, no ``root``."""
    generated_split: ClassVar[bool] = False
    """Its splits are separate seed streams, not a split file."""

    def __init__(
        self,
        num_images: int | None = None,
        image_size: int = 64,
        seed: int = 0,
        split: str = "train",
        transform: Callable[[Any], Any] | None = None,
        output: str = "tensor",
        cache: bool = True,
        normalize: bool = True,
    ) -> None:
        self.split = check_choice(split, tuple(_SPLIT_IDS), "split")
        if num_images is None:
            num_images = _DEFAULT_SIZES[self.split]
        self.num_images = check_positive_int(num_images, "num_images")
        self.image_size = check_positive_int(image_size, "image_size", minimum=8)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise SentimentMetricError(f"seed must be an int, got {seed!r}")
        self.seed = seed
        self.output = check_choice(output, ("tensor", "pil"), "output")
        self.transform = transform
        self.cache = bool(cache)
        self.normalize = bool(normalize)
        self.classes: list[str] = list(MIKELS_WHEEL.emotions)
        self.skipped: list[tuple[str, str]] = []
        n_blocks = (self.num_images + BLOCK - 1) // BLOCK
        labels = torch.cat([self._block_labels(k) for k in range(n_blocks)])[: self.num_images]
        self.targets: list[int] = labels.tolist()
        self._cache: dict[int, torch.Tensor] = {}
        self._mean = torch.tensor(TEXTURE_MEAN).view(3, 1, 1)
        self._std = torch.tensor(TEXTURE_STD).view(3, 1, 1)

    def _block_labels(self, block: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(_block_seed(self.seed, self.split, block, "labels"))
        base = torch.arange(BLOCK) % len(self.classes)
        return base[torch.randperm(BLOCK, generator=g)]

    def _block(self, block: int) -> torch.Tensor:
        """``(BLOCK, 3, S, S)`` uint8 images of one block (cached)."""
        hit = self._cache.get(block)
        if hit is not None:
            return hit
        g = torch.Generator().manual_seed(_block_seed(self.seed, self.split, block, "images"))
        imgs = generate_textures(self._block_labels(block), self.image_size, g)
        out = (imgs * 255.0).round().to(torch.uint8)
        if self.cache:
            self._cache[block] = out
        return out

    def _uint8(self, index: int) -> torch.Tensor:
        return self._block(index // BLOCK)[index % BLOCK]

    def _to_float(self, x: torch.Tensor) -> torch.Tensor:
        y = x.to(torch.float32) / 255.0
        return (y - self._mean) / self._std if self.normalize else y

    def __len__(self) -> int:
        return self.num_images

    def __getitem__(self, index: int) -> tuple[Any, int]:
        if index < 0:
            index += self.num_images
        if not 0 <= index < self.num_images:
            raise IndexError(f"index {index} out of range for {self.num_images} images")
        raw = self._uint8(index)
        image: Any
        if self.output == "pil":
            from PIL import Image

            image = Image.fromarray(raw.permute(1, 2, 0).numpy(), mode="RGB")
        else:
            image = self._to_float(raw)
        if self.transform is not None:
            image = self.transform(image)
        return image, self.targets[index]

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All images and labels at once: ``(N, 3, S, S)`` float (as ``ds[i]``, no transform)
        and ``(N,)`` int64."""
        n_blocks = (self.num_images + BLOCK - 1) // BLOCK
        raw = torch.cat([self._block(k) for k in range(n_blocks)])[: self.num_images]
        y = raw.to(torch.float32) / 255.0
        if self.normalize:
            y = (y - self._mean) / self._std
        return y, torch.tensor(self.targets, dtype=torch.int64)

    def save_images(self, folder: str | Path) -> list[Path]:
        """Write every image as a PNG into ``folder/<emotion>/<split>-<index>.png``: an emotion
        ImageFolder (``sentiment-metric textures``), to try ``retrieve`` or ``--dataset
        folder`` on.

        Returns:
            The files written, in index order.
        """
        from PIL import Image

        root = Path(folder)
        written = []
        for i in range(self.num_images):
            sub = root / self.classes[self.targets[i]]
            sub.mkdir(parents=True, exist_ok=True)
            path = sub / f"{self.split}-{i:05d}.png"
            Image.fromarray(self._uint8(i).permute(1, 2, 0).numpy(), mode="RGB").save(path)
            written.append(path)
        return written

    def __repr__(self) -> str:
        return (
            f"AffectiveTextures(split={self.split!r}, num_images={self.num_images}, "
            f"image_size={self.image_size}, seed={self.seed}, output={self.output!r})"
        )
