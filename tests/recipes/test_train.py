"""The reference trainer: config, sampler, RNG states, checkpoints, exact resume."""

from __future__ import annotations

import dataclasses
import json
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

import sentiment_metric as sm
from sentiment_metric.recipes import train as tr
from sentiment_metric.recipes.train import (
    DistributedMPerClassSampler,
    TrainConfig,
    atomic_save,
    get_rng_state,
    load_checkpoint,
    set_rng_state,
    train,
)


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


# -- config ------------------------------------------------------------------------------------
def test_config_defaults_are_the_documented_schedule() -> None:
    c = TrainConfig()
    assert (c.lr, c.momentum, c.weight_decay, c.lr_step, c.lr_gamma) == (1e-3, 0.9, 5e-4, 10, 0.1)
    assert (c.batch_size, c.omega, c.margins, c.backbone) == (128, 0.2, (0.2, 0.1), "googlenet")
    assert c.resolved_m_per_class(8) == 16  # batch 128, 8 emotions -> 16 each
    assert TrainConfig(batch_size=32).resolved_m_per_class(8) == 8  # at least 8 per emotion
    assert TrainConfig(batch_size=128).resolved_m_per_class(20) == 8
    assert TrainConfig.from_dict(c.to_dict()) == c
    json.dumps(c.to_dict())


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"loss": "bogus"}, "loss must be one of"),
        ({"strategy": "easy"}, "strategy must be one of"),
        ({"embedding": "gram"}, "embedding must be one of"),
        ({"backbone": "vgg"}, "backbone must be one of"),
        ({"epochs": 0}, "epochs must be an int >= 1"),
        ({"lr": -1.0}, "lr must be a finite number > 0"),
        ({"omega": 1.5}, "omega must lie in [0, 1]"),
        ({"margins": (0.2, -0.1)}, "margins must be finite and >= 0"),
        ({"batch_size": 32, "m_per_class": 5}, "must divide batch_size"),
        ({"workers": -1}, "workers must be an int >= 0"),
    ],
)
def test_config_rejects_bad_values(kw: dict[str, object], needle: str) -> None:
    with pytest.raises(
        sm.SentimentMetricError, match=needle.replace("[", r"\[").replace("]", r"\]")
    ):
        TrainConfig(**kw)  # type: ignore[arg-type]


def test_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(sm.SentimentMetricError, match="unknown training option"):
        TrainConfig.from_dict({"lr": 0.1, "bogus": 1})


# -- sampler -----------------------------------------------------------------------------------
LABELS = [c for c in range(8) for _ in range(10)]


def test_sampler_batches_hold_m_per_class_and_follow_seed_and_epoch() -> None:
    s = DistributedMPerClassSampler(LABELS, m=4, batch_size=16, seed=3, num_replicas=1, rank=0)
    assert len(s) == 80
    s.set_epoch(0)
    a = list(s)
    assert len(a) == 80
    for b in range(0, 80, 16):
        counts = Counter(LABELS[i] for i in a[b : b + 16])
        assert sorted(counts.values()) == [4, 4, 4, 4]
        for j in range(b, b + 16, 4):  # each block of m is one class
            assert len({LABELS[i] for i in a[j : j + 4]}) == 1
    assert list(s) == a  # same epoch, same batches (no global RNG involved)
    np.random.seed(123)  # noqa: NPY002 (PML samples from NumPy's global generator)
    random.seed(5)
    torch.manual_seed(9)
    assert list(s) == a
    s.set_epoch(1)
    assert list(s) != a
    assert s.state_dict() == {"seed": 3, "epoch": 1}
    s2 = DistributedMPerClassSampler(LABELS, m=4, batch_size=16, seed=0, num_replicas=1, rank=0)
    s2.load_state_dict({"seed": 3, "epoch": 0})
    assert list(s2) == a


def test_sampler_shards_whole_batches_over_ranks() -> None:
    full = DistributedMPerClassSampler(LABELS, 4, 16, 160, num_replicas=1, rank=0, seed=1)
    parts = [
        DistributedMPerClassSampler(LABELS, 4, 16, 160, num_replicas=2, rank=r, seed=1)
        for r in (0, 1)
    ]
    ref = list(full)
    got = [list(p) for p in parts]
    assert len(got[0]) == len(got[1]) == 80 == len(parts[0])
    batches = [ref[i : i + 16] for i in range(0, 160, 16)]
    assert [got[0][i : i + 16] for i in range(0, 80, 16)] == batches[0::2]
    assert [got[1][i : i + 16] for i in range(0, 80, 16)] == batches[1::2]


def test_sampler_is_a_pml_sampler_with_clear_errors() -> None:
    from pytorch_metric_learning.samplers import MPerClassSampler

    s = DistributedMPerClassSampler(LABELS, 4, 16, num_replicas=1, rank=0)
    assert isinstance(s, MPerClassSampler)
    with pytest.raises(sm.SentimentMetricError, match="needs 4 classes"):
        DistributedMPerClassSampler([0] * 5 + [1] * 5, 4, 16, num_replicas=1, rank=0)
    with pytest.raises(sm.SentimentMetricError, match="must divide"):
        DistributedMPerClassSampler(LABELS, 3, 16, num_replicas=1, rank=0)
    with pytest.raises(sm.SentimentMetricError, match="rank must lie"):
        DistributedMPerClassSampler(LABELS, 4, 16, num_replicas=2, rank=2)
    with pytest.raises(sm.SentimentMetricError, match="empty"):
        DistributedMPerClassSampler([], 4, 16, num_replicas=1, rank=0)


# -- RNG states, checkpoints, the log ---------------------------------------------------------
def test_rng_state_round_trips_through_a_safe_checkpoint(tmp_path: Path) -> None:
    state = get_rng_state()
    atomic_save({"rng": state}, tmp_path / "s.pt")
    loaded = torch.load(tmp_path / "s.pt", weights_only=True)["rng"]
    a = (random.random(), float(np.random.rand()), float(torch.rand(())))  # noqa: NPY002 (PML samples from NumPy's global generator)
    set_rng_state(loaded)
    b = (random.random(), float(np.random.rand()), float(torch.rand(())))  # noqa: NPY002 (PML samples from NumPy's global generator)
    assert a == b


def test_atomic_save_keeps_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    path = tmp_path / "ck.pt"
    atomic_save({"a": torch.ones(2)}, path)
    with pytest.raises(Exception):  # noqa: B017 - any pickling error
        atomic_save({"a": lambda: 0}, path)
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]  # no temporary file left


def test_load_checkpoint_errors(tmp_path: Path) -> None:
    with pytest.raises(sm.SentimentMetricError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(sm.SentimentMetricError, match="could not be read"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"model": {}}, tmp_path / "other.pt")
    with pytest.raises(sm.SentimentMetricError, match="not a sentiment-metric checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_truncate_jsonl_drops_epochs_after_the_checkpoint(tmp_path: Path) -> None:
    p = tmp_path / "m.jsonl"
    p.write_text("".join(json.dumps({"epoch": e}) + "\n" for e in (1, 2, 3)))
    tr._truncate_jsonl(p, 2)
    assert [json.loads(x)["epoch"] for x in p.read_text().splitlines()] == [1, 2]


# -- training and exact resume ---------------------------------------------------------------
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
    model = tr.build_model(cfg, num_classes=8)
    opt, _sched = tr.build_optimizer(cfg, model)
    assert [g["name"] for g in opt.param_groups] == ["backbone", "head"]
    assert [g["lr"] for g in opt.param_groups] == [0.05, 0.5]
    res = train(cfg)
    assert [h["lr"] for h in res.history] == [pytest.approx(0.025), pytest.approx(0.0125)]


def test_offline_weights_train_from_scratch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import torchvision.models._api as api

    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("network unreachable")

    monkeypatch.setattr(api, "load_state_dict_from_url", offline)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # no cached weights
    cfg = TrainConfig(backbone="resnet18", weights="DEFAULT", image_size=32)
    model = tr.build_model(cfg, num_classes=8)
    assert "training from scratch" in capsys.readouterr().out
    _emb, logits = model(torch.zeros(2, 3, 32, 32))
    assert logits.shape == (2, 8)
    with pytest.raises(sm.SentimentMetricError, match="weights for backbone"):
        tr.build_model(dataclasses.replace(cfg, weights="NOPE"), num_classes=8)
