"""Evaluation: PML's ``AccuracyCalculator`` with wheel-aware retrieval measures, and a
classification report.

* :mod:`.calculator`: :class:`AffectiveAccuracyCalculator`, a subclass of
  pytorch-metric-learning's ``AccuracyCalculator`` whose measures are the entries of
  :data:`sentiment_metric.functional.retrieval.MEASURES`;
* :mod:`.knn`: :class:`TorchKNN` (exact, chunked, no faiss) and :class:`FaissFlatKNN`, two
  ``knn_func`` callables for PML;
* :mod:`.report`: :func:`classification_report`.

The maths is in :mod:`sentiment_metric.functional.retrieval`; these modules hold the
configuration and PML's plumbing.
"""

from .calculator import AffectiveAccuracyCalculator
from .knn import FaissFlatKNN, TorchKNN
from .report import classification_report

__all__ = ["AffectiveAccuracyCalculator", "FaissFlatKNN", "TorchKNN", "classification_report"]
