"""SentimentSemiHardMiner inside pytorch-metric-learning: outputs, options, PML wrappers."""

from __future__ import annotations

import os
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pytorch_metric_learning import losses
from pytorch_metric_learning.distances import CosineSimilarity, LpDistance
from pytorch_metric_learning.utils import distributed as pml_dist

import sentiment_metric as sm
from sentiment_metric import SentimentMetricError

from .conftest import MIKELS_FI_ORDER
from .opcount import top_level_aten_ops
from .oracle import THETA, check_invariants, naive_all

LEVEL = sm.MIKELS_WHEEL.relations(MIKELS_FI_ORDER).level


def make_batch(n: int, seed: int = 0, dim: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, dim, generator=g), torch.randint(0, 8, (n,), generator=g)


def levels_ok(labels: torch.Tensor, ref_labels: torch.Tensor, t: tuple) -> bool:
    a, c, f = t
    la = LEVEL[labels[a], ref_labels[c]]
    lf = LEVEL[labels[a], ref_labels[f]]
    return bool((la + 1 == lf).all())


# --------------------------------------------------------------------------- outputs


def mined_from_miner(miner: sm.SentimentSemiHardMiner, out: tuple) -> sm.functional.MinedTriplets:
    """The miner's 3-tuple with the counts it recorded (``collect_stats=True``)."""
    return sm.functional.MinedTriplets(
        *out,
        miner.num_relative_triplets,
        miner.num_negative_triplets,
        miner.num_empty_band_triplets,
    )


@settings(max_examples=20, deadline=None)
@given(
    labels=st.lists(st.integers(0, 7), min_size=1, max_size=20),
    strategy=st.sampled_from(["semihard", "hard", "random", "all"]),
    per_pair=st.integers(1, 2),
)
@example(labels=[4] * 5, strategy="semihard", per_pair=1)
@example(labels=list(range(8)), strategy="all", per_pair=1)
def test_miner_output_follows_the_rules(labels: list[int], strategy: str, per_pair: int) -> None:
    emb = torch.randn(len(labels), 6, generator=torch.Generator().manual_seed(len(labels)))
    emb = emb.double()
    y = torch.tensor(labels)
    miner = sm.SentimentSemiHardMiner(
        class_names=MIKELS_FI_ORDER, strategy=strategy, per_pair=per_pair, seed=1,  # type: ignore[arg-type]
        collect_stats=True,
    )  # fmt: skip
    out = miner(emb, y)
    assert len(out) == 3 and all(t.dtype == torch.long for t in out)
    xn = torch.nn.functional.normalize(emb, dim=1)
    dist64 = torch.cdist(xn, xn) ** 2  # PML's LpDistance(power=2), in float64
    check_invariants(
        mined_from_miner(miner, out), dist64, labels, labels, strategy=strategy,
        per_pair=per_pair, margins=(0.2, 0.1), inverted=False, exclude_self=True,
    )  # fmt: skip
    if strategy == "all":
        assert sorted(zip(*(t.tolist() for t in out))) == sorted(
            naive_all(labels, labels, LEVEL, exclude_self=True)
        )


def test_every_anchor_positive_pair_is_used() -> None:
    emb, labels = make_batch(40, seed=3)
    for strategy in ("semihard", "hard", "random"):
        miner = sm.SentimentSemiHardMiner(class_names=MIKELS_FI_ORDER, strategy=strategy, seed=0)  # type: ignore[arg-type]
        a, c, _ = miner(emb, labels)
        pairs = set(zip(a.tolist(), c.tolist()))
        same = labels[:, None] == labels[None, :]
        same.fill_diagonal_(False)
        positives = set(zip(*(t.tolist() for t in same.nonzero(as_tuple=True))))
        assert positives <= pairs


def test_stats_are_recorded() -> None:
    emb, labels = make_batch(32, seed=1)
    miner = sm.SentimentSemiHardMiner(class_names=MIKELS_FI_ORDER, collect_stats=True, seed=0)
    a, _, _ = miner(emb, labels)
    assert miner.num_triplets == len(a)
    assert miner.num_relative_triplets + miner.num_negative_triplets == len(a)
    assert 0 <= miner.num_empty_band_triplets <= len(a)
    assert "num_relative_triplets" in miner._record_these_stats


def test_seed_reproduces() -> None:
    emb, labels = make_batch(48, seed=2)
    out1 = sm.SentimentSemiHardMiner(class_names=MIKELS_FI_ORDER, seed=5)(emb, labels)
    out2 = sm.SentimentSemiHardMiner(class_names=MIKELS_FI_ORDER, seed=5)(emb, labels)
    assert all(torch.equal(x, y) for x, y in zip(out1, out2))


def test_cosine_similarity_band_direction() -> None:
    emb, labels = make_batch(32, seed=4)
    emb = emb.double()
    xn = torch.nn.functional.normalize(emb, dim=1)
    for distance, mat, inverted in (
        (CosineSimilarity(), xn @ xn.T, True),
        (LpDistance(power=2), torch.cdist(xn, xn) ** 2, False),
    ):
        miner = sm.SentimentSemiHardMiner(
            class_names=MIKELS_FI_ORDER, distance=distance, margins=(0.3, 0.3), per_pair=2,
            seed=0, collect_stats=True,
        )  # fmt: skip
        out = miner(emb, labels)
        assert miner.num_empty_band_triplets < len(out[0]) // 2  # the bands are mostly used
        check_invariants(
            mined_from_miner(miner, out), mat, labels.tolist(), labels.tolist(),
            strategy="semihard", per_pair=2, margins=(0.3, 0.3), inverted=inverted,
            exclude_self=True,
        )  # fmt: skip


def test_ref_emb() -> None:
    emb, labels = make_batch(10, seed=5)
    ref, ref_labels = make_batch(14, seed=6)
    ref = torch.cat([emb, ref])
    ref_labels = torch.cat([labels, ref_labels])
    miner = sm.SentimentSemiHardMiner(class_names=MIKELS_FI_ORDER, strategy="all")
    out = miner(emb, labels, ref, ref_labels)
    assert int(out[0].max()) < 10 and int(out[1].max()) < 24 and int(out[2].max()) < 24
    assert levels_ok(labels, ref_labels, out)
    got = sorted(zip(*(t.tolist() for t in out)))
    assert got == sorted(naive_all(labels.tolist(), ref_labels.tolist(), LEVEL, False))
    assert any(a == c for a, c, _ in got)  # like PML, self-pairs stay with a separate ref


def test_works_with_pml_triplet_margin_loss_and_backward() -> None:
    emb, labels = make_batch(32, seed=7)
    emb.requires_grad_(True)
    miner = sm.SentimentSemiHardMiner(class_names=MIKELS_FI_ORDER, seed=0)
    loss_fn = losses.TripletMarginLoss(margin=0.1, distance=LpDistance(power=2))
    loss = loss_fn(emb, labels, miner(emb, labels))
    loss.backward()
    assert torch.isfinite(loss) and emb.grad is not None and torch.isfinite(emb.grad).all()


def test_works_with_the_sentiment_loss() -> None:
    if not hasattr(sm, "SentimentConstraintLoss"):
        pytest.skip("SentimentConstraintLoss not available yet")
    emb, labels = make_batch(32, seed=8)
    emb.requires_grad_(True)
    miner = sm.SentimentSemiHardMiner(class_names=MIKELS_FI_ORDER, seed=0)
    loss_fn = sm.SentimentConstraintLoss(class_names=MIKELS_FI_ORDER)
    loss = loss_fn(emb, labels, miner(emb, labels))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(emb.grad).all()  # type: ignore[arg-type]


def test_device_and_half_precision(device: torch.device) -> None:
    emb, labels = make_batch(24, seed=9)
    miner = sm.SentimentSemiHardMiner(class_names=MIKELS_FI_ORDER, seed=0).to(device)
    for dtype in (torch.float32, torch.float16):
        out = miner(emb.to(device, dtype), labels.to(device))
        assert all(t.device.type == device.type for t in out)
        assert levels_ok(labels, labels, tuple(t.cpu() for t in out))


def test_repr_and_relations_and_weighting() -> None:
    miner = sm.SentimentSemiHardMiner(
        relations=sm.LabelRelations.from_groups([0, 0, 1, 1]), strategy="hard", per_pair=2,
        weighting="none",
    )  # fmt: skip
    text = repr(miner)
    assert "strategy='hard'" in text and "per_pair=2" in text and "num_classes=4" in text
    assert torch.equal(miner.theta, torch.ones(4, 4, dtype=torch.float64))
    w = torch.rand(8, 8) + 0.5
    m2 = sm.SentimentSemiHardMiner(class_names=MIKELS_FI_ORDER, weighting=w)
    assert torch.allclose(m2.theta, w.double()) and "tensor(8, 8)" in repr(m2)


# --------------------------------------------------------------------------- distributed


def _ddp_worker(rank: int, world: int, store: str, errfile: str) -> None:
    torch.set_num_threads(1)
    # a file rendezvous: no TCP port to race for with other tests running in parallel
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        emb, labels = make_batch(12, seed=rank)
        others = [torch.empty_like(labels) for _ in range(world)]
        dist.all_gather(others, labels)
        all_labels = torch.cat([labels] + [o for i, o in enumerate(others) if i != rank])
        for efficient in (False, True):
            miner = sm.SentimentSemiHardMiner(class_names=MIKELS_FI_ORDER, seed=rank)
            wrapped = pml_dist.DistributedMinerWrapper(miner, efficient=efficient)
            a, c, f = wrapped(emb, labels)
            anchors = labels if efficient else all_labels
            assert len(a) > 0
            assert int(a.max()) < len(anchors) and int(c.max()) < 24 and int(f.max()) < 24
            assert bool((a != c).all()) and bool((a != f).all())
            lc = LEVEL[anchors[a], all_labels[c]]
            assert bool((lc + 1 == LEVEL[anchors[a], all_labels[f]]).all())
    except BaseException as err:
        with open(errfile, "a") as fh:
            fh.write(f"rank {rank}: {err!r}\n")
        raise
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed unavailable")
def test_distributed_miner_wrapper_two_processes() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        errfile = os.path.join(tmp, "err.txt")
        try:
            store = os.path.join(tmp, "store")
            mp.spawn(_ddp_worker, args=(2, store, errfile), nprocs=2, join=True)
        except Exception as err:  # pragma: no cover - the message says which rank failed
            msg = open(errfile).read() if os.path.exists(errfile) else ""
            raise AssertionError(f"distributed mining failed: {msg or err}") from err


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"strategy": "hardest"}, "'semihard', 'hard', 'random', 'all'"),
        ({"margins": (-0.1, 0.1)}, r"margins\[0\]"),
        ({"margins": (0.1, 0.1, 0.1)}, "2 values"),
        ({"margins": 0.2}, "pair"),
        ({"per_pair": 0}, "per_pair"),
        ({"per_pair": 1.5}, "per_pair"),
        ({"weighting": "wheel"}, "'inverse_wheel', 'none'"),
        ({"weighting": torch.ones(3, 3)}, r"\(8, 8\)"),
        ({"seed": "0"}, "seed"),
        ({"class_names": None}, "class_names"),
        ({"class_names": ["amusement", "joy"]}, "joy"),
    ],
)
def test_bad_construction(kwargs: dict, match: str) -> None:
    args: dict = {"class_names": MIKELS_FI_ORDER}
    args.update(kwargs)
    with pytest.raises(SentimentMetricError, match=match):
        sm.SentimentSemiHardMiner(**args)


@pytest.mark.parametrize(
    ("emb", "labels", "ref", "match"),
    [
        (torch.randn(4, 3), torch.zeros(4, 1, dtype=torch.long), None, "1-D"),
        (torch.randn(4, 3), torch.tensor([0, 1, 2, 8]), None, r"\[0, 7\]"),
        (torch.randn(4, 3), torch.tensor([0, -1, 2, 3]), None, r"\[0, 7\]"),
        (torch.randn(4, 3), torch.full((4,), 0.5), None, "integer"),
        (torch.full((4, 3), float("nan")), torch.zeros(4, dtype=torch.long), None, "NaN"),
        (torch.randn(4, 3), torch.zeros(5, dtype=torch.long), None, "5 entries"),
        (torch.randn(4), torch.zeros(4, dtype=torch.long), None, "embeddings"),
        (torch.randn(0, 3), torch.zeros(0, dtype=torch.long), None, "empty"),
        (torch.randn(4, 3), torch.zeros(4, dtype=torch.long), (torch.randn(5, 2), None), "both"),
        (
            torch.randn(4, 3),
            torch.zeros(4, dtype=torch.long),
            (torch.randn(5, 2), torch.zeros(5, dtype=torch.long)),
            "embedding size",
        ),
        (
            torch.randn(4, 3),
            torch.zeros(4, dtype=torch.long),
            (torch.randn(5, 3), torch.zeros(6, dtype=torch.long)),
            "ref_labels",
        ),
        (
            torch.randn(4, 3),
            torch.zeros(4, dtype=torch.long),
            (torch.full((5, 3), float("inf")), torch.zeros(5, dtype=torch.long)),
            "ref_emb must be finite",
        ),
        (torch.randn(4, 3), torch.zeros(4, dtype=torch.long), (None, torch.zeros(4)), "without"),
    ],
)
def test_bad_call(emb: torch.Tensor, labels: torch.Tensor, ref: tuple | None, match: str) -> None:
    miner = sm.SentimentSemiHardMiner(class_names=MIKELS_FI_ORDER)
    ref_emb, ref_labels = ref if ref is not None else (None, None)
    with pytest.raises(SentimentMetricError, match=match):
        miner(emb, labels, ref_emb, ref_labels)


def test_validate_false_skips_value_checks() -> None:
    miner = sm.SentimentSemiHardMiner(class_names=MIKELS_FI_ORDER, validate=False)
    emb, labels = make_batch(16)
    emb[0, 0] = float("nan")
    a, c, f = miner(emb, labels)  # no value check: runs (garbage in, tuples out)
    assert levels_ok(labels, labels, (a, c, f))


def test_num_triplets_always_and_pml_margin_stats() -> None:
    """PML's records: num_triplets on every call; TripletMarginMiner's three with collect_stats,
    over every ranked triplet (naive loops, float64)."""
    emb, labels = make_batch(12, seed=3)
    emb = emb.double()
    plain = sm.SentimentSemiHardMiner(class_names=MIKELS_FI_ORDER, seed=0)
    a, _, _ = plain(emb, labels)
    assert plain.num_triplets == len(a)
    miner = sm.SentimentSemiHardMiner(class_names=MIKELS_FI_ORDER, collect_stats=True, seed=0)
    miner(emb, labels)
    mat = miner.distance(emb)
    trip = naive_all(labels.tolist(), labels.tolist(), LEVEL, exclude_self=True)
    y = labels.tolist()
    q = [[float(THETA[y[i], y[j]] * mat[i, j]) for j in range(len(y))] for i in range(len(y))]
    pos = sum(float(mat[a, c]) for a, c, _ in trip) / len(trip)
    neg = sum(float(mat[a, f]) for a, _, f in trip) / len(trip)
    margin = sum(q[a][f] - q[a][c] for a, c, f in trip) / len(trip)
    for name in ("pos_pair_dist", "neg_pair_dist", "avg_triplet_margin"):
        assert name in miner._record_these_stats
    assert miner.pos_pair_dist == pytest.approx(pos)
    assert miner.neg_pair_dist == pytest.approx(neg)
    assert miner.avg_triplet_margin == pytest.approx(margin)


# --------------------------------------------------------------------------- the fast path


def test_default_call_issues_at_most_30_ops() -> None:
    """Issue 12: one default call (value checks included) is at most 30 top-level ops."""
    emb, labels = make_batch(64, seed=11, dim=32)
    miner = sm.SentimentSemiHardMiner(class_names=MIKELS_FI_ORDER, seed=0)
    assert top_level_aten_ops(lambda: miner(emb, labels)) <= 30


@pytest.mark.parametrize("strategy", ["semihard", "hard", "random"])
@pytest.mark.parametrize("per_pair", [1, 2])
def test_unit_row_path_draws_what_the_distance_path_draws(strategy: str, per_pair: int) -> None:
    """validate=True reads 2 - 2·cos from one product; validate=False goes through the distance
    module: same rules, same generator stream, so the same triplets (float64, no ties)."""
    emb, labels = make_batch(40, seed=12)
    emb = emb.double()
    outs = []
    for validate in (True, False):
        miner = sm.SentimentSemiHardMiner(
            class_names=MIKELS_FI_ORDER, strategy=strategy, per_pair=per_pair, seed=3,  # type: ignore[arg-type]
            validate=validate, collect_stats=True,
        )  # fmt: skip
        out = miner(emb, labels)
        outs.append((out, miner.num_relative_triplets, miner.num_empty_band_triplets))
    (fast, n_rel, n_empty), (slow, m_rel, m_empty) = outs
    assert all(torch.equal(x, y) for x, y in zip(fast, slow))
    assert (n_rel, n_empty) == (m_rel, m_empty)


@pytest.mark.parametrize("strategy", ["semihard", "hard", "random"])
@pytest.mark.parametrize("per_pair", [1, 3])
@pytest.mark.parametrize("with_ref", [False, True])
def test_large_batch_path_draws_what_the_planes_draw(
    monkeypatch: pytest.MonkeyPatch, strategy: str, per_pair: int, with_ref: bool
) -> None:
    """From ``LISTED_MIN_PAIRS`` entries on, the miner lists the closer pairs and counts each
    row's levels instead of searching them: the same triplets, counts and empty bands as the
    four-plane search (float32, with duplicated rows: exact ties in the keys)."""
    import sentiment_metric.functional.mining as fm

    emb, labels = make_batch(48, seed=21)
    emb[5] = emb[9]
    emb[11] = emb[9]
    args: tuple[torch.Tensor, ...] = (emb, labels)
    if with_ref:
        args = (emb, labels, *make_batch(36, seed=22))
    outs = []
    for threshold in (1 << 62, 1):
        monkeypatch.setattr(fm, "LISTED_MIN_PAIRS", threshold)
        miner = sm.SentimentSemiHardMiner(
            class_names=MIKELS_FI_ORDER, strategy=strategy, per_pair=per_pair, seed=5,  # type: ignore[arg-type]
            collect_stats=True,
        )  # fmt: skip
        out = miner(*args)
        outs.append((out, miner.num_relative_triplets, miner.num_empty_band_triplets))
    (grid, n_rel, n_empty), (listed, m_rel, m_empty) = outs
    assert len(grid[0]) > 0
    assert all(torch.equal(x, y) for x, y in zip(grid, listed))
    assert (n_rel, n_empty) == (m_rel, m_empty)


def test_unit_row_path_with_a_reference_set() -> None:
    emb, labels = make_batch(10, seed=13)
    ref, ref_labels = make_batch(30, seed=14)
    emb, ref = emb.double(), ref.double()
    miner = sm.SentimentSemiHardMiner(
        class_names=MIKELS_FI_ORDER, per_pair=2, seed=0, collect_stats=True
    )
    out = miner(emb, labels, ref, ref_labels)
    xn = torch.nn.functional.normalize(emb, dim=1)
    rn = torch.nn.functional.normalize(ref, dim=1)
    check_invariants(
        mined_from_miner(miner, out), torch.cdist(xn, rn) ** 2, labels.tolist(),
        ref_labels.tolist(), strategy="semihard", per_pair=2, margins=(0.2, 0.1),
        inverted=False, exclude_self=False,
    )  # fmt: skip


def test_a_zero_embedding_is_read_by_the_distance_module() -> None:
    """A zero row (PML's normalize keeps it zero: distance 1 to unit rows, 0 to another zero
    row) is no error; the batch takes the distance module's path and follows the rules."""
    emb, labels = make_batch(24, seed=15)
    emb = emb.double()
    emb[[3, 7]] = 0.0
    miner = sm.SentimentSemiHardMiner(class_names=MIKELS_FI_ORDER, seed=0, collect_stats=True)
    out = miner(emb, labels)
    xn = torch.nn.functional.normalize(emb, dim=1)
    check_invariants(
        mined_from_miner(miner, out), torch.cdist(xn, xn) ** 2, labels.tolist(),
        labels.tolist(), strategy="semihard", per_pair=1, margins=(0.2, 0.1), inverted=False,
        exclude_self=True,
    )  # fmt: skip


def test_tables_follow_the_margins_and_the_device() -> None:
    emb, labels = make_batch(32, seed=16)
    emb = emb.double()
    miner = sm.SentimentSemiHardMiner(class_names=MIKELS_FI_ORDER, seed=0, collect_stats=True)
    miner(emb, labels)
    miner.margins = (0.5, 0.05)  # the cached tables are rebuilt for the new band
    miner.wheel_margin = 0.1
    out = miner(emb, labels)
    xn = torch.nn.functional.normalize(emb, dim=1)
    d = torch.cdist(xn, xn) ** 2
    rel = sm.MIKELS_WHEEL.relations(MIKELS_FI_ORDER)
    q = sm.functional.weighted_distances(d, labels, theta=THETA, offset=0.1 * rel.dis.double())
    check_invariants(
        mined_from_miner(miner, out), q, labels.tolist(), labels.tolist(), strategy="semihard",
        per_pair=1, margins=(0.5, 0.05), inverted=False, exclude_self=True,
        theta=torch.ones(8, 8, dtype=torch.float64),
    )  # fmt: skip
