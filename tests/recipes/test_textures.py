"""AffectiveTextures: determinism, shapes, class order, speed sanity, wheel structure."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from PIL import Image

import sentiment_metric as sm
from sentiment_metric.recipes import AffectiveTextures, generate_textures
from sentiment_metric.recipes.datasets.textures import BLOCK, TEXTURE_MEAN, TEXTURE_STD


def test_shapes_dtype_and_classes() -> None:
    ds = AffectiveTextures(num_images=20, image_size=24, seed=1)
    x, y = ds[3]
    assert x.shape == (3, 24, 24) and x.dtype == torch.float32
    assert isinstance(y, int) and y == ds.targets[3]
    assert ds.classes == list(sm.MIKELS_WHEEL.emotions)
    assert len(ds) == 20 and len(ds.targets) == 20 and ds.skipped == []
    rel = sm.MIKELS_WHEEL.relations(ds.classes)
    assert rel.dis[0, 7] == 2 and rel.level[3, 4] == 2  # amusement~anger; excitement/fear
    xs, ys = ds.tensors()
    assert xs.shape == (20, 3, 24, 24) and ys.tolist() == ds.targets
    torch.testing.assert_close(xs[3], x)
    assert ds[-1][1] == ds.targets[-1]
    with pytest.raises(IndexError):
        ds[20]


def test_default_sizes_and_balance() -> None:
    assert len(AffectiveTextures(split="val", image_size=8)) == 512
    ds = AffectiveTextures(num_images=BLOCK + 8, image_size=8)
    counts = torch.bincount(torch.tensor(ds.targets[:BLOCK]), minlength=8)
    assert counts.tolist() == [BLOCK // 8] * 8


def test_normalisation_and_pil_output() -> None:
    raw = AffectiveTextures(num_images=8, image_size=16, normalize=False)
    norm = AffectiveTextures(num_images=8, image_size=16)
    r, _ = raw[2]
    n, _ = norm[2]
    assert 0.0 <= float(r.min()) and float(r.max()) <= 1.0
    mean = torch.tensor(TEXTURE_MEAN).view(3, 1, 1)
    std = torch.tensor(TEXTURE_STD).view(3, 1, 1)
    torch.testing.assert_close(n, (r - mean) / std)
    pil = AffectiveTextures(num_images=8, image_size=16, output="pil")
    img, label = pil[2]
    assert isinstance(img, Image.Image) and img.size == (16, 16) and img.mode == "RGB"
    assert label == raw.targets[2]
    back = torch.from_numpy(np.array(img)).permute(2, 0, 1) / 255.0
    torch.testing.assert_close(back, r)
    flipped = AffectiveTextures(num_images=8, image_size=16, transform=lambda t: t.flip(-1))
    torch.testing.assert_close(flipped[2][0], n.flip(-1))


def test_deterministic_per_index_and_seed() -> None:
    a = AffectiveTextures(num_images=BLOCK + 10, image_size=16, seed=7)
    b = AffectiveTextures(num_images=30, image_size=16, seed=7, cache=False)
    # image i depends on (seed, split, i) only: not on num_images, cache or access order
    for i in (29, 0, 5):
        torch.testing.assert_close(a[i][0], b[i][0], rtol=0, atol=0)
        assert a[i][1] == b[i][1]
    assert a.targets[:30] == b.targets
    again = AffectiveTextures(num_images=BLOCK + 10, image_size=16, seed=7)
    torch.testing.assert_close(again.tensors()[0], a.tensors()[0], rtol=0, atol=0)
    other_seed = AffectiveTextures(num_images=30, image_size=16, seed=8)
    assert not torch.equal(other_seed[0][0], b[0][0])


def test_splits_are_different_streams() -> None:
    imgs = {
        s: AffectiveTextures(num_images=32, image_size=16, split=s).tensors()[0]
        for s in ("train", "val", "test")
    }
    flat = {s: x.flatten(1) for s, x in imgs.items()}
    for s, t in (("train", "val"), ("train", "test"), ("val", "test")):
        assert torch.cdist(flat[s], flat[t]).min() > 1.0, (s, t)


def test_speed_sanity() -> None:
    ds = AffectiveTextures(num_images=2 * BLOCK, image_size=64, seed=3)
    t0 = time.perf_counter()
    ds.tensors()
    elapsed = time.perf_counter() - t0
    # thousands per second on one idle core; a very loose bound for a loaded CI machine
    assert elapsed < 20.0, f"{2 * BLOCK} images took {elapsed:.1f} s"
    t0 = time.perf_counter()
    for i in range(0, 2 * BLOCK, 7):
        ds[i]
    assert time.perf_counter() - t0 < 5.0  # cached


def _features(x: torch.Tensor) -> torch.Tensor:
    """Mean colour and a radial power spectrum: rotation- and position-invariant features."""
    colour = x.mean((2, 3))
    grey = x.mean(1)
    grey = grey - grey.mean((1, 2), keepdim=True)
    power = torch.fft.fft2(grey).abs() ** 2
    f = torch.fft.fftfreq(x.shape[-1])
    radius = (f[:, None] ** 2 + f[None] ** 2).sqrt()
    bins = torch.bucketize(radius, torch.linspace(0, 0.5, 9)[1:-1])
    spec = torch.stack([power[:, bins == k].mean(1) for k in range(8)], 1)
    return torch.cat([colour, 3 * spec / spec.sum(1, keepdim=True)], 1)


def test_wheel_structure() -> None:
    x, y = AffectiveTextures(num_images=1024, image_size=32, normalize=False).tensors()
    feats = _features(x)
    means = torch.stack([feats[y == c].mean(0) for c in range(8)])
    d = torch.cdist(means, means)
    neighbours = torch.stack([d[c, (c + 1) % 8] for c in range(8)])
    opposite = torch.stack([d[c, (c + 4) % 8] for c in range(8)])
    assert neighbours.mean() < 0.7 * opposite.mean()
    # every class's nearest other class is one of its two wheel neighbours
    d.fill_diagonal_(float("inf"))
    nearest = d.argmin(1)
    steps = torch.minimum((nearest - torch.arange(8)).abs(), 8 - (nearest - torch.arange(8)).abs())
    assert steps.tolist() == [1] * 8
    # polarity: warm palette (red > blue) on the positive half, cold on the negative half
    warm = x[:, 0].mean((1, 2)) - x[:, 2].mean((1, 2))
    pos = y < 4
    assert warm[pos].mean() > 0.1 > -0.1 > warm[~pos].mean()


def test_generate_textures_direct() -> None:
    g1 = torch.Generator().manual_seed(0)
    g2 = torch.Generator().manual_seed(0)
    a = generate_textures(torch.tensor([0, 4]), image_size=16, generator=g1)
    b = generate_textures(torch.tensor([0, 4]), image_size=16, generator=g2)
    assert a.shape == (2, 3, 16, 16) and torch.equal(a, b)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_images": 0}, "num_images must be an int >= 1"),
        ({"num_images": 2.5}, "num_images must be an int"),
        ({"image_size": 4}, "image_size must be an int >= 8"),
        ({"split": "all"}, "split must be one of 'train', 'val', 'test'"),
        ({"output": "numpy"}, "output must be one of 'tensor', 'pil'"),
        ({"seed": "0"}, "seed must be an int"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(sm.SentimentMetricError, match=match):
        AffectiveTextures(**kwargs)  # type: ignore[arg-type]
