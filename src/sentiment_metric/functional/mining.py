r"""Mining ranked triplets ``(anchor, closer, farther)`` for the sentiment constraints.

A *ranked triplet* has ``level(anchor, closer) + 1 == level(anchor, farther)``: a positive
(level 0) is closer than a relative (level 1), which is closer than a negative (level 2). The
triplets come in two kinds:

- *relative-level* triplets ``(a, p, r)``: every anchor–positive pair with one or more
  relatives, checked by the first constraint ``D*(a,p) + α1 < D*(a,r)``;
- *negative-level* triplets ``(a, r, n)``: every anchor–relative pair with one or more
  negatives, checked by the second constraint ``D*(a,r) + α2 < D*(a,n)``.

Every ``(anchor, closer)`` pair of the batch is used; the strategy only picks the ``farther``
samples. Nothing here builds a dense ``B × B × B`` tensor and nothing loops over anchors,
pairs or levels: each row of the ``(B, R)`` weighted distances is sorted once, grouped by level
(each level moved into its own disjoint frame of values, in float64), so the samples of one
level are a contiguous, sorted range of the row; the farther level and the semi-hard band of
every pair, at both closer levels at once, are counted by one :func:`torch.searchsorted` (see
:mod:`sentiment_metric.functional._frames`); samples are drawn as uniform offsets inside the
range: with ``per_pair == 1`` one ``torch.rand`` draw per ``(anchor, sample)`` entry of the
``(B, R)`` grid, with ``per_pair > 1`` Floyd's algorithm per pair, so they are distinct. Memory
grows like ``8·B·R`` plus the output.

The strategies, for a pair ``(a, c)`` at level ``L`` and the samples ``f`` of level ``L + 1``:

- ``"semihard"``: ``per_pair`` distinct samples drawn uniformly from the band

  .. math::

      D^*(a, c) < D^*(a, f) < D^*(a, c) + \alpha_{L+1}

  (the triplets that violate the margin without being inverted; FaceNet's semi-hard
  negatives, Schroff et al. 2015). When the band is empty, from the whole level instead
  (counted in ``num_empty_band``).
- ``"hard"``: the ``per_pair`` samples of level ``L + 1`` with the *smallest*
  ``D^*(a, f)`` (the hardest negatives of FaceNet and of batch-hard mining, Hermans et al.
  2017): the same for every ``closer`` of that anchor and level, whether they violate the
  margin or not.
- ``"random"``: ``per_pair`` distinct samples drawn uniformly from the level.
- ``"all"``: every ranked triplet, exactly once (``per_pair`` is ignored); the output has
  ``Σ_(a,c) n_{L+1}(a)`` triplets (about ``B·R²``), enumerated in chunks of anchors by
  :func:`~sentiment_metric.functional.all_ranked_triplets`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple

import torch
from torch import Tensor

from .._checks import check_choice, check_finite, check_margins, check_positive_int, check_shape
from ..errors import SentimentMetricError
from ._frames import (
    LISTED_MIN_PAIRS,
    Drawn,
    draw_farther,
    draw_listed,
    frame_tables,
    gram_planes,
    q_planes,
    search_planes,
)
from ._inputs import check_dist, check_dist_labels, check_level
from .constraint import weighted_distances
from .distance import check_self_index, exclude_self
from .levels import pair_levels
from .triplets import all_ranked_triplets

__all__ = [
    "MINING_STRATEGIES",
    "MinedTriplets",
    "MiningStrategy",
    "mine_ranked_triplets",
    "ranked_triplet_means",
]

MiningStrategy = Literal["semihard", "hard", "random", "all"]
"""The mining strategies: ``"semihard"``, ``"hard"``, ``"random"`` and ``"all"``."""
MINING_STRATEGIES: tuple[str, ...] = ("semihard", "hard", "random", "all")
"""The values ``strategy`` accepts, in the order the messages list them."""


class MinedTriplets(NamedTuple):
    """The output of :func:`mine_ranked_triplets`.

    ``anchor``, ``closer`` and ``farther`` are ``(T,)`` ``torch.long`` tensors (``anchor``
    indexes the batch, ``closer`` and ``farther`` the reference set). The first
    ``num_relative`` triplets are relative-level (closer at level 0, farther at level 1), the
    ``num_negative`` that follow are negative-level (closer at level 1, farther at level 2).
    ``num_empty_band`` counts the triplets whose ``farther`` was drawn from the whole level
    because the semi-hard band of their pair was empty (always 0 for the other strategies).
    """

    anchor: Tensor
    closer: Tensor
    farther: Tensor
    num_relative: int
    num_negative: int
    num_empty_band: int

    def as_tuple(self) -> tuple[Tensor, Tensor, Tensor]:
        """The PML 3-tuple ``(anchor, closer, farther)``."""
        return self.anchor, self.closer, self.farther


def _finite_keys(q: Tensor) -> Tensor:
    """``q`` (float64) with its non-finite keys clamped to the finite range (NaN: the far end).

    Only ``validate=False`` lets a NaN or Inf through; a finite ``q`` comes back equal (a new
    tensor either way, so the caller may write into it). No key at all finite: all 0.
    """
    finite = q.isfinite()
    inf = float("inf")
    hi = torch.nan_to_num(torch.where(finite, q, -inf).amax(), neginf=0.0)
    lo = torch.nan_to_num(torch.where(finite, q, inf).amin(), posinf=0.0)
    return torch.where(finite, q, torch.where(q < 0, lo, hi))


def _exclude_self_pairs(q: Tensor, ref_labels: Tensor | None, self_index: Tensor | None) -> Tensor:
    """Self-pairs get the key ``-inf`` (they sort first and draw nothing): the diagonal when the
    reference set is the batch, the columns ``self_index`` when given (already checked), else
    none (PML)."""
    if self_index is None:
        return q.fill_diagonal_(-float("inf")) if ref_labels is None else q
    return exclude_self(q, self_index.to(q.device), -float("inf"), validate=False)


def _mined(drawn: Drawn) -> MinedTriplets:
    """:class:`MinedTriplets` with its counts (reads them: a host sync)."""
    num_rel = int((drawn.slot == 0).sum())
    num_empty = 0 if drawn.empty is None else int(drawn.empty.sum())
    n = drawn.anchor.shape[0]
    return MinedTriplets(drawn.anchor, drawn.closer, drawn.farther, num_rel, n - num_rel, num_empty)


def mine_unit_rows(
    x: Tensor,
    labels: Tensor,
    ref: Tensor | None,
    ref_labels: Tensor | None,
    *,
    tables: Tensor,
    eye: Tensor,
    strategy: str,
    per_pair: int,
    generator: torch.Generator | None,
    count_empty: bool,
) -> Drawn:
    """The miner's default-distance path: ``D = 2 - 2·cos`` of unit rows ``x`` (and ``ref``).

    ``tables`` are the :func:`~sentiment_metric.functional._frames.gram_tables` and ``eye``
    the float64 ``(C, C)`` identity, on ``x``'s device. ``ref=None``: the batch against itself,
    self-pairs excluded. Unchecked: every row finite with norm 1, every label in range.
    """
    gram = torch.inner(x, x if ref is None else ref)
    if ref is None:
        gram.fill_diagonal_(float("inf"))  # D = -inf: a self-pair's key sorts first
    rows = eye[labels]
    cols = rows if ref_labels is None else eye[ref_labels]
    if gram.numel() >= LISTED_MIN_PAIRS:  # not launch-bound: less work, more ops
        return draw_listed(
            tables, rows, cols, gram, batch=ref is None, strategy=strategy, per_pair=per_pair,
            generator=generator, count_empty=count_empty,
        )  # fmt: skip
    planes, slots = gram_planes(tables, rows, cols, gram)
    return draw_farther(
        *search_planes(planes, strategy == "semihard"), slots, strategy=strategy,
        per_pair=per_pair, generator=generator, count_empty=count_empty,
    )  # fmt: skip


def _check_mining_input(
    dist: Tensor,
    labels: Tensor,
    ref_labels: Tensor | None,
    level: Tensor,
    theta: Tensor | None,
    offset: Tensor | None,
    validate: bool,
    self_index: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
    """Check ``dist``, the labels, ``level``, ``theta``, ``offset`` and ``self_index`` (its
    range with ``validate``); labels and ``self_index`` come back on dist's device."""
    dist, level = check_dist(dist), check_level(level)
    num_classes = int(level.shape[0])
    labels, ref_labels = check_dist_labels(dist, labels, ref_labels, num_classes, validate=validate)
    for name, table in (("theta", theta), ("offset", offset)):
        if table is not None:
            check_shape(table, (num_classes, num_classes), name)
    if validate:
        check_finite(dist, "dist")
    ref_labels = None if ref_labels is None else ref_labels.to(dist.device)
    if self_index is not None:
        self_index = check_self_index(self_index, dist.shape[0], dist.shape[1], validate=validate)
        self_index = self_index.to(dist.device)
    return dist, labels.to(dist.device), ref_labels, self_index


def _every_triplet(
    labels: Tensor, level: Tensor, ref_labels: Tensor | None, self_index: Tensor | None
) -> MinedTriplets:
    """The ``"all"`` strategy: every ranked triplet, exactly once."""
    t = all_ranked_triplets(
        labels, level, ref_labels=ref_labels, self_index=self_index, validate=False
    )
    num_rel = int((t.closer_level == 0).sum())
    return MinedTriplets(t.anchor, t.closer, t.farther, num_rel, len(t.anchor) - num_rel, 0)


def mine_ranked_triplets(
    dist: Tensor,
    labels: Tensor,
    ref_labels: Tensor | None = None,
    *,
    level: Tensor,
    theta: Tensor | None = None,
    margins: Sequence[float] = (0.2, 0.1),
    strategy: MiningStrategy = "semihard",
    per_pair: int = 1,
    inverted: bool = False,
    self_index: Tensor | None = None,
    generator: torch.Generator | None = None,
    validate: bool = True,
    offset: Tensor | None = None,
) -> MinedTriplets:
    r"""Mine ranked triplets ``(anchor, closer, farther)`` from a distance matrix.

    On the loss's ``q`` (:func:`~sentiment_metric.functional.weighted_distances`), each
    ``(anchor, closer)`` pair at level ``L`` (0 anchor–positive, 1 anchor–relative; never a
    sample with itself) gets ``min(per_pair, pool size)`` ``farther`` samples of level
    ``L + 1`` picked by ``strategy`` (``"semihard"``: in the band ``q(a,c) < q(a,f) <
    q(a,c) + α_{L+1}``; see the module's docstring); none when its anchor has no sample of level
    ``L + 1`` (an empty batch: none). Deterministic given ``generator``: relative level first.

    Args:
        dist: ``(B, R)`` distances (or similarities) between the batch and the reference set.
        labels: ``(B,)``; ``ref_labels``: ``(R,)``, or ``None`` for the batch (``R = B``).
        level: ``(C, C)`` integer levels (``LabelRelations.level``).
        theta: ``(C, C)`` weights ``θ`` (``LabelRelations.weights(...)``); ``None``: ones.
        margins: ``(α1, α2)``, the band widths of the relative and negative levels.
        strategy: ``"semihard"``, ``"hard"``, ``"random"`` or ``"all"``.
        per_pair: farther samples per ``(anchor, closer)`` pair (not for ``"all"``).
        inverted: ``dist`` holds similarities (larger is closer).
        self_index: ``(B,)`` column of each row's own sample (``-1``: none), as in
            :func:`~sentiment_metric.functional.pair_levels`.
        generator: the :class:`torch.Generator` of the draws (any device); ``None``: torch's.
        validate: check label ranges and that ``dist`` is finite (reads values).
        offset: ``(C, C)`` wheel-margin offset ``β·dis`` subtracted from ``q``; ``None``: none.

    Returns:
        :class:`MinedTriplets`; ``.as_tuple()`` is PML's 3-tuple.

    Raises:
        SentimentMetricError: on a bad argument or input.

    Example:
        >>> import torch
        >>> import sentiment_metric as sm
        >>> rel = sm.LabelRelations.from_groups([0, 0, 1])  # classes 0, 1 relatives; 2 apart
        >>> labels = torch.tensor([0, 0, 1, 2])
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.nn.functional.normalize(torch.randn(4, 8, generator=g), dim=1)
        >>> dist = torch.cdist(x, x) ** 2
        >>> out = mine_ranked_triplets(dist, labels, level=rel.level, strategy="all")
        >>> torch.stack(out.as_tuple()).T.tolist()
        [[0, 1, 2], [1, 0, 2], [0, 2, 3], [1, 2, 3], [2, 0, 3], [2, 1, 3]]
        >>> out.num_relative, out.num_negative
        (2, 4)
    """
    strategy = check_choice(strategy, MINING_STRATEGIES, "strategy")  # type: ignore[assignment]
    alphas = check_margins(margins)
    per_pair = check_positive_int(per_pair, "per_pair")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise SentimentMetricError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )
    dist, labels, ref_labels, self_index = _check_mining_input(
        dist, labels, ref_labels, level, theta, offset, validate, self_index
    )
    if strategy == "all":
        return _every_triplet(labels, level, ref_labels, self_index)
    if dist.numel() == 0:  # an empty batch or reference set: no triplet (and nothing to sort)
        none = torch.zeros(0, dtype=torch.long, device=dist.device)
        return MinedTriplets(none, none, none, 0, 0, 0)
    with torch.no_grad():
        q = weighted_distances(
            dist.detach().to(torch.float64), labels, ref_labels, theta, inverted=inverted,
            offset=offset, validate=False,
        )  # fmt: skip
        drawn = _mine_keys(
            q, labels, ref_labels, self_index, level, alphas, strategy, per_pair, generator
        )
        return _mined(drawn)


def _mine_keys(
    q: Tensor,
    labels: Tensor,
    ref_labels: Tensor | None,
    self_index: Tensor | None,
    level: Tensor,
    alphas: tuple[float, float],
    strategy: str,
    per_pair: int,
    generator: torch.Generator | None,
) -> Drawn:
    """The sampling strategies on the weighted keys ``q`` (float64, ``(B, R)``)."""
    q = _exclude_self_pairs(_finite_keys(q), ref_labels, self_index)
    tables = torch.cat(frame_tables(level.to(q.device), alphas))
    eye = torch.eye(tables.shape[1], dtype=torch.float64, device=q.device)
    rows = eye[labels]
    cols = rows if ref_labels is None else eye[ref_labels]
    planes, slots = q_planes(q, tables, rows, cols, alphas)
    return draw_farther(
        *search_planes(planes, strategy == "semihard"), slots, strategy=strategy,
        per_pair=per_pair, generator=generator,
    )  # fmt: skip


def ranked_triplet_means(
    dist: Tensor,
    labels: Tensor,
    ref_labels: Tensor | None = None,
    *,
    level: Tensor,
    theta: Tensor | None = None,
    inverted: bool = False,
    self_index: Tensor | None = None,
    offset: Tensor | None = None,
) -> tuple[float, float, float]:
    r"""PML's ``TripletMarginMiner`` statistics, over every ranked triplet of the batch.

    PML averages over every candidate triplet (before the miner keeps some); here the
    candidates are the ranked triplets ``(a, c, f)`` (``level(a,f) = level(a,c) + 1``), and

    .. math::

                ext{pos\_pair\_dist} = \overline{D(a, c)}, \quad
                ext{neg\_pair\_dist} = \overline{D(a, f)}, \quad
                ext{avg\_triplet\_margin} = \overline{q(a, f) - q(a, c)}

    with ``D`` the distance matrix as given (a similarity when ``inverted``, as PML reports
    it) and ``q`` the weighted dissimilarity the constraints compare
    (:func:`~sentiment_metric.functional.weighted_distances`): with ``θ = 1`` and no offset,
    PML's ``an - ap`` (``ap - an`` for a similarity). Exact, in ``O(B·R)``: each pair is
    weighted by the number of triplets it is in. ``nan`` when there is no ranked triplet.

    Example:
        >>> import torch
        >>> level = torch.tensor([[0, 1], [1, 0]])
        >>> d = torch.tensor([[0.0, 1.0, 3.0], [1.0, 0.0, 2.0], [3.0, 2.0, 0.0]])
        >>> ranked_triplet_means(d, torch.tensor([0, 0, 1]), level=level)
        (1.0, 2.5, 1.5)
    """
    dist, labels, ref_labels, self_index = _check_mining_input(
        dist, labels, ref_labels, level, theta, offset, True, self_index
    )
    with torch.no_grad():
        lv = pair_levels(labels, level, ref_labels, self_index, validate=False)
        d = dist.detach().to(torch.float64)
        q = weighted_distances(
            d, labels, ref_labels, theta, inverted=inverted, offset=offset, validate=False
        )
        onehot = (lv.unsqueeze(0) == torch.arange(3, device=lv.device).view(3, 1, 1)).double()
        n = onehot.sum(dim=2, keepdim=True)  # (3, B, 1) samples per level
        closer = onehot[:2] * n[1:]  # each (a, c) pair is in n_{L+1}(a) triplets
        farther = onehot[1:] * n[:2]  # each (a, f) pair in n_L(a) triplets
        total = (n[:2] * n[1:]).sum()
        vals = (
            torch.stack(
                [(closer * d).sum(), (farther * d).sum(), (farther * q).sum() - (closer * q).sum()]
            )
            / total
        )
        pos, neg, margin = vals.tolist()
    return pos, neg, margin
