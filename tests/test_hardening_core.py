"""Issue 19 (and 18 item 1): silent wrong answers on unusual but accepted inputs, per class.

Each test pins one class of the sweep: the default path against the general one, a refusal
that names the argument, or a finite result where the maths used to overflow.
"""

from __future__ import annotations

import pytest
import torch

import sentiment_metric as sm

NAMES = sm.MIKELS_WHEEL.emotions


def _batch(
    b: int = 16, d: int = 4, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(b, d, generator=g, dtype=dtype), torch.arange(b) % len(NAMES)


def _penalty_grad(
    loss: sm.SentimentConstraintLoss,
    emb: torch.Tensor,
    labels: torch.Tensor,
    indices: object,
    fused: bool,
) -> torch.Tensor:
    """The gradient of a gradient penalty ``‖∂L/∂x‖²`` (a second-order term)."""
    loss.max_fused_pairs = 1 << 18 if fused else 0  # 0: the general path
    x = emb.clone().requires_grad_()
    (g,) = torch.autograd.grad(loss(x, labels, indices), x, create_graph=True)
    (gg,) = torch.autograd.grad(g.square().sum(), x)
    return gg


@pytest.mark.parametrize("mined", [False, True], ids=["exhaustive", "mined"])
def test_double_backward_on_the_fused_path_equals_the_general_path(mined: bool) -> None:
    emb, labels = _batch()
    loss = sm.SentimentConstraintLoss(class_names=NAMES)
    miner = sm.SentimentSemiHardMiner(class_names=NAMES, seed=0)
    indices = miner(emb, labels) if mined else None
    fused = _penalty_grad(loss, emb, labels, indices, fused=True)
    general = _penalty_grad(loss, emb, labels, indices, fused=False)
    assert fused.abs().max() > 0  # a real second-order term, not the old silent zero
    torch.testing.assert_close(fused, general)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_embeddings_too_large_for_the_distances_are_refused(dtype: torch.dtype) -> None:
    emb, labels = _batch(dtype=torch.float64)
    limit = torch.finfo(torch.float32 if dtype == torch.bfloat16 else dtype).max ** 0.5 / 2
    loss = sm.SentimentConstraintLoss(class_names=NAMES)
    miner = sm.SentimentSemiHardMiner(class_names=NAMES, seed=0)
    big = emb.clone()
    big[3] *= 4 * limit / float(big[3].norm())  # one row past the bound
    for f in (loss, miner):
        with pytest.raises(sm.SentimentMetricError, match=r"embeddings .*row 3 has norm"):
            f(big.to(dtype), labels)
    # just under the bound: accepted, and the same loss as the unscaled batch (scale-free)
    fine = emb * (limit / float(emb.norm(dim=1).max()) / 2)
    torch.testing.assert_close(loss(fine.to(dtype), labels), loss(emb.to(dtype), labels))


@pytest.mark.parametrize("strategy", ["random", "semihard", "hard"])
def test_per_pair_is_capped_at_the_reference_size(strategy: str) -> None:
    """Issue 19: ``per_pair=10**6`` ran for minutes with 'random' and 'semihard'."""
    emb, labels = _batch(b=16)
    huge = sm.SentimentSemiHardMiner(class_names=NAMES, strategy=strategy, per_pair=10**6, seed=0)
    exact = sm.SentimentSemiHardMiner(class_names=NAMES, strategy=strategy, per_pair=16, seed=0)
    for got, want in zip(huge(emb, labels), exact(emb, labels)):
        assert torch.equal(got, want)


def test_attributes_set_after_construction_are_checked_and_used() -> None:
    emb, labels = _batch()
    loss = sm.SentimentConstraintLoss(class_names=NAMES, skip_level="sum_margins")
    loss(emb, labels)  # fills the fused cache with the inverse-wheel table
    for value in ("none", 1.0 / sm.MIKELS_WHEEL.relations(NAMES).dis):
        loss.weighting = value
        fresh = sm.SentimentConstraintLoss(
            class_names=NAMES, skip_level="sum_margins", weighting=value
        )
        assert torch.equal(loss(emb, labels), fresh(emb, labels))
        assert torch.equal(loss.theta, fresh.theta)
    with pytest.raises(sm.SentimentMetricError, match="weighting"):
        loss.weighting = "bogus"
    with pytest.raises(sm.SentimentMetricError, match="skip_level"):
        loss.skip_level = "bogus"  # type: ignore[assignment]
    assert loss.skip_level == "sum_margins"
    miner = sm.SentimentSemiHardMiner(class_names=NAMES, seed=0)
    miner.weighting = "none"
    assert bool((miner.theta == 1).all())


@pytest.mark.parametrize("bad", [-2, 16])
def test_self_index_out_of_range_is_refused(bad: int) -> None:
    emb, labels = _batch()
    si = torch.arange(16)
    si[5] = bad
    loss = sm.SentimentConstraintLoss(class_names=NAMES)
    with pytest.raises(sm.SentimentMetricError, match=f"self_index .*got {bad} at row 5"):
        loss(emb, labels, ref_emb=emb, ref_labels=labels, self_index=si)
    level = sm.MIKELS_WHEEL.relations(NAMES).level
    dist = sm.functional.squared_euclidean(emb)
    for strategy in ("semihard", "all"):
        with pytest.raises(sm.SentimentMetricError, match="self_index"):
            sm.functional.mine_ranked_triplets(
                dist, labels, labels, level=level, self_index=si, strategy=strategy
            )


def test_weights_and_margins_past_the_limit_are_refused_and_the_limit_is_finite() -> None:
    """Issue 18 item 1: ``weighting=torch.full((8, 8), 1e38)`` gave NaN."""
    emb, labels = _batch(dtype=torch.float32)
    c = len(NAMES)
    for kw in ({"weighting": torch.full((c, c), 1e38)}, {"wheel_margin": 7e37},
               {"margins": (1e13, 0.1)}):  # fmt: skip
        with pytest.raises(sm.SentimentMetricError, match=next(iter(kw))):
            sm.SentimentConstraintLoss(class_names=NAMES, **kw)
    top = {"weighting": torch.full((c, c), 1e12), "wheel_margin": 1e12, "margins": (1e12, 1e12)}
    loss = sm.SentimentConstraintLoss(class_names=NAMES, **top)
    x = emb.clone().requires_grad_()
    value = loss(x, labels)
    value.backward()
    assert torch.isfinite(value) and bool(torch.isfinite(x.grad).all())


def test_nan_images_in_training_mode_leave_the_model_untouched() -> None:
    """Issue 19: the images were checked after the forward, BatchNorm kept NaN statistics."""
    from sentiment_metric.models import small_convnet

    model = sm.SentimentModel(
        backbone=small_convnet(4), layers=["layer1", "layer2", "layer3"], dry_run_shape=(3, 32, 32)
    ).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    images = torch.randn(2, 3, 32, 32)
    images[1, 0, 5, 5] = float("nan")
    with pytest.raises(sm.SentimentMetricError, match="images must be finite"):
        model(images)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    emb, logits = model(torch.randn(2, 3, 32, 32))  # still usable
    assert bool(torch.isfinite(emb).all()) and bool(torch.isfinite(logits).all())


def test_an_enqueue_only_memory_step_is_zero_and_fills_the_memory() -> None:
    """Issue 19: every row enqueued was refused as 'an empty batch' (PML returns 0)."""
    emb, labels = _batch(dtype=torch.float32)
    loss = sm.SentimentConstraintLoss(class_names=NAMES)
    memory = sm.SentimentCrossBatchMemory(loss, embedding_size=4, memory_size=64)
    x = emb.clone().requires_grad_()
    value = memory(x, labels, enqueue_mask=torch.ones(16, dtype=torch.bool))
    value.backward()
    assert value.item() == 0.0 and x.grad is not None and memory.queue_idx == 16
    later = memory(emb[:8] + 0.1, labels[:8])
    assert later.item() > 0  # the enqueued rows are there to compare against


def test_config_and_seed_and_alias_errors_are_clear() -> None:
    from sentiment_metric.recipes import TrainConfig

    with pytest.raises(sm.SentimentMetricError, match="margins must have 2 values"):
        TrainConfig.from_dict({"margins": [1]})
    for make in (lambda: TrainConfig(seed=2**70),
                 lambda: sm.SentimentSemiHardMiner(class_names=NAMES, seed=2**70)):  # fmt: skip
        with pytest.raises(sm.SentimentMetricError, match=r"seed must be an int in \[0, 2\*\*64\)"):
            make()
    with pytest.raises(sm.SentimentMetricError, match="groups must be"):
        sm.LabelRelations.from_groups([0, 2**70])
    with pytest.raises(sm.SentimentMetricError, match="alias 'happy' names both"):
        sm.EmotionWheel(
            emotions=["joy", "grief"],
            groups={"p": ["joy"], "n": ["grief"]},
            aliases={"Happy": "joy", "happy": "grief"},
        )
