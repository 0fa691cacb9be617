"""mine_ranked_triplets against a naive float64 enumeration written from the definitions."""

from __future__ import annotations

import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

import sentiment_metric as sm
from sentiment_metric import SentimentMetricError
from sentiment_metric.functional import MINING_STRATEGIES, mine_ranked_triplets
from sentiment_metric.functional._frames import sample_offsets

from ..conftest import MIKELS_FI_ORDER
from ..oracle import check_invariants, naive_all, triplet_list

REL = sm.MIKELS_WHEEL.relations(MIKELS_FI_ORDER)
LEVEL = REL.level
THETA = 1.0 / REL.dis.double()  # as the miner and the loss hold it
C = REL.num_classes


# --------------------------------------------------------------------------- naive references


def sq_dist(x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    x = torch.nn.functional.normalize(x, dim=1)
    y = x if y is None else torch.nn.functional.normalize(y, dim=1)
    return torch.cdist(x, y) ** 2


labels_st = st.lists(st.integers(0, C - 1), min_size=1, max_size=20)


# --------------------------------------------------------------------------- exhaustive mode


@settings(max_examples=30, deadline=None)
@given(labels=labels_st, seed=st.integers(0, 2**16))
@example(labels=[3] * 6, seed=0)  # one class only: nothing to compare
@example(labels=list(range(8)), seed=1)  # one per class: no positives
@example(labels=[0, 0, 5, 5, 5], seed=2)  # most classes absent
def test_all_is_exactly_the_exhaustive_set(labels: list[int], seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    dist = sq_dist(torch.randn(len(labels), 6, generator=g, dtype=torch.float64))
    y = torch.tensor(labels)
    out = mine_ranked_triplets(dist, y, level=LEVEL, theta=THETA, strategy="all")
    got = triplet_list(out)
    expected = naive_all(labels, labels, LEVEL, exclude_self=True)
    assert len(got) == len(set(got))
    assert sorted(got) == sorted(expected)
    check_invariants(
        out, dist, labels, labels, strategy="all", per_pair=1, margins=(0.2, 0.1),
        inverted=False, exclude_self=True,
    )  # fmt: skip


def test_all_with_reference_set_keeps_self_pairs() -> None:
    g = torch.Generator().manual_seed(3)
    labels = torch.randint(0, C, (7,), generator=g)
    ref = torch.cat([labels, torch.randint(0, C, (5,), generator=g)])
    dist = torch.rand(7, 12, generator=g, dtype=torch.float64)
    out = mine_ranked_triplets(dist, labels, ref, level=LEVEL, strategy="all")
    expected = naive_all(labels.tolist(), ref.tolist(), LEVEL, exclude_self=False)
    assert sorted(triplet_list(out)) == sorted(expected)
    assert any(a == c for a, c, _ in triplet_list(out))


def test_all_on_a_larger_batch_counts_by_level() -> None:
    g = torch.Generator().manual_seed(4)
    labels = torch.randint(0, C, (40,), generator=g)
    dist = torch.rand(40, 40, generator=g)
    big = mine_ranked_triplets(dist, labels, level=LEVEL, strategy="all")
    assert sorted(triplet_list(big)) == sorted(
        naive_all(labels.tolist(), labels.tolist(), LEVEL, exclude_self=True)
    )
    naive = naive_all(labels.tolist(), labels.tolist(), LEVEL, exclude_self=True)
    assert big.num_relative == sum(1 for a, c, _ in naive if int(LEVEL[labels[a], labels[c]]) == 0)
    assert big.num_relative + big.num_negative == len(naive)


# --------------------------------------------------------------------------- sampling strategies


@settings(max_examples=40, deadline=None)
@given(
    labels=labels_st,
    strategy=st.sampled_from(["semihard", "hard", "random"]),
    per_pair=st.integers(1, 3),
    inverted=st.booleans(),
    seed=st.integers(0, 2**16),
)
@example(labels=[1] * 5, strategy="semihard", per_pair=1, inverted=False, seed=0)
@example(labels=list(range(8)), strategy="semihard", per_pair=2, inverted=False, seed=0)
@example(labels=[0, 0, 0, 2, 7, 7], strategy="hard", per_pair=2, inverted=True, seed=0)
def test_sampling_strategies_follow_their_rules(
    labels: list[int], strategy: str, per_pair: int, inverted: bool, seed: int
) -> None:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(labels), 5, generator=g, dtype=torch.float64)
    if inverted:  # cosine similarity: larger is closer
        xn = torch.nn.functional.normalize(x, dim=1)
        dist = xn @ xn.T
    else:
        dist = sq_dist(x)
    margins = (0.3, 0.15)
    out = mine_ranked_triplets(
        dist, torch.tensor(labels), level=LEVEL, theta=THETA, margins=margins,
        strategy=strategy, per_pair=per_pair, inverted=inverted, generator=g,  # type: ignore[arg-type]
    )  # fmt: skip
    check_invariants(
        out, dist, labels, labels, strategy=strategy, per_pair=per_pair, margins=margins,
        inverted=inverted, exclude_self=True,
    )  # fmt: skip


def test_semihard_with_reference_set_and_no_weights() -> None:
    g = torch.Generator().manual_seed(5)
    labels = torch.randint(0, C, (9,), generator=g)
    ref = torch.randint(0, C, (13,), generator=g)
    dist = torch.rand(9, 13, generator=g, dtype=torch.float64)
    out = mine_ranked_triplets(
        dist, labels, ref, level=LEVEL, margins=(0.2, 0.2), per_pair=2, generator=g
    )
    check_invariants(
        out, dist, labels.tolist(), ref.tolist(), strategy="semihard", per_pair=2,
        margins=(0.2, 0.2), inverted=False, exclude_self=False, theta=torch.ones(C, C),
    )  # fmt: skip


def test_cosine_band_direction() -> None:
    # anchor 0 (amusement), positive 1 (amusement), relatives 2..4 (awe) with similarities
    # 0.9 (more similar than the positive: already inverted), 0.75 (in the band), 0.1 (easy)
    rel = sm.LabelRelations.from_groups([0, 0, 1])
    labels = torch.tensor([0, 0, 1, 1, 1])
    sim = torch.full((5, 5), 0.5, dtype=torch.float64)
    sim[0, 1], sim[0, 2], sim[0, 3], sim[0, 4] = 0.8, 0.9, 0.75, 0.1
    for _ in range(5):
        out = mine_ranked_triplets(sim, labels, level=rel.level, margins=(0.2, 0.1), inverted=True)
        trips = [t for t in triplet_list(out) if t[:2] == (0, 1)]
        assert trips == [(0, 1, 3)]
    # read as a distance instead, the band (0.8, 1.0) holds only sample 2
    out = mine_ranked_triplets(sim, labels, level=rel.level, margins=(0.2, 0.1))
    assert [t for t in triplet_list(out) if t[:2] == (0, 1)] == [(0, 1, 2)]


def test_weights_change_the_band() -> None:
    rel = sm.LabelRelations.from_groups([0, 0, 1])
    labels = torch.tensor([0, 0, 1, 1])
    dist = torch.full((4, 4), 1.0, dtype=torch.float64)
    dist[0, 1], dist[0, 2], dist[0, 3] = 0.5, 0.6, 1.2
    plain = mine_ranked_triplets(dist, labels, level=rel.level, margins=(0.2, 0.1))
    assert [t for t in triplet_list(plain) if t[:2] == (0, 1)] == [(0, 1, 2)]
    # θ = 1/2 on relatives: D* = 0.3 (inverted) and 0.6 (in the band)
    w = torch.tensor([[1.0, 0.5, 1.0], [0.5, 1.0, 1.0], [1.0, 1.0, 1.0]])
    weighted = mine_ranked_triplets(dist, labels, level=rel.level, theta=w, margins=(0.2, 0.1))
    assert [t for t in triplet_list(weighted) if t[:2] == (0, 1)] == [(0, 1, 3)]


def test_seeded_generator_reproduces_and_seeds_differ() -> None:
    labels = torch.arange(8).repeat(6)
    dist = torch.rand(48, 48, generator=torch.Generator().manual_seed(0))
    outs = []
    for seed in (7, 7, 8):
        g = torch.Generator().manual_seed(seed)
        outs.append(mine_ranked_triplets(dist, labels, level=LEVEL, strategy="random", generator=g))
    assert all(torch.equal(x, y) for x, y in zip(outs[0].as_tuple(), outs[1].as_tuple()))
    assert not torch.equal(outs[0].farther, outs[2].farther)


def test_per_pair_counts() -> None:
    labels = torch.arange(8).repeat(4)  # 3 positives, 12 relatives, 16 negatives per anchor
    dist = torch.rand(32, 32, generator=torch.Generator().manual_seed(1))
    for per_pair in (1, 2, 5, 20):
        for strategy in ("hard", "random"):
            out = mine_ranked_triplets(
                dist,
                labels,
                level=LEVEL,
                strategy=strategy,
                per_pair=per_pair,  # type: ignore[arg-type]
            )
            assert out.num_relative == 32 * 3 * min(per_pair, 12)
            assert out.num_negative == 32 * 12 * min(per_pair, 16)


def test_sample_offsets_are_distinct_and_uniform() -> None:
    pool = torch.tensor([5] * 20000 + [1, 0])
    offsets, valid = sample_offsets(pool, 2, torch.Generator().manual_seed(0))
    assert valid[:-2].all() and valid[-2].tolist() == [True, False] and not valid[-1].any()
    body = offsets[:-2]
    assert (body[:, 0] != body[:, 1]).all() and (body >= 0).all() and (body < 5).all()
    freq = torch.bincount(body.flatten(), minlength=5).double() / body.numel()
    assert torch.allclose(freq, torch.full((5,), 0.2, dtype=torch.float64), atol=0.01)
    assert offsets[-2, 0] == 0


def test_empty_and_half_precision_inputs() -> None:
    one = mine_ranked_triplets(torch.zeros(1, 1), torch.tensor([2]), level=LEVEL)
    assert one.anchor.numel() == 0 and one.num_relative == one.num_negative == 0
    labels = torch.arange(8).repeat(2)
    for dtype in (torch.float16, torch.bfloat16):
        dist = torch.rand(16, 16).to(dtype)
        out = mine_ranked_triplets(dist, labels, level=LEVEL, theta=THETA.to(dtype))
        assert out.num_relative == 16 * 1 and out.num_negative == 16 * 6


@pytest.mark.parametrize("strategy", MINING_STRATEGIES)
@pytest.mark.parametrize("shape", [(0, 0), (3, 0)])
def test_empty_batch_or_reference_set_gives_no_triplet(strategy: str, shape: tuple) -> None:
    labels = torch.arange(shape[0])
    ref = None if shape[0] == shape[1] else torch.zeros(0, dtype=torch.long)
    dist = torch.zeros(shape)
    out = mine_ranked_triplets(dist, labels, ref, level=LEVEL, strategy=strategy)  # type: ignore[arg-type]
    assert out.num_relative == out.num_negative == out.num_empty_band == 0
    for t in out.as_tuple():
        assert t.shape == (0,) and t.dtype == torch.long


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"strategy": "hardest"}, "'semihard', 'hard', 'random', 'all'"),
        ({"margins": (0.2, -0.1)}, r"margins\[1\]"),
        ({"margins": (0.2,)}, "2 values"),
        ({"per_pair": 0}, "per_pair"),
        ({"labels": torch.zeros(4, 1, dtype=torch.long)}, "1-D"),
        ({"labels": torch.full((4,), 0.5)}, "integer"),
        ({"labels": torch.tensor([0, 1, 8, 2])}, r"\[0, 7\]"),
        ({"labels": torch.zeros(3, dtype=torch.long)}, "3 entries"),
        ({"dist": torch.full((4, 4), float("nan"))}, "finite"),
        ({"dist": torch.zeros(4, 4, dtype=torch.long)}, "floating"),
        ({"dist": torch.zeros(4)}, "dist"),
        ({"dist": torch.zeros(4, 5)}, "square"),
        ({"ref_labels": torch.zeros(4, dtype=torch.long), "dist": torch.zeros(4, 5)}, "5 rows"),
        ({"level": torch.zeros(3, 3)}, "integer"),
        ({"theta": torch.ones(3, 3)}, "theta"),
        ({"offset": torch.ones(3, 3)}, "offset"),
        ({"level": torch.ones(8, 8, dtype=torch.bool)}, "integer"),
    ],
)
def test_bad_input(kwargs: dict, match: str) -> None:
    args = {"dist": torch.rand(4, 4), "labels": torch.tensor([0, 1, 2, 3]), "level": LEVEL}
    args.update(kwargs)
    with pytest.raises(SentimentMetricError, match=match):
        mine_ranked_triplets(**args)


def test_strategies_constant() -> None:
    assert MINING_STRATEGIES == ("semihard", "hard", "random", "all")


def test_input_is_not_modified_and_non_finite_keys_keep_the_level_rule() -> None:
    labels = torch.arange(8).repeat(3)
    dist = torch.rand(24, 24, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    dist[0, 3], dist[1, 5], dist[2, :] = float("nan"), float("inf"), float("-inf")
    before = dist.clone()
    for strategy in ("semihard", "hard", "random"):
        out = mine_ranked_triplets(
            dist,
            labels,
            level=LEVEL,
            strategy=strategy,
            per_pair=2,
            validate=False,  # type: ignore[arg-type]
        )
        lc = LEVEL[labels[out.anchor], labels[out.closer]]
        assert bool((lc + 1 == LEVEL[labels[out.anchor], labels[out.farther]]).all())
        # 24 anchors x 2 positives, x 9 relatives: each pair gets 2, or 1 from a 1-wide band
        n_pairs = (24 * 2, 24 * 9)
        if strategy == "semihard":
            assert n_pairs[0] <= out.num_relative <= 2 * n_pairs[0]
            assert n_pairs[1] <= out.num_negative <= 2 * n_pairs[1]
        else:
            assert (out.num_relative, out.num_negative) == (2 * n_pairs[0], 2 * n_pairs[1])
    assert torch.equal(dist.isnan(), before.isnan())
    assert torch.equal(dist.nan_to_num(), before.nan_to_num())


def test_self_index_with_explicit_reference_labels() -> None:
    labels = torch.tensor([0, 0, 1, 1, 4])
    dist = torch.rand(5, 5, generator=torch.Generator().manual_seed(7))
    kept = mine_ranked_triplets(dist, labels, labels.clone(), level=LEVEL, strategy="all")
    dropped = mine_ranked_triplets(
        dist, labels, labels.clone(), level=LEVEL, strategy="all", self_index=torch.arange(5)
    )
    assert sorted(triplet_list(kept)) == sorted(
        naive_all(labels.tolist(), labels.tolist(), LEVEL, False)
    )
    assert sorted(triplet_list(dropped)) == sorted(
        naive_all(labels.tolist(), labels.tolist(), LEVEL, True)
    )
    # a sample's own column named explicitly: kept out of every strategy's triplets
    for strategy in MINING_STRATEGIES:
        out = mine_ranked_triplets(
            dist, labels, labels.clone(), level=LEVEL, strategy=strategy,  # type: ignore[arg-type]
            self_index=torch.arange(5), per_pair=3,
        )  # fmt: skip
        assert not bool((out.anchor == out.closer).any() | (out.anchor == out.farther).any())
    with pytest.raises(SentimentMetricError, match=r"self_index must have shape \(2\)"):
        mine_ranked_triplets(
            torch.rand(2, 3), labels[:2], labels[:3], level=LEVEL, self_index=torch.arange(3)
        )
    with pytest.raises(SentimentMetricError, match="square"):
        mine_ranked_triplets(torch.rand(2, 3), labels[:2], level=LEVEL)


def test_a_sample_tied_with_the_closer_is_not_in_the_band() -> None:
    """``q(a,c) < q(a,f)`` is strict: a relative exactly as far as the positive (a duplicate)
    is not semi-hard; the band holds only the strictly farther one."""
    rel = sm.LabelRelations.from_groups([0, 0, 1])
    labels = torch.tensor([0, 0, 1, 1])
    dist = torch.full((4, 4), 1.0, dtype=torch.float64)
    dist[0, 1], dist[0, 2], dist[0, 3] = 0.5, 0.5, 0.6
    for seed in range(10):
        out = mine_ranked_triplets(
            dist, labels, level=rel.level, margins=(0.2, 0.1),
            generator=torch.Generator().manual_seed(seed),
        )  # fmt: skip
        assert [t for t in triplet_list(out) if t[:2] == (0, 1)] == [(0, 1, 3)]
