"""SentimentSemiHardMiner: emotion-aware mining of ranked triplets, a PML ``BaseMiner``.

The maths is :func:`sentiment_metric.functional.mine_ranked_triplets`; this module holds the
configuration and plugs it into pytorch-metric-learning.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from pytorch_metric_learning.distances import LpDistance
from pytorch_metric_learning.miners import BaseMiner
from torch import Tensor

from ._checks import check_choice, check_metric_inputs, check_positive_int, check_seed
from ._pml import check_pml_kwargs
from .constraint import SentimentConstraints
from .distance import SquaredEuclideanDistance
from .errors import SentimentMetricError
from .functional._frames import LISTED_MIN_PAIRS, Drawn, gram_tables
from .functional.mining import (
    MINING_STRATEGIES,
    MinedTriplets,
    MiningStrategy,
    mine_ranked_triplets,
    mine_unit_rows,
    ranked_triplet_means,
)
from .functional.triplets import mark_in_range
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

    With the default distance and ``validate=True`` a call is about 30 PyTorch ops up to
    ``B·R < 2**16`` (larger batches, no longer launch-bound, take a path of about 70 ops that
    does less work, with the same triplets): the value checks are one fused reduction and one
    read; the distance is read as ``2 - 2·cos`` from one matrix product of the normalised rows
    (the matrix of ``LpDistance(power=2)`` to rounding; a batch with an all-zero row is read by
    the distance module instead); both closer levels are mined at once, from per-class-pair
    tables built once per device and configuration. With ``per_pair=1`` the draws are one
    uniform number per ``(anchor, sample)`` entry of the batch (``torch.rand((B, R))`` from
    ``generator``).

    ``torch.compile(miner, fullgraph=True, dynamic=True)`` works with ``validate=False`` and
    ``seed=None`` (seed torch's generator instead: dynamo cannot trace a ``torch.Generator``)
    under ``torch._dynamo.config.patch(capture_dynamic_output_shape_ops=True,
    capture_scalar_outputs=True)``: the number of triplets depends on the data.

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
        self.seed = None if seed is None else check_seed(seed)
        self.generator: torch.Generator | None = (
            None if seed is None else torch.Generator().manual_seed(seed)
        )
        self.validate = bool(validate)
        self._tables_cache: dict[tuple[str, tuple[float, float], float], tuple[Tensor, Tensor]] = {}
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
        problems; the shape checks run first so every bad input gets a clear message. The value
        checks (``validate``: finite embeddings, labels in range) are one fused reduction and
        one read in :meth:`mine`.

        Args:
            embeddings: ``(B, D)``.
            labels: ``(B,)`` class indices.
            ref_emb: ``(R, D)`` reference embeddings, or ``None`` for the batch itself.
            ref_labels: ``(R,)``, given with ``ref_emb``.

        Returns:
            ``(anchor, closer, farther)``, each ``(T,)`` ``torch.long``.
        """
        if torch.compiler.is_compiling() and (self.validate or self.generator is not None):
            raise SentimentMetricError(
                "torch.compile needs SentimentSemiHardMiner(validate=False, seed=None): "
                "validate reads values (a host read and a branch a graph cannot hold) and "
                "dynamo cannot trace a torch.Generator; check the inputs outside the compiled "
                "call and seed with torch.manual_seed"
            )
        float_labels = any(
            isinstance(t, Tensor) and t.is_floating_point() for t in (labels, ref_labels)
        )  # whole numbers are checked before they become int64
        embeddings, labels, ref_emb, ref_labels = check_metric_inputs(
            embeddings, labels, self.relations.num_classes, ref_emb, ref_labels,
            validate=self.validate and float_labels,
        )  # fmt: skip
        out: tuple[Tensor, Tensor, Tensor] = super().forward(
            embeddings, labels, ref_emb, ref_labels
        )
        return out

    def mine(
        self, embeddings: Tensor, labels: Tensor, ref_emb: Tensor, ref_labels: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Mine ``(anchor, closer, farther)`` (PML calls this under ``torch.no_grad``)."""
        ref, ref_lab = (None, None) if ref_emb is embeddings else (ref_emb, ref_labels)
        out: MinedTriplets | Drawn | None = None
        if self.validate:  # one fused check, one read; None: take the distance module's path
            out = self._mine_unit_rows(embeddings, labels, ref, ref_lab)
        mat = None
        if out is None:
            mat = self.distance(embeddings, ref)
            out = mine_ranked_triplets(
                mat, labels, ref_lab, level=self.level, theta=self.theta, margins=self.margins,
                strategy=self.strategy,  # type: ignore[arg-type]
                per_pair=self.per_pair, inverted=bool(self.distance.is_inverted),
                generator=self.generator, validate=False, offset=self._offset_like(mat),
            )  # fmt: skip
        if self.collect_stats:
            self._record(out, embeddings, labels, ref, ref_lab, mat)
        if self.validate:  # in range by construction: the loss need not read them again
            sizes = (embeddings.shape[0], ref_emb.shape[0], ref_emb.shape[0])
            mark_in_range((out.anchor, out.closer, out.farther), sizes)
        return out.anchor, out.closer, out.farther

    def _unit_rows_distance(self) -> bool:
        """The distance is PML's squared Euclidean of normalised rows, with nothing to record."""
        d = self.distance
        return (
            type(d) in (SquaredEuclideanDistance, LpDistance)  # exactly: not a subclass
            and d.p == 2
            and d.power == 2
            and bool(d.normalize_embeddings)
            and not d.is_inverted
            and not d.collect_stats
        )

    def _mine_unit_rows(
        self, emb: Tensor, labels: Tensor, ref: Tensor | None, ref_labels: Tensor | None
    ) -> Drawn | None:
        """Check the values (one read); then, for the default distance, mine from ``2 - 2·cos``.

        Each row's probe ``label - (C-1)/2 · ‖x‖/‖x‖`` lies in ``[-(C-1)/2, (C-1)/2]`` (to
        rounding) exactly when the label is in range and the row finite and non-zero (else it
        is out, or NaN): one ``max |·|`` and one read for the batch (and the reference set).
        When it is not, the precise checks raise (NaN/Inf, labels), or there is a zero row
        (then ``None``: the distance module reads it). Rows of norm in ``(0, 1e-12)`` are read
        as their direction (PML's ``normalize`` divides them by ``1e-12``).
        """
        c = self.relations.num_classes
        unit = self._unit_rows_distance() and self.strategy != "all"
        if unit and emb.dtype not in (torch.float32, torch.float64):  # half: in float32
            emb, ref = emb.float(), None if ref is None else ref.float()
        square = emb.shape[0] ** 2 < LISTED_MIN_PAIRS  # one op fewer; (B, 1) when large
        norm, probe = _probe(emb, labels, c, square=square)
        ref_norm = norm
        if ref is not None and ref_labels is not None:
            ref_norm, ref_probe = _probe(ref, ref_labels, c, square=False)
            probe = torch.cat([probe.view(-1), ref_probe.view(-1).to(probe.dtype)])
        far = float(torch.linalg.vector_norm(probe, ord=float("inf")).item())
        if not far < c / 2:  # (C-1)/2 and rounding; an integer label out of range is >= C/2 + 1/2
            check_metric_inputs(emb, labels, c, ref, ref_labels, validate=True)  # raises
            return None  # a zero row (or a norm that overflows)
        if not unit:
            return None
        tables, eye = self._gram_tables(emb.device)
        return mine_unit_rows(
            emb / norm, labels, None if ref is None else ref / ref_norm, ref_labels,
            tables=tables, eye=eye, strategy=self.strategy,
            per_pair=self.per_pair, generator=self.generator, count_empty=self.collect_stats,
        )  # fmt: skip

    def _gram_tables(self, device: torch.device) -> tuple[Tensor, Tensor]:
        """The per-class-pair plane tables and the one-hot rows, once per device and
        configuration."""
        key = (str(device), self.margins, self.wheel_margin)
        cached = self._tables_cache.get(key)
        if cached is None:
            self._tables_cache.clear()
            level = self.level.to(device)
            tables = gram_tables(level, self.theta, self._offset, self.margins)
            cached = tables, torch.eye(level.shape[0], dtype=torch.float64, device=device)
            self._tables_cache[key] = cached
        return cached

    def _record(
        self,
        out: MinedTriplets | Drawn,
        emb: Tensor,
        labels: Tensor,
        ref: Tensor | None,
        ref_labels: Tensor | None,
        mat: Tensor | None,
    ) -> None:
        """PML's ``TripletMarginMiner`` statistics and ours (``collect_stats=True``)."""
        if isinstance(out, Drawn):
            n_rel = int((out.slot == 0).sum())
            self.num_relative_triplets = n_rel
            self.num_negative_triplets = out.anchor.shape[0] - n_rel
            self.num_empty_band_triplets = 0 if out.empty is None else int(out.empty.sum())
        else:
            self.num_relative_triplets = out.num_relative
            self.num_negative_triplets = out.num_negative
            self.num_empty_band_triplets = out.num_empty_band
        mat = self.distance(emb, ref) if mat is None else mat
        self.pos_pair_dist, self.neg_pair_dist, self.avg_triplet_margin = ranked_triplet_means(
            mat, labels, ref_labels, level=self.level, theta=self.theta,
            inverted=bool(self.distance.is_inverted), offset=self._offset_like(mat),
        )  # fmt: skip

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.relations.num_classes}, strategy={self.strategy!r}, "
            f"margins={self.margins}, per_pair={self.per_pair}, "
            f"weighting={self._weighting_repr()}, wheel_margin={self.wheel_margin}, "
            f"seed={self.seed}, validate={self.validate}"
        )


def _probe(x: Tensor, labels: Tensor, c: int, *, square: bool) -> tuple[Tensor, Tensor]:
    """The row norms ``(B, 1)`` and the probes ``label_j - (C-1)/2 · ‖x_i‖/‖x_i‖`` (NaN in
    the rows of a zero or non-finite ``x_i``): ``(B, B)`` (``square``: every label meets every
    norm, no reshape) or ``(B, 1)``."""
    norm = torch.linalg.vector_norm(x, dim=1, keepdim=True)
    lab = labels if square else labels.view(-1, 1)
    return norm, torch.addcdiv(lab, norm, norm, value=-(c - 1) / 2)
