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
  reported the same way (a warning naming the path; added to ``ds.skipped``) and, for
  *training* only, replaced by the next readable image *of the same class*, so a batch keeps
  its size and its label balance; with ``strict=True`` it raises. With
  ``ds.substitute_unreadable = False`` (what evaluation, embedding export and retrieval use:
  an embedding must belong to its file) ``ds[i]`` raises :class:`UnreadableImageError`
  instead, and :func:`~sentiment_metric.recipes.evaluate.compute_embeddings` leaves the
  image out and reports it. (In :class:`~torch.utils.data.DataLoader` workers the
  warning is printed by the worker and ``ds.skipped`` of the main process does not change: use
  ``verify=True`` to find every bad file before training.)

A missing folder, an emotion folder or label unknown to the wheel, or an empty split raise
:class:`~sentiment_metric.SentimentMetricError` with a message that names the path and, for
emotions, lists the known names and aliases.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from PIL import Image
from torch.utils.data import Dataset

from ... import MIKELS_WHEEL, EmotionWheel, SentimentMetricError

__all__ = [
    "IMG_EXTENSIONS",
    "SPLITS",
    "EmotionImageDataset",
    "UnreadableImageError",
    "canonical_emotion",
    "check_dir",
    "check_root",
    "emotion_folders",
    "image_files",
    "set_substitution",
    "unique_files",
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

Transform = Callable[[Any], Any]


class UnreadableImageError(SentimentMetricError):
    """An image that could not be decoded at load time (``path`` names it); raised by
    ``ds[i]`` when the dataset may not substitute another image."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"unreadable image {path!r} ({reason})")
        self.path = path
        self.reason = reason


def set_substitution(dataset: Any, allowed: bool) -> bool:
    """Allow or forbid substituting unreadable images in ``dataset`` (or the base dataset of
    a subset); returns the previous setting (``True`` for datasets without the switch)."""
    base = getattr(dataset, "base", None) or getattr(dataset, "dataset", None) or dataset
    before = bool(getattr(base, "substitute_unreadable", True))
    if isinstance(base, EmotionImageDataset):
        base.substitute_unreadable = allowed
    return before


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMG_EXTENSIONS) and not name.startswith(".")


def image_files(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursive, hidden entries skipped), sorted, each once.

    Symbolic links are followed, but a linked folder already walked or above ``folder`` (a
    loop such as ``ln -s .. up``) is not entered again, and a file reached by several paths
    is listed once (its first path in sorted order): no sample is counted twice or read
    under another folder's label.
    """
    seen = {os.path.realpath(folder)}
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        here = os.path.join(os.path.realpath(dirpath), "")
        keep = []
        for d in sorted(d for d in dirnames if not d.startswith(".")):
            real = os.path.realpath(os.path.join(dirpath, d))
            if real not in seen and not here.startswith(os.path.join(real, "")):
                seen.add(real)  # neither walked nor above this folder (a loop)
                keep.append(d)
        dirnames[:] = keep
        out.extend(Path(dirpath) / f for f in filenames if _is_image(f))
    return unique_files(sorted(out))


def unique_files(paths: list[Path]) -> list[Path]:
    """``paths`` without the repeats of a file (the same real path), first kept, in order."""
    seen: set[str] = set()
    out = []
    for p in paths:
        real = os.path.realpath(p)
        if real not in seen:
            seen.add(real)
            out.append(p)
    return out


def canonical_emotion(name: str, wheel: EmotionWheel, where: str) -> str:
    """The wheel's spelling of ``name``; a clear error naming ``where`` it came from."""
    try:
        return wheel.canonical(name)
    except SentimentMetricError as err:
        raise SentimentMetricError(f"{where}: {err}") from None


def check_root(root: str | os.PathLike[str] | None, what: str = "root") -> Path:
    """``root`` as a path that exists; a clear error naming ``what`` otherwise."""
    if root is None:
        raise SentimentMetricError(f"{what} is required: the folder that holds the dataset")
    path = Path(root).expanduser()
    if not path.exists():
        raise SentimentMetricError(f"{what} {str(path)!r} does not exist")
    return path


def check_dir(root: str | os.PathLike[str] | None, what: str = "root") -> Path:
    """``root`` as an existing folder; a clear error naming ``what`` otherwise."""
    path = check_root(root, what)
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


def emotion_folders(folder: Path, wheel: EmotionWheel) -> dict[str, Path]:
    """Canonical emotion -> its sub-folder of ``folder``; errors on unknown or duplicate."""
    found: dict[str, Path] = {}
    subdirs = sorted(
        p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "__"))
    )
    for sub in subdirs:
        emo = canonical_emotion(sub.name, wheel, f"emotion folder {str(sub)!r}")
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

    needs_root: ClassVar[bool] = True
    """Built from files under a ``root`` folder (what the registry's factory passes)."""
    generated_split: ClassVar[bool] = False
    """Takes ``seed=`` and ``split_file=``: its train/val/test split is generated."""
    substitute_unreadable: bool = True
    """Replace an image that fails to decode at load by a readable one of its class (training);
    ``False`` raises :class:`UnreadableImageError` instead (evaluation, export, retrieval)."""

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
        canon = [canonical_emotion(str(c), self.wheel, "class name") for c in classes]
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
            if not self.substitute_unreadable:
                if all(p != path for p, _ in self.skipped):
                    self.skipped.append((path, reason))
                raise UnreadableImageError(path, reason) from err
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
