"""The measure registry: what every entry satisfies, and adding one is one function + one entry."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch

import sentiment_metric as sm
from sentiment_metric.functional import retrieval as R
from sentiment_metric.functional.retrieval import registry

DOCS = Path(__file__).resolve().parents[2] / "docs"
REL = sm.MIKELS_WHEEL.relations(sm.MIKELS_WHEEL.emotions)


def test_every_entry_is_well_formed():
    assert tuple(R.MEASURES) == R.RETRIEVAL_METRICS
    for name, m in R.MEASURES.items():
        assert isinstance(m, R.Measure) and m.name == name
        assert isinstance(m.depth, int) or m.depth in registry.DEPTHS, name
        assert m.description and "\n" not in m.description, name
        assert callable(m.fn)
        if m.see:
            assert m.see in sm.functional.__all__, (name, m.see)
    with pytest.raises(dataclasses.FrozenInstanceError):
        R.MEASURES["anmrr"].higher_is_better = True  # type: ignore[misc]
    with pytest.raises(TypeError):
        R.MEASURES["new"] = R.MEASURES["anmrr"]  # type: ignore[index]


def test_lower_is_better_and_relations_flags():
    lower = {n for n, m in R.MEASURES.items() if not m.higher_is_better}
    assert lower == {"anmrr", "mean_wheel_distance_at_k", "group_miss_share_at_k"}
    wheel = {n for n, m in R.MEASURES.items() if m.needs_relations}
    assert wheel == {
        "polarity_precision_at_k",
        "wheel_ndcg_at_k",
        "mean_wheel_distance_at_k",
        "hierarchical_average_precision",
        "group_miss_share_at_k",
    }


def test_precision_family_and_unknown_names():
    m = R.measure("precision_at_7")
    assert (m.name, m.depth, m.higher_is_better, m.needs_relations) == (
        "precision_at_7",
        7,
        True,
        False,
    )
    assert R.measure("anmrr") is R.MEASURES["anmrr"]
    for bad in ("precision_at_0", "precision_at_", "map@r", 3):
        with pytest.raises(sm.SentimentMetricError, match="known: precision_at_1"):
            R.measure(bad)  # type: ignore[arg-type]


def test_docs_table_lists_every_entry():
    table = registry.measures_table()
    for name, m in R.MEASURES.items():
        assert f"``{name}``" in table and m.description in table
    assert table in (registry.__doc__ or "")  # what the API page renders
    page = (DOCS / "api" / "retrieval.rst").read_text(encoding="utf-8")
    assert ".. automodule:: sentiment_metric.functional.retrieval.registry" in page


def _hit_rate_at_k(rk: R.ranking.Ranking, x: R.ranking.MeasureInputs) -> torch.Tensor:
    return (rk.top(rk.cum_hits, x.k) > 0).to(torch.float64)


def test_adding_a_measure_is_one_function_and_one_entry(monkeypatch):
    """The worked example of docs/dev_adding_a_measure.rst, end to end."""
    entry = R.Measure(
        "hit_rate_at_k",
        _hit_rate_at_k,
        depth="k",
        needs_relations=False,
        higher_is_better=True,
        description="share of queries with a hit in the top k",
    )
    monkeypatch.setitem(registry._REGISTRY, entry.name, entry)
    x = torch.tensor([[0.0], [0.1], [1.0], [5.0], [5.1], [9.0]])
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    # by hand, k=1: 0 and 1 find each other; 2 -> 1, 3 -> 4, 4 -> 3 miss; 5 -> 4 hits
    per = R.per_query_retrieval_metrics(x, y, relations=REL, k=1, metrics=["hit_rate_at_k"])
    assert per["hit_rate_at_k"].tolist() == [1.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    assert "hit_rate_at_k" in R.per_query_retrieval_metrics(x, y, relations=REL, k=1)
    calc = sm.AffectiveAccuracyCalculator(relations=REL, k=1, precision_at_ks=())
    acc = calc.get_accuracy(x, y)
    assert acc["hit_rate_at_k"] == pytest.approx(0.5)
    assert "hit_rate_at_k" in calc.requires_knn()
    only = calc.get_accuracy(x, y, include=["hit_rate_at_k"])
    assert only == {"hit_rate_at_k": pytest.approx(0.5)}
    assert "``hit_rate_at_k``" in registry.measures_table()


def test_depth_rules():
    rules = {n: m.ranking_depth(k=3, max_relevant=5, n_cand=40) for n, m in R.MEASURES.items()}
    assert rules["precision_at_1"] == 1
    assert rules["mean_average_precision"] == rules["wheel_ndcg_at_k"] == 3
    assert rules["r_precision"] == rules["first_tier"] == 5
    assert rules["second_tier"] == rules["anmrr"] == 10  # K(q) <= 2 GTM
    assert rules["hierarchical_average_precision"] == 40  # the whole ranking
    assert rules["group_miss_share_at_k"] == rules["wheel_ndcg_at_k"]
    every = dataclasses.replace(R.MEASURES["anmrr"], depth="all")
    assert every.ranking_depth(k=3, max_relevant=5, n_cand=40) == 40
    assert not math.isnan(rules["precision_at_1"])
