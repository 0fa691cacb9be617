"""SentimentSemiHardMiner under torch.compile: one graph, no breaks, the eager triplets.

The miner's output has a data-dependent length (the pairs that have a farther sample), so
dynamo must be allowed to capture ``nonzero``: ``capture_dynamic_output_shape_ops=True`` (and
``capture_scalar_outputs=True``). ``validate=False`` (the value checks read tensors on the
host) and ``seed=None`` (dynamo cannot trace a ``torch.Generator``; seed torch's generator
instead) are what a compiled miner needs. ``aot_eager`` keeps these CPU tests to seconds;
inductor is exercised by the benchmarks.
"""

from __future__ import annotations

import pytest
import torch

import sentiment_metric as sm

from .conftest import MIKELS_FI_ORDER

CAPTURE = {"capture_dynamic_output_shape_ops": True, "capture_scalar_outputs": True}


def _batch(b: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(b)
    return torch.randn(b, 16, generator=g), torch.randint(0, 8, (b,), generator=g)


@pytest.mark.parametrize("per_pair", [1, 2])
def test_miner_compiles_fullgraph_dynamic_and_matches_eager(per_pair: int) -> None:
    torch._dynamo.reset()
    miner = sm.SentimentSemiHardMiner(
        class_names=MIKELS_FI_ORDER, per_pair=per_pair, validate=False, seed=None
    )
    compiled = torch.compile(miner, backend="aot_eager", fullgraph=True, dynamic=True)
    with torch._dynamo.config.patch(**CAPTURE):
        for b in (24, 40):  # two batch sizes, one dynamic graph
            emb, labels = _batch(b)
            torch.manual_seed(1)
            got = compiled(emb, labels)
            n_compiled = miner.num_triplets
            torch.manual_seed(1)
            want = miner(emb, labels)
            assert len(want[0]) > 0 and n_compiled == miner.num_triplets
            for x, y in zip(got, want):
                assert x.dtype == torch.long and torch.equal(x, y)


def test_compiling_a_validating_or_seeded_miner_says_what_to_set() -> None:
    torch._dynamo.reset()
    emb, labels = _batch(16)
    for kwargs in ({"validate": True}, {"validate": False, "seed": 0}):
        miner = sm.SentimentSemiHardMiner(class_names=MIKELS_FI_ORDER, **kwargs)  # type: ignore[arg-type]
        compiled = torch.compile(miner, backend="aot_eager", fullgraph=True, dynamic=True)
        with torch._dynamo.config.patch(**CAPTURE), pytest.raises(Exception) as info:
            compiled(emb, labels)
        assert "validate=False, seed=None" in str(info.value) + str(info.value.__cause__)
