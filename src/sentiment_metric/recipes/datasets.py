"""Readers for affective image datasets: FI, EmoSet, ArtPhoto, Abstract, emotion ImageFolders.

Every dataset here is a :class:`torch.utils.data.Dataset` with the same surface:

- ``ds.classes``: ``list[str]``, the class names in label order, spelt as on the wheel
  (``"sadness"``, never ``"sad"``), so ``sm.MIKELS_WHEEL.relations(ds.classes)`` always works;
- ``ds.targets``: ``list[int]``, the label of every sample;
- ``ds.samples``: ``list[tuple[str, int]]``, ``(path, label)`` of every sample;
- ``ds[i] -> (image, label)``: ``image`` is an RGB :class:`PIL.Image.Image`, or whatever
  ``transform(image)`` returns when ``transform`` is given; ``label`` is an ``int``;
- ``ds.skipped``: ``list[tuple[str, str]]``, ``(path, reason)`` of every image left out because it
  could not be read.

Unreadable images are never dropped silently:

- **At scan** (construction) every image is opened and its header parsed (cheap: a few bytes
  per file). ``verify=True`` decodes every image fully instead (slow on large sets, but it also
  catches files truncated after their header, which a header check cannot see).
- Images that fail are left out, listed in ``ds.skipped`` and reported in one
  :func:`warnings.warn` at the end of the scan with their count and paths. ``strict=True`` raises
  :class:`~sentiment_metric.SentimentMetricError` naming the first bad path instead.
- **At load** (``ds[i]``), an image that passes the header check but fails to decode is
  reported the same way (a warning naming the path; added to ``ds.skipped``) and replaced by the
  next readable image *of the same class*, so a batch keeps its size and its label balance;
  with ``strict=True`` it raises. (In :class:`~torch.utils.data.DataLoader` workers the
  warning is printed by the worker and ``ds.skipped`` of the main process does not change: use
  ``verify=True`` to find every bad file before training.)

A missing folder, an emotion folder or label unknown to the wheel, or an empty split raise
:class:`~sentiment_metric.SentimentMetricError` with a message that names the path and, for
emotions, lists the known names and aliases.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from .._checks import SentimentMetricError, check_choice
from ..wheel import MIKELS_WHEEL, EmotionWheel
from .textures import AffectiveTextures

__all__ = [
    "DATASETS",
    "EMOSET_CLASSES",
    "FI",
    "IMG_EXTENSIONS",
    "SPLITS",
    "Abstract",
    "ArtPhoto",
    "EmoSet",
    "EmotionImageDataset",
    "EmotionImageFolder",
    "build_dataset",
    "stratified_split",
]

IMG_EXTENSIONS: tuple[str, ...] = (
    ".jpg",
    ".jpeg",
    ".png",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
    ".ppm",
    ".pgm",
)
"""File extensions read as images (case-insensitive); other files are ignored."""

SPLITS: tuple[str, ...] = ("train", "val", "test", "all")
"""Accepted ``split=`` values."""

DEFAULT_FRACTIONS: tuple[float, float, float] = (0.8, 0.05, 0.15)
"""Train / val / test fractions of a generated split (FI's customary 80/5/15)."""

EMOSET_CLASSES: tuple[str, ...] = (
    "amusement",
    "awe",
    "contentment",
    "excitement",
    "anger",
    "disgust",
    "fear",
    "sadness",
)
"""EmoSet's own label order, as ``info.json``'s ``emotion.label2idx`` in the public EmoSet code
(github.com/JingyuanYY/EmoSet): positive emotions then negative ones, each alphabetical."""

SPLIT_FILE_FORMAT = "sentiment-metric-split/1"

Transform = Callable[[Any], Any]


# -- helpers -------------------------------------------------------------------------------


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMG_EXTENSIONS) and not name.startswith(".")


def _image_files(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursive, hidden entries skipped), sorted."""
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out.extend(Path(dirpath) / f for f in filenames if _is_image(f))
    return sorted(out)


def _canonical(name: str, wheel: EmotionWheel, where: str) -> str:
    """The wheel's spelling of ``name``; a clear error naming ``where`` it came from."""
    try:
        return wheel.canonical(name)
    except SentimentMetricError as err:
        raise SentimentMetricError(f"{where}: {err}") from None


def _check_root(root: str | os.PathLike[str] | None, what: str = "root") -> Path:
    if root is None:
        raise SentimentMetricError(f"{what} is required: the folder that holds the dataset")
    path = Path(root).expanduser()
    if not path.exists():
        raise SentimentMetricError(f"{what} {str(path)!r} does not exist")
    return path


def _check_dir(root: str | os.PathLike[str] | None, what: str = "root") -> Path:
    path = _check_root(root, what)
    if not path.is_dir():
        raise SentimentMetricError(f"{what} {str(path)!r} is not a folder")
    return path


def _image_problem(path: str, full: bool) -> str | None:
    """Why ``path`` cannot be read as an image (``None`` when it can)."""
    if not os.path.isfile(path):
        return "missing file"
    try:
        with Image.open(path) as img:
            if full:
                img.load()
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, ...
        return f"{type(err).__name__}: {err}"
    return None


def _load_rgb(path: str) -> Image.Image:
    with Image.open(path) as img:
        return img.convert("RGB")


def _emotion_folders(folder: Path, wheel: EmotionWheel) -> dict[str, Path]:
    """Canonical emotion -> its sub-folder of ``folder``; errors on unknown or duplicate."""
    found: dict[str, Path] = {}
    subdirs = sorted(
        p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "__"))
    )
    for sub in subdirs:
        emo = _canonical(sub.name, wheel, f"emotion folder {str(sub)!r}")
        if emo in found:
            raise SentimentMetricError(
                f"folders {str(found[emo])!r} and {str(sub)!r} both name the emotion {emo!r}"
            )
        found[emo] = sub
    if not found:
        raise SentimentMetricError(
            f"{str(folder)!r} holds no emotion folders; expected one sub-folder per emotion "
            f"named after {wheel.name!r} emotions ({', '.join(wheel.emotions)})"
        )
    return found


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
    rng = np.random.default_rng(seed)
    lab = np.asarray(list(labels), dtype=np.int64)
    out: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for c in np.unique(lab):
        idx = np.flatnonzero(lab == c)
        idx = idx[rng.permutation(len(idx))]
        n_train, n_val, _ = _split_counts(len(idx), fr)
        out["train"].extend(idx[:n_train].tolist())
        out["val"].extend(idx[n_train : n_train + n_val].tolist())
        out["test"].extend(idx[n_train + n_val :].tolist())
    return {k: sorted(v) for k, v in out.items()}


def _write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


# -- the common base -------------------------------------------------------------------------


class EmotionImageDataset(Dataset):
    """Base of the file-based readers: a list of ``(path, label)`` and the checks.

    Subclasses find their samples and call :meth:`_finish`. Users rarely build this directly,
    but it works for any list of files:

    Args:
        samples: ``(path, label)`` pairs; ``label`` indexes ``classes``.
        classes: emotion names in label order (aliases accepted; stored in the wheel's spelling).
        transform: applied to the RGB :class:`PIL.Image.Image`; ``None`` returns the image.
        strict: raise on the first unreadable image instead of skipping and reporting it.
        verify: decode every image fully at scan time (default: header check only).
        wheel: the wheel the names are read on (default :data:`sentiment_metric.MIKELS_WHEEL`).

    Example:
        >>> import tempfile, os
        >>> from PIL import Image
        >>> from sentiment_metric.recipes.datasets import EmotionImageDataset
        >>> d = tempfile.mkdtemp()
        >>> Image.new("RGB", (8, 8), "red").save(os.path.join(d, "a.png"))
        >>> ds = EmotionImageDataset([(os.path.join(d, "a.png"), 0)], classes=["sad"])
        >>> ds.classes, ds.targets, ds[0][0].size
        (['sadness'], [0], (8, 8))
    """

    def __init__(
        self,
        samples: Sequence[tuple[str, int]] = (),
        classes: Sequence[str] = (),
        transform: Transform | None = None,
        strict: bool = False,
        verify: bool = False,
        wheel: EmotionWheel | None = None,
    ) -> None:
        self.transform = transform
        self.strict = bool(strict)
        self.verify = bool(verify)
        self.wheel: EmotionWheel = MIKELS_WHEEL if wheel is None else wheel
        if not isinstance(self.wheel, EmotionWheel):
            raise SentimentMetricError(
                f"wheel must be a sentiment_metric.EmotionWheel, got {type(wheel).__name__}"
            )
        self.classes: list[str] = []
        self.samples: list[tuple[str, int]] = []
        self.targets: list[int] = []
        self.skipped: list[tuple[str, str]] = []
        self.split: str = "all"
        if classes:
            self._finish(list(samples), list(classes), where=type(self).__name__)

    # -- building ----------------------------------------------------------------------
    def _set_classes(self, classes: Sequence[str]) -> None:
        canon = [_canonical(str(c), self.wheel, "class name") for c in classes]
        if len(set(canon)) != len(canon):
            dup = sorted({c for c in canon if canon.count(c) > 1})
            raise SentimentMetricError(f"classes name the same emotion twice: {dup}")
        self.classes = canon

    def _skip(self, path: str, reason: str) -> None:
        if self.strict:
            raise SentimentMetricError(
                f"unreadable image {path!r} ({reason}); strict=True stops here "
                "(strict=False skips it and reports it in .skipped)"
            )
        self.skipped.append((path, reason))

    def _finish(
        self,
        samples: list[tuple[str, int]],
        classes: Sequence[str],
        where: str,
        pre_skipped: Sequence[tuple[str, str]] = (),
    ) -> None:
        """Validate classes, check every image, report the skipped ones, refuse an empty set."""
        self._set_classes(classes)
        c = len(self.classes)
        for path, reason in pre_skipped:
            self._skip(path, reason)
        kept: list[tuple[str, int]] = []
        for path, label in samples:
            if not (isinstance(label, int) and 0 <= label < c):
                raise SentimentMetricError(
                    f"label of {path!r} must be an int in [0, {c - 1}], got {label!r}"
                )
            problem = _image_problem(path, self.verify)
            if problem is not None:
                self._skip(path, problem)
                continue
            kept.append((path, label))
        if self.skipped:
            shown = "\n".join(f"  {p} ({r})" for p, r in self.skipped[:20])
            more = f"\n  ... and {len(self.skipped) - 20} more" if len(self.skipped) > 20 else ""
            warnings.warn(
                f"{where}: skipped {len(self.skipped)} unreadable image(s) "
                f"(listed in .skipped; strict=True makes this an error):\n{shown}{more}",
                stacklevel=3,
            )
        if not kept:
            raise SentimentMetricError(
                f"{where}: split {self.split!r} is empty (no readable images"
                + (f"; {len(self.skipped)} skipped" if self.skipped else "")
                + ")"
            )
        self.samples = kept
        self.targets = [label for _, label in kept]

    # -- access ------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        path, label = self.samples[index]
        try:
            image = _load_rgb(path)
        except Exception as err:
            reason = f"{type(err).__name__}: {err}"
            if self.strict:
                raise SentimentMetricError(
                    f"unreadable image {path!r} ({reason}); strict=True stops here"
                ) from err
            if all(p != path for p, _ in self.skipped):
                self.skipped.append((path, reason))
                warnings.warn(
                    f"{type(self).__name__}: unreadable image {path!r} ({reason}); replaced by "
                    "the next readable image of the same class",
                    stacklevel=2,
                )
            image = self._substitute(index, label)
        if self.transform is not None:
            image = self.transform(image)
        return image, label

    def _substitute(self, index: int, label: int) -> Image.Image:
        n = len(self.samples)
        bad = {p for p, _ in self.skipped}
        for k in range(1, n):
            path, lab = self.samples[(index + k) % n]
            if lab != label or path in bad:
                continue
            try:
                return _load_rgb(path)
            except Exception as err:
                self.skipped.append((path, f"{type(err).__name__}: {err}"))
                bad.add(path)
        raise SentimentMetricError(
            f"{type(self).__name__}: no readable image left for class {self.classes[label]!r}"
        )

    def class_counts(self) -> dict[str, int]:
        """Number of samples per class, in label order."""
        counts = [0] * len(self.classes)
        for t in self.targets:
            counts[t] += 1
        return dict(zip(self.classes, counts))

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        return (
            f"{type(self).__name__}(split={self.split!r}, num_samples={len(self)}, "
            f"classes={self.classes}, skipped={len(self.skipped)}"
            + (f", {extra}" if extra else "")
            + ")"
        )


# -- generated splits ------------------------------------------------------------------------


class _SplittableMixin(EmotionImageDataset):
    """Pick one split of ``(path, label)`` items that come without a split."""

    def _select_split(
        self,
        items: list[tuple[str, int]],
        split: str,
        seed: int,
        split_file: str | os.PathLike[str] | None,
        fractions: Sequence[float],
        base: Path,
    ) -> tuple[list[tuple[str, int]], list[tuple[str, str]]]:
        """Items of ``split`` (and files named by the split file but missing)."""
        if split == "all":
            return items, []

        def rel(p: str) -> str:
            try:
                return Path(p).relative_to(base).as_posix()
            except ValueError:
                return Path(p).as_posix()

        rels = [rel(p) for p, _ in items]
        if split_file is not None and Path(split_file).is_file():
            path = Path(split_file)
            try:
                with open(path, encoding="utf-8") as f:
                    payload = json.load(f)
                chosen = payload["splits"][split]
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
                (str(base / r), "listed in split_file, not found") for r in chosen if r not in where
            ]
            listed = {r for part in payload["splits"].values() for r in part}
            unlisted = sum(r not in listed for r in rels)
            if unlisted:
                warnings.warn(
                    f"{unlisted} image(s) under {str(base)!r} are in no split of "
                    f"{str(path)!r}; they are left out (delete the file to split afresh)",
                    stacklevel=4,
                )
            return picked, missing
        parts = stratified_split([label for _, label in items], seed=seed, fractions=fractions)
        if split_file is not None:
            _write_json_atomic(
                Path(split_file),
                {
                    "format": SPLIT_FILE_FORMAT,
                    "root": str(base),
                    "seed": seed,
                    "fractions": list(fractions),
                    "classes": list(self.classes) or None,
                    "splits": {k: [rels[i] for i in v] for k, v in parts.items()},
                },
            )
        return [items[i] for i in parts[split]], []


def _folder_items(folders: dict[str, Path], classes: Sequence[str]) -> list[tuple[str, int]]:
    index = {c: i for i, c in enumerate(classes)}
    items: list[tuple[str, int]] = []
    for emo, folder in folders.items():
        items.extend((str(p), index[emo]) for p in _image_files(folder))
    return sorted(items)


class EmotionImageFolder(_SplittableMixin):
    """Any ImageFolder of emotions: ``root/<emotion>/**/*.jpg``.

    Folder names are read on the wheel (case-insensitive, aliases such as ``sad`` or
    ``content`` accepted); an unknown name raises and lists the known ones. Labels index
    ``classes``, the canonical names **sorted alphabetically** (for FI's folders exactly
    torchvision's ``ImageFolder`` order).

    Args:
        root: the folder holding one sub-folder per emotion (images may be nested deeper).
        split: ``"all"`` (default) or ``"train"``/``"val"``/``"test"`` of a stratified split
            generated from ``seed`` (see :func:`stratified_split`).
        transform: applied to the RGB PIL image.
        seed: seed of the generated split.
        split_file: JSON file of the generated split: read when it exists, written (atomically)
            when it does not, so a run can be repeated on the same split. ``None``: the split
            is recomputed (deterministic from ``seed``) and not written.
        strict: raise on an unreadable image instead of skipping and reporting it.
        verify: decode every image fully at scan time (default: header check only).
        fractions: train / val / test fractions of the generated split.
        wheel: the wheel the folder names are read on (default Mikels').

    Example:
        >>> import tempfile, os
        >>> from PIL import Image
        >>> from sentiment_metric.recipes import EmotionImageFolder
        >>> root = tempfile.mkdtemp()
        >>> for emo in ["sad", "Amusement"]:
        ...     os.makedirs(os.path.join(root, emo))
        ...     Image.new("RGB", (8, 8)).save(os.path.join(root, emo, "x.jpg"))
        >>> ds = EmotionImageFolder(root)
        >>> ds.classes, ds.targets
        (['amusement', 'sadness'], [0, 1])
    """

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
        self.root = _check_dir(root)
        self.seed = seed
        self.split_file = None if split_file is None else Path(split_file)
        folders = _emotion_folders(self.root, self.wheel)
        classes = sorted(folders)
        self._set_classes(classes)
        items = _folder_items(folders, classes)
        chosen, missing = self._select_split(
            items, self.split, seed, split_file, fractions, self.root
        )
        self._finish(chosen, classes, type(self).__name__, missing)

    def extra_repr(self) -> str:
        return f"root={str(self.root)!r}"


# -- FI ------------------------------------------------------------------------------------


_LIST_LINE = re.compile(r"^(.*?)[\s,;]+(\S+)\s*$")


class FI(_SplittableMixin):
    """FI (Flickr & Instagram, You et al. 2016; 23,308 images, 8 Mikels emotions).

    The layouts it circulates in, detected in this order:

    1. ``list_file=`` (or ``root`` itself a file): lines ``path label`` (whitespace or comma
       separated; blank lines and ``#`` comments ignored), for the whole set; the split is then
       generated as in layout 4.
    2. ``root/train/<emotion>/``, ``root/val/<emotion>/``, ``root/test/<emotion>/``: the given
       split (``"all"`` = their union).
    3. ``root/train.txt``, ``root/val.txt``, ``root/test.txt``: list files per split.
    4. ``root/<emotion>/``: one folder per emotion (FI as distributed); ``split="train"``,
       ``"val"`` or ``"test"`` is a stratified 80/5/15 split generated from ``seed``
       (:func:`stratified_split`), written to ``split_file`` when given and reused from it
       when it exists.

    In a list file, ``path`` is absolute, relative to ``root``, or relative to the list file's
    folder; ``label`` is an emotion name (aliases accepted) or an integer index into
    ``label_names`` (default: Mikels' 8 emotions sorted alphabetically, FI's folder order
    ``amusement, anger, awe, contentment, disgust, excitement, fear, sadness``).

    Labels index ``classes``: the canonical emotion names sorted alphabetically (across all
    splits, so train/val/test share one label order), or ``label_names`` in their own order
    when integer labels are used.

    Args:
        root: the FI folder (or a list file).
        split: ``"train"`` (default), ``"val"``, ``"test"`` or ``"all"``.
        transform: applied to the RGB PIL image.
        seed: seed of a generated split.
        split_file: JSON file of the generated split (layouts 1 and 4): read when it exists,
            written when it does not. ``None``: recomputed from ``seed``, not written. The
            trainer puts it next to the run.
        strict: raise on an unreadable image instead of skipping and reporting it.
        verify: decode every image fully at scan time (default: header check only).
        list_file: a list file of the whole set (layout 1).
        label_names: names of the integer labels of list files.
        fractions: train / val / test fractions of a generated split.
        wheel: the wheel the names are read on (default Mikels').

    Example:
        >>> import tempfile, os
        >>> from PIL import Image
        >>> from sentiment_metric.recipes import FI
        >>> root = tempfile.mkdtemp()
        >>> for emo in ["amusement", "fear"]:
        ...     os.makedirs(os.path.join(root, emo))
        ...     for i in range(20):
        ...         Image.new("RGB", (8, 8)).save(os.path.join(root, emo, f"{i}.jpg"))
        >>> [len(FI(root, split=s, seed=0)) for s in ("train", "val", "test", "all")]
        [32, 2, 6, 40]
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "train",
        transform: Transform | None = None,
        seed: int = 0,
        split_file: str | os.PathLike[str] | None = None,
        strict: bool = False,
        verify: bool = False,
        list_file: str | os.PathLike[str] | None = None,
        label_names: Sequence[str] | None = None,
        fractions: Sequence[float] = DEFAULT_FRACTIONS,
        wheel: EmotionWheel | None = None,
    ) -> None:
        super().__init__(transform=transform, strict=strict, verify=verify, wheel=wheel)
        self.split = check_choice(split, SPLITS, "split")
        self.seed = seed
        self.split_file = None if split_file is None else Path(split_file)
        root_path = _check_root(root)
        if list_file is None and root_path.is_file():
            list_file, root_path = root_path, root_path.parent
        self.root = root_path
        if label_names is None:
            label_names = sorted(self.wheel.emotions)
        self.label_names = [_canonical(n, self.wheel, "label_names") for n in label_names]
        missing: list[tuple[str, str]] = []
        split_dirs = {s: root_path / s for s in ("train", "val", "test")}
        list_files = {s: root_path / f"{s}.txt" for s in ("train", "val", "test")}
        if list_file is not None:
            self.layout = "list"
            lf = _check_root(list_file, "list_file")
            items, classes, missing = self._read_lists([lf])[0]
            self._set_classes(classes)
            chosen, gone = self._select_split(
                items, self.split, seed, split_file, fractions, root_path
            )
            missing += gone
        elif any(d.is_dir() for d in split_dirs.values()):
            self.layout = "split_folders"
            present = {s: d for s, d in split_dirs.items() if d.is_dir()}
            wanted = list(present) if self.split == "all" else [self.split]
            if self.split != "all" and self.split not in present:
                raise SentimentMetricError(
                    f"split {self.split!r}: folder {str(split_dirs[self.split])!r} does not "
                    f"exist (found {', '.join(sorted(present))} under {str(root_path)!r})"
                )
            per_split = {s: _emotion_folders(d, self.wheel) for s, d in present.items()}
            classes = sorted({e for f in per_split.values() for e in f})
            chosen = []
            for s in wanted:
                chosen.extend(_folder_items(per_split[s], classes))
        elif any(f.is_file() for f in list_files.values()):
            self.layout = "split_lists"
            present_l = [f for f in list_files.values() if f.is_file()]
            if self.split != "all" and not list_files[self.split].is_file():
                raise SentimentMetricError(
                    f"split {self.split!r}: list file {str(list_files[self.split])!r} does "
                    f"not exist (found {', '.join(p.name for p in present_l)})"
                )
            parsed = self._read_lists(present_l)
            classes = parsed[0][1]
            chosen = []
            for f, (items, _, gone) in zip(present_l, parsed):
                if self.split == "all" or f == list_files[self.split]:
                    chosen.extend(items)
                    missing.extend(gone)
        else:
            self.layout = "emotion_folders"
            folders = _emotion_folders(root_path, self.wheel)
            classes = sorted(folders)
            self._set_classes(classes)
            items = _folder_items(folders, classes)
            chosen, missing = self._select_split(
                items, self.split, seed, split_file, fractions, root_path
            )
        self._finish(chosen, classes, type(self).__name__, missing)

    def _read_lists(
        self, files: Sequence[Path]
    ) -> list[tuple[list[tuple[str, int]], list[str], list[tuple[str, str]]]]:
        """Parse list files with one shared class list: per file (items, classes, missing)."""
        raw: list[list[tuple[str, str | int, str]]] = []
        uses_index = False
        for lf in files:
            rows: list[tuple[str, str | int, str]] = []
            with open(lf, encoding="utf-8") as f:
                for n, line in enumerate(f, 1):
                    line = line.strip()
                    if not line or line.startswith("#"):
                        continue
                    m = _LIST_LINE.match(line)
                    if m is None or not m.group(1):
                        raise SentimentMetricError(
                            f"list file {str(lf)!r} line {n}: expected 'path label', got {line!r}"
                        )
                    path_s, lab_s = m.group(1).strip(), m.group(2)
                    where = f"list file {str(lf)!r} line {n}"
                    lab: str | int
                    if re.fullmatch(r"[+-]?\d+", lab_s):
                        lab = int(lab_s)
                        uses_index = True
                        if not 0 <= lab < len(self.label_names):
                            raise SentimentMetricError(
                                f"{where}: label {lab} is out of range: integer labels index "
                                f"label_names ({len(self.label_names)} names: "
                                f"{', '.join(self.label_names)})"
                            )
                        lab = self.label_names[lab]
                    else:
                        lab = _canonical(lab_s, self.wheel, where)
                    p = Path(path_s)
                    if not p.is_absolute():
                        p = self.root / p if (self.root / p).exists() else lf.parent / p
                    rows.append((str(p), lab, where))
            if not rows:
                raise SentimentMetricError(f"list file {str(lf)!r} lists no images")
            raw.append(rows)
        names = {str(lab) for rows in raw for _, lab, _ in rows}
        if uses_index:
            classes = list(self.label_names)
            unknown = names - set(classes)
            if unknown:
                raise SentimentMetricError(
                    f"list files name emotions {sorted(unknown)} that are not in label_names "
                    f"{classes}"
                )
        else:
            classes = sorted(names)
        index = {c: i for i, c in enumerate(classes)}
        out: list[tuple[list[tuple[str, int]], list[str], list[tuple[str, str]]]] = []
        for rows in raw:
            items = [(p, index[str(lab)]) for p, lab, _ in rows]
            out.append((items, classes, []))
        return out

    def extra_repr(self) -> str:
        return f"layout={self.layout!r}, root={str(self.root)!r}"


# -- EmoSet --------------------------------------------------------------------------------


class EmoSet(EmotionImageDataset):
    """EmoSet-118K (Yang et al., ICCV 2023): ``image/<emotion>/*.jpg`` with split files.

    ``root/train.json``, ``root/val.json`` and ``root/test.json`` each hold a list of entries
    ``[emotion, id, image path, annotation path]`` with paths relative to ``root``.

    ``classes`` follows **EmoSet's own order** (:data:`EMOSET_CLASSES`: amusement, awe,
    contentment, excitement, anger, disgust, fear, sadness), read from ``root/info.json``'s
    ``emotion.label2idx`` when that file is there, so label indices match checkpoints trained
    with the public EmoSet code. It is not the wheel order, and it does not need to be: the
    losses and metrics read the classes by name (``MIKELS_WHEEL.relations(ds.classes)``).

    Args:
        root: the EmoSet folder.
        split: ``"train"`` (default), ``"val"``, ``"test"`` or ``"all"``.
        transform: applied to the RGB PIL image.
        strict: raise on an unreadable image instead of skipping and reporting it.
        verify: decode every image fully at scan time (default: header check only).
        wheel: the wheel the names are read on (default Mikels').

    ``ds.ids`` holds each sample's EmoSet id and ``ds.annotations`` its annotation path.

    Example:
        >>> import tempfile, os, json
        >>> from PIL import Image
        >>> from sentiment_metric.recipes import EmoSet
        >>> root = tempfile.mkdtemp()
        >>> os.makedirs(os.path.join(root, "image", "awe"))
        >>> Image.new("RGB", (8, 8)).save(os.path.join(root, "image", "awe", "awe_1.jpg"))
        >>> entry = ["awe", "awe_1", "image/awe/awe_1.jpg", "annotation/awe/awe_1.json"]
        >>> with open(os.path.join(root, "train.json"), "w") as f:
        ...     json.dump([entry], f)
        >>> ds = EmoSet(root, split="train")
        >>> ds.classes[:4], ds.targets, ds.ids
        (['amusement', 'awe', 'contentment', 'excitement'], [1], ['awe_1'])
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "train",
        transform: Transform | None = None,
        strict: bool = False,
        verify: bool = False,
        wheel: EmotionWheel | None = None,
    ) -> None:
        super().__init__(transform=transform, strict=strict, verify=verify, wheel=wheel)
        self.split = check_choice(split, SPLITS, "split")
        self.root = _check_dir(root)
        classes = self._read_classes()
        self._set_classes(classes)
        index = {c: i for i, c in enumerate(self.classes)}
        parts = ("train", "val", "test") if self.split == "all" else (self.split,)
        items: list[tuple[str, int]] = []
        ids: dict[str, str] = {}
        annotations: dict[str, str] = {}
        for part in parts:
            jf = self.root / f"{part}.json"
            if not jf.is_file():
                raise SentimentMetricError(
                    f"EmoSet split file {str(jf)!r} does not exist (expected train.json, "
                    f"val.json and test.json in {str(self.root)!r})"
                )
            try:
                with open(jf, encoding="utf-8") as f:
                    entries = json.load(f)
            except (OSError, ValueError) as err:
                raise SentimentMetricError(f"cannot read {str(jf)!r}: {err}") from None
            if not isinstance(entries, list):
                raise SentimentMetricError(
                    f"{str(jf)!r} must hold a JSON list of [emotion, id, image path, "
                    f"annotation path] entries, got {type(entries).__name__}"
                )
            for k, e in enumerate(entries):
                if not (isinstance(e, (list, tuple)) and len(e) >= 3):
                    raise SentimentMetricError(
                        f"{str(jf)!r} entry {k}: expected [emotion, id, image path, "
                        f"annotation path], got {e!r}"
                    )
                emo = _canonical(str(e[0]), self.wheel, f"{str(jf)!r} entry {k}")
                if emo not in index:
                    raise SentimentMetricError(
                        f"{str(jf)!r} entry {k}: emotion {emo!r} is not one of the classes "
                        f"{self.classes}"
                    )
                path = str(self.root / str(e[2]))
                items.append((path, index[emo]))
                ids[path] = str(e[1])
                annotations[path] = str(self.root / str(e[3])) if len(e) > 3 else ""
        self._finish(items, self.classes, f"EmoSet({self.split!r})")
        self.ids: list[str] = [ids[p] for p, _ in self.samples]
        self.annotations: list[str] = [annotations[p] for p, _ in self.samples]

    def _read_classes(self) -> list[str]:
        info = self.root / "info.json"
        if not info.is_file():
            return list(EMOSET_CLASSES)
        try:
            with open(info, encoding="utf-8") as f:
                label2idx = json.load(f)["emotion"]["label2idx"]
            return [str(k) for k, _ in sorted(label2idx.items(), key=lambda kv: int(kv[1]))]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            raise SentimentMetricError(
                f"{str(info)!r} has no usable emotion.label2idx mapping: {err}"
            ) from None

    def extra_repr(self) -> str:
        return f"root={str(self.root)!r}"


# -- ArtPhoto ------------------------------------------------------------------------------


_PREFIX = re.compile(r"^([A-Za-z]+)")


class ArtPhoto(_SplittableMixin):
    """ArtPhoto (Machajdik & Hanbury 2010): the label is the file-name prefix.

    Every image under ``root`` (recursively) is named ``<emotion>_<anything>.<ext>``: the
    leading letters are read on the wheel, so ``sad_12.jpg`` is sadness, ``content_3.jpg``
    contentment and ``amusement_12.jpg`` amusement. A prefix unknown to the wheel raises and
    lists the known names. Labels index ``classes``, the canonical names found, sorted.

    Args:
        root: the folder of images.
        split: ``"all"`` (default; ArtPhoto has no official split) or ``"train"``/``"val"``/
            ``"test"`` of a stratified split generated from ``seed``.
        transform: applied to the RGB PIL image.
        seed: seed of the generated split.
        split_file: JSON file of the generated split (read when it exists, else written).
        strict: raise on an unreadable image instead of skipping and reporting it.
        verify: decode every image fully at scan time (default: header check only).
        fractions: train / val / test fractions of the generated split.
        wheel: the wheel the prefixes are read on (default Mikels').

    Example:
        >>> import tempfile, os
        >>> from PIL import Image
        >>> from sentiment_metric.recipes import ArtPhoto
        >>> root = tempfile.mkdtemp()
        >>> for name in ["sad_1.jpg", "amusement_12.jpg", "content_3.png"]:
        ...     Image.new("RGB", (8, 8)).save(os.path.join(root, name))
        >>> ds = ArtPhoto(root)
        >>> ds.classes, sorted(ds.targets)
        (['amusement', 'contentment', 'sadness'], [0, 1, 2])
    """

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
        self.root = _check_dir(root)
        files = _image_files(self.root)
        if not files:
            raise SentimentMetricError(f"ArtPhoto: no image files under {str(self.root)!r}")
        named: list[tuple[str, str]] = []
        for p in files:
            m = _PREFIX.match(p.name)
            if m is None:
                raise SentimentMetricError(
                    f"ArtPhoto: cannot read an emotion prefix from file name {str(p)!r} "
                    "(expected '<emotion>_<n>.jpg', e.g. 'sad_12.jpg')"
                )
            named.append((str(p), _canonical(m.group(1), self.wheel, f"file {str(p)!r}")))
        classes = sorted({e for _, e in named})
        self._set_classes(classes)
        index = {c: i for i, c in enumerate(classes)}
        items = [(p, index[e]) for p, e in named]
        chosen, missing = self._select_split(
            items, self.split, seed, split_file, fractions, self.root
        )
        self._finish(chosen, classes, "ArtPhoto", missing)

    def extra_repr(self) -> str:
        return f"root={str(self.root)!r}"


# -- Abstract paintings ----------------------------------------------------------------------


def _clean_cell(s: str) -> str:
    return s.strip().strip("'\"").strip()


class Abstract(_SplittableMixin):
    """Abstract paintings (Machajdik & Hanbury 2010): labels from a CSV of votes per emotion.

    The CSV (``ABSTRACT_groundTruth.csv`` style) has a header row, then one row per painting:
    the file name in the first column, then one column of vote counts per emotion (header
    names read on the wheel, aliases like ``Content`` and ``Sad`` accepted; quotes around
    cells and ``,``/``;``/tab delimiters accepted). The label is the emotion with the most
    votes. Paintings whose top vote is shared by several emotions (**ties**) are dropped and
    counted in ``ds.num_ties``; paintings with no votes at all are dropped too. Both are
    listed in ``ds.dropped`` as ``(file name, reason)`` and reported in a warning. Images are
    found under ``root`` by file name (recursively).

    Labels index ``classes``: the CSV's emotion columns, canonical names sorted.

    Args:
        root: the folder holding the paintings (anywhere below it) and usually the CSV.
        csv: the CSV file; default ``root/ABSTRACT_groundTruth.csv``, else the only ``.csv``
            in ``root``.
        split: ``"all"`` (default) or ``"train"``/``"val"``/``"test"`` of a generated
            stratified split.
        transform: applied to the RGB PIL image.
        seed: seed of the generated split.
        split_file: JSON file of the generated split (read when it exists, else written).
        strict: raise on an unreadable or missing image instead of skipping and reporting it.
        verify: decode every image fully at scan time (default: header check only).
        fractions: train / val / test fractions of the generated split.
        wheel: the wheel the column names are read on (default Mikels').

    Example:
        >>> import tempfile, os
        >>> from PIL import Image
        >>> from sentiment_metric.recipes import Abstract
        >>> root = tempfile.mkdtemp()
        >>> for i in (1, 2, 3):
        ...     Image.new("RGB", (8, 8)).save(os.path.join(root, f"abstract_{i}.jpg"))
        >>> rows = ["'Filename','Awe','Sad','Fear'", "'abstract_1.jpg',3,1,0",
        ...         "'abstract_2.jpg',0,2,5", "'abstract_3.jpg',2,2,0"]
        >>> with open(os.path.join(root, "ABSTRACT_groundTruth.csv"), "w") as f:
        ...     _ = f.write("\\n".join(rows))
        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     ds = Abstract(root)
        >>> ds.classes, ds.targets, ds.num_ties
        (['awe', 'fear', 'sadness'], [0, 1], 1)
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        csv: str | os.PathLike[str] | None = None,
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
        self.root = _check_dir(root)
        self.csv = self._find_csv(csv)
        header, rows = self._read_csv(self.csv)
        emotions = [
            _canonical(h, self.wheel, f"CSV {str(self.csv)!r} column {h!r}") for h in header[1:]
        ]
        if len(set(emotions)) != len(emotions):
            raise SentimentMetricError(
                f"CSV {str(self.csv)!r}: two columns name the same emotion: {header[1:]}"
            )
        classes = sorted(emotions)
        self._set_classes(classes)
        index = {c: i for i, c in enumerate(classes)}
        by_name: dict[str, Path] = {}
        for p in _image_files(self.root):
            by_name.setdefault(p.name, p)
        self.dropped: list[tuple[str, str]] = []
        self.num_ties = 0
        items: list[tuple[str, int]] = []
        missing: list[tuple[str, str]] = []
        for n, row in rows:
            name = row[0]
            try:
                votes = [float(v) if v else 0.0 for v in row[1:]]
            except ValueError:
                raise SentimentMetricError(
                    f"CSV {str(self.csv)!r} line {n}: vote counts must be numbers, got {row[1:]}"
                ) from None
            if len(votes) != len(emotions):
                raise SentimentMetricError(
                    f"CSV {str(self.csv)!r} line {n}: {len(votes)} vote columns, header has "
                    f"{len(emotions)}"
                )
            top = max(votes)
            winners = [e for e, v in zip(emotions, votes) if v == top]
            if top <= 0:
                self.dropped.append((name, "no votes"))
                continue
            if len(winners) > 1:
                self.num_ties += 1
                self.dropped.append((name, f"tie between {', '.join(winners)} ({top:g} votes)"))
                continue
            path = by_name.get(Path(name).name)
            if path is None:
                missing.append((str(self.root / name), "listed in the CSV, not found"))
                continue
            items.append((str(path), index[winners[0]]))
        if self.dropped:
            warnings.warn(
                f"Abstract: dropped {len(self.dropped)} painting(s) without a majority label "
                f"({self.num_ties} tie(s)); listed in .dropped",
                stacklevel=2,
            )
        chosen, gone = self._select_split(
            sorted(items), self.split, seed, split_file, fractions, self.root
        )
        self._finish(chosen, classes, "Abstract", missing + gone)

    def _find_csv(self, csv_arg: str | os.PathLike[str] | None) -> Path:
        if csv_arg is not None:
            p = Path(csv_arg)
            if not p.is_absolute() and not p.exists():
                p = self.root / p
            if not p.is_file():
                raise SentimentMetricError(f"csv {str(csv_arg)!r} does not exist")
            return p
        default = self.root / "ABSTRACT_groundTruth.csv"
        if default.is_file():
            return default
        found = sorted(self.root.glob("*.csv"))
        if len(found) == 1:
            return found[0]
        raise SentimentMetricError(
            f"csv not given and {str(default)!r} does not exist"
            + (f"; several CSV files in root: {[f.name for f in found]}" if found else "")
            + "; pass csv=<the votes file>"
        )

    @staticmethod
    def _read_csv(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
        with open(path, encoding="utf-8-sig", newline="") as f:
            text = f.read()
        try:
            dialect: Any = csv.Sniffer().sniff(text.splitlines()[0], delimiters=",;\t")
        except (csv.Error, IndexError):
            dialect = csv.excel
        lines = [
            (n, [_clean_cell(c) for c in row])
            for n, row in enumerate(csv.reader(text.splitlines(), dialect), 1)
            if any(c.strip() for c in row)
        ]
        if len(lines) < 2 or len(lines[0][1]) < 2:
            raise SentimentMetricError(
                f"CSV {str(path)!r} must have a header (file name, then one column per "
                "emotion) and at least one row of votes"
            )
        return lines[0][1], lines[1:]

    def extra_repr(self) -> str:
        return f"root={str(self.root)!r}, num_ties={self.num_ties}"


# -- registry ------------------------------------------------------------------------------


DATASETS: dict[str, Callable[..., Dataset]] = {
    "textures": AffectiveTextures,
    "fi": FI,
    "emoset": EmoSet,
    "artphoto": ArtPhoto,
    "abstract": Abstract,
    "folder": EmotionImageFolder,
}
"""Dataset name -> its class (what ``build_dataset`` and the CLI accept)."""


def build_dataset(
    name: str,
    root: str | os.PathLike[str] | None = None,
    split: str = "train",
    transform: Transform | None = None,
    strict: bool = False,
    **kw: Any,
) -> Dataset:
    """Build a dataset by name: the factory behind the ``sentiment-metric`` command.

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
    check_choice(name, tuple(DATASETS), "name")
    check_choice(split, SPLITS, "split")
    if name == "textures":
        if root is not None:
            raise SentimentMetricError(
                "root must be None for the generated 'textures' dataset (it needs no files), "
                f"got {str(root)!r}"
            )
        kw.pop("verify", None)  # nothing to read: strict and verify have no effect
        return AffectiveTextures(split=split, transform=transform, **kw)
    _check_root(root)
    return DATASETS[name](root, split=split, transform=transform, strict=strict, **kw)
