"""A plain PyTorch training loop with sentiment-metric in place of a PML triplet loss.

A pytorch-metric-learning user's loop, unchanged but for the lines marked ``# was:``: the loss,
the miner and the accuracy calculator. The data are generated (eight emotions placed on Mikels'
wheel in a 32-d feature space, plus noise), so the script runs anywhere in seconds; replace
``make_data`` by your dataset (its ``classes`` attribute gives ``class_names``).

    python examples/plain_loop.py            # a longer run
    python examples/plain_loop.py --quick    # a few steps on tiny data (what the tests run)
    python examples/plain_loop.py --multitask  # the paper's loss: softmax + constraints
"""

from __future__ import annotations

import argparse
import math

import torch
from torch import nn

import sentiment_metric as sm

CLASS_NAMES = list(sm.MIKELS_WHEEL.emotions)  # your dataset's classes, in label order


def make_data(n: int, dim: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` feature vectors: emotion ``c`` sits at angle ``2πc/8`` on a circle (wheel
    neighbours are close), in a random plane of ``dim`` dimensions, plus noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 8
    angle = y * (2 * math.pi / 8) + 0.3 * torch.randn(n, generator=g)
    plane = torch.linalg.qr(torch.randn(dim, 2, generator=g))[0]
    x = torch.stack([angle.cos(), angle.sin()], dim=1) @ plane.T
    return x + 0.1 * torch.randn(n, dim, generator=g), y


class Net(nn.Module):
    """An embedding network with a classifier head (the head is used with --multitask)."""

    def __init__(self, dim: int = 32, embedding_size: int = 16) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(dim, 64), nn.ReLU(), nn.Linear(64, embedding_size))
        self.head = nn.Linear(embedding_size, len(CLASS_NAMES))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        emb = nn.functional.normalize(self.body(x), dim=1)  # L2-normalised, as in the paper
        return emb, self.head(emb)


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny data, a few steps")
    p.add_argument("--multitask", action="store_true", help="softmax + constraints (the paper)")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    n, steps, batch = (256, 6, 64) if args.quick else (4096, 400, 128)
    x, y = make_data(n)
    x_test, y_test = make_data(n // 2, seed=1)
    model = Net()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)

    # was: loss_fn = losses.TripletMarginLoss(margin=0.1)
    loss_fn = sm.SentimentConstraintLoss(class_names=CLASS_NAMES)
    # was: miner = miners.TripletMarginMiner(margin=0.2, type_of_triplets="semihard")
    miner = sm.SentimentSemiHardMiner(class_names=CLASS_NAMES, seed=0)
    if args.multitask:  # E = (1 - ω) CE + ω E_sml, the paper's objective
        multitask = sm.MultiTaskSentimentLoss(omega=0.2, metric_loss=loss_fn, miner=miner)

    for step in range(steps):
        idx = torch.randint(0, n, (batch,))
        embeddings, logits = model(x[idx])
        if args.multitask:
            loss = multitask(embeddings, logits, y[idx])
        else:
            loss = loss_fn(embeddings, y[idx], miner(embeddings, y[idx]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % max(1, steps // 5) == 0:
            print(f"step {step:4d}  loss {loss.item():.4f}")

    model.eval()
    with torch.no_grad():
        emb = model(x_test)[0]
    # was: calc = AccuracyCalculator(k=10)
    calc = sm.AffectiveAccuracyCalculator(class_names=CLASS_NAMES, k=10)
    acc = calc.get_accuracy(emb, y_test)
    for name in ("precision_at_1", "mean_average_precision_at_r", "wheel_ndcg_at_k", "NMI"):
        print(f"{name:28s} {acc[name]:.3f}")
    return acc


if __name__ == "__main__":
    main()
