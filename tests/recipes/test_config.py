"""TrainConfig: defaults, checks, and the command-line options generated from its fields."""

from __future__ import annotations

import argparse
import dataclasses
import json

import pytest

import sentiment_metric as sm
from sentiment_metric.recipes.config import TrainConfig, add_config_options, config_options_given


def test_config_defaults_are_the_documented_schedule() -> None:
    c = TrainConfig()
    assert (c.lr, c.momentum, c.weight_decay, c.lr_step, c.lr_gamma) == (1e-3, 0.9, 5e-4, 10, 0.1)
    assert (c.batch_size, c.omega, c.margins, c.backbone) == (128, 0.2, (0.2, 0.1), "googlenet")
    assert c.resolved_m_per_class(8) == 16  # batch 128, 8 emotions -> 16 each
    assert TrainConfig(batch_size=32).resolved_m_per_class(8) == 8  # at least 8 per emotion
    assert TrainConfig(batch_size=128).resolved_m_per_class(20) == 8
    assert TrainConfig.from_dict(c.to_dict()) == c
    json.dumps(c.to_dict())


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"loss": "bogus"}, "loss must be one of"),
        ({"strategy": "easy"}, "strategy must be one of"),
        ({"embedding": "gram"}, "embedding must be one of"),
        ({"backbone": "vgg"}, "backbone must be one of"),
        ({"epochs": 0}, "epochs must be an int >= 1"),
        ({"lr": -1.0}, "lr must be a finite number > 0"),
        ({"omega": 1.5}, "omega must lie in [0, 1]"),
        ({"margins": (0.2, -0.1)}, "margins must be finite and >= 0"),
        ({"batch_size": 32, "m_per_class": 5}, "must divide batch_size"),
        ({"workers": -1}, "workers must be an int >= 0"),
    ],
)
def test_config_rejects_bad_values(kw: dict[str, object], needle: str) -> None:
    with pytest.raises(
        sm.SentimentMetricError, match=needle.replace("[", r"\[").replace("]", r"\]")
    ):
        TrainConfig(**kw)  # type: ignore[arg-type]


def test_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(sm.SentimentMetricError, match="unknown training option"):
        TrainConfig.from_dict({"lr": 0.1, "bogus": 1})


def test_every_cli_field_is_an_option_with_its_default_and_check() -> None:
    p = argparse.ArgumentParser()
    add_config_options(p)
    flags = {a.dest: a for a in p._actions if a.dest != "help"}
    cli_fields = [f for f in dataclasses.fields(TrainConfig) if f.metadata["cli"]]
    assert set(flags) == {f.name for f in cli_fields}
    assert flags["amp"].option_strings == ["--no-amp"]
    assert flags["m_per_class"].option_strings == ["--m-per-class"]
    assert flags["backbone"].choices == list(sm.models.BACKBONES)
    assert flags["image_size"].help == "input size (default 224)"
    args = p.parse_args(["--lr", "0.5", "--margins", "0.3", "0.2", "--no-amp", "--layers", "a"])
    given = config_options_given(args)
    assert given == {"lr": 0.5, "margins": (0.3, 0.2), "amp": False, "layers": ["a"]}
    assert TrainConfig(**given).margins == (0.3, 0.2)
    with pytest.raises(SystemExit):
        p.parse_args(["--workers", "-1"])  # the field's lower bound, on the command line too


def test_excluded_fields_are_not_options() -> None:
    p = argparse.ArgumentParser()
    add_config_options(p, exclude={"loss", "val_size"})
    dests = {a.dest for a in p._actions}
    assert "loss" not in dests and "val_size" not in dests and "omega" in dests
