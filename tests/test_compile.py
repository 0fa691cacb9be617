"""torch.compile (fullgraph, dynamic shapes) and CUDA-graph capture (issue 12).

The compiled functions must trace without a graph break (``fullgraph=True``) and give the eager
values and gradients. ``backend="aot_eager"`` (dynamo + AOT autograd, no code generation)
keeps these fast on the CPU; inductor is exercised by the GPU runs. ``validate=False``: the
value checks read tensors (a host sync), which a full graph cannot hold.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch._dynamo.testing import CompileCounterWithBackend

import sentiment_metric as sm
from tests.conftest import TOLERANCES
from tests.oracle import NAMES

TOL = TOLERANCES[torch.float32]


def _batch(b: int, seed: int, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(b, 16, generator=g).to(device)
    return emb, (torch.randperm(b, generator=g) % 8).to(device)


def _value_and_grad(fn: object, emb: torch.Tensor, *args: object) -> tuple[torch.Tensor, ...]:
    e = emb.clone().requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PML-style random tuples: the partial-swap warning
        value = fn(e, *args)  # type: ignore[operator]
    value.backward()
    return value.detach(), e.grad  # type: ignore[return-value]


@pytest.mark.parametrize("skip_level", ["ignore", "sum_margins"])
def test_loss_compiles_fullgraph_dynamic_without_recompiling(skip_level: str) -> None:
    torch._dynamo.reset()
    loss_fn = sm.SentimentConstraintLoss(class_names=NAMES, skip_level=skip_level, validate=False)
    counter = CompileCounterWithBackend("aot_eager")
    compiled = torch.compile(loss_fn, backend=counter, fullgraph=True, dynamic=True)
    frames = []
    for b, seed in ((24, 0), (40, 1), (56, 2)):  # dynamic shapes: no recompile per size
        emb, y = _batch(b, seed)
        got, got_grad = _value_and_grad(compiled, emb, y)
        want, want_grad = _value_and_grad(loss_fn, emb, y)
        torch.testing.assert_close(got, want, **TOL)
        torch.testing.assert_close(got_grad, want_grad, **TOL)
        frames.append(counter.frame_count)
    assert frames[0] >= 1 and frames[-1] == frames[0]


def test_loss_on_given_triplets_compiles_fullgraph_dynamic() -> None:
    # the tuple path (e.g. the miner's triplets) at three batch sizes; the number of tuples
    # stays 60: _pml.check_indices_tuple's len(set(lengths)) specialises it (one graph per
    # number of tuples until that check compares the lengths pairwise)
    torch._dynamo.reset()
    loss_fn = sm.SentimentConstraintLoss(class_names=NAMES, validate=False)
    counter = CompileCounterWithBackend("aot_eager")
    compiled = torch.compile(loss_fn, backend=counter, fullgraph=True, dynamic=True)
    g = torch.Generator().manual_seed(2)
    frames = []
    for b, t, seed in ((24, 60, 0), (40, 60, 1), (56, 60, 2)):
        emb, y = _batch(b, seed)
        tup = tuple(torch.randint(0, b, (t,), generator=g) for _ in range(3))
        got, got_grad = _value_and_grad(compiled, emb, y, tup)
        want, want_grad = _value_and_grad(loss_fn, emb, y, tup)
        torch.testing.assert_close(got, want, **TOL)
        torch.testing.assert_close(got_grad, want_grad, **TOL)
        frames.append(counter.frame_count)
    assert frames[0] >= 1 and frames[-1] == frames[0]


def test_loss_with_the_miner_compiles_fullgraph() -> None:
    # miner + loss in one compiled step (the miner's own conditions are its helper's tests)
    torch._dynamo.reset()
    # (the miner compiled needs validate=False and seed=None: torch.manual_seed seeds it)
    loss_fn = sm.SentimentConstraintLoss(class_names=NAMES, validate=False)
    miner = sm.SentimentSemiHardMiner(class_names=NAMES, validate=False)

    def step(e: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return loss_fn(e, y, miner(e, y))

    compiled = torch.compile(step, backend="aot_eager", fullgraph=True, dynamic=True)
    emb, y = _batch(32, 3)
    torch.manual_seed(7)
    got, got_grad = _value_and_grad(compiled, emb, y)
    torch.manual_seed(7)
    want, want_grad = _value_and_grad(step, emb, y)
    torch.testing.assert_close(got, want, **TOL)
    torch.testing.assert_close(got_grad, want_grad, **TOL)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
def test_loss_cuda_graph_capture_fixed_shape() -> None:
    # a fixed batch shape captured once (forward + backward), replayed on new data
    loss_fn = sm.SentimentConstraintLoss(class_names=NAMES, validate=False).cuda()
    emb, y = _batch(64, 4, "cuda")
    static_emb = emb.clone().requires_grad_(True)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up: the caches are filled outside the capture
        for _ in range(3):
            static_emb.grad = None
            loss_fn(static_emb, y).backward()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    static_emb.grad = None
    with torch.cuda.graph(graph):
        static_loss = loss_fn(static_emb, y)
        static_loss.backward()
    for seed in (5, 6):
        new, _ = _batch(64, seed, "cuda")
        with torch.no_grad():
            static_emb.copy_(new)
        graph.replay()
        want, want_grad = _value_and_grad(loss_fn, new, y)
        torch.testing.assert_close(static_loss.detach(), want, **TOL)
        torch.testing.assert_close(static_emb.grad, want_grad, **TOL)
