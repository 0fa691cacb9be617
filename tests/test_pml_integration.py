"""SentimentConstraintLoss inside pytorch-metric-learning, for real."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import torch
from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning import trainers
from pytorch_metric_learning.miners import TripletMarginMiner
from pytorch_metric_learning.reducers import MeanReducer, ThresholdReducer
from pytorch_metric_learning.utils import distributed as pml_dist

import sentiment_metric as sm
from tests.conftest import TOLERANCES
from tests.oracle import NAMES, naive_loss

TOL = TOLERANCES[torch.float64]

B, D, WORLD = 8, 5, 2


def _data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B * WORLD, D, generator=g, dtype=torch.float64), torch.randint(
        0, 8, (B * WORLD,), generator=g
    )


def test_multiple_losses() -> None:
    x, y = _data(1)
    ours = sm.SentimentConstraintLoss(class_names=NAMES, reducer=MeanReducer())
    triplet = pml_losses.TripletMarginLoss(margin=0.1)
    both = pml_losses.MultipleLosses([ours, triplet], weights=[0.7, 0.3])
    torch.testing.assert_close(both(x, y), 0.7 * ours(x, y) + 0.3 * triplet(x, y), **TOL)
    torch.testing.assert_close(ours(x, y), naive_loss(x, y, reduction="mean"), **TOL)


def test_cross_batch_memory_exhaustive_against_memory() -> None:
    x1, y1 = _data(2)
    x2, y2 = _data(3)
    loss = sm.SentimentConstraintLoss(class_names=NAMES, reducer=MeanReducer())
    xbm = sm.SentimentCrossBatchMemory(loss, embedding_size=D, memory_size=48)
    with pytest.raises(Exception, match="not supported"):
        pml_losses.CrossBatchMemory(loss, embedding_size=D)
    xbm(x1.float(), y1)
    got = xbm(x2.float(), y2)
    # the second batch against a memory of both batches, its own slots excluded
    mem, mem_y = torch.cat([x1, x2]), torch.cat([y1, y2])
    want = _naive_with_self(x2, y2, mem, mem_y, offset=len(x1))
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-6)
    assert xbm.queue_idx == 2 * len(x1)
    # with a miner, PML's own path: ranked triplets against the memory
    xbm_m = sm.SentimentCrossBatchMemory(
        loss, embedding_size=D, memory_size=48, miner=TripletMarginMiner(margin=0.5)
    )
    out = xbm_m(x1.float(), y1)
    assert torch.isfinite(out)


def _naive_with_self(
    x: torch.Tensor, y: torch.Tensor, mem: torch.Tensor, mem_y: torch.Tensor, offset: int
) -> torch.Tensor:
    trip = []
    w = sm.MIKELS_WHEEL
    for a in range(len(x)):
        for c in range(len(mem)):
            for f in range(len(mem)):
                if offset + a in (c, f):
                    continue
                lc = w.level(NAMES[y[a]], NAMES[mem_y[c]])
                lf = w.level(NAMES[y[a]], NAMES[mem_y[f]])
                if lc < lf:
                    trip.append((a, c, f))
    return naive_loss(x, y, trip, ref_emb=mem, ref_labels=mem_y, reduction="mean")


def _worker(rank: int, out_dir: str, efficient: bool = False) -> None:
    torch.set_num_threads(1)
    # a file rendezvous: no TCP port to race for with other tests running in parallel
    store = f"file://{Path(out_dir) / 'store'}"
    torch.distributed.init_process_group("gloo", init_method=store, rank=rank, world_size=WORLD)
    try:
        x, y = _data(4)
        x_local = x[rank * B : (rank + 1) * B].clone().requires_grad_(True)
        y_local = y[rank * B : (rank + 1) * B]
        loss = sm.SentimentConstraintLoss(class_names=NAMES, reducer=MeanReducer())
        value = pml_dist.DistributedLossWrapper(loss, efficient=efficient)(x_local, y_local)
        value.backward()
        torch.save({"loss": value.detach(), "grad": x_local.grad}, Path(out_dir) / f"{rank}.pt")
    finally:
        torch.distributed.destroy_process_group()


def test_distributed_loss_wrapper_two_processes() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        torch.multiprocessing.spawn(_worker, args=(tmp,), nprocs=WORLD, join=True)
        res = [torch.load(Path(tmp) / f"{r}.pt") for r in range(WORLD)]
    x, y = _data(4)
    x = x.clone().requires_grad_(True)
    single = sm.SentimentConstraintLoss(class_names=NAMES, reducer=MeanReducer())(x, y)
    (single * WORLD).backward()
    assert x.grad is not None
    for r, out in enumerate(res):
        # PML's wrapper returns the loss on the gathered batch times the world size
        torch.testing.assert_close(out["loss"], single.detach() * WORLD, **TOL)
        # each rank's gradient: the full gradient's rows of its own embeddings (the gathered
        # ones are constants there)
        assert out["grad"].abs().sum() > 0
        torch.testing.assert_close(out["grad"], x.grad[r * B : (r + 1) * B], **TOL)


def test_efficient_distributed_loss_wrapper_two_processes() -> None:
    # efficient=True: each rank's anchors against the gathered batch (its own rows first), the
    # self-pairs removed, handed over as PML pairs; the loss reads them as the allowed
    # comparisons, so each rank gets every ranked triplet of its anchors across both ranks
    with tempfile.TemporaryDirectory() as tmp:
        torch.multiprocessing.spawn(_worker, args=(tmp, True), nprocs=WORLD, join=True)
        res = [torch.load(Path(tmp) / f"{r}.pt") for r in range(WORLD)]
    x, y = _data(4)
    loss_fn = sm.SentimentConstraintLoss(class_names=NAMES, reducer=MeanReducer())
    for r, out in enumerate(res):
        xr = x.clone().requires_grad_(True)
        own = slice(r * B, (r + 1) * B)
        others = [i for i in range(WORLD * B) if not own.start <= i < own.stop]
        ref, ref_y = torch.cat([xr[own], xr[others]]), torch.cat([y[own], y[others]])
        want = loss_fn(xr[own], y[own], ref_emb=ref, ref_labels=ref_y, self_index=torch.arange(B))
        (want * WORLD).backward()
        assert xr.grad is not None and out["grad"].abs().sum() > 0
        torch.testing.assert_close(out["loss"], want.detach() * WORLD, **TOL)
        # the gathered rows of the other rank are constants on this rank
        torch.testing.assert_close(out["grad"], xr.grad[own], **TOL)


def _clustered(n: int, seed: int) -> torch.utils.data.TensorDataset:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(8, 16, generator=g)
    y = torch.arange(n) % 8
    return torch.utils.data.TensorDataset(centres[y] + 1.5 * torch.randn(n, 16, generator=g), y)


def test_train_with_classifier_loss_falls() -> None:
    torch.manual_seed(0)
    trunk = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 24))
    classifier = torch.nn.Linear(24, 8)
    metric_hist: list[float] = []

    def hook(trainer: trainers.BaseTrainer) -> None:
        metric_hist.append(float(trainer.losses["metric_loss"].detach()))

    trainer = trainers.TrainWithClassifier(
        models={"trunk": trunk, "classifier": classifier},
        optimizers={
            "trunk_optimizer": torch.optim.Adam(trunk.parameters(), lr=1e-2),
            "classifier_optimizer": torch.optim.Adam(classifier.parameters(), lr=1e-2),
        },
        batch_size=64,
        loss_funcs={
            "metric_loss": sm.SentimentConstraintLoss(class_names=NAMES, reducer=MeanReducer()),
            "classifier_loss": torch.nn.CrossEntropyLoss(),
        },
        loss_weights={"metric_loss": 0.2, "classifier_loss": 0.8},
        dataset=_clustered(256, 1),
        iterations_per_epoch=8,
        dataloader_num_workers=0,
        end_of_iteration_hook=hook,
    )
    trainer.train(num_epochs=3)
    assert len(metric_hist) == 24
    first, last = sum(metric_hist[:4]) / 4, sum(metric_hist[-4:]) / 4
    assert last < 0.7 * first, metric_hist


def test_multitask_plain_loop_loss_falls() -> None:
    torch.manual_seed(0)
    ds = _clustered(128, 2)
    x, y = ds.tensors
    trunk = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 24))
    head = torch.nn.Linear(24, 8)
    opt = torch.optim.Adam([*trunk.parameters(), *head.parameters()], lr=1e-2)
    loss_fn = sm.MultiTaskSentimentLoss(omega=0.2, class_names=NAMES)
    hist = []
    for _ in range(25):
        emb = trunk(x)
        loss = loss_fn(emb, head(emb), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        hist.append(loss_fn.last_losses)
    assert hist[-1]["total"] < 0.7 * hist[0]["total"]
    assert hist[-1]["metric"] < hist[0]["metric"]
    assert hist[-1]["classification"] < hist[0]["classification"]


def test_cross_batch_memory_threshold_reducer_needs_no_enumeration() -> None:
    """PML's CrossBatchMemory example reducer at B = 128, M = 1024 (about 2·10^7 triplets):
    exact on the fast path, no explicit-triplet limit."""
    loss = sm.SentimentConstraintLoss(class_names=NAMES, reducer=ThresholdReducer(low=0.0))
    loss.max_explicit_triplets = 0  # enumeration would raise
    xbm = sm.SentimentCrossBatchMemory(loss, embedding_size=16, memory_size=1024)
    g = torch.Generator().manual_seed(0)
    for _ in range(9):  # the memory fills after 8 batches
        x = torch.randn(128, 16, generator=g, requires_grad=True)
        value = xbm(x, torch.randint(0, 8, (128,), generator=g))
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(x.grad).all()
