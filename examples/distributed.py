"""Distributed training with torchrun: PML's distributed wrappers around sentiment-metric.

Each process sees its part of the batch; PML's ``DistributedLossWrapper`` and
``DistributedMinerWrapper`` gather every process's embeddings and labels, so the constraints
compare every sample with every other. sentiment-metric's loss and miner go inside them
unchanged (``efficient=False``, PML's default: the full gathered batch on every process).
Generated data (eight emotions on Mikels' wheel in a 32-d feature space); gloo on CPU, nccl on
GPUs.

    torchrun --standalone --nproc_per_node 2 examples/distributed.py --quick
    torchrun --standalone --nproc_per_node 4 examples/distributed.py --backend nccl
"""

from __future__ import annotations

import argparse
import math
import os

import torch
import torch.distributed as dist
from pytorch_metric_learning.utils import distributed as pml_dist
from torch import nn

import sentiment_metric as sm

CLASS_NAMES = list(sm.MIKELS_WHEEL.emotions)  # your dataset's classes, in label order


def make_data(n: int, dim: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` feature vectors: emotion ``c`` at angle ``2πc/8`` on a circle, plus noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 8
    angle = y * (2 * math.pi / 8) + 0.2 * torch.randn(n, generator=g)
    plane = torch.linalg.qr(torch.randn(dim, 2, generator=g))[0]
    x = torch.stack([angle.cos(), angle.sin()], dim=1) @ plane.T
    return x + 0.1 * torch.randn(n, dim, generator=g), y


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny data, a few steps")
    p.add_argument("--backend", default="gloo", help="gloo (CPU) or nccl (GPUs)")
    args = p.parse_args(argv)
    dist.init_process_group(args.backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device("cpu")
    if args.backend == "nccl":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    torch.manual_seed(0)  # the same initial model on every process
    n, steps, batch = (256, 6, 32) if args.quick else (4096, 300, 64)  # batch: per process
    x, y = make_data(n)
    model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 16)).to(device)
    model = nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)

    # was: loss_fn = pml_dist.DistributedLossWrapper(losses.TripletMarginLoss(margin=0.1))
    loss_fn = pml_dist.DistributedLossWrapper(
        sm.SentimentConstraintLoss(class_names=CLASS_NAMES), efficient=False
    )
    # was: miner = pml_dist.DistributedMinerWrapper(miners.TripletMarginMiner(margin=0.2))
    miner = pml_dist.DistributedMinerWrapper(
        sm.SentimentSemiHardMiner(class_names=CLASS_NAMES, seed=rank), efficient=False
    )
    g = torch.Generator().manual_seed(1000 + rank)  # each process draws its own samples
    for step in range(steps):
        # balanced per process: every emotion in every part of the batch
        idx = torch.randint(0, n // 8, (batch,), generator=g) * 8 + torch.arange(batch) % 8
        emb = nn.functional.normalize(model(x[idx].to(device)), dim=1)
        labels = y[idx].to(device)
        loss = loss_fn(emb, labels, miner(emb, labels))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if rank == 0 and step % max(1, steps // 5) == 0:
            print(f"step {step:4d}  loss {loss.item():.4f}  ({world} processes)")

    if rank == 0:
        x_test, y_test = make_data(n // 2, seed=1)
        with torch.no_grad():
            emb = nn.functional.normalize(model.module(x_test.to(device)), dim=1)
        # was: calc = AccuracyCalculator(k=10)
        calc = sm.AffectiveAccuracyCalculator(class_names=CLASS_NAMES, k=10)
        acc = calc.get_accuracy(emb, y_test.to(device))
        for name in ("precision_at_1", "mean_average_precision_at_r", "wheel_ndcg_at_k"):
            print(f"{name:28s} {acc[name]:.3f}")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
