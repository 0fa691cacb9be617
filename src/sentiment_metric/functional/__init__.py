"""Pure tensor maths: no ``nn.Module`` state, no pytorch-metric-learning.

Each piece of maths of the library is written once here; the modules in
:mod:`sentiment_metric` hold configuration and call these functions.
"""

# Each part adds its own import line and names below (one line per module).

__all__: list[str] = []
