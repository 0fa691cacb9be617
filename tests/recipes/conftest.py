"""Fixtures of the recipes' tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def fi_order() -> list[str]:
    """FI's folders, sorted alphabetically (as torchvision's ImageFolder sees them)."""
    return ["amusement", "anger", "awe", "contentment", "disgust", "excitement", "fear", "sadness"]
