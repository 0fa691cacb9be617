"""PML's trainers and tester with sentiment-metric's loss, miner and accuracy calculator.

``MetricLossOnly`` (the sentiment constraints alone) and ``TrainWithClassifier`` (softmax +
constraints, ``loss_weights`` = ``1 - ω`` and ``ω``), then PML's ``GlobalEmbeddingSpaceTester``
with :class:`sentiment_metric.AffectiveAccuracyCalculator`. Only the lines marked ``# was:``
differ from a plain PML script. Generated data (eight emotions on Mikels' wheel in a 32-d
feature space), so it runs anywhere; PML's trainers take any dataset that returns
``(input, label)``.

    python examples/pml_trainers.py --quick                         # both trainers, tiny
    python examples/pml_trainers.py --trainer train_with_classifier
"""

from __future__ import annotations

import argparse
import math
import warnings

import torch
from pytorch_metric_learning import samplers, testers, trainers
from torch import nn

import sentiment_metric as sm

CLASS_NAMES = list(sm.MIKELS_WHEEL.emotions)  # your dataset's classes, in label order

# PML's progress bar formats the loss tensor itself ("%.5f" % loss): torch warns about that
# scalar conversion on every run; the warning is PML's, not about this script.
warnings.filterwarnings(
    "ignore",
    message="Converting a tensor with requires_grad=True to a scalar",
    module="pytorch_metric_learning",
)


def make_data(n: int, dim: int = 32, seed: int = 0) -> torch.utils.data.TensorDataset:
    """``n`` feature vectors: emotion ``c`` at angle ``2πc/8`` on a circle, plus noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 8
    angle = y * (2 * math.pi / 8) + 0.2 * torch.randn(n, generator=g)
    plane = torch.linalg.qr(torch.randn(dim, 2, generator=g))[0]
    x = torch.stack([angle.cos(), angle.sin()], dim=1) @ plane.T
    return torch.utils.data.TensorDataset(x + 0.1 * torch.randn(n, dim, generator=g), y)


def train(kind: str, quick: bool) -> dict[str, float]:
    torch.manual_seed(0)
    train_set = make_data(256 if quick else 4096)
    val_set = make_data(320 if quick else 1024, seed=1)  # k-means (NMI) wants 39 per class
    labels = train_set.tensors[1]
    trunk = nn.Sequential(nn.Linear(32, 64), nn.ReLU())
    embedder = nn.Linear(64, 16)  # PML's usual pair: trunk, then an embedder
    batch = 64
    models = {"trunk": trunk, "embedder": embedder}
    optimizers = {
        "trunk_optimizer": torch.optim.Adam(trunk.parameters(), lr=1e-2),
        "embedder_optimizer": torch.optim.Adam(embedder.parameters(), lr=1e-2),
    }
    loss_funcs = {
        # was: "metric_loss": losses.TripletMarginLoss(margin=0.1),
        "metric_loss": sm.SentimentConstraintLoss(class_names=CLASS_NAMES),
    }
    mining_funcs = {
        # was: "tuple_miner": miners.MultiSimilarityMiner(epsilon=0.1),
        "tuple_miner": sm.SentimentSemiHardMiner(class_names=CLASS_NAMES, seed=0),
    }
    kwargs = {}
    if kind == "train_with_classifier":
        omega = 0.2  # E = (1 - ω) CE + ω E_sml
        classifier = nn.Linear(16, len(CLASS_NAMES))
        models["classifier"] = classifier
        optimizers["classifier_optimizer"] = torch.optim.Adam(classifier.parameters(), lr=1e-2)
        loss_funcs["classifier_loss"] = nn.CrossEntropyLoss()
        kwargs["loss_weights"] = {"metric_loss": omega, "classifier_loss": 1 - omega}
    trainer_cls = {
        "metric_loss_only": trainers.MetricLossOnly,
        "train_with_classifier": trainers.TrainWithClassifier,
    }[kind]
    trainer = trainer_cls(
        models=models,
        optimizers=optimizers,
        batch_size=batch,
        loss_funcs=loss_funcs,
        mining_funcs=mining_funcs,
        dataset=train_set,
        sampler=samplers.MPerClassSampler(
            labels, m=8, batch_size=batch, length_before_new_iter=len(train_set)
        ),
        dataloader_num_workers=0,
        **kwargs,
    )
    trainer.train(num_epochs=1 if quick else 15)

    tester = testers.GlobalEmbeddingSpaceTester(
        # was: accuracy_calculator=AccuracyCalculator(k="max_bin_count"),
        accuracy_calculator=sm.AffectiveAccuracyCalculator(
            class_names=CLASS_NAMES, k="max_bin_count"
        ),
        dataloader_num_workers=0,
        batch_size=batch,
    )
    # PML's tester: L2-normalised embeddings, every sample queries all the others
    acc = tester.test({"val": val_set}, 0, trunk, embedder)["val"]
    for name in ("precision_at_1", "mean_average_precision_at_r", "wheel_ndcg_at_k", "NMI"):
        print(f"{kind:22s} {name:28s} {acc[name + '_level0']:.3f}")
    return acc


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny data, one epoch")
    p.add_argument(
        "--trainer",
        choices=["metric_loss_only", "train_with_classifier", "both"],
        default="both",
    )
    args = p.parse_args(argv)
    kinds = (
        ["metric_loss_only", "train_with_classifier"] if args.trainer == "both" else [args.trainer]
    )
    return {kind: train(kind, args.quick) for kind in kinds}


if __name__ == "__main__":
    main()
