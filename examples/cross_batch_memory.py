"""A cross-batch memory: the sentiment constraints against the embeddings of past batches.

PML's ``CrossBatchMemory`` only accepts the losses it knows, so sentiment-metric ships
:class:`sentiment_metric.SentimentCrossBatchMemory`: PML's class, accepting
:class:`sentiment_metric.SentimentConstraintLoss`. It is called like PML's (``loss_fn(emb,
labels)``); the optional miner mines between the batch and the memory. Generated data (eight
emotions on Mikels' wheel in a 32-d feature space), so it runs anywhere.

    python examples/cross_batch_memory.py --quick
    python examples/cross_batch_memory.py --no-miner   # every ranked triplet, exact and bounded
"""

from __future__ import annotations

import argparse
import math

import torch
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


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny data, a few steps")
    p.add_argument("--no-miner", action="store_true", help="use every triplet with the memory")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    n, steps, batch, memory = (256, 8, 32, 128) if args.quick else (4096, 400, 64, 1024)
    x, y = make_data(n)
    x_test, y_test = make_data(n // 2, seed=1)
    embedding_size = 16
    model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, embedding_size))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)

    miner = None if args.no_miner else sm.SentimentSemiHardMiner(class_names=CLASS_NAMES, seed=0)
    # was: loss_fn = losses.CrossBatchMemory(losses.ContrastiveLoss(), embedding_size,
    #                                        memory_size=1024, miner=miners.MultiSimilarityMiner())
    loss_fn = sm.SentimentCrossBatchMemory(
        sm.SentimentConstraintLoss(class_names=CLASS_NAMES),
        embedding_size=embedding_size,
        memory_size=memory,
        miner=miner,
    )
    for step in range(steps):
        idx = torch.randint(0, n, (batch,))
        emb = nn.functional.normalize(model(x[idx]), dim=1)
        loss = loss_fn(emb, y[idx])  # the batch against itself and the memory
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % max(1, steps // 5) == 0:
            print(
                f"step {step:4d}  loss {loss.item():.4f}  memory filled {loss_fn.has_been_filled}"
            )

    with torch.no_grad():
        emb = nn.functional.normalize(model(x_test), dim=1)
    # was: calc = AccuracyCalculator(k=10)
    calc = sm.AffectiveAccuracyCalculator(class_names=CLASS_NAMES, k=10)
    acc = calc.get_accuracy(emb, y_test)
    for name in ("precision_at_1", "mean_average_precision_at_r", "wheel_ndcg_at_k"):
        print(f"{name:28s} {acc[name]:.3f}")
    return acc


if __name__ == "__main__":
    main()
