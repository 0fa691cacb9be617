"""Emotion wheels and the label relations derived from them.

An :class:`EmotionWheel` lists emotions in circular order and groups them by polarity.
:meth:`EmotionWheel.relations` turns a dataset's own class names (in *its* label order) into a
:class:`LabelRelations`: the ``(C, C)`` level matrix (0 same emotion, 1 same polarity, 2
opposite polarity) and the wheel-distance matrix ``dis = 1 + steps`` that the losses, miners
and metrics index with integer labels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ._checks import check_class_names, check_group_names, check_groups, check_tensor
from .errors import SentimentMetricError
from .weighting import theta_matrix

__all__ = [
    "MIKELS_WHEEL",
    "PLUTCHIK_WHEEL",
    "EmotionWheel",
    "LabelRelations",
    "resolve_relations",
]


def _norm(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def _name(x: Any, where: str) -> str:
    """``x`` when it is a non-empty string; a clear error naming ``where`` otherwise."""
    if not isinstance(x, str) or not x.strip():
        raise SentimentMetricError(
            f"{where} must hold non-empty strings, got {type(x).__name__} {x!r}"
        )
    return x


class LabelRelations:
    """Pairwise relations between the ``C`` classes of a dataset, in its label order.

    Args:
        level: ``(C, C)`` integer matrix: 0 on the diagonal (same class), 1 for classes of the
            same group (same polarity, "relatives"), 2 for classes of different groups
            ("negatives"). Symmetric.
        dis: ``(C, C)`` distance matrix, ``>= 1``, used for the weighting ``θ = 1 / dis``.
            Default: ``1 + level``.
        class_names: the class names in label order, or ``None``.
        groups: ``(C,)`` group index of each class (its polarity), or ``None`` to read it off
            ``level``.
        group_names: a name per group, or ``None``.

    Most users build this with :meth:`EmotionWheel.relations` or :meth:`from_groups`.

    Example:
        >>> import sentiment_metric as sm
        >>> rel = sm.LabelRelations.from_groups([0, 0, 1], class_names=["cat", "dog", "car"])
        >>> rel.level
        tensor([[0, 1, 2],
                [1, 0, 2],
                [2, 2, 0]])
        >>> rel.dis
        tensor([[1., 2., 3.],
                [2., 1., 3.],
                [3., 3., 1.]])
    """

    def __init__(
        self,
        level: torch.Tensor,
        dis: torch.Tensor | None = None,
        class_names: Sequence[str] | None = None,
        groups: torch.Tensor | Sequence[int] | None = None,
        group_names: Sequence[str] | None = None,
    ) -> None:
        level = check_tensor(level, "level")
        if level.dim() != 2 or level.shape[0] != level.shape[1] or level.shape[0] == 0:
            raise SentimentMetricError(
                f"level must be a non-empty square (C, C) matrix, got shape {tuple(level.shape)}"
            )
        if level.is_floating_point():
            raise SentimentMetricError(f"level must be an integer matrix, got {level.dtype}")
        level = level.to(dtype=torch.int64, device="cpu")
        c = level.shape[0]
        if not bool(((level >= 0) & (level <= 2)).all()):
            raise SentimentMetricError("level entries must be 0, 1 or 2")
        if not torch.equal(level, level.T):
            raise SentimentMetricError("level must be symmetric")
        eye = torch.eye(c, dtype=torch.bool)
        if bool((level[eye] != 0).any()) or bool((level[~eye] == 0).any()):
            raise SentimentMetricError(
                "level must be 0 exactly on the diagonal (each class is its own only 'same')"
            )
        if dis is None:
            dis = 1.0 + level.to(torch.get_default_dtype())
        else:
            dis = check_tensor(dis, "dis")
            if tuple(dis.shape) != (c, c):
                raise SentimentMetricError(
                    f"dis must have shape ({c}, {c}) like level, got {tuple(dis.shape)}"
                )
            dis = dis.detach().to(device="cpu", dtype=torch.get_default_dtype())
            if not bool(torch.isfinite(dis).all()) or bool((dis < 1).any()):
                raise SentimentMetricError("dis must be finite and >= 1 everywhere")
        class_names = check_class_names(class_names, c)
        groups = check_groups(level, groups)
        self.level: torch.Tensor = level
        self.dis: torch.Tensor = dis
        self.class_names: tuple[str, ...] | None = class_names
        self.groups: torch.Tensor = groups
        self.group_names: tuple[str, ...] | None = check_group_names(group_names, groups)

    @classmethod
    def from_groups(
        cls,
        groups: Sequence[int] | torch.Tensor,
        class_names: Sequence[str] | None = None,
        dis: torch.Tensor | None = None,
        group_names: Sequence[str] | None = None,
    ) -> LabelRelations:
        """Any two-level hierarchy: fine classes in coarse groups.

        Args:
            groups: ``(C,)`` the coarse group of each class, in label order.
            class_names: optional names of the ``C`` classes.
            dis: optional ``(C, C)`` distances; default ``1 + level``.
            group_names: optional names of the groups.

        Example:
            >>> import sentiment_metric as sm
            >>> sm.LabelRelations.from_groups([0, 1, 0, 1]).level[0].tolist()
            [0, 2, 1, 2]
        """
        if isinstance(groups, (str, bytes)) or not isinstance(groups, (Sequence, torch.Tensor)):
            raise SentimentMetricError(
                f"groups must be a 1-D sequence of ints (one group index per class), got "
                f"{type(groups).__name__} {groups!r}"
            )
        if isinstance(groups, torch.Tensor):
            if groups.is_floating_point() or groups.dim() != 1:
                raise SentimentMetricError(
                    f"groups must be a 1-D sequence of ints, got a tensor of shape "
                    f"{tuple(groups.shape)} and dtype {groups.dtype}"
                )
            g = groups.to(torch.int64).cpu()
        else:
            if any(isinstance(v, (str, bytes, bool)) for v in groups):
                raise SentimentMetricError(f"groups must hold ints, got {list(groups)!r}")
            try:
                vals = [int(v) for v in groups]
                g = torch.tensor(vals, dtype=torch.int64)
            except (TypeError, ValueError, OverflowError, RuntimeError) as err:
                raise SentimentMetricError(
                    f"groups must be a 1-D sequence of ints, got {groups!r}"
                ) from err
            if any(isinstance(v, float) and not float(v).is_integer() for v in groups):
                raise SentimentMetricError(f"groups must hold ints, got {groups!r}")
        if g.numel() == 0:
            raise SentimentMetricError("groups must name at least one class")
        same_group = g[:, None] == g[None, :]
        level = torch.where(same_group, 1, 2).to(torch.int64)
        level.fill_diagonal_(0)
        _, compact = torch.unique(g, return_inverse=True)
        return cls(level, dis=dis, class_names=class_names, groups=compact, group_names=group_names)

    @property
    def num_classes(self) -> int:
        """``C``, the number of classes."""
        return int(self.level.shape[0])

    def weights(self, weighting: str | torch.Tensor = "inverse_wheel") -> torch.Tensor:
        """The ``(C, C)`` distance weights ``θ`` (torch's default dtype).

        Args:
            weighting: ``"inverse_wheel"`` (``θ = 1 / dis``, the paper), ``"none"`` (all
                ones) or a ``(C, C)`` tensor of positive finite weights; see
                :func:`sentiment_metric.weighting.theta_matrix`, the one rule.
        """
        return theta_matrix(self.dis, weighting)

    def __repr__(self) -> str:
        names = "" if self.class_names is None else f", class_names={list(self.class_names)}"
        return f"LabelRelations(num_classes={self.num_classes}{names})"


class EmotionWheel:
    """Emotions in circular order, grouped by polarity.

    Args:
        emotions: the emotion names in circular order (what :meth:`steps` counts along).
        groups: polarity name -> the emotions it holds; every emotion in exactly one group.
        aliases: extra accepted spellings, alias -> emotion (case-insensitive).
        name: a short name for messages.

    Example:
        >>> import sentiment_metric as sm
        >>> w = sm.MIKELS_WHEEL
        >>> w.polarity("awe"), w.steps("amusement", "anger"), w.dis("excitement", "fear")
        ('positive', 1, 2)
        >>> rel = w.relations(["amusement", "anger", "awe"])
        >>> rel.level.tolist()
        [[0, 2, 1], [2, 0, 2], [1, 2, 0]]
    """

    def __init__(
        self,
        emotions: Sequence[str],
        groups: Mapping[str, Sequence[str]],
        aliases: Mapping[str, str] | None = None,
        name: str = "custom",
    ) -> None:
        if (
            isinstance(emotions, (str, bytes))
            or not isinstance(emotions, Sequence)
            or len(emotions) < 2
        ):
            raise SentimentMetricError(
                f"emotions must be a sequence of at least 2 names, got {emotions!r}"
            )
        normed = [_norm(_name(e, "emotions")) for e in emotions]
        if len(set(normed)) != len(normed):
            raise SentimentMetricError(f"emotions must be distinct, got {list(emotions)}")
        self.emotions: tuple[str, ...] = tuple(normed)
        self.name = str(name)
        index = {e: i for i, e in enumerate(self.emotions)}
        self._index = index
        self._polarity = self._read_groups(groups, list(emotions))
        self.group_names: tuple[str, ...] = tuple(str(g) for g in groups)
        self.aliases: dict[str, str] = self._read_aliases(aliases)

    def _read_groups(self, groups: Any, emotions: list[Any]) -> dict[str, str]:
        """Emotion -> its group name; every emotion in exactly one group."""
        if not isinstance(groups, Mapping):
            raise SentimentMetricError(
                "groups must be a mapping from a polarity name to its emotions, e.g. "
                "{'positive': ['joy', ...], 'negative': [...]}; got "
                f"{type(groups).__name__} {groups!r}"
            )
        polarity_of: dict[str, str] = {}
        for g, members in groups.items():
            g = _name(g, "groups (a group name)")
            if isinstance(members, (str, bytes)) or not isinstance(members, Sequence):
                raise SentimentMetricError(
                    f"groups[{g!r}] must be a sequence of emotion names, got {members!r}"
                )
            for m in members:
                m_n = _norm(_name(m, f"groups[{g!r}]"))
                if m_n not in self._index:
                    raise SentimentMetricError(
                        f"groups[{g!r}] names {m!r}, which is not in emotions {emotions}"
                    )
                if m_n in polarity_of:
                    raise SentimentMetricError(f"emotion {m!r} is in more than one group")
                polarity_of[m_n] = g
        missing = [e for e in self.emotions if e not in polarity_of]
        if missing:
            raise SentimentMetricError(f"emotions {missing} are in no group of groups")
        return polarity_of

    def _read_aliases(self, aliases: Any) -> dict[str, str]:
        """Alias -> emotion; an alias may not be another emotion's name."""
        if aliases is None:
            return {}
        if not isinstance(aliases, Mapping):
            raise SentimentMetricError(
                f"aliases must be a mapping alias -> emotion, got {type(aliases).__name__}"
            )
        out: dict[str, str] = {}
        for alias, target in aliases.items():
            a = _norm(_name(alias, "aliases (an alias)"))
            t = _norm(_name(target, f"aliases[{alias!r}]"))
            if t not in self._index:
                raise SentimentMetricError(f"alias {alias!r} points to unknown emotion {target!r}")
            if a in self._index and a != t:
                raise SentimentMetricError(
                    f"alias {alias!r} -> {target!r} is itself an emotion of the wheel; an "
                    "alias may not rename another emotion"
                )
            if out.get(a, t) != t:
                raise SentimentMetricError(
                    f"alias {alias!r} names both {out[a]!r} and {t!r} (aliases are read "
                    "case-insensitively); give each spelling one emotion"
                )
            out[a] = t
        return out

    def canonical(self, name: str) -> str:
        """The wheel's own spelling of ``name`` (case-insensitive, aliases accepted)."""
        return self.emotions[self.index(name)]

    def index(self, name: str) -> int:
        """Position of ``name`` on the wheel."""
        if not isinstance(name, str):
            raise SentimentMetricError(
                f"emotion names must be strings, got {type(name).__name__} {name!r}"
            )
        key = _norm(name)
        key = self.aliases.get(key, key)
        if key not in self._index:
            alias_txt = ", ".join(f"{a}->{t}" for a, t in sorted(self.aliases.items()))
            raise SentimentMetricError(
                f"unknown emotion {name!r} on wheel {self.name!r}\n"
                f"known names: {', '.join(self.emotions)}\n"
                f"accepted aliases: {alias_txt or '(none)'}\n"
                "classes that are not emotions of this wheel (any two-level hierarchy): pass "
                "relations=sentiment_metric.LabelRelations.from_groups(groups, class_names=...) "
                "instead of class_names=, with groups the coarse group index of each class; or "
                "build your own wheel=sentiment_metric.EmotionWheel(...)"
            )
        return self._index[key]

    def __len__(self) -> int:
        return len(self.emotions)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = _norm(name)
        return self.aliases.get(key, key) in self._index

    def polarity(self, name: str) -> str:
        """The polarity group of ``name`` (``'positive'`` / ``'negative'`` on Mikels')."""
        return self._polarity[self.canonical(name)]

    def steps(self, a: str, b: str) -> int:
        """Fewest steps between ``a`` and ``b`` around the circle."""
        i, j = self.index(a), self.index(b)
        d = abs(i - j)
        return min(d, len(self) - d)

    def dis(self, a: str, b: str) -> int:
        """Wheel distance ``1 + steps(a, b)``."""
        return 1 + self.steps(a, b)

    def level(self, a: str, b: str) -> int:
        """0 same emotion, 1 same polarity, 2 opposite polarity."""
        if self.index(a) == self.index(b):
            return 0
        return 1 if self.polarity(a) == self.polarity(b) else 2

    def relations(self, class_names: Sequence[str]) -> LabelRelations:
        """Relations between a dataset's classes, in the dataset's label order.

        Args:
            class_names: the dataset's class names in label order (e.g. ``dataset.classes``);
                matched case-insensitively, aliases accepted. Each emotion at most once.

        Returns:
            :class:`LabelRelations` with ``level`` and ``dis`` of shape ``(C, C)``.
        """
        if isinstance(class_names, str) or not isinstance(class_names, Sequence):
            raise SentimentMetricError(
                f"class_names must be a sequence of emotion names, got {class_names!r}"
            )
        if len(class_names) == 0:
            raise SentimentMetricError("class_names must name at least one class")
        idx = [self.index(n) for n in class_names]
        if len(set(idx)) != len(idx):
            dup = [n for n, i in zip(class_names, idx) if idx.count(i) > 1]
            raise SentimentMetricError(f"class_names names the same emotion twice: {dup}")
        n = len(self)
        pos = torch.tensor(idx, dtype=torch.int64)
        d = (pos[:, None] - pos[None, :]).abs()
        steps = torch.minimum(d, n - d)
        group_ids = torch.tensor(
            [self.group_names.index(self._polarity[self.emotions[i]]) for i in idx],
            dtype=torch.int64,
        )
        level = torch.where(group_ids[:, None] == group_ids[None, :], 1, 2).to(torch.int64)
        level.fill_diagonal_(0)
        dis = 1.0 + steps.to(torch.get_default_dtype())
        return LabelRelations(
            level,
            dis=dis,
            class_names=[self.emotions[i] for i in idx],
            groups=group_ids,
            group_names=self.group_names,
        )

    def __repr__(self) -> str:
        groups = {g: [e for e in self.emotions if self._polarity[e] == g] for g in self.group_names}
        return f"EmotionWheel(name={self.name!r}, emotions={list(self.emotions)}, groups={groups})"

    def __eq__(self, other: Any) -> bool:
        return (
            isinstance(other, EmotionWheel)
            and self.emotions == other.emotions
            and self._polarity == other._polarity
        )

    def __hash__(self) -> int:
        return hash((self.emotions, tuple(sorted(self._polarity.items()))))


def resolve_relations(
    class_names: Sequence[str] | None = None,
    relations: LabelRelations | None = None,
    wheel: EmotionWheel | None = None,
) -> LabelRelations:
    """Turn the ``class_names=`` / ``relations=`` / ``wheel=`` arguments into relations.

    Exactly one of ``class_names`` and ``relations`` must be given: guessing the label order
    silently trains the wrong thing. ``wheel`` defaults to :data:`MIKELS_WHEEL`.

    Example:
        >>> resolve_relations(["awe", "fear"]).level.tolist()
        [[0, 2], [2, 0]]
    """
    if class_names is None and relations is None:
        raise SentimentMetricError(
            "give class_names= (the dataset's class names, in label order, e.g. "
            "dataset.classes) or relations= (a sentiment_metric.LabelRelations); neither "
            "was given, and the label order is never guessed"
        )
    if class_names is not None and relations is not None:
        raise SentimentMetricError("give class_names= or relations=, not both")
    if relations is not None:
        if not isinstance(relations, LabelRelations):
            raise SentimentMetricError(
                f"relations must be a sentiment_metric.LabelRelations, got "
                f"{type(relations).__name__}"
            )
        return relations
    if wheel is None:
        wheel = MIKELS_WHEEL
    if not isinstance(wheel, EmotionWheel):
        raise SentimentMetricError(
            f"wheel must be a sentiment_metric.EmotionWheel, got {type(wheel).__name__}"
        )
    return wheel.relations(class_names)  # type: ignore[arg-type]


MIKELS_WHEEL = EmotionWheel(
    emotions=(
        "amusement",
        "contentment",
        "awe",
        "excitement",
        "fear",
        "sadness",
        "disgust",
        "anger",
    ),
    groups={
        "positive": ("amusement", "contentment", "awe", "excitement"),
        "negative": ("fear", "sadness", "disgust", "anger"),
    },
    aliases={
        "amused": "amusement",
        "amusing": "amusement",
        "content": "contentment",
        "contented": "contentment",
        "awed": "awe",
        "excited": "excitement",
        "exciting": "excitement",
        "excite": "excitement",
        "fearful": "fear",
        "afraid": "fear",
        "scared": "fear",
        "sad": "sadness",
        "disgusted": "disgust",
        "disgusting": "disgust",
        "angry": "anger",
    },
    name="mikels",
)
"""Mikels' eight emotions (FI, EmoSet, ArtPhoto, Abstract), in circular order: amusement,
contentment, awe, excitement (positive), fear, sadness, disgust, anger (negative), back to
amusement."""

PLUTCHIK_WHEEL = EmotionWheel(
    emotions=("joy", "trust", "fear", "surprise", "sadness", "disgust", "anger", "anticipation"),
    groups={
        "positive": ("joy", "trust", "surprise", "anticipation"),
        "negative": ("fear", "sadness", "disgust", "anger"),
    },
    aliases={"happiness": "joy", "happy": "joy", "sad": "sadness", "angry": "anger"},
    name="plutchik",
)
"""Plutchik's eight primary emotions in their wheel order; polarity as commonly grouped
(joy, trust, surprise, anticipation positive)."""
