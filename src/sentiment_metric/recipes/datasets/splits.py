"""Generated splits: stratified train/val/test splits, split files, stratified subsets.

A data set that comes without a split (FI as distributed, ArtPhoto, Abstract, any emotion
folder) subclasses :class:`SplittableDataset`: ``split="train"``, ``"val"`` or ``"test"`` is
then a stratified split generated from ``seed`` (:func:`stratified_split`), written to
``split_file`` when given and reused from it when it exists. :func:`stratified_subset` caps a
data set at ``n`` samples, every class keeping its share. Both draw per class from
:func:`shuffled_by_class`, the one place that shuffles a class.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from ... import EmotionWheel, SentimentMetricError
from ..._checks import check_choice
from ..files import write_json
from .base import SPLITS, EmotionImageDataset, Transform, check_dir

__all__ = [
    "DEFAULT_FRACTIONS",
    "SPLIT_FILE_FORMAT",
    "SplittableDataset",
    "StratifiedSubset",
    "shuffled_by_class",
    "stratified_split",
    "stratified_subset",
]

DEFAULT_FRACTIONS: tuple[float, float, float] = (0.8, 0.05, 0.15)
"""Train / val / test fractions of a generated split (FI's customary 80/5/15)."""

SPLIT_FILE_FORMAT = "sentiment-metric-split/1"


def shuffled_by_class(labels: Sequence[int] | np.ndarray, seed: int) -> list[np.ndarray]:
    """The sample indices of each class (classes in sorted order), each shuffled by one
    ``numpy.random.default_rng(seed)`` drawn class after class."""
    rng = np.random.default_rng(seed)
    lab = np.asarray(list(labels), dtype=np.int64)
    return [rng.permutation(np.flatnonzero(lab == c)) for c in np.unique(lab)]


def _split_counts(n: int, fractions: Sequence[float]) -> tuple[int, int, int]:
    n_val = math.floor(n * fractions[1] + 0.5)  # half up (round() goes half to even)
    n_test = math.floor(n * fractions[2] + 0.5)
    if n_val + n_test > n:
        n_test = n - n_val
    return n - n_val - n_test, n_val, n_test


def stratified_split(
    labels: Sequence[int],
    seed: int = 0,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
) -> dict[str, list[int]]:
    """Split sample indices into train / val / test, class by class, from a seed.

    Within each class the indices are shuffled by ``numpy.random.default_rng(seed)`` and cut at
    ``n * fractions[1]`` val and ``n * fractions[2]`` test samples, rounded half up; the rest is
    train. The result depends only on ``labels``, ``seed`` and ``fractions``.

    Args:
        labels: ``(N,)`` label of each sample.
        seed: the random seed.
        fractions: train, val, test fractions summing to 1 (default 80/5/15).

    Returns:
        ``{"train": [...], "val": [...], "test": [...]}``, sorted sample indices.

    Example:
        >>> from sentiment_metric.recipes.datasets import stratified_split
        >>> parts = stratified_split([0] * 20 + [1] * 40, seed=0)
        >>> {k: len(v) for k, v in parts.items()}
        {'train': 48, 'val': 3, 'test': 9}
    """
    fr = [float(f) for f in fractions]
    if len(fr) != 3 or any(f < 0 for f in fr) or abs(sum(fr) - 1.0) > 1e-6:
        raise SentimentMetricError(
            f"fractions must be 3 numbers >= 0 (train, val, test) summing to 1, got {fractions!r}"
        )
    out: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for idx in shuffled_by_class(labels, seed):
        n_train, n_val, _ = _split_counts(len(idx), fr)
        out["train"].extend(idx[:n_train].tolist())
        out["val"].extend(idx[n_train : n_train + n_val].tolist())
        out["test"].extend(idx[n_train + n_val :].tolist())
    return {k: sorted(v) for k, v in out.items()}


class StratifiedSubset(torch.utils.data.Dataset):
    """A subset that keeps ``.classes``, ``.targets`` (and ``.samples``) of its base."""

    def __init__(self, base: Any, indices: Sequence[int]) -> None:
        self.base = base
        self.indices = [int(i) for i in indices]
        self.classes = list(base.classes)
        self.targets = [int(base.targets[i]) for i in self.indices]
        if hasattr(base, "samples"):
            self.samples = [base.samples[i] for i in self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> Any:
        return self.base[self.indices[i]]


def stratified_subset(dataset: Any, n: int, seed: int) -> Any:
    """At most ``n`` samples of ``dataset``, every class keeping its share (at least one each).

    Example:
        >>> from sentiment_metric.recipes.datasets import AffectiveTextures, stratified_subset
        >>> sub = stratified_subset(AffectiveTextures(num_images=64, image_size=8), 16, seed=0)
        >>> len(sub), sorted(set(sub.targets)) == list(range(8))
        (16, True)
    """
    if n >= len(dataset):
        return dataset
    total = len(dataset.targets)
    chosen: list[int] = []
    for idx in shuffled_by_class(dataset.targets, seed):
        k = max(1, round(n * len(idx) / total))
        chosen.extend(idx[:k].tolist())
    return StratifiedSubset(dataset, sorted(chosen))


class SplittableDataset(EmotionImageDataset):
    """Base of the readers whose data comes without a split.

    A subclass writes one method, :meth:`_items`: every ``(path, label)`` of the whole set, the
    class names the labels index, and the files known to be missing. This base checks the
    arguments, picks the split (generated from ``seed``, kept in ``split_file``), checks every
    image and reports the unreadable ones (:meth:`_finish`).

    Args:
        root: the dataset's folder.
        split: ``"all"`` or ``"train"``/``"val"``/``"test"`` of a stratified split generated
            from ``seed`` (see :func:`stratified_split`).
        transform: applied to the RGB PIL image.
        seed: seed of the generated split.
        split_file: JSON file of the generated split: read when it exists, written (atomically)
            when it does not. ``None``: recomputed from ``seed``, not written.
        strict: raise on an unreadable image instead of skipping and reporting it.
        verify: decode every image fully at scan time (default: header check only).
        fractions: train / val / test fractions of the generated split.
        wheel: the wheel the names are read on (default Mikels').
    """

    generated_split: ClassVar[bool] = True

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "all",
        transform: Transform | None = None,
        seed: int = 0,
        split_file: str | os.PathLike[str] | None = None,
        strict: bool = False,
        verify: bool = False,
        fractions: Sequence[float] = DEFAULT_FRACTIONS,
        wheel: EmotionWheel | None = None,
    ) -> None:
        super().__init__(transform=transform, strict=strict, verify=verify, wheel=wheel)
        self.split = check_choice(split, SPLITS, "split")
        self.root = check_dir(root)
        self.seed = seed
        self.split_file = None if split_file is None else Path(split_file)
        self.fractions = tuple(float(f) for f in fractions)
        chosen, classes, missing = self._scan()
        self._finish(chosen, classes, type(self).__name__, missing)

    def _items(self) -> tuple[list[tuple[str, int]], list[str], list[tuple[str, str]]]:
        """The whole set: ``(path, label)`` items, class names, ``(path, reason)`` missing.

        The one method a reader subclass writes (see "Adding a data set" in the docs).
        """
        raise NotImplementedError(f"{type(self).__name__} must define _items()")

    def _scan(self) -> tuple[list[tuple[str, int]], list[str], list[tuple[str, str]]]:
        """The chosen split's items, the classes and the missing files."""
        items, classes, missing = self._items()
        self._set_classes(classes)
        chosen, gone = self._select_split(items)
        return chosen, classes, missing + gone

    def _select_split(
        self, items: list[tuple[str, int]]
    ) -> tuple[list[tuple[str, int]], list[tuple[str, str]]]:
        """Items of ``self.split`` (and files named by the split file but missing)."""
        if self.split == "all":
            return items, []
        rels = [_relative(p, self.root) for p, _ in items]
        if self.split_file is not None and self.split_file.is_file():
            return self._read_split(items, rels)
        parts = stratified_split(
            [label for _, label in items], seed=self.seed, fractions=self.fractions
        )
        if self.split_file is not None:
            payload = {
                "format": SPLIT_FILE_FORMAT,
                "root": str(self.root),
                "seed": self.seed,
                "fractions": list(self.fractions),
                "classes": list(self.classes) or None,
                "splits": {k: [rels[i] for i in v] for k, v in parts.items()},
            }
            write_json(self.split_file, payload)
        return [items[i] for i in parts[self.split]], []

    def _read_split(
        self, items: list[tuple[str, int]], rels: list[str]
    ) -> tuple[list[tuple[str, int]], list[tuple[str, str]]]:
        """The items ``self.split_file`` lists for ``self.split``, and those it lists but
        that are gone; warns about images it does not list."""
        path = Path(str(self.split_file))
        try:
            with open(path, encoding="utf-8") as f:
                payload = json.load(f)
            chosen = payload["splits"][self.split]
            if not isinstance(chosen, list):
                raise TypeError("not a list")
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise SentimentMetricError(
                f"split_file {str(path)!r} is not a split written by sentiment-metric "
                f"(expected JSON with splits.train/val/test lists of paths): {err}"
            ) from None
        where = {r: i for i, r in enumerate(rels)}
        picked = [items[where[r]] for r in chosen if r in where]
        missing = [
            (str(self.root / r), "listed in split_file, not found")
            for r in chosen
            if r not in where
        ]
        listed = {r for part in payload["splits"].values() for r in part}
        unlisted = sum(r not in listed for r in rels)
        if unlisted:
            warnings.warn(
                f"{unlisted} image(s) under {str(self.root)!r} are in no split of "
                f"{str(path)!r}; they are left out (delete the file to split afresh)",
                stacklevel=5,
            )
        return picked, missing


def _relative(p: str, base: Path) -> str:
    """``p`` relative to ``base`` (as written in split files), else as it is."""
    try:
        return Path(p).relative_to(base).as_posix()
    except ValueError:
        return Path(p).as_posix()
