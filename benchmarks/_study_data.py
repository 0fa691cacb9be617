"""The efficacy study's data: splits, groupings and schedules (imported by ``efficacy.py`` and
``_pretrained.py``, which import nothing of each other's).

Groupings, all fixed before any run of the study that uses them:

- ``textures``: Mikels' wheel (the generator's eight emotions, two polarities);
- ``digits``: closed loops {0, 4, 6, 8, 9} vs open strokes {1, 2, 3, 5, 7} (issue 13), a
  grouping the pixels largely separate;
- ``digits-parity``: even {0, 2, 4, 6, 8} vs odd {1, 3, 5, 7, 9} (issue 17), a grouping that
  cuts across the visual clusters, as polarity does in affective images (3 and 8, 4 and 9,
  1 and 7 look alike and sit in different or the same groups with no visual rule).

scikit-learn's digits are split 60/20/20 with a fixed seed; the textures are generated per
split with a fixed seed. A ``-effnet`` suffix (``_pretrained.py``) means the same images seen
through a frozen ImageNet EfficientNet-lite0.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

import sentiment_metric as sm
from sentiment_metric.recipes import AffectiveTextures

DIGIT_GROUPINGS: dict[str, list[int]] = {
    "digits": [0, 1, 1, 1, 0, 1, 0, 1, 0, 0],  # closed loops {0,4,6,8,9} vs open strokes
    "digits-parity": [0, 1, 0, 1, 0, 1, 0, 1, 0, 1],  # even vs odd
}
PRETRAINED = "-effnet"
"""Suffix of the data sets seen through the frozen pretrained backbone."""

SCHEDULES: dict[str, dict[str, Any]] = {
    # the demo's full schedule (sentiment_metric.recipes.demo), on the textures
    "textures": dict(size=64, n_train=4096, n_val=1024, n_test=1024, width=16, epochs=20,
                     batch=64, lr=0.02, lr_step=8),
    "digits": dict(size=16, width=16, epochs=30, batch=60, lr=0.02, lr_step=12),
    "digits-parity": dict(size=16, width=16, epochs=30, batch=60, lr=0.02, lr_step=12),
    # a head on frozen pretrained features: trained at the head's learning rate of the others
    "textures-effnet": dict(width=256, epochs=30, batch=64, lr=0.1, lr_step=12),
    "digits-effnet": dict(width=256, epochs=30, batch=60, lr=0.1, lr_step=12),
    "digits-parity-effnet": dict(width=256, epochs=30, batch=60, lr=0.1, lr_step=12),
}  # fmt: skip
QUICK: dict[str, dict[str, Any]] = {
    "textures": dict(size=32, n_train=256, n_val=128, n_test=128, width=8, epochs=2, batch=64,
                     lr=0.02, lr_step=8),
    "digits": dict(size=16, width=8, epochs=2, batch=60, lr=0.02, lr_step=12),
    "digits-parity": dict(size=16, width=8, epochs=2, batch=60, lr=0.02, lr_step=12),
    "textures-effnet": dict(width=32, epochs=2, batch=64, lr=0.1, lr_step=12),
    "digits-effnet": dict(width=32, epochs=2, batch=60, lr=0.1, lr_step=12),
    "digits-parity-effnet": dict(width=32, epochs=2, batch=60, lr=0.1, lr_step=12),
}  # fmt: skip


def base_images(name: str) -> str:
    """The image source of a data set: ``"textures"`` or ``"digits"``."""
    return "textures" if name.startswith("textures") else "digits"


_CACHE: dict[tuple[str, bool], Any] = {}


def load_data(name: str, quick: bool) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], Any]:
    """``({split: (images, labels)}, relations)`` of a data set without the ``-effnet``
    suffix; cached per process."""
    key = (name, quick)
    if key in _CACHE:
        return _CACHE[key]
    s = (QUICK if quick else SCHEDULES)[name]
    if name == "textures":
        data = {}
        for split in ("train", "val", "test"):
            ds = AffectiveTextures(
                split=split, num_images=s[f"n_{split}"], image_size=s["size"], seed=0
            )
            x, y = ds.tensors()
            data[split] = (x.float(), y.long())
        rel = sm.MIKELS_WHEEL.relations(sm.MIKELS_WHEEL.emotions)
    else:
        from sklearn.datasets import load_digits

        d = load_digits()
        x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
        x = F.interpolate((x - 0.3) / 0.4, size=s["size"], mode="bilinear", align_corners=False)
        x = x.repeat(1, 3, 1, 1)
        y = torch.tensor(d.target, dtype=torch.long)
        perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(12345))
        a, b = int(0.6 * len(y)), int(0.8 * len(y))
        idx = {"train": perm[:a], "val": perm[a:b], "test": perm[b:]}
        data = {k: (x[v], y[v]) for k, v in idx.items()}
        if quick:
            data = {k: (v[0][:300], v[1][:300]) for k, v in data.items()}
        rel = sm.LabelRelations.from_groups(
            DIGIT_GROUPINGS[name], class_names=[str(i) for i in range(10)]
        )
    _CACHE[key] = (data, rel)
    return data, rel
