"""sentiment-metric: affective image retrieval and classification by deep metric learning.

After Yang, She, Lai and Yang, "Retrieving and Classifying Affective Images via Deep Metric
Learning" (AAAI 2018). The losses, miners and metrics plug into pytorch-metric-learning.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import SentimentMetricError

if TYPE_CHECKING:
    from . import functional
    from .constraint import SentimentConstraintLoss
    from .hierarchy import HierarchicalAPLoss, HierarchicalProxyLoss
    from .memory import SentimentCrossBatchMemory
    from .mining import SentimentSemiHardMiner
    from .models import SentimentModel
    from .multitask import MultiTaskSentimentLoss
    from .retrieval import AffectiveAccuracyCalculator, classification_report
    from .sentiment_vector import GramSentimentVector
    from .wheel import MIKELS_WHEEL, PLUTCHIK_WHEEL, EmotionWheel, LabelRelations

_LAZY = {
    "functional": "functional",
    "SentimentConstraintLoss": "constraint",
    "HierarchicalAPLoss": "hierarchy",
    "HierarchicalProxyLoss": "hierarchy",
    "SentimentCrossBatchMemory": "memory",
    "SentimentSemiHardMiner": "mining",
    "SentimentModel": "models",
    "MultiTaskSentimentLoss": "multitask",
    "AffectiveAccuracyCalculator": "retrieval",
    "classification_report": "retrieval",
    "GramSentimentVector": "sentiment_vector",
    "MIKELS_WHEEL": "wheel",
    "PLUTCHIK_WHEEL": "wheel",
    "EmotionWheel": "wheel",
    "LabelRelations": "wheel",
}
"""Public name -> the module that defines it, imported on first use: ``import
sentiment_metric`` alone loads neither torch nor PML, so ``sentiment-metric --help`` starts in
well under a second. A new public name is one line here, one under ``TYPE_CHECKING`` and one in
``__all__`` (``tests/recipes/test_newcomer.py`` checks that they agree)."""


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = importlib.import_module(f".{module}", __name__)
    if name != module:
        value = getattr(value, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__version__ = "0.1.0"

__all__ = [
    "MIKELS_WHEEL",
    "PLUTCHIK_WHEEL",
    "AffectiveAccuracyCalculator",
    "EmotionWheel",
    "GramSentimentVector",
    "HierarchicalAPLoss",
    "HierarchicalProxyLoss",
    "LabelRelations",
    "MultiTaskSentimentLoss",
    "SentimentConstraintLoss",
    "SentimentCrossBatchMemory",
    "SentimentMetricError",
    "SentimentModel",
    "SentimentSemiHardMiner",
    "__version__",
    "classification_report",
    "functional",
]
