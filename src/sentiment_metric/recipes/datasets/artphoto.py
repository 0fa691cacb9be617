"""ArtPhoto (Machajdik & Hanbury 2010): the label is the file-name prefix."""

from __future__ import annotations

import re

from ... import SentimentMetricError
from .base import canonical_emotion, image_files
from .splits import SplittableDataset

__all__ = ["ArtPhoto"]

_PREFIX = re.compile(r"^([A-Za-z]+)")


class ArtPhoto(SplittableDataset):
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

    def _items(self) -> tuple[list[tuple[str, int]], list[str], list[tuple[str, str]]]:
        files = image_files(self.root)
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
            named.append((str(p), canonical_emotion(m.group(1), self.wheel, f"file {str(p)!r}")))
        classes = sorted({e for _, e in named})
        index = {c: i for i, c in enumerate(classes)}
        return [(p, index[e]) for p, e in named], classes, []

    def extra_repr(self) -> str:
        return f"root={str(self.root)!r}"
