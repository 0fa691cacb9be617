"""The model and optimizer a config describes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

import sentiment_metric as sm
from sentiment_metric.recipes.build import build_model
from sentiment_metric.recipes.config import TrainConfig


def test_offline_weights_train_from_scratch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import torchvision.models._api as api

    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("network unreachable")

    monkeypatch.setattr(api, "load_state_dict_from_url", offline)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # no cached weights
    cfg = TrainConfig(backbone="resnet18", weights="DEFAULT", image_size=32)
    model = build_model(cfg, num_classes=8)
    assert "training from scratch" in capsys.readouterr().out
    _emb, logits = model(torch.zeros(2, 3, 32, 32))
    assert logits.shape == (2, 8)
    with pytest.raises(sm.SentimentMetricError, match="weights for backbone"):
        build_model(dataclasses.replace(cfg, weights="NOPE"), num_classes=8)
