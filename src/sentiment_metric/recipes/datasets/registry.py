"""The datasets registry: name -> dataset class, and the one factory that builds them.

Adding a data set is one module (a class built like :class:`~.folder.EmotionImageFolder`)
and one line in :data:`DATASETS`; see the contributor page "Adding a data set". What the
factory passes to a class is read from the class, never guessed:

- ``cls.needs_root``: a file-based dataset takes ``root``, ``split``, ``transform`` and
  ``strict``; a generated one (``needs_root = False``, like
  :class:`~.textures.AffectiveTextures`) takes ``split``, ``transform``, ``num_images``,
  ``image_size`` and ``seed`` instead;
- ``cls.generated_split``: the dataset generates its train/val/test split from ``seed`` and
  keeps it in ``split_file`` (:class:`~.splits.SplittableDataset`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

from torch.utils.data import Dataset

from ... import SentimentMetricError
from ..._checks import check_choice
from ..transforms import eval_transform, train_transform
from .abstract import Abstract
from .artphoto import ArtPhoto
from .base import SPLITS, Transform, check_root
from .emoset import EmoSet
from .fi import FI
from .folder import EmotionImageFolder
from .splits import stratified_subset
from .textures import AffectiveTextures

__all__ = ["DATASETS", "DatasetClass", "build_dataset", "recipe_dataset"]


class DatasetClass(Protocol):
    """What the registry holds: a dataset class that says how it is built."""

    needs_root: bool
    generated_split: bool

    def __call__(self, *args: Any, **kwargs: Any) -> Dataset: ...


DATASETS: dict[str, DatasetClass] = {
    "textures": AffectiveTextures,
    "fi": FI,
    "emoset": EmoSet,
    "artphoto": ArtPhoto,
    "abstract": Abstract,
    "folder": EmotionImageFolder,
}
"""Dataset name -> its class (what :func:`build_dataset` and the CLI accept)."""


def build_dataset(
    name: str,
    root: str | os.PathLike[str] | None = None,
    split: str = "train",
    transform: Transform | None = None,
    strict: bool = False,
    **kw: Any,
) -> Dataset:
    """Build a dataset by name: the one factory behind the recipes and the command.

    Args:
        name: one of ``"textures"`` (:class:`~sentiment_metric.recipes.AffectiveTextures`,
            no ``root``), ``"fi"``, ``"emoset"``, ``"artphoto"``, ``"abstract"``, ``"folder"``.
        root: the dataset's folder (required for all but ``"textures"``).
        split: ``"train"``, ``"val"``, ``"test"`` or ``"all"``.
        transform: applied to each image.
        strict: raise on unreadable images instead of skipping and reporting them.
        **kw: passed to the dataset class (``seed``, ``split_file``, ``verify``, ``csv``,
            ``num_images``, ``image_size``, ...).

    Example:
        >>> from sentiment_metric.recipes import build_dataset
        >>> ds = build_dataset("textures", split="val", num_images=16, image_size=32)
        >>> len(ds), ds.classes[:2], ds[0][0].shape
        (16, ['amusement', 'contentment'], torch.Size([3, 32, 32]))
    """
    cls = DATASETS[check_choice(name, tuple(DATASETS), "name")]
    check_choice(split, SPLITS, "split")
    if not cls.needs_root:
        if root is not None:
            raise SentimentMetricError(
                f"root must be None for the generated {name!r} dataset (it needs no files: "
                f"--root is not used), got {str(root)!r}"
            )
        kw.pop("verify", None)  # nothing to read: strict and verify have no effect
        return cls(split=split, transform=transform, **kw)
    if root is None:
        raise SentimentMetricError(
            f"root is required: dataset {name!r} needs root= (--root), the folder that holds it"
        )
    check_root(root)
    return cls(root, split=split, transform=transform, strict=strict, **kw)


def recipe_dataset(
    name: str,
    root: str | None,
    split: str,
    image_size: int,
    *,
    train: bool = False,
    size: int | None = None,
    seed: int = 0,
    split_file: str | Path | None = None,
    strict: bool = False,
) -> Any:
    """One split of a registry dataset as the recipes use it: :func:`build_dataset` with the
    recipe's transform and size.

    A generated dataset is drawn at ``image_size`` (``size`` images, default the split's
    default size). A file dataset gets :func:`~sentiment_metric.recipes.train_transform`
    (``train=True``) or :func:`~sentiment_metric.recipes.eval_transform`, ``seed`` and
    ``split_file`` (read if it exists, else written) when it generates its split, and ``size``
    caps it to a stratified subset (:func:`~.splits.stratified_subset`).
    """
    cls = DATASETS[check_choice(name, tuple(DATASETS), "dataset")]
    if not cls.needs_root:
        return build_dataset(
            name, root, split=split, num_images=size, image_size=image_size, seed=seed
        )
    kw: dict[str, Any] = {}
    if cls.generated_split:
        kw["seed"] = seed
        if split_file is not None:
            kw["split_file"] = str(split_file)
    transform = train_transform(image_size) if train else eval_transform(image_size)
    ds: Any = build_dataset(name, root=root, split=split, transform=transform, strict=strict, **kw)
    if len(ds) == 0:
        raise SentimentMetricError(f"the {split!r} split of {name!r} at {root!r} is empty")
    return stratified_subset(ds, size, seed) if size is not None else ds
