"""Checkpoints and random-number states (and the atomic writer under them)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

import sentiment_metric as sm
from sentiment_metric.recipes.checkpoint import (
    atomic_save,
    get_rng_state,
    load_checkpoint,
    set_rng_state,
)
from sentiment_metric.recipes.files import truncate_jsonl


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


def test_rng_state_includes_the_named_generators(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(3)
    atomic_save({"rng": get_rng_state({"miner": g})}, tmp_path / "s.pt")
    a = torch.rand(4, generator=g)
    set_rng_state(torch.load(tmp_path / "s.pt", weights_only=True)["rng"], {"miner": g})
    assert torch.equal(torch.rand(4, generator=g), a)


def test_truncate_jsonl_drops_epochs_after_the_checkpoint(tmp_path: Path) -> None:
    p = tmp_path / "m.jsonl"
    p.write_text("".join(json.dumps({"epoch": e}) + "\n" for e in (1, 2, 3)))
    truncate_jsonl(p, 2)
    assert [json.loads(x)["epoch"] for x in p.read_text().splitlines()] == [1, 2]
