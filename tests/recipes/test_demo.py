"""``sentiment-metric demo``: three arms that differ only in the objective, one table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sentiment_metric.recipes.cli import main
from sentiment_metric.recipes.demo import DEMO_ARMS, DEMO_CRM_WEIGHT, mean_metrics, winners
from sentiment_metric.recipes.evaluate import HEADLINE_METRICS


def test_demo_quick(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--quick", "--out", str(tmp_path), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    for name in DEMO_ARMS:
        assert f"| {name} |" in printed
    assert "wall time" in printed and "one seed (0)" in printed and "efficacy" in printed
    assert "| H-AP |" in printed and "errors across polarity (lower is better)" in printed
    for name in ("metrics.json", "embedding.png", "retrieval.png"):
        assert (tmp_path / name).stat().st_size > 1000
    doc = json.loads((tmp_path / "metrics.json").read_text())
    crm_row = f"{list(DEMO_ARMS)[-1]} + CRM"  # the recommended arm read by CRM, not trained
    assert list(doc["models"]) == [*DEMO_ARMS, crm_row]
    assert doc["models"][crm_row]["crm_weight"] == DEMO_CRM_WEIGHT
    assert f"| {crm_row} |" in printed
    for m in doc["models"].values():
        for key in ("accuracy", "polarity_accuracy", "mean_average_precision_at_r"):
            assert 0.0 <= m[key] <= 1.0
        assert 0.0 <= m["wheel_ndcg_at_k"] <= 1.0
        assert 0.0 <= m["mean_wheel_distance_at_k"] <= 4.0
        assert 0.0 < m["hierarchical_average_precision"] <= 1.0
        assert 0.0 <= m["group_miss_share_of_errors"] <= 1.0  # 1 epoch: mistakes to grade
        assert m["num_samples"] == 64
    assert set(doc["winners"]) == set(HEADLINE_METRICS)
    assert all(w in (*DEMO_ARMS, crm_row, "tie") for w in doc["winners"].values())
    assert len(list((tmp_path / "runs").iterdir())) == len(DEMO_ARMS)  # one run folder per arm


def test_demo_two_seeds_report_mean_and_spread(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["demo", "--quick", "--seeds", "3", "4", "--out", str(tmp_path), "--no-progress"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "mean ± std over 2 seeds (3, 4)" in printed and " ± " in printed.split("\n\n")[1]
    doc = json.loads((tmp_path / "metrics.json").read_text())
    assert doc["settings"]["seeds"] == [3, 4]
    for name in DEMO_ARMS:
        runs = doc["runs"][name]
        assert len(runs) == 2
        for key in HEADLINE_METRICS:
            vals = [r[key] for r in runs]
            assert doc["models"][name][key] == pytest.approx(sum(vals) / 2)
            assert doc["models"][name]["std"][key] == pytest.approx(abs(vals[0] - vals[1]) / 2**0.5)
    assert len(list((tmp_path / "runs").iterdir())) == 2 * len(DEMO_ARMS)


def test_mean_metrics_keeps_numbers_only() -> None:
    m = mean_metrics(
        [{"accuracy": 0.5, "name": "x", "n": 2}, {"accuracy": 0.7, "name": "y", "n": 4}]
    )
    assert m["accuracy"] == pytest.approx(0.6) and m["n"] == 3.0 and "name" not in m
    # a run without a value (None: no error to grade) is left out of that metric's mean
    runs = [{"group_miss_share_of_errors": None}, {"group_miss_share_of_errors": 0.25}]
    assert mean_metrics(runs)["group_miss_share_of_errors"] == 0.25
    assert mean_metrics([{"accuracy": 0.5}])["std"] == {"accuracy": 0.0}


def test_demo_arms_differ_only_in_the_objective() -> None:
    objective = {"loss", "omega", "strategy", "weighting", "wheel_margin", "margins"}
    rest = [{k: v for k, v in arm.items() if k not in objective} for arm in DEMO_ARMS.values()]
    assert all(r == rest[0] for r in rest)


def test_winners_picks_the_best_and_reads_the_direction() -> None:
    results = {
        "a": {"accuracy": 0.5, "mean_wheel_distance_at_k": 0.4},
        "b": {"accuracy": 0.7, "mean_wheel_distance_at_k": 0.6},
        "c": {"accuracy": 0.7, "mean_wheel_distance_at_k": 0.5},
    }
    out = winners(results, ["a", "b", "c"])
    assert out["accuracy"] == "tie"  # b and c share the best value
    assert out["mean_wheel_distance_at_k"] == "a"  # lower is better
    assert out["wheel_ndcg_at_k"] == "tie"  # not measured
