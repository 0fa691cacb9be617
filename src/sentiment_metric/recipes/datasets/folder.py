"""Any ImageFolder of emotions: ``root/<emotion>/**/*.jpg``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .base import emotion_folders, image_files
from .splits import SplittableDataset

__all__ = ["EmotionImageFolder", "folder_items"]


def folder_items(folders: dict[str, Path], classes: Sequence[str]) -> list[tuple[str, int]]:
    """Every image of ``folders`` (emotion -> folder) labelled by its index in ``classes``."""
    index = {c: i for i, c in enumerate(classes)}
    items: list[tuple[str, int]] = []
    for emo, folder in folders.items():
        items.extend((str(p), index[emo]) for p in image_files(folder))
    return sorted(items)


class EmotionImageFolder(SplittableDataset):
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

    def _items(self) -> tuple[list[tuple[str, int]], list[str], list[tuple[str, str]]]:
        folders = emotion_folders(self.root, self.wheel)
        classes = sorted(folders)
        return folder_items(folders, classes), classes, []

    def extra_repr(self) -> str:
        return f"root={str(self.root)!r}"
