"""FI (Flickr & Instagram, You et al. 2016), in the layouts it circulates in."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from ... import EmotionWheel, SentimentMetricError
from .base import Transform, canonical_emotion, check_root, emotion_folders
from .folder import EmotionImageFolder, folder_items
from .splits import DEFAULT_FRACTIONS

__all__ = ["FI"]

_LIST_LINE = re.compile(r"^(.*?)[\s,;]+(\S+)\s*$")


class FI(EmotionImageFolder):
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
        root_path = check_root(root)
        if list_file is None and root_path.is_file():
            list_file, root_path = root_path, root_path.parent
        self.list_file = list_file
        self.label_names_arg = label_names
        super().__init__(
            root_path, split, transform, seed, split_file, strict, verify, fractions, wheel
        )

    def _scan(self) -> tuple[list[tuple[str, int]], list[str], list[tuple[str, str]]]:
        """Detect the layout; the chosen split's items, the classes and the missing files."""
        names = self.label_names_arg
        names = sorted(self.wheel.emotions) if names is None else names
        self.label_names = [canonical_emotion(n, self.wheel, "label_names") for n in names]
        split_dirs = {s: self.root / s for s in ("train", "val", "test")}
        list_files = {s: self.root / f"{s}.txt" for s in ("train", "val", "test")}
        if self.list_file is not None:
            self.layout = "list"
            items, classes = self._read_lists([check_root(self.list_file, "list_file")])[0]
            self._set_classes(classes)
            chosen, missing = self._select_split(items)
            return chosen, classes, missing
        if any(d.is_dir() for d in split_dirs.values()):
            self.layout = "split_folders"
            return (*self._split_folders(split_dirs), [])
        if any(f.is_file() for f in list_files.values()):
            self.layout = "split_lists"
            return (*self._split_lists(list_files), [])
        self.layout = "emotion_folders"
        return super()._scan()

    def _split_folders(
        self, split_dirs: dict[str, Path]
    ) -> tuple[list[tuple[str, int]], list[str]]:
        """Layout 2: ``root/<split>/<emotion>/``."""
        present = {s: d for s, d in split_dirs.items() if d.is_dir()}
        if self.split != "all" and self.split not in present:
            raise SentimentMetricError(
                f"split {self.split!r}: folder {str(split_dirs[self.split])!r} does not "
                f"exist (found {', '.join(sorted(present))} under {str(self.root)!r})"
            )
        wanted = list(present) if self.split == "all" else [self.split]
        per_split = {s: emotion_folders(d, self.wheel) for s, d in present.items()}
        classes = sorted({e for f in per_split.values() for e in f})
        chosen: list[tuple[str, int]] = []
        for s in wanted:
            chosen.extend(folder_items(per_split[s], classes))
        return chosen, classes

    def _split_lists(self, list_files: dict[str, Path]) -> tuple[list[tuple[str, int]], list[str]]:
        """Layout 3: ``root/<split>.txt`` list files, one class list shared by all."""
        present = [f for f in list_files.values() if f.is_file()]
        if self.split != "all" and not list_files[self.split].is_file():
            raise SentimentMetricError(
                f"split {self.split!r}: list file {str(list_files[self.split])!r} does "
                f"not exist (found {', '.join(p.name for p in present)})"
            )
        parsed = self._read_lists(present)
        chosen: list[tuple[str, int]] = []
        for f, (items, _) in zip(present, parsed):
            if self.split == "all" or f == list_files[self.split]:
                chosen.extend(items)
        return chosen, parsed[0][1]

    def _read_lists(self, files: Sequence[Path]) -> list[tuple[list[tuple[str, int]], list[str]]]:
        """Parse list files with one shared class list: per file ``(items, classes)``."""
        raw = [self._read_list(lf) for lf in files]
        names = {name for rows in raw for _, name, _ in rows}
        if any(by_index for rows in raw for _, _, by_index in rows):
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
        return [([(p, index[name]) for p, name, _ in rows], classes) for rows in raw]

    def _read_list(self, lf: Path) -> list[tuple[str, str, bool]]:
        """One list file: ``(path, emotion, given as an integer label)`` per line."""
        rows: list[tuple[str, str, bool]] = []
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
                p = Path(m.group(1).strip())
                if not p.is_absolute():
                    p = self.root / p if (self.root / p).exists() else lf.parent / p
                where = f"list file {str(lf)!r} line {n}"
                by_index = re.fullmatch(r"[+-]?\d+", m.group(2)) is not None
                rows.append((str(p), self._list_label(m.group(2), by_index, where), by_index))
        if not rows:
            raise SentimentMetricError(f"list file {str(lf)!r} lists no images")
        return rows

    def _list_label(self, label: str, by_index: bool, where: str) -> str:
        """The emotion a list file's label names: an index into ``label_names`` or a name."""
        if not by_index:
            return canonical_emotion(label, self.wheel, where)
        k = int(label)
        if not 0 <= k < len(self.label_names):
            raise SentimentMetricError(
                f"{where}: label {k} is out of range: integer labels index "
                f"label_names ({len(self.label_names)} names: {', '.join(self.label_names)})"
            )
        return self.label_names[k]

    def extra_repr(self) -> str:
        return f"layout={self.layout!r}, root={str(self.root)!r}"
