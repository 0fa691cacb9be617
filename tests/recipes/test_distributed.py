"""Processes and devices: the sharded M-per-class sampler, device resolution, and two CPU
processes on gloo through torchrun (DDP, PML's distributed wrappers, sharded M-per-class
sampling, rank-0 checkpoints with every rank's RNG state)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

import sentiment_metric as sm
from sentiment_metric.recipes.distributed import DistributedMPerClassSampler, resolve_device

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


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(sm.SentimentMetricError, match="device must be"):
        resolve_device("bogus")
    if not torch.cuda.is_available():
        with pytest.raises(sm.SentimentMetricError, match="CUDA"):
            resolve_device("cuda:0")


SCRIPT = textwrap.dedent(
    """
    import os, sys, torch
    from sentiment_metric.recipes import TrainConfig, train

    out = sys.argv[1]
    cfg = TrainConfig(
        dataset="textures", backbone="small", width=4, image_size=32, train_size=128,
        val_size=0, eval_every=0, epochs=2, batch_size=16, m_per_class=4, lr=0.05,
        head_lr_mult=1.0, workers=0, progress=False, device="cpu", out=out,
        strategy="random",
    )
    res = train(cfg)
    rank = int(os.environ["RANK"])
    assert res.history[-1]["world_size"] == 2
    assert (res.checkpoint is None) == (rank != 0)
    params = {k: v.detach().clone() for k, v in res.model.named_parameters()}
    torch.save(params, os.path.join(out, f"params-rank{rank}.pt"))
    """
)


@pytest.mark.slow
def test_two_process_gloo_training(tmp_path: Path) -> None:
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",  # torchrun picks a free port itself: no race with parallel tests
        "--nproc_per_node=2",
        str(script),
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=400, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    # DDP kept the two replicas identical (gradients all-reduced every step)
    p0 = torch.load(out / "params-rank0.pt", weights_only=True)
    p1 = torch.load(out / "params-rank1.pt", weights_only=True)
    assert p0.keys() == p1.keys()
    for k in p0:
        torch.testing.assert_close(p0[k], p1[k], rtol=1e-6, atol=1e-7, msg=k)

    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert ckpt["epoch"] == 2 and ckpt["world_size"] == 2
    assert len(ckpt["rng"]) == 2  # every rank's RNG state, for an exact resume
    for k, v in p0.items():
        assert torch.equal(ckpt["model"][k], v), k
    log = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]  # rank 0 alone writes the log
    assert all(r["world_size"] == 2 and r["loss_metric"] >= 0 for r in log)
    # 128 images, 2 ranks x batch 16: 4 steps per epoch per rank
    assert [r["step"] for r in log] == [4, 8]
