"""The one exception of the library."""

from __future__ import annotations

__all__ = ["SentimentMetricError"]


class SentimentMetricError(ValueError):
    """Raised for every invalid argument or input given to :mod:`sentiment_metric`.

    It subclasses :class:`ValueError`, so ``except ValueError`` keeps working. Its message
    names the argument, says what was expected and shows what came.

    Example:
        >>> import sentiment_metric as sm
        >>> try:
        ...     sm.MIKELS_WHEEL.index("joy")
        ... except sm.SentimentMetricError as err:
        ...     print(str(err).splitlines()[0])
        unknown emotion 'joy' on wheel 'mikels'
    """
