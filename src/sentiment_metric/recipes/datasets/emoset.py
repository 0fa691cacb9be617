"""EmoSet-118K (Yang et al., ICCV 2023): ``image/<emotion>/*.jpg`` with split files."""

from __future__ import annotations

import json
import os

from ... import EmotionWheel, SentimentMetricError
from ..._checks import check_choice
from .base import SPLITS, EmotionImageDataset, Transform, canonical_emotion, check_dir

__all__ = ["EMOSET_CLASSES", "EmoSet"]

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
        self.root = check_dir(root)
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
                emo = canonical_emotion(str(e[0]), self.wheel, f"{str(jf)!r} entry {k}")
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
