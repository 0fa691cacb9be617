"""The reference trainer: training, validation, the step decay and exact resume."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import sentiment_metric as sm
from sentiment_metric.recipes.build import build_model, build_optimizer
from sentiment_metric.recipes.checkpoint import load_checkpoint
from sentiment_metric.recipes.config import TrainConfig
from sentiment_metric.recipes.loop import train


def tiny_config(out: Path, **kw: object) -> TrainConfig:
    base: dict[str, object] = dict(
        dataset="textures",
        backbone="small",
        width=4,
        image_size=32,
        train_size=64,
        val_size=0,
        eval_every=0,
        epochs=3,
        batch_size=16,
        m_per_class=4,
        lr=0.05,
        head_lr_mult=1.0,
        workers=0,
        progress=False,
        device="cpu",
        out=str(out),
    )
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


class _Interrupt(Exception):
    pass


def test_resume_after_interruption_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    # random mining: the miner's own generator must be restored too
    cfg = tiny_config(tmp_path / "a", strategy="random")
    full = train(cfg)
    assert [h["epoch"] for h in full.history] == [1, 2, 3]
    assert all(np.isfinite(h["loss"]) for h in full.history)

    cfg_b = dataclasses.replace(cfg, out=str(tmp_path / "b"))

    def stop_mid_epoch_2(epoch: int, step: int, losses: dict[str, float]) -> None:
        if epoch == 1 and step == 6:  # 4 steps per epoch: the middle of epoch 2
            raise _Interrupt

    with pytest.raises(_Interrupt):
        train(cfg_b, step_callback=stop_mid_epoch_2)
    assert load_checkpoint(tmp_path / "b" / "last.pt")["epoch"] == 1
    with pytest.raises(sm.SentimentMetricError, match="exists: pass resume=True"):
        train(cfg_b)
    resumed = train(dataclasses.replace(cfg_b, resume=True))
    assert [h["epoch"] for h in resumed.history] == [2, 3]

    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k  # bitwise
    ca = load_checkpoint(tmp_path / "a" / "last.pt")
    cb = load_checkpoint(tmp_path / "b" / "last.pt")
    for (ka, va), (kb, vb) in zip(
        ca["optimizer"]["state"].items(), cb["optimizer"]["state"].items()
    ):
        assert ka == kb and torch.equal(va["momentum_buffer"], vb["momentum_buffer"])
    assert ca["scheduler"] == cb["scheduler"]
    log_a = [json.loads(x) for x in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    log_b = [json.loads(x) for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log_b] == [1, 2, 3]
    assert [r["loss"] for r in log_a] == [r["loss"] for r in log_b]


def test_resume_refuses_changed_options_and_missing_checkpoint(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, epochs=1)
    with pytest.raises(sm.SentimentMetricError, match="does not exist"):
        train(dataclasses.replace(cfg, resume=True))
    train(cfg)
    with pytest.raises(sm.SentimentMetricError, match="lr: checkpoint 0.05, now 0.1"):
        train(dataclasses.replace(cfg, resume=True, lr=0.1, epochs=2))
    more = train(dataclasses.replace(cfg, resume=True, epochs=2))  # more epochs is fine
    assert [h["epoch"] for h in more.history] == [2]


def test_train_with_validation_logs_retrieval_metrics(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, epochs=1, val_size=32, eval_every=1, loss="softmax+triplet")
    res = train(cfg)
    rec = res.history[0]
    for key in ("val_accuracy", "val_mean_average_precision_at_r", "val_wheel_ndcg_at_k"):
        assert 0.0 <= rec[key] <= 1.0
    assert rec["lr"] == pytest.approx(0.05)
    line = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert line["val_accuracy"] == rec["val_accuracy"]
    assert json.loads((tmp_path / "config.json").read_text())["loss"] == "softmax+triplet"


def test_step_decay_and_param_groups(tmp_path: Path) -> None:
    cfg = tiny_config(tmp_path, epochs=2, lr_step=1, lr_gamma=0.5, head_lr_mult=10.0)
    model = build_model(cfg, num_classes=8)
    opt, _sched = build_optimizer(cfg, model)
    assert [g["name"] for g in opt.param_groups] == ["backbone", "head"]
    assert [g["lr"] for g in opt.param_groups] == [0.05, 0.5]
    res = train(cfg)
    assert [h["lr"] for h in res.history] == [pytest.approx(0.025), pytest.approx(0.0125)]


def test_resume_with_fewer_epochs_and_a_checkpoint_without_epoch_are_refused(
    tmp_path: Path,
) -> None:
    """Issue 19: ``--resume --epochs 1`` on a run at epoch 2 rewrote config.json without
    training; a checkpoint without ``epoch`` raised a raw KeyError."""
    cfg = tiny_config(tmp_path, epochs=2)
    train(cfg)
    before = (tmp_path / "config.json").read_bytes()
    with pytest.raises(sm.SentimentMetricError, match=r"trained 2 epoch\(s\) but epochs is 1"):
        train(dataclasses.replace(cfg, resume=True, epochs=1))
    assert (tmp_path / "config.json").read_bytes() == before
    ckpt = torch.load(tmp_path / "last.pt", weights_only=True)
    del ckpt["epoch"]
    torch.save(ckpt, tmp_path / "last.pt")
    with pytest.raises(sm.SentimentMetricError, match="has no 'epoch': it cannot resume"):
        train(dataclasses.replace(cfg, resume=True, epochs=3))
    from sentiment_metric.recipes.build import load_trained

    with pytest.raises(sm.SentimentMetricError, match="has no 'epoch': it cannot be evaluated"):
        load_trained(tmp_path / "last.pt", "cpu")
