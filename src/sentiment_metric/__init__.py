"""sentiment-metric: affective image retrieval and classification by deep metric learning.

After Yang, She, Lai and Yang, "Retrieving and Classifying Affective Images via Deep Metric
Learning" (AAAI 2018). The losses, miners and metrics plug into pytorch-metric-learning.
"""

from . import functional
from .constraint import SentimentConstraintLoss
from .errors import SentimentMetricError
from .memory import SentimentCrossBatchMemory
from .mining import SentimentSemiHardMiner
from .models import SentimentModel
from .multitask import MultiTaskSentimentLoss
from .retrieval import AffectiveAccuracyCalculator, classification_report
from .sentiment_vector import GramSentimentVector
from .wheel import MIKELS_WHEEL, PLUTCHIK_WHEEL, EmotionWheel, LabelRelations

__version__ = "0.1.0"

__all__ = [
    "MIKELS_WHEEL",
    "PLUTCHIK_WHEEL",
    "AffectiveAccuracyCalculator",
    "EmotionWheel",
    "GramSentimentVector",
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
