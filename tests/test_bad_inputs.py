"""The bad-input matrix: every input class against every public entry point.

Each row feeds one entry point one input and expects either a
:class:`~sentiment_metric.SentimentMetricError` whose message names the argument (``ERR``), a
correct, finite result (``OK``; for label dtypes and non-contiguous inputs: *the same* result
as the plain int64 / contiguous call), or one of the two (``ERR_OR_OK``: empty and ``B = 1``
batches). :func:`test_every_public_name_has_a_row` fails when a public name of
``sentiment_metric``, ``sentiment_metric.functional`` or ``sentiment_metric.recipes`` has no
row (or no stated reason to have none). Rows whose fix lives in a module owned elsewhere are
``xfail(strict=True)`` with ``reason="owner: <file>; fix pending"``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
import torch

import sentiment_metric as sm
import sentiment_metric.functional as F
import sentiment_metric.recipes as recipes
from sentiment_metric import SentimentMetricError
from sentiment_metric.recipes.cli import main as cli_main

NAMES = sm.MIKELS_WHEEL.emotions
REL = sm.MIKELS_WHEEL.relations(NAMES)
LEVEL, DIS, GROUPS = REL.level, REL.dis, REL.groups
B, D, C = 16, 4, 8

OK, ERR, SAME, ERR_OR_OK = "ok", "err", "same", "err_or_ok"


@dataclass(frozen=True)
class Row:
    """One cell of the matrix."""

    entry: str
    case: str
    call: Callable[[], Any]
    expect: str  # OK, ERR, SAME, ERR_OR_OK
    arg: str = ""  # the argument an error must name (a regex)
    reference: Callable[[], Any] | None = None  # what SAME compares with
    owner: str = ""  # a module owned elsewhere that must fix this row (xfail strict)

    @property
    def id(self) -> str:
        return f"{self.entry}-{self.case}"


def _emb(b: int = B, d: int = D, seed: int = 0) -> torch.Tensor:
    return torch.randn(b, d, generator=torch.Generator().manual_seed(seed))


def _labels(b: int = B) -> torch.Tensor:
    return torch.arange(b) % C


UNDEFINED_WITHOUT_MISTAKES = {"group_miss_share_at_k"}
"""Measures documented as NaN where nothing is wrong to grade (e.g. one class only)."""


def _finite(x: Any) -> bool:
    if isinstance(x, torch.Tensor):
        return not x.is_floating_point() or bool(torch.isfinite(x).all())
    if isinstance(x, float):
        return math.isfinite(x)
    if isinstance(x, Mapping):
        return all(_finite(v) for k, v in x.items() if k not in UNDEFINED_WITHOUT_MISTAKES)
    if isinstance(x, (tuple, list)):
        return all(_finite(v) for v in x)
    return True


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and torch.allclose(a, b)
    if isinstance(a, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9) or (math.isnan(a) and math.isnan(b))
    return bool(a == b)


# -- the batch entry points: (embeddings, labels) -> result ----------------------------------


def _loss(e: torch.Tensor, y: Any) -> Any:
    return sm.SentimentConstraintLoss(class_names=NAMES)(e, y)


def _loss_mined(e: torch.Tensor, y: Any) -> Any:
    loss = sm.SentimentConstraintLoss(class_names=NAMES)
    return loss(e, y, sm.SentimentSemiHardMiner(class_names=NAMES, seed=0)(e, y))


def _miner(e: torch.Tensor, y: Any) -> Any:
    return sm.SentimentSemiHardMiner(class_names=NAMES, seed=0)(e, y)


def _multitask(e: torch.Tensor, y: Any) -> Any:
    logits = torch.zeros(e.shape[0], C, dtype=e.dtype, device=e.device) if e.dim() == 2 else e
    return sm.MultiTaskSentimentLoss(class_names=NAMES)(e, logits, y)


def _memory(e: torch.Tensor, y: Any) -> Any:
    loss = sm.SentimentConstraintLoss(class_names=NAMES)
    d = e.shape[1] if e.dim() == 2 else D
    return sm.SentimentCrossBatchMemory(loss, embedding_size=d, memory_size=64)(e, y)


def _calculator(e: torch.Tensor, y: Any) -> Any:
    calc = sm.AffectiveAccuracyCalculator(class_names=NAMES, k=3, precision_at_ks=[1])
    return calc.get_accuracy(e, y)


def _tiled(e: torch.Tensor) -> torch.Tensor:
    """``(B, 2D)``: the wheel's class centres need 5 dimensions, the matrix's batches have 4."""
    return e.repeat(1, 2) if e.dim() == 2 else e


def _hierarchy_rows() -> Iterator[Row]:
    """Issue 17's hierarchy-aware functions: the arguments that are not a batch."""
    R = Row
    logits = _emb(B, C, seed=1)
    nan_logits = logits.clone()
    nan_logits[0, 0] = float("nan")
    bad_dis = DIS.clone()
    bad_dis[0, 1] = 0.5
    nan_dis = DIS.clone()
    nan_dis[1, 0] = float("nan")
    for name, f in {
        "hierarchy_similarity": F.hierarchy_similarity,
        "hierarchical_centres": lambda d: F.hierarchical_centres(d, 8),
        "expected_cost_predictions": lambda d: F.expected_cost_predictions(logits, d),
        "expected_cost_embedding": lambda d: F.expected_cost_embedding(_emb(), logits, d, 1.0),
    }.items():
        yield R(name, "plain", lambda f=f: f(DIS), OK)
        yield R(name, "dis-1d", lambda f=f: f(DIS[0]), ERR, arg="dis")
        yield R(name, "dis-below-1", lambda f=f: f(bad_dis), ERR, arg="dis")
        yield R(name, "dis-nan", lambda f=f: f(nan_dis), ERR, arg="dis")
        yield R(name, "dis-list", lambda f=f: f(DIS.tolist()), ERR, arg="dis")
    yield R("hierarchy_relevance", "plain", lambda: F.hierarchy_relevance(LEVEL), OK)
    yield R("hierarchy_relevance", "level-1d", lambda: F.hierarchy_relevance(LEVEL[0]), ERR,
            arg="level")  # fmt: skip
    for case, dim in {"dim-0": 0, "dim-too-small": 4, "dim-bool": True, "dim-float": 8.0}.items():
        yield R("hierarchical_centres", case, lambda d=dim: F.hierarchical_centres(DIS, d), ERR,
                arg="dim")  # fmt: skip
        yield R("HierarchicalProxyLoss", f"embedding-size-{case[4:]}",
                lambda d=dim: sm.HierarchicalProxyLoss(d, class_names=NAMES), ERR,
                arg="embedding_size")  # fmt: skip
    for case, t in {
        "zero": 0.0,
        "negative": -1.0,
        "nan": math.nan,
        "inf": math.inf,
        "str": "a",
    }.items():
        yield R("HierarchicalAPLoss", f"temperature-{case}",
                lambda t=t: sm.HierarchicalAPLoss(class_names=NAMES, temperature=t), ERR,
                arg="temperature")  # fmt: skip
        yield R("HierarchicalProxyLoss", f"temperature-{case}",
                lambda t=t: sm.HierarchicalProxyLoss(8, class_names=NAMES, temperature=t), ERR,
                arg="temperature")  # fmt: skip
    for name, f in {
        "expected_cost_predictions": lambda z: F.expected_cost_predictions(z, DIS),
        "expected_cost_embedding": lambda z: F.expected_cost_embedding(_emb(), z, DIS, 1.0),
    }.items():
        yield R(name, "logits-nan", lambda f=f: f(nan_logits), ERR, arg="logits")
        yield R(name, "logits-classes", lambda f=f: f(logits[:, :5]), ERR, arg="logits")
        yield R(name, "logits-1d", lambda f=f: f(logits[:, 0]), ERR, arg="logits")
        yield R(name, "logits-huge", lambda f=f: f(logits * 1e30), OK)
    short = logits[:3]
    yield R("expected_cost_embedding", "logits-rows",
            lambda: F.expected_cost_embedding(_emb(), short, DIS, 1.0), ERR,
            arg="logits")  # fmt: skip
    yield R("expected_cost_embedding", "embeddings-huge",
            lambda: F.expected_cost_embedding(_emb() * 1e30, logits, DIS, 1.0), OK)  # fmt: skip
    for case, w in {
        "negative": -1.0,
        "nan": math.nan,
        "inf": math.inf,
        "str": "1",
        "bool": True,
    }.items():
        yield R("expected_cost_embedding", f"weight-{case}",
                lambda w=w: F.expected_cost_embedding(_emb(), logits, DIS, w), ERR,
                arg="weight")  # fmt: skip


def _dist(e: torch.Tensor) -> torch.Tensor:
    return F.squared_euclidean(e) if e.dim() == 2 and e.is_floating_point() else e


BATCH_ENTRIES: dict[str, tuple[Callable[[torch.Tensor, Any], Any], str]] = {
    # name -> (call, the name an embeddings error must carry)
    "SentimentConstraintLoss": (_loss, "embeddings"),
    "SentimentConstraintLoss[indices_tuple]": (_loss_mined, "embeddings"),
    "SentimentSemiHardMiner": (_miner, "embeddings"),
    "MultiTaskSentimentLoss": (_multitask, "embeddings"),
    "SentimentCrossBatchMemory": (_memory, "embeddings"),
    "AffectiveAccuracyCalculator": (_calculator, "query|embeddings"),
    "sentiment_constraint_loss": (
        lambda e, y: F.sentiment_constraint_loss(_dist(e), y, LEVEL),
        "dist|query",
    ),
    "constraint_sums": (lambda e, y: tuple(F.constraint_sums(_dist(e), y, LEVEL)), "dist|query"),
    "mine_ranked_triplets": (
        lambda e, y: F.mine_ranked_triplets(
            _dist(e), y, level=LEVEL, generator=torch.Generator().manual_seed(0)
        ).as_tuple(),
        "dist|query",
    ),
    "weighted_distances": (
        lambda e, y: F.weighted_distances(_dist(e), y, theta=REL.weights()),
        "dist|query",
    ),
    "retrieval_metrics": (lambda e, y: F.retrieval_metrics(e, y, relations=REL, k=3), "query"),
    "HierarchicalAPLoss": (
        lambda e, y: sm.HierarchicalAPLoss(class_names=NAMES)(e, y),
        "embeddings",
    ),
    "smooth_hierarchical_ap": (lambda e, y: F.smooth_hierarchical_ap(e, y, LEVEL), "embeddings"),
    "HierarchicalProxyLoss": (
        lambda e, y: sm.HierarchicalProxyLoss(2 * D, class_names=NAMES)(_tiled(e), y),
        "embeddings",
    ),
    "hierarchical_proxy_loss": (
        lambda e, y: F.hierarchical_proxy_loss(_tiled(e), y, F.hierarchical_centres(DIS, 2 * D)),
        "embeddings",
    ),
    "per_query_retrieval_metrics": (
        lambda e, y: F.per_query_retrieval_metrics(e, y, relations=REL, k=3),
        "query",
    ),
}
LABEL_ONLY_ENTRIES: dict[str, Callable[[Any], Any]] = {
    "pair_levels": lambda y: F.pair_levels(y, LEVEL),
    "level_masks": lambda y: F.level_masks(y, LEVEL),
    "all_ranked_triplets": lambda y: tuple(F.all_ranked_triplets(y, LEVEL)),
    "classification_report": lambda y: sm.classification_report(
        torch.zeros(len(y), C), y, class_names=NAMES
    ),
}

LABEL_DTYPES = [
    torch.uint8,
    torch.int8,
    torch.int16,
    torch.int32,
    torch.float16,
    torch.bfloat16,
    torch.float32,
    torch.float64,
]
FLOAT_DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]


def _label_rows(entry: str, f: Callable[[Any], Any]) -> Iterator[Row]:
    y = _labels()
    for dt in LABEL_DTYPES:
        yield Row(entry, f"labels-{dt}", lambda dt=dt: f(y.to(dt)), SAME, reference=lambda: f(y))
    bad: dict[str, Any] = {
        "labels-fractional": y.float() + 0.5,
        "labels-bool": y % 2 == 0,
        "labels-2d": y[None],
        "labels-out-of-range": y + 1,
        "labels-negative": y - 1,
        "labels-meta": torch.empty(B, dtype=torch.long, device="meta"),
    }
    for case, lab in bad.items():
        yield Row(entry, case, lambda lab=lab: f(lab), ERR, arg="labels")


def _batch_rows(entry: str, f: Callable[[torch.Tensor, Any], Any], arg: str) -> Iterator[Row]:
    e, y = _emb(), _labels()
    yield Row(entry, "plain", lambda: f(e, y), OK)
    for dt in LABEL_DTYPES:
        yield Row(
            entry, f"labels-{dt}", lambda dt=dt: f(e, y.to(dt)), SAME, reference=lambda: f(e, y)
        )
    for case, lab in {
        "labels-fractional": y.float() + 0.5,
        "labels-bool": y % 2 == 0,
        "labels-2d": y[None],
        "labels-short": y[:-1],
        "labels-out-of-range": y + 1,
        "labels-negative": y - 1,
        "labels-meta": torch.empty(B, dtype=torch.long, device="meta"),
    }.items():
        yield Row(entry, case, lambda lab=lab: f(e, lab), ERR, arg="labels")
    nan, inf = e.clone(), e.clone()
    nan[2, 1], inf[3, 0] = float("nan"), float("inf")
    for case, emb in {
        "emb-3d": e[None],
        "emb-1d": e[:, 0],
        "emb-int": e.long(),
        "emb-nan": nan,
        "emb-inf": inf,
        "emb-meta": torch.empty(B, D, device="meta"),
    }.items():
        yield Row(entry, case, lambda emb=emb: f(emb, y), ERR, arg=arg)
    for dt in FLOAT_DTYPES:
        yield Row(entry, f"emb-{dt}", lambda dt=dt: f(e.to(dt), y), ERR_OR_OK, arg=arg)
    nc = torch.randn(D, B, generator=torch.Generator().manual_seed(0)).t()
    yield Row(
        entry, "emb-non-contiguous", lambda: f(nc, y), SAME, reference=lambda: f(nc.contiguous(), y)
    )
    small = f"{arg}|labels|reference|batch|empty"
    yield Row(entry, "empty-batch", lambda: f(e[:0], y[:0]), ERR_OR_OK, arg=small)
    yield Row(entry, "batch-of-1", lambda: f(e[:1], y[:1]), ERR_OR_OK, arg=small)
    yield Row(
        entry, "one-class", lambda: f(e, torch.zeros(B, dtype=torch.long)), ERR_OR_OK, arg="labels"
    )


# -- the other entry points, row by row -----------------------------------------------------


def _wheel(**kw: Any) -> sm.EmotionWheel:
    args: dict[str, Any] = {"emotions": ["joy", "grief"], "groups": {"p": ["joy"], "n": ["grief"]}}
    args.update(kw)
    return sm.EmotionWheel(**args)


def _ranked() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(ranked_labels (B, 5), query_labels (B,), num_relevant (B,))`` of a real ranking."""
    e, y = _emb(), _labels()
    _, idx = F.exact_knn(e, None, 5, ref_includes_query=True)
    return y[idx], y, torch.full((B,), 1)


RL, QL, NREL = _ranked()
REC = F.wheel_relevance(LEVEL, DIS)
COUNTS = torch.full((B,), B - 1)
TRIP = (torch.tensor([0, 1]), torch.tensor([8, 9]), torch.tensor([1, 2]))
NAN_LOGITS = torch.zeros(B, C)
NAN_LOGITS[0, 0] = float("nan")
FEATS = [torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(1))]


def _small_model(**kw: Any) -> sm.SentimentModel:
    from sentiment_metric.models import small_convnet

    return sm.SentimentModel(
        backbone=small_convnet(4),
        layers=["layer1", "layer2", "layer3"],
        dry_run_shape=(3, 32, 32),
        **kw,
    )


def _gram(**kw: Any) -> sm.GramSentimentVector:
    return sm.GramSentimentVector([3], reduced_channels=2, **kw)


def _wheel_and_module_rows() -> Iterator[Row]:
    R = Row
    # wheels and relations (inconsistent relations)
    yield R("EmotionWheel", "plain", lambda: _wheel().index("joy"), OK)
    yield R(
        "EmotionWheel",
        "alias-is-another-emotion",
        lambda: _wheel(aliases={"joy": "grief"}),
        ERR,
        "alias",
    )
    yield R("EmotionWheel", "groups-list", lambda: _wheel(groups=["joy", "grief"]), ERR, "groups")
    yield R("EmotionWheel", "name-not-str", lambda: _wheel(emotions=["joy", 2]), ERR, "emotions")
    yield R(
        "EmotionWheel",
        "unknown-emotion",
        lambda: sm.MIKELS_WHEEL.index("T-shirt"),
        ERR,
        "from_groups",
    )
    yield R("LabelRelations", "plain", lambda: sm.LabelRelations(LEVEL).groups, OK)
    yield R(
        "LabelRelations",
        "groups-contradict-level",
        lambda: sm.LabelRelations(LEVEL, groups=torch.arange(C)),
        ERR,
        "groups",
    )
    bad_level = torch.tensor([[0, 1, 2], [1, 0, 1], [2, 1, 0]])
    yield R(
        "LabelRelations", "non-transitive-level", lambda: sm.LabelRelations(bad_level), ERR, "level"
    )
    yield R(
        "LabelRelations",
        "duplicate-names",
        lambda: sm.LabelRelations(LEVEL, class_names=["a"] * C),
        ERR,
        "class_names",
    )
    yield R(
        "LabelRelations",
        "short-group-names",
        lambda: sm.LabelRelations(LEVEL, group_names=["x"]),
        ERR,
        "group_names",
    )
    yield R(
        "LabelRelations",
        "from-groups-str",
        lambda: sm.LabelRelations.from_groups("0011"),
        ERR,
        "groups",
    )  # type: ignore[arg-type]
    yield R("LabelRelations", "float-level", lambda: sm.LabelRelations(LEVEL.float()), ERR, "level")
    # unknown names and options, PML argument names
    yield R(
        "SentimentConstraintLoss",
        "no-classes",
        lambda: sm.SentimentConstraintLoss(),
        ERR,
        "class_names",
    )
    yield R(
        "SentimentConstraintLoss",
        "weighting-unknown",
        lambda: sm.SentimentConstraintLoss(class_names=NAMES, weighting="foo"),
        ERR,
        "weighting",
    )
    yield R(
        "SentimentConstraintLoss",
        "distance-str",
        lambda: sm.SentimentConstraintLoss(class_names=NAMES, distance="cosine"),
        ERR,
        "distance",
    )
    yield R(
        "SentimentConstraintLoss",
        "pml-margin",
        lambda: sm.SentimentConstraintLoss(class_names=NAMES, margin=0.1),
        ERR,
        "margins",
    )
    yield R(
        "SentimentConstraintLoss",
        "margins-huge",
        lambda: sm.SentimentConstraintLoss(class_names=NAMES, margins=(1e38, 1e38))(
            _emb(), _labels()
        ),
        ERR_OR_OK,
        "margins",
    )
    yield R(
        "SentimentConstraintLoss",
        "indices-negative",
        lambda: sm.SentimentConstraintLoss(class_names=NAMES)(
            _emb(), _labels(), (torch.tensor([-16]), torch.tensor([-8]), torch.tensor([-15]))
        ),
        ERR,
        "indices_tuple",
    )
    yield R(
        "SentimentConstraintLoss",
        "indices-out-of-range",
        lambda: sm.SentimentConstraintLoss(class_names=NAMES)(
            _emb(), _labels(), (torch.tensor([0]), torch.tensor([8]), torch.tensor([16]))
        ),
        ERR,
        "indices_tuple",
    )
    yield R(
        "SentimentConstraintLoss",
        "unknown-emotion",
        lambda: sm.SentimentConstraintLoss(class_names=["T-shirt", "Trouser"]),
        ERR,
        "from_groups",
    )
    yield R(
        "SentimentSemiHardMiner",
        "strategy-unknown",
        lambda: sm.SentimentSemiHardMiner(class_names=NAMES, strategy="foo"),
        ERR,
        "strategy",
    )  # type: ignore[arg-type]
    yield R(
        "SentimentSemiHardMiner",
        "pml-type-of-triplets",
        lambda: sm.SentimentSemiHardMiner(class_names=NAMES, type_of_triplets="semihard"),
        ERR,
        "strategy",
    )
    yield R(
        "SentimentSemiHardMiner",
        "pml-epsilon",
        lambda: sm.SentimentSemiHardMiner(class_names=NAMES, epsilon=0.1),
        ERR,
        "margins",
    )
    yield R(
        "MultiTaskSentimentLoss",
        "miner-str",
        lambda: sm.MultiTaskSentimentLoss(class_names=NAMES, miner="semihard"),
        ERR,
        "miner",
    )  # type: ignore[arg-type]
    yield R(
        "MultiTaskSentimentLoss",
        "logits-nan",
        lambda: sm.MultiTaskSentimentLoss(class_names=NAMES)(_emb(), NAN_LOGITS, _labels()),
        ERR,
        "logits",
    )
    yield R(
        "MultiTaskSentimentLoss",
        "omega-out-of-range",
        lambda: sm.MultiTaskSentimentLoss(omega=2.0, class_names=NAMES),
        ERR,
        "omega",
    )
    yield R(
        "SentimentCrossBatchMemory",
        "memory-size-0",
        lambda: sm.SentimentCrossBatchMemory(
            sm.SentimentConstraintLoss(class_names=NAMES), embedding_size=D, memory_size=0
        ),
        ERR,
        "memory_size",
    )
    yield R(
        "SentimentCrossBatchMemory",
        "batch-larger-than-memory",
        lambda: sm.SentimentCrossBatchMemory(
            sm.SentimentConstraintLoss(class_names=NAMES), embedding_size=D, memory_size=4
        )(_emb(), _labels()),
        ERR,
        "memory_size",
    )
    yield R(
        "SentimentCrossBatchMemory",
        "wrong-embedding-size",
        lambda: _memory_d(_emb(d=5)),
        ERR,
        "embedding_size",
    )
    yield R(
        "SentimentCrossBatchMemory", "labels-none", lambda: _memory(_emb(), None), ERR, "labels"
    )
    yield R(
        "SentimentCrossBatchMemory",
        "enqueue-mask-int",
        lambda: sm.SentimentCrossBatchMemory(
            sm.SentimentConstraintLoss(class_names=NAMES), embedding_size=D, memory_size=64
        )(_emb(), _labels(), enqueue_mask=torch.ones(B, dtype=torch.long)),
        ERR,
        "enqueue_mask",
    )
    yield R(
        "AffectiveAccuracyCalculator",
        "device-gpu",
        lambda: sm.AffectiveAccuracyCalculator(class_names=NAMES, device="gpu"),
        ERR,
        "device",
    )
    yield R(
        "AffectiveAccuracyCalculator",
        "include-unknown",
        lambda: sm.AffectiveAccuracyCalculator(class_names=NAMES, include=["nope"]),
        ERR,
        "include",
    )
    yield R(
        "AffectiveAccuracyCalculator",
        "k-zero",
        lambda: sm.AffectiveAccuracyCalculator(class_names=NAMES, k=0),
        ERR,
        "k",
    )
    yield R(
        "classification_report",
        "logits-wrong-classes",
        lambda: sm.classification_report(torch.zeros(B, 3), _labels(), class_names=NAMES),
        ERR,
        "logits_or_preds",
    )
    yield R(
        "classification_report",
        "logits-nan",
        lambda: sm.classification_report(NAN_LOGITS, _labels(), class_names=NAMES),
        ERR,
        "logits_or_preds",
    )


def _model_rows() -> Iterator[Row]:
    R = Row
    yield R("GramSentimentVector", "plain", lambda: _gram()([torch.randn(2, 3, 4, 4)]), OK)
    yield R(
        "GramSentimentVector",
        "wrong-channels",
        lambda: _gram()([torch.randn(2, 5, 4, 4)]),
        ERR,
        "features|channels",
    )
    yield R(
        "GramSentimentVector",
        "nan-features",
        lambda: _gram()([torch.full((2, 3, 4, 4), float("nan"))]),
        ERR,
        "features",
    )
    yield R(  # issue 18: finite maps whose Gram norm overflows float32 (it gave zero rows)
        "GramSentimentVector",
        "norm-overflow",
        lambda: _gram(activation=None)([torch.full((2, 3, 4, 4), 1e10)]),
        ERR,
        "features are finite but the head's output is not",
    )
    yield R(
        "GramSentimentVector",
        "float64-features",
        lambda: _gram()([torch.randn(2, 3, 4, 4, dtype=torch.float64)]),
        ERR_OR_OK,
        "features|dtype",
    )
    yield R(
        "GramSentimentVector",
        "in-channels-0",
        lambda: sm.GramSentimentVector(0),
        ERR,
        "in_channels",
    )
    yield R("SentimentModel", "plain", lambda: _small_model()(torch.randn(2, 3, 32, 32)), OK)
    yield R(
        "SentimentModel",
        "wrong-channels",
        lambda: _small_model()(torch.randn(2, 1, 32, 32)),
        ERR,
        "images|channels",
    )
    yield R(
        "SentimentModel",
        "uint8-images",
        lambda: _small_model()(torch.zeros(2, 3, 32, 32, dtype=torch.uint8)),
        ERR,
        "images|dtype",
    )
    yield R(
        "SentimentModel",
        "1x1-images",
        lambda: _small_model()(torch.randn(2, 3, 1, 1)),
        ERR_OR_OK,
        "images|size",
    )
    yield R(
        "SentimentModel",
        "nan-images",
        lambda: _small_model()(torch.full((2, 3, 32, 32), float("nan"))),
        ERR,
        "images",
    )
    yield R(
        "SentimentModel",
        "unknown-backbone",
        lambda: sm.SentimentModel(backbone="nope"),
        ERR,
        "backbone",
    )
    # functional: distances, sentiment vector
    yield R("squared_euclidean", "plain", lambda: F.squared_euclidean(_emb()), OK)
    yield R(
        "squared_euclidean",
        "dim-mismatch",
        lambda: F.squared_euclidean(_emb(), _emb(d=5)),
        ERR,
        "query|ref",
    )
    yield R(
        "exclude_self", "plain", lambda: F.exclude_self(torch.zeros(B, B), torch.arange(B), 0.0), OK
    )
    yield R(
        "exclude_self",
        "index-out-of-range",
        lambda: F.exclude_self(torch.zeros(B, B), torch.arange(B) + B, 0.0),
        ERR,
        "self_index",
    )
    yield R("exact_knn", "plain", lambda: F.exact_knn(_emb(), None, 3, ref_includes_query=True), OK)
    yield R(
        "exact_knn",
        "k-too-large",
        lambda: F.exact_knn(_emb(), None, B, ref_includes_query=True),
        ERR,
        "k",
    )
    yield R(
        "exact_knn",
        "nan-query",
        lambda: F.exact_knn(torch.full((B, D), float("nan")), None, 3),
        ERR,
        "query",
    )
    yield R("gram_matrix", "plain", lambda: F.gram_matrix(torch.randn(2, 3, 4, 4)), OK)
    yield R("gram_matrix", "3d", lambda: F.gram_matrix(torch.randn(3, 4, 4)), ERR, "x")
    yield R("sentiment_vector", "plain", lambda: F.sentiment_vector(FEATS), OK)
    yield R(
        "sentiment_vector",
        "eps-0",
        lambda: F.sentiment_vector(FEATS, power_norm=True, eps=0),
        ERR_OR_OK,
        "eps",
    )
    yield R(
        "sentiment_vector", "eps-negative", lambda: F.sentiment_vector(FEATS, eps=-1.0), ERR, "eps"
    )
    yield R(
        "sentiment_vector",
        "eps-nan",
        lambda: F.sentiment_vector(FEATS, eps=float("nan")),
        ERR,
        "eps",
    )
    yield R(
        "sentiment_vector",
        "nan-features",
        lambda: F.sentiment_vector([torch.full((2, 3, 4, 4), float("nan"))]),
        ERR,
        "features",
    )
    yield R(  # issue 18: finite Grams whose norm overflows float32 (it gave zero rows)
        "sentiment_vector",
        "norm-overflow",
        lambda: F.sentiment_vector([torch.full((1, 2, 3, 3), 3e9)]),
        ERR,
        "features are finite but .* overflow",
    )
    yield R("sentiment_vector_size", "plain", lambda: F.sentiment_vector_size([3, 4]), OK)
    yield R(
        "sentiment_vector_size", "negative", lambda: F.sentiment_vector_size([-3]), ERR, "channels"
    )


def _triplet_rows() -> Iterator[Row]:
    R = Row
    yield R("rank_triplets", "plain", lambda: tuple(F.rank_triplets(_labels(), LEVEL, *TRIP)), OK)
    yield R(
        "rank_triplets",
        "negative-index",
        lambda: F.rank_triplets(
            _labels(), LEVEL, torch.tensor([-16]), torch.tensor([-8]), torch.tensor([-15])
        ),
        ERR,
        "anchors|indices",
    )
    yield R(
        "rank_triplets",
        "index-out-of-range",
        lambda: F.rank_triplets(
            _labels(), LEVEL, torch.tensor([0]), torch.tensor([B]), torch.tensor([1])
        ),
        ERR,
        "x|indices",
    )
    yield R(
        "triplet_constraint_losses",
        "plain",
        lambda: F.triplet_constraint_losses(_dist(_emb()), _labels(), *TRIP, 0.1),
        OK,
    )
    yield R(
        "triplet_constraint_losses",
        "index-out-of-range",
        lambda: F.triplet_constraint_losses(
            _dist(_emb()), _labels(), torch.tensor([B]), torch.tensor([1]), torch.tensor([2]), 0.1
        ),
        ERR,
        "anchors|indices",
    )
    yield R(
        "all_ranked_triplets",
        "max-triplets",
        lambda: F.all_ranked_triplets(_labels(), LEVEL, max_triplets=1),
        ERR,
        "max_triplets",
    )
    yield R(
        "pair_levels",
        "level-wrong-shape",
        lambda: F.pair_levels(_labels(), LEVEL[:3, :3]),
        ERR,
        "level|labels",
    )
    yield R(
        "level_masks",
        "self-index-out-of-range",
        lambda: F.level_masks(_labels(), LEVEL, self_index=torch.arange(B) + B),
        ERR,
        "self_index",
    )
    yield R(
        "weighted_distances",
        "theta-wrong-shape",
        lambda: F.weighted_distances(_dist(_emb()), _labels(), theta=torch.ones(3, 3)),
        ERR,
        "theta",
    )
    yield R(
        "constraint_sums",
        "nan-dist",
        lambda: F.constraint_sums(torch.full((B, B), float("nan")), _labels(), LEVEL),
        ERR,
        "dist",
    )
    yield R(
        "sentiment_constraint_loss",
        "reduction-unknown",
        lambda: F.sentiment_constraint_loss(_dist(_emb()), _labels(), LEVEL, reduction="foo"),
        ERR,
        "reduction",
    )  # type: ignore[arg-type]
    yield R(
        "mine_ranked_triplets",
        "strategy-unknown",
        lambda: F.mine_ranked_triplets(_dist(_emb()), _labels(), level=LEVEL, strategy="foo"),
        ERR,
        "strategy",
    )  # type: ignore[arg-type]


def _ranking_rows() -> Iterator[Row]:
    R = Row
    yield R("precision_at_k", "plain", lambda: F.precision_at_k(RL, QL, 3), OK)
    yield R("precision_at_k", "k-too-deep", lambda: F.precision_at_k(RL, QL, 9), ERR, "k")
    yield R("average_precision", "plain", lambda: F.average_precision(RL, QL, NREL), OK)
    yield R(
        "average_precision",
        "count-wrong-length",
        lambda: F.average_precision(RL, QL, NREL[:3]),
        ERR,
        "num_relevant",
    )
    yield R("r_precision", "plain", lambda: F.r_precision(RL, QL, NREL), OK)
    yield R(
        "r_precision", "negative-count", lambda: F.r_precision(RL, QL, -NREL), ERR, "num_relevant"
    )
    yield R("reciprocal_rank", "plain", lambda: F.reciprocal_rank(RL, QL), OK)
    yield R(
        "reciprocal_rank",
        "labels-wrong-length",
        lambda: F.reciprocal_rank(RL, QL[:3]),
        ERR,
        "query_labels",
    )
    yield R("nmrr", "plain", lambda: F.nmrr(RL, QL, NREL, 4), OK)
    yield R("nmrr", "gtm-0", lambda: F.nmrr(RL, QL, NREL, 0), ERR, "gtm")
    yield R("tier_precision", "plain", lambda: F.tier_precision(RL, QL, NREL), OK)
    yield R("tier_precision", "tier-0", lambda: F.tier_precision(RL, QL, NREL, tier=0), ERR, "tier")
    yield R(
        "polarity_precision_at_k", "plain", lambda: F.polarity_precision_at_k(RL, QL, GROUPS, 3), OK
    )
    yield R(
        "polarity_precision_at_k",
        "label-beyond-groups",
        lambda: F.polarity_precision_at_k(RL, QL + C, GROUPS, 3),
        ERR,
        "query_labels|groups",
    )
    yield R(
        "mean_wheel_distance_at_k", "plain", lambda: F.mean_wheel_distance_at_k(RL, QL, DIS, 3), OK
    )
    yield R(
        "mean_wheel_distance_at_k",
        "dis-wrong-shape",
        lambda: F.mean_wheel_distance_at_k(RL, QL, DIS[:3], 3),
        ERR,
        "dis",
    )
    yield R("wheel_ndcg_at_k", "plain", lambda: F.wheel_ndcg_at_k(RL, QL, REC, 3, COUNTS), OK)
    yield R(
        "wheel_ndcg_at_k",
        "label-beyond-relevance",
        lambda: F.wheel_ndcg_at_k(RL, QL + C, REC, 3, COUNTS),
        ERR,
        "query_labels|relevance",
    )
    yield R("wheel_relevance", "plain", lambda: F.wheel_relevance(LEVEL, DIS), OK)
    yield R(
        "wheel_relevance",
        "shape-mismatch",
        lambda: F.wheel_relevance(LEVEL, DIS[:3, :3]),
        ERR,
        "dis|level",
    )
    yield R("wheel_order", "plain", lambda: F.wheel_order(NAMES, GROUPS), OK)
    yield R(
        "wheel_order",
        "groups-wrong-length",
        lambda: F.wheel_order(NAMES, GROUPS[:3]),
        ERR,
        "groups",
    )
    yield R(
        "polarity_accuracy", "plain", lambda: F.polarity_accuracy(_labels(), _labels(), GROUPS), OK
    )
    yield R(
        "polarity_accuracy",
        "preds-out-of-range",
        lambda: F.polarity_accuracy(_labels() + C, _labels(), GROUPS),
        ERR,
        "preds",
    )
    yield R(
        "mean_wheel_distance_of_errors",
        "plain",
        lambda: F.mean_wheel_distance_of_errors(_labels(), _labels().flip(0), DIS),
        OK,
    )
    yield R(
        "mean_wheel_distance_of_errors",
        "preds-out-of-range",
        lambda: F.mean_wheel_distance_of_errors(_labels() + C, _labels(), DIS),
        ERR,
        "preds",
    )
    yield R(
        "hierarchical_average_precision",
        "plain",
        lambda: F.hierarchical_average_precision(RL, QL, GROUPS),
        OK,
    )
    yield R(
        "hierarchical_average_precision",
        "groups-not-1d",
        lambda: F.hierarchical_average_precision(RL, QL, LEVEL),
        ERR,
        "groups",
    )
    yield R(
        "hierarchical_average_precision",
        "label-beyond-groups",
        lambda: F.hierarchical_average_precision(RL, QL + C, GROUPS),
        ERR,
        "query_labels",
    )
    yield R(
        "group_miss_share_at_k",
        "plain",
        lambda: F.group_miss_share_at_k(RL, QL, GROUPS, 3),
        OK,
    )
    yield R(
        "group_miss_share_at_k",
        "k-too-deep",
        lambda: F.group_miss_share_at_k(RL, QL, GROUPS, 9),
        ERR,
        "k",
    )
    yield R(
        "group_miss_share_at_k",
        "ranked-labels-1d",
        lambda: F.group_miss_share_at_k(QL, QL, GROUPS, 1),
        ERR,
        "ranked_labels",
    )
    yield R(
        "group_miss_share_of_errors",
        "plain",
        lambda: F.group_miss_share_of_errors(_labels(), _labels().flip(0), GROUPS),
        OK,
    )
    yield R(
        "group_miss_share_of_errors",
        "preds-out-of-range",
        lambda: F.group_miss_share_of_errors(_labels() + C, _labels(), GROUPS),
        ERR,
        "preds",
    )
    yield R(
        "group_miss_share_of_errors",
        "labels-wrong-length",
        lambda: F.group_miss_share_of_errors(_labels(), _labels()[:3], GROUPS),
        ERR,
        "labels",
    )
    yield R(
        "retrieval_metrics",
        "unknown-metric",
        lambda: F.retrieval_metrics(_emb(), _labels(), relations=REL, metrics=["nope"]),
        ERR,
        "metrics",
    )


def _recipe_rows() -> Iterator[Row]:
    R = Row
    yield R(
        "train",
        "device-tpu",
        lambda: recipes.train(recipes.TrainConfig(device="tpu", out="/nonexistent/x")),
        ERR,
        "device",
    )
    yield R(
        "topk_neighbors",
        "k-too-large",
        lambda: recipes.topk_neighbors(_emb(), _emb(), B + 1),
        ERR,
        "k",
    )
    yield R("topk_neighbors", "plain", lambda: recipes.topk_neighbors(_emb(), _emb(), 3), OK)
    yield R(
        "evaluate_embeddings",
        "one-sample",
        lambda: recipes.evaluate_embeddings(_emb(1), None, _labels(1), NAMES),
        ERR,
        "samples",
    )
    yield R(
        "evaluate_embeddings",
        "one-class",
        lambda: recipes.evaluate_embeddings(_emb(), None, torch.zeros(B, dtype=torch.long), NAMES),
        ERR,
        "class",
    )
    yield R(
        "evaluate_checkpoint",
        "missing",
        lambda: recipes.evaluate_checkpoint("/nonexistent/last.pt", out="/tmp/x"),
        ERR,
        "checkpoint",
    )
    yield R(
        "export_embeddings",
        "bad-suffix",
        lambda: recipes.export_embeddings("/nonexistent/last.pt", "x.csv"),
        ERR,
        "out",
    )
    yield R(
        "retrieve_images",
        "missing",
        lambda: recipes.retrieve_images("/nonexistent/last.pt", ["q"], "g", out="/tmp/x"),
        ERR,
        "checkpoint",
    )
    yield R(
        "build_dataset", "unknown-name", lambda: recipes.build_dataset("nope"), ERR, "dataset|name"
    )
    yield R(
        "stratified_split",
        "bad-fractions",
        lambda: recipes.stratified_split([0, 1] * 4, seed=0, fractions=(0.5, 0.6, 0.1)),
        ERR,
        "fractions",
    )
    yield R(
        "generate_textures", "labels-list", lambda: recipes.generate_textures([0, 1]), ERR, "labels"
    )  # type: ignore[arg-type]
    yield R(
        "generate_textures",
        "image-size-0",
        lambda: recipes.generate_textures(_labels(), 0),
        ERR,
        "image_size",
    )
    yield R(
        "cli.main",
        "device-gpu",
        lambda: _cli_rc(["train", "--device", "gpu", "--out", "/nonexistent/x"]),
        OK,
    )
    yield R(
        "cli.main",
        "textures-out-under-a-file",
        lambda: _cli_rc(["textures", "--out", "/dev/null/x", "--size", "8", "--image-size", "8"]),
        OK,
    )


def _second_order(indices: Any = None) -> torch.Tensor:
    """The gradient of a gradient penalty through the default (fused) loss."""
    x = _emb().double().requires_grad_()
    loss = sm.SentimentConstraintLoss(class_names=NAMES)
    (g,) = torch.autograd.grad(loss(x, _labels(), indices), x, create_graph=True)
    return torch.autograd.grad(g.square().sum(), x)[0]


def _looped_folder() -> int:
    """An image folder with ``ln -s .. awe/up``: each of its 2 images must count once."""
    import tempfile
    from pathlib import Path

    from PIL import Image

    root = Path(tempfile.mkdtemp())
    for emo in ("awe", "fear"):
        (root / emo).mkdir()
        Image.new("RGB", (4, 4)).save(root / emo / "a.png")
    (root / "awe" / "up").symlink_to("..")
    n = len(recipes.build_dataset("folder", root=root))
    if n != 2:
        raise AssertionError(f"{n} samples from 2 images")
    return n


def _set_skip_level() -> None:
    sm.SentimentConstraintLoss(class_names=NAMES).skip_level = "bogus"  # type: ignore[assignment]


def _set_weighting() -> torch.Tensor:
    """``loss.weighting = "none"`` after construction must be what ``weighting="none"`` gives."""
    loss = sm.SentimentConstraintLoss(class_names=NAMES)
    loss(_emb(), _labels())
    loss.weighting = "none"
    got = loss(_emb(), _labels())
    want = sm.SentimentConstraintLoss(class_names=NAMES, weighting="none")(_emb(), _labels())
    if not torch.equal(got, want):
        raise AssertionError(f"weighting set later gives {got}, weighting='none' {want}")
    return got


def _nan_images_training() -> Any:
    """NaN images in training mode: refused, and BatchNorm's statistics left finite."""
    model = _small_model().train()
    images = torch.randn(2, 3, 32, 32)
    images[0, 0, 0, 0] = float("nan")
    try:
        return model(images)
    finally:
        if not all(_finite(b) for b in model.buffers()):
            raise AssertionError("NaN images corrupted the model's buffers")


def _fake_checkpoint(**fields: Any) -> str:
    """A checkpoint file in a new folder holding ``fields`` only (as ``last.pt``)."""
    import tempfile
    from pathlib import Path

    from sentiment_metric.recipes.checkpoint import CHECKPOINT_FORMAT

    path = Path(tempfile.mkdtemp()) / "last.pt"
    torch.save({"format": CHECKPOINT_FORMAT, **fields}, path)
    return str(path)


def _resume_fewer_epochs() -> Any:
    from pathlib import Path

    from sentiment_metric.recipes.checkpoint import RESUME_KEYS

    ckpt = _fake_checkpoint(**{k: {"x": 1} for k in RESUME_KEYS if k != "epoch"}, epoch=3)
    return recipes.train(recipes.TrainConfig(out=str(Path(ckpt).parent), resume=True, epochs=2))


def _hardening_rows() -> Iterator[Row]:
    """Issue 19's classes (and issue 18 item 1), one row or more each."""
    R = Row
    yield R("SentimentConstraintLoss", "double-backward", _second_order, OK)
    yield R("build_dataset", "symlink-loop", _looped_folder, OK)
    yield R(
        "mine_ranked_triplets",
        "generator-str",
        lambda: F.mine_ranked_triplets(_dist(_emb()), _labels(), level=LEVEL, generator="0"),
        ERR,
        "generator",
    )  # type: ignore[arg-type]
    yield R(
        "retrieval_metrics",
        "relations-str",
        lambda: F.retrieval_metrics(_emb(), _labels(), relations="mikels"),
        ERR,
        "relations",
    )  # type: ignore[arg-type]
    yield R(
        "exclude_self",
        "fill-str",
        lambda: F.exclude_self(torch.zeros(B, B), torch.arange(B), "inf"),
        ERR,
        "fill",
    )  # type: ignore[arg-type]
    yield R(
        "triplet_constraint_losses",
        "dist-meta",
        lambda: F.triplet_constraint_losses(
            torch.empty(B, B, device="meta"), _labels(), *TRIP, 0.1
        ),
        ERR,
        "dist",
    )
    for case, knn in {
        "knn-short-rows": lambda q, k, r, same: (None, torch.zeros(2, k, dtype=torch.long)),
        "knn-out-of-range": lambda q, k, r, same: (None, torch.full((len(q), k), 99)),
        "knn-float": lambda q, k, r, same: (None, torch.zeros(len(q), k)),
    }.items():
        yield R(
            "retrieval_metrics",
            case,
            lambda knn=knn: F.retrieval_metrics(_emb(), _labels(), relations=REL, k=3, knn_fn=knn),
            ERR,
            "knn_fn",
        )
    yield R("GramSentimentVector", "activation-function", lambda: _gram(activation=torch.relu),
            ERR, "activation")  # fmt: skip
    for case, x in {
        "empty-map": torch.zeros(2, 3, 0, 4),
        "meta": torch.empty(2, 3, 4, 4, device="meta"),
    }.items():
        yield R("gram_matrix", case, lambda x=x: F.gram_matrix(x, normalize=True), ERR, "x")
        yield R("sentiment_vector", case, lambda x=x: F.sentiment_vector([x]), ERR, "features")
    yield R(
        "SentimentCrossBatchMemory",
        "enqueue-only",
        lambda: (
            _memory_d(_emb()) * 0
            + sm.SentimentCrossBatchMemory(
                sm.SentimentConstraintLoss(class_names=NAMES), embedding_size=D, memory_size=64
            )(_emb(), _labels(), enqueue_mask=torch.ones(B, dtype=torch.bool))
        ),
        OK,
    )
    yield R("TrainConfig", "margins-one", lambda: recipes.TrainConfig(margins=[1]), ERR, "margins")
    yield R("TrainConfig", "seed-2**70", lambda: recipes.TrainConfig(seed=2**70), ERR, "seed")
    yield R(
        "SentimentSemiHardMiner",
        "seed-2**70",
        lambda: sm.SentimentSemiHardMiner(class_names=NAMES, seed=2**70),
        ERR,
        "seed",
    )
    yield R(
        "LabelRelations",
        "from-groups-overflow",
        lambda: sm.LabelRelations.from_groups([0, 2**70]),
        ERR,
        "groups",
    )
    yield R(
        "EmotionWheel",
        "colliding-aliases",
        lambda: _wheel(aliases={"Joyful": "joy", "joyful": "grief"}),
        ERR,
        "alias",
    )
    yield R("exact_knn", "huge-query", lambda: F.exact_knn(_emb() * 1e20, None, 3), ERR, "query")
    for case, m in {"nan": float("nan"), "inf": float("inf"), "str": "0.1"}.items():
        yield R(
            "triplet_constraint_losses",
            f"margins-{case}",
            lambda m=m: F.triplet_constraint_losses(_dist(_emb()), _labels(), *TRIP, m),
            ERR,
            "margins",
        )
    yield R(
        "triplet_constraint_losses",
        "margins-tensor-nan",
        lambda: F.triplet_constraint_losses(
            _dist(_emb()), _labels(), *TRIP, torch.tensor([0.1, float("nan")])
        ),
        ERR,
        "margins",
    )
    yield R(
        "evaluate_checkpoint",
        "no-epoch",
        lambda: recipes.evaluate_checkpoint(
            _fake_checkpoint(config={"x": 1}, class_names=["awe"], model={"x": 1}), out="/tmp/x"
        ),
        ERR,
        "epoch",
    )
    yield R("train", "resume-fewer-epochs", _resume_fewer_epochs, ERR, "epochs")
    yield R("SentimentModel", "nan-images-training", _nan_images_training, ERR, "images")
    e, y = _emb(), _labels()
    for case, si in {
        "self-index-minus-2": torch.full((B,), -2),
        "self-index-past-r": y + B,
    }.items():
        yield R(
            "SentimentConstraintLoss",
            case,
            lambda si=si: sm.SentimentConstraintLoss(class_names=NAMES)(
                e, y, ref_emb=e, ref_labels=y, self_index=si
            ),
            ERR,
            "self_index",
        )
        yield R(
            "mine_ranked_triplets",
            case,
            lambda si=si: F.mine_ranked_triplets(_dist(e), y, y, level=LEVEL, self_index=si),
            ERR,
            "self_index",
        )
    yield R("SentimentConstraintLoss", "set-skip-level-bogus", _set_skip_level, ERR, "skip_level")
    yield R("SentimentConstraintLoss", "set-weighting", _set_weighting, OK)
    yield R(
        "SentimentConstraintLoss",
        "weighting-1e38",
        lambda: sm.SentimentConstraintLoss(class_names=NAMES, weighting=torch.full((C, C), 1e38)),
        ERR,
        "weighting",
    )
    yield R(
        "SentimentConstraintLoss",
        "wheel-margin-7e37",
        lambda: sm.SentimentConstraintLoss(class_names=NAMES, wheel_margin=7e37),
        ERR,
        "wheel_margin",
    )
    yield R(
        "SentimentSemiHardMiner",
        "per-pair-huge",
        lambda: sm.SentimentSemiHardMiner(
            class_names=NAMES, strategy="random", per_pair=10**6, seed=0
        )(_emb(), _labels()),
        OK,
    )
    yield R(
        "SentimentSemiHardMiner",
        "margins-near-max",
        lambda: sm.SentimentSemiHardMiner(class_names=NAMES, margins=(1.7e308, 1.7e308)),
        ERR,
        "margins",
    )
    yield R(
        "LabelRelations",
        "groups-fractional",
        lambda: sm.LabelRelations(LEVEL, groups=[0, 0, 0, 0.5, 1, 1, 1, 1]),
        ERR,
        "groups",
    )
    for name in ("SentimentConstraintLoss", "SentimentSemiHardMiner", "MultiTaskSentimentLoss",
                 "SentimentCrossBatchMemory", "retrieval_metrics", "AffectiveAccuracyCalculator",
                 "per_query_retrieval_metrics"):  # fmt: skip
        f, arg = BATCH_ENTRIES[name]
        yield R(name, "emb-huge", lambda f=f: f(_emb() * 1e20, _labels()), ERR, arg + "|norm")
    yield R(
        "SentimentConstraintLoss",
        "double-backward-mined",
        lambda: _second_order(
            sm.SentimentSemiHardMiner(class_names=NAMES, seed=0)(_emb().double(), _labels())
        ),
        OK,
    )


def _memory_d(e: torch.Tensor) -> Any:
    loss = sm.SentimentConstraintLoss(class_names=NAMES)
    return sm.SentimentCrossBatchMemory(loss, embedding_size=D, memory_size=64)(e, _labels())


def _cli_rc(argv: Sequence[str]) -> float:
    rc = cli_main(list(argv))
    if rc != 1:
        raise AssertionError(f"exit status {rc}, expected 1")
    return 0.0


def _all_rows() -> list[Row]:
    rows: list[Row] = []
    for name, (f, arg) in BATCH_ENTRIES.items():
        rows += _batch_rows(name, f, arg)
    for name, g in LABEL_ONLY_ENTRIES.items():
        rows += _label_rows(name, g)
    for part in (_wheel_and_module_rows, _model_rows, _triplet_rows, _ranking_rows, _recipe_rows):
        rows += part()
    rows += _hardening_rows()
    rows += _hierarchy_rows()
    return [_with_owner(r) for r in rows]


# -- rows whose fix lives in a module owned elsewhere (xfail strict; see the report) ----------
OWNERS: dict[tuple[str, str], str] = {}


def _with_owner(row: Row) -> Row:
    owner = OWNERS.get((row.entry, row.case), "")
    return Row(row.entry, row.case, row.call, row.expect, row.arg, row.reference, owner)


ROWS = _all_rows()


def _param(row: Row) -> Any:
    marks = []
    if row.owner:
        marks.append(pytest.mark.xfail(strict=True, reason=f"owner: {row.owner}; fix pending"))
    return pytest.param(row, id=row.id, marks=marks)


@pytest.mark.parametrize("row", [_param(r) for r in ROWS])
def test_bad_input_matrix(row: Row) -> None:
    if row.expect == ERR:
        with pytest.raises(SentimentMetricError, match=row.arg):
            row.call()
        return
    try:
        out = row.call()
    except SentimentMetricError as err:
        if row.expect == ERR_OR_OK and (not row.arg or _names(err, row.arg)):
            return
        raise
    assert _finite(out), f"{row.id}: a non-finite result {out!r}"
    if row.expect == SAME:
        assert row.reference is not None
        assert _same(out, row.reference()), f"{row.id}: differs from the reference call"


def _names(err: BaseException, arg: str) -> bool:
    import re

    return re.search(arg, str(err)) is not None


# -- completeness: every public name has a row, or a stated reason to have none ---------------
NO_ROW: dict[str, str] = {
    "MIKELS_WHEEL": "a constant EmotionWheel (its checks: the EmotionWheel rows)",
    "PLUTCHIK_WHEEL": "a constant EmotionWheel",
    "SentimentMetricError": "the error itself",
    "__version__": "a string",
    "functional": "a module (its names are enumerated here)",
    "MEASURES": "a read-only registry (tests/functional/test_retrieval_registry.py)",
    "MINING_STRATEGIES": "a tuple of names (the strategy-unknown rows)",
    "REDUCTIONS": "a tuple of names (the reduction-unknown row)",
    "RETRIEVAL_METRICS": "a tuple of names (the unknown-metric row)",
    "SKIP_LEVEL_OPTIONS": "a tuple of names",
    "ConstraintSums": "a result type (NamedTuple) the functions return",
    "Measure": "a registry record type",
    "MinedTriplets": "a result type (NamedTuple)",
    "MiningStrategy": "a typing Literal",
    "RankedTriplets": "a result type (NamedTuple)",
    # recipes: constants, dataset classes (their bad inputs: tests/recipes/test_datasets.py),
    # result types
    "ABLATION_ROWS": "a constant table",
    "DATASETS": "the registry (the build_dataset rows)",
    "IMAGENET_MEAN": "a constant",
    "IMAGENET_STD": "a constant",
    "FI": "a dataset class (tests/recipes/test_datasets.py)",
    "Abstract": "a dataset class (tests/recipes/test_datasets.py)",
    "AffectiveTextures": "a dataset class (tests/recipes/test_textures.py)",
    "ArtPhoto": "a dataset class (tests/recipes/test_datasets.py)",
    "EmoSet": "a dataset class (tests/recipes/test_datasets.py)",
    "EmotionImageDataset": "a dataset class (tests/recipes/test_datasets.py)",
    "EmotionImageFolder": "a dataset class (tests/recipes/test_datasets.py)",
    "DistributedMPerClassSampler": "a sampler (tests/recipes/test_distributed.py)",
    "TrainConfig": "a config (tests/recipes/test_config.py checks every field)",
    "TrainResult": "a result type",
    "compute_embeddings": "needs a model and images (tests/recipes/test_hardening.py)",
    "evaluate_model": "needs a model and images (tests/recipes/test_hardening.py)",
    "run_ablation": "a long run (tests/recipes/test_cli.py, ablation --quick)",
    "eval_transform": "a torchvision transform factory",
    "train_transform": "a torchvision transform factory",
}


def test_every_public_name_has_a_row() -> None:
    public = set(sm.__all__) | set(F.__all__) | set(recipes.__all__)
    covered = {r.entry.split("[")[0] for r in ROWS}
    missing = sorted(public - covered - set(NO_ROW))
    assert not missing, f"public names without a row in the bad-input matrix: {missing}"
    stale = sorted(set(NO_ROW) - public)
    assert not stale, f"NO_ROW names that are no longer public: {stale}"
