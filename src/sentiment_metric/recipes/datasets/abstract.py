"""Abstract paintings (Machajdik & Hanbury 2010): labels from a CSV of votes."""

from __future__ import annotations

import csv
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ... import EmotionWheel, SentimentMetricError
from .base import Transform, canonical_emotion, image_files
from .splits import DEFAULT_FRACTIONS, SplittableDataset

__all__ = ["Abstract"]


def _clean_cell(s: str) -> str:
    return s.strip().strip("'\"").strip()


class Abstract(SplittableDataset):
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
        self.csv_arg = csv
        self.dropped: list[tuple[str, str]] = []
        self.num_ties = 0
        super().__init__(root, split, transform, seed, split_file, strict, verify, fractions, wheel)

    def _items(self) -> tuple[list[tuple[str, int]], list[str], list[tuple[str, str]]]:
        self.csv = self._find_csv(self.csv_arg)
        header, rows = self._read_csv(self.csv)
        emotions = [
            canonical_emotion(h, self.wheel, f"CSV {str(self.csv)!r} column {h!r}")
            for h in header[1:]
        ]
        if len(set(emotions)) != len(emotions):
            raise SentimentMetricError(
                f"CSV {str(self.csv)!r}: two columns name the same emotion: {header[1:]}"
            )
        classes = sorted(emotions)
        index = {c: i for i, c in enumerate(classes)}
        by_name: dict[str, Path] = {}
        for p in image_files(self.root):
            by_name.setdefault(p.name, p)
        items: list[tuple[str, int]] = []
        missing: list[tuple[str, str]] = []
        for n, row in rows:
            winner = self._majority(n, row, emotions)
            if winner is None:
                continue
            path = by_name.get(Path(row[0]).name)
            if path is None:
                missing.append((str(self.root / row[0]), "listed in the CSV, not found"))
                continue
            items.append((str(path), index[winner]))
        if self.dropped:
            warnings.warn(
                f"Abstract: dropped {len(self.dropped)} painting(s) without a majority label "
                f"({self.num_ties} tie(s)); listed in .dropped",
                stacklevel=4,
            )
        return sorted(items), classes, missing

    def _majority(self, n: int, row: list[str], emotions: list[str]) -> str | None:
        """The emotion with the most votes in CSV line ``n``; ``None`` (and the painting
        listed in ``.dropped``) for a tie or no votes."""
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
            self.dropped.append((row[0], "no votes"))
            return None
        if len(winners) > 1:
            self.num_ties += 1
            self.dropped.append((row[0], f"tie between {', '.join(winners)} ({top:g} votes)"))
            return None
        return winners[0]

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
