"""Two CPU processes on gloo through torchrun: DDP, PML's distributed wrappers, sharded
M-per-class sampling, rank-0 checkpoints with every rank's RNG state."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

SCRIPT = textwrap.dedent(
    """
    import os, sys, torch
    from sentiment_metric.recipes.train import TrainConfig, train

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
