"""``python -m sentiment_metric.recipes`` runs the ``sentiment-metric`` command."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
