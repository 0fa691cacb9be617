"""SentimentSemiHardMiner: emotion-aware mining of ranked triplets, a PML ``BaseMiner``.

The maths is :func:`sentiment_metric.functional.mine_ranked_triplets`; this module holds the
configuration and plugs it into pytorch-metric-learning.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from pytorch_metric_learning.miners import BaseMiner
from torch import Tensor

from ._checks import check_choice, check_positive_int
from ._pml import check_pml_kwargs
from .constraint import SentimentConstraints
from .distance import SquaredEuclideanDistance
from .errors import SentimentMetricError
from .functional.mining import (
    MINING_STRATEGIES,
    MiningStrategy,
    mine_ranked_triplets,
    ranked_triplet_means,
)
from .wheel import EmotionWheel, LabelRelations

__all__ = ["SentimentSemiHardMiner"]


class SentimentSemiHardMiner(SentimentConstraints, BaseMiner):
    r"""Mine the ranked triplets of the sentiment constraints (Yang et al., AAAI 2018).

    Every anchor–positive pair (level 0) is combined with ``per_pair`` relatives (level 1),
    and every anchor–relative pair with ``per_pair`` negatives (level 2), the farther samples
    being picked by ``strategy`` on the weighted distance

    .. math::

        q(a, x) = \theta(y_a, y_x)\, D(a, x) - \beta\, \mathrm{dis}(y_a, y_x), \qquad
        \text{semi-hard band: } q(a, c) < q(a, f) < q(a, c) + \alpha_{L+1}

    (the ``q`` the loss compares; for a similarity ``S``, ``θ·(1 - S)``; ``β`` the wheel
    margin)
    (``"semihard"``: uniformly in the band, or anywhere in the level when the band is empty;
    ``"hard"``: the closest farther samples; ``"random"``; ``"all"``: every ranked triplet).
    See :func:`sentiment_metric.functional.mine_ranked_triplets` for the exact rules.

    The output is PML's 3-tuple ``(anchor, closer, farther)`` of ``torch.long`` indices, read
    as ``(a, p, n)`` by every PML loss, reducer and wrapper; relative-level triplets come
    first. The distance defaults to PML's ``LpDistance(power=2)`` (squared Euclidean between
    L2-normalised embeddings, as the loss); a similarity such as ``CosineSimilarity`` works
    too (``distance.is_inverted``). With ``ref_emb``/``ref_labels`` the closer and farther
    samples index the reference set and self-pairs are kept, as in PML.

    Args:
        class_names: the dataset's class names in label order (e.g. ``dataset.classes``).
        relations: a :class:`~sentiment_metric.LabelRelations`, instead of ``class_names``.
        wheel: the wheel ``class_names`` are read on (default ``MIKELS_WHEEL``).
        margins: ``(α1, α2)``, the semi-hard band widths of relatives and negatives.
        strategy: ``"semihard"`` (default), ``"hard"``, ``"random"`` or ``"all"``.
        per_pair: farther samples per ``(anchor, closer)`` pair (ignored by ``"all"``).
        weighting: ``"inverse_wheel"`` (``θ = 1/dis``, the paper), ``"none"`` or a ``(C, C)``
            tensor of positive weights.
        wheel_margin: ``β >= 0``, extra margin per wheel step between a triplet's farther and
            closer class, as in :class:`~sentiment_metric.SentimentConstraintLoss` (use the
            loss's value so that the miner's band is the loss's hinge).
        seed: seeds the miner's own :class:`torch.Generator` (on the CPU, so a seed gives
            the same draws on every device); ``None`` uses torch's global generator.
        validate: check label ranges and finite embeddings on every call (reads values).
        **kwargs: for PML's ``BaseMiner`` (``distance=``, ``collect_stats=``).

    Statistics, as PML's: ``num_triplets`` (the output's length) after every call, like any
    PML ``BaseMiner``; with ``collect_stats=True`` also PML's ``TripletMarginMiner`` records,
    over every ranked triplet of the batch (the candidates, as PML's are over every triplet
    before filtering; see :func:`sentiment_metric.functional.mining.ranked_triplet_means`):
    ``pos_pair_dist`` (mean distance anchor–closer), ``neg_pair_dist`` (anchor–farther) and
    ``avg_triplet_margin`` (mean ``q(a,f) - q(a,c)``, the weighted margin the constraints
    compare); and ours: ``num_relative_triplets``, ``num_negative_triplets`` and
    ``num_empty_band_triplets`` (semi-hard triplets drawn from a whole level because their
    band was empty).

    Example:
        >>> import torch
        >>> import sentiment_metric as sm
        >>> names = ["amusement", "anger", "awe", "contentment",
        ...          "disgust", "excitement", "fear", "sadness"]
        >>> miner = sm.SentimentSemiHardMiner(class_names=names, seed=0)
        >>> g = torch.Generator().manual_seed(0)
        >>> embeddings = torch.randn(32, 16, generator=g)
        >>> labels = torch.arange(8).repeat(4)
        >>> anchor, closer, farther = miner(embeddings, labels)
        >>> anchor.shape  # 96 anchor-positive + 384 anchor-relative pairs, one each
        torch.Size([480])
        >>> level = miner.relations.level
        >>> bool((level[labels[anchor], labels[closer]] + 1
        ...       == level[labels[anchor], labels[farther]]).all())
        True
    """

    def __init__(
        self,
        class_names: Sequence[str] | None = None,
        relations: LabelRelations | None = None,
        wheel: EmotionWheel | None = None,
        margins: Sequence[float] = (0.2, 0.1),
        strategy: MiningStrategy = "semihard",
        per_pair: int = 1,
        weighting: str | Tensor = "inverse_wheel",
        seed: int | None = None,
        validate: bool = True,
        wheel_margin: float = 0.0,
        **kwargs: Any,
    ) -> None:
        check_pml_kwargs(type(self).__name__, "miner", kwargs)
        super().__init__(**kwargs)
        self._configure(class_names, relations, wheel, margins, weighting, wheel_margin)
        self._check_distance(self.distance)
        self.strategy = check_choice(strategy, MINING_STRATEGIES, "strategy")
        self.per_pair = check_positive_int(per_pair, "per_pair")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise SentimentMetricError(f"seed must be an int or None, got {seed!r}")
        self.seed = seed
        self.generator: torch.Generator | None = (
            None if seed is None else torch.Generator().manual_seed(seed)
        )
        self.validate = bool(validate)
        self.add_to_recordable_attributes(
            list_of_names=["relative_margin", "negative_margin", "per_pair"], is_stat=False
        )
        self.add_to_recordable_attributes(
            list_of_names=[
                "num_relative_triplets",
                "num_negative_triplets",
                "num_empty_band_triplets",
                "avg_triplet_margin",
                "pos_pair_dist",
                "neg_pair_dist",
            ],
            is_stat=True,
        )

    def get_default_distance(self) -> SquaredEuclideanDistance:
        """Squared Euclidean distance between L2-normalised embeddings, as the loss."""
        return SquaredEuclideanDistance()

    def forward(
        self,
        embeddings: Tensor,
        labels: Tensor,
        ref_emb: Tensor | None = None,
        ref_labels: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Check the input (raising :class:`SentimentMetricError`), then PML's ``forward``.

        PML's ``BaseMiner.forward`` would raise its own messageless errors for the shape
        problems; the checks run first so every bad input gets a clear message.

        Args:
            embeddings: ``(B, D)``.
            labels: ``(B,)`` class indices.
            ref_emb: ``(R, D)`` reference embeddings, or ``None`` for the batch itself.
            ref_labels: ``(R,)``, given with ``ref_emb``.

        Returns:
            ``(anchor, closer, farther)``, each ``(T,)`` ``torch.long``.
        """
        embeddings, labels, ref_emb, ref_labels = self._check_batch(
            embeddings, labels, ref_emb, ref_labels
        )
        out: tuple[Tensor, Tensor, Tensor] = super().forward(
            embeddings, labels, ref_emb, ref_labels
        )
        return out

    def mine(
        self, embeddings: Tensor, labels: Tensor, ref_emb: Tensor, ref_labels: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Mine ``(anchor, closer, farther)`` (PML calls this under ``torch.no_grad``)."""
        is_self = ref_emb is embeddings
        mat = self.distance(embeddings, None if is_self else ref_emb)
        out = mine_ranked_triplets(
            mat,
            labels,
            None if is_self else ref_labels,
            level=self.level,
            theta=self.theta,
            margins=self.margins,
            strategy=self.strategy,  # type: ignore[arg-type]
            per_pair=self.per_pair,
            inverted=bool(self.distance.is_inverted),
            generator=self.generator,
            validate=False,
            offset=self._offset_like(mat),
        )
        if self.collect_stats:
            self.num_relative_triplets = out.num_relative
            self.num_negative_triplets = out.num_negative
            self.num_empty_band_triplets = out.num_empty_band
            self.pos_pair_dist, self.neg_pair_dist, self.avg_triplet_margin = (
                ranked_triplet_means(
                    mat, labels, None if is_self else ref_labels, level=self.level,
                    theta=self.theta, inverted=bool(self.distance.is_inverted),
                    offset=self._offset_like(mat),
                )
            )  # fmt: skip
        return out.as_tuple()

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.relations.num_classes}, strategy={self.strategy!r}, "
            f"margins={self.margins}, per_pair={self.per_pair}, "
            f"weighting={self._weighting_repr()}, wheel_margin={self.wheel_margin}, "
            f"seed={self.seed}, validate={self.validate}"
        )
