"""kNN callables for PML's ``knn_func`` protocol: exact torch kNN in chunks, a faiss flat index.

Both follow ``(query, k, reference, ref_includes_query) -> (distances (M, k), indices (M, k))``,
so PML's own ``AccuracyCalculator`` takes them as well. faiss is optional: every decision that
depends on it being installed is :func:`faiss_available`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
from pytorch_metric_learning.distances import BaseDistance
from sklearn.cluster import KMeans

from .._checks import check_choice, check_positive_int
from ..errors import SentimentMetricError
from ..functional.retrieval import exact_knn
from ..functional.retrieval.knn import drop_self

__all__ = ["FaissFlatKNN", "TorchKNN", "as_distance_fn", "default_kmeans", "faiss_available"]


def faiss_available() -> bool:
    """Whether faiss (faiss-cpu or faiss-gpu) is installed."""
    return importlib.util.find_spec("faiss") is not None


def as_distance_fn(
    distance: str | BaseDistance,
) -> Literal["euclidean", "cosine"] | Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``"euclidean"``/``"cosine"`` checked, or a PML distance as a smaller-is-closer callable."""
    if isinstance(distance, BaseDistance):
        d = distance

        def fn(q: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
            mat = d(q, r)
            return -mat if d.is_inverted else mat

        return fn
    return check_choice(distance, ("euclidean", "cosine"), "distance")  # type: ignore[return-value]


class TorchKNN:
    """Exact kNN with torch, in chunks: a drop-in ``knn_func`` for PML, no faiss needed.

    Calls :func:`sentiment_metric.functional.exact_knn`, so it never holds more than
    ``(chunk_size, N)`` distances. It follows PML's ``knn_func`` protocol
    ``(query, k, reference, ref_includes_query) -> (distances (M, k), indices (M, k))``.

    .. math::

        \\mathrm{NN}_k(q) = \\operatorname*{arg\\,min}_{S \\subset \\mathcal{R},\\,|S| = k}
        \\sum_{r \\in S} d(q, r)

    Args:
        distance: ``"euclidean"`` (squared distances, the ranking of faiss ``IndexFlatL2``),
            ``"cosine"`` (cosine similarities, largest first) or a PML distance object.
        chunk_size: queries per chunk (default: about 96 MB of working memory).

    Example:
        >>> import torch
        >>> from sentiment_metric.retrieval import TorchKNN
        >>> x = torch.tensor([[0.0], [1.0], [3.0]])
        >>> d, i = TorchKNN()(x, 1, x, True)
        >>> i.flatten().tolist()
        [1, 0, 1]
    """

    def __init__(
        self, distance: str | BaseDistance = "euclidean", chunk_size: int | None = None
    ) -> None:
        self.distance = distance
        self._fn = as_distance_fn(distance)
        self.chunk_size = (
            None if chunk_size is None else check_positive_int(chunk_size, "chunk_size")
        )

    def __call__(
        self,
        query: torch.Tensor,
        k: int,
        reference: torch.Tensor | None = None,
        ref_includes_query: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        d, i = exact_knn(
            query,
            query if reference is None else reference,
            k,
            ref_includes_query=ref_includes_query or reference is None,
            distance=self._fn,
            chunk_size=self.chunk_size,
        )
        if isinstance(self.distance, BaseDistance) and self.distance.is_inverted:
            d = -d
        return d, i

    def __repr__(self) -> str:
        return f"TorchKNN(distance={self.distance!r}, chunk_size={self.chunk_size})"


class FaissFlatKNN:
    """Exact kNN with a faiss flat index built once per reference set (faiss-cpu or -gpu).

    PML's ``knn_func`` protocol. ``IndexFlatL2`` (squared Euclidean, like PML's ``FaissKNN``);
    with ``distance="cosine"`` give L2-normalised embeddings (the calculator does).

    .. math::

        \\mathrm{NN}_k(q) = \\operatorname*{arg\\,min}_{S,\\,|S| = k} \\sum_{r \\in S}
        \\lVert q - r \\rVert_2^2

    Example:
        >>> import torch
        >>> from sentiment_metric.retrieval import FaissFlatKNN
        >>> x = torch.tensor([[0.0], [1.0], [3.0]])
        >>> FaissFlatKNN()(x, 1, x, True)[1].flatten().tolist()  # doctest: +SKIP
        [1, 0, 1]
    """

    def __init__(self) -> None:
        if not faiss_available():
            raise SentimentMetricError(
                "knn='faiss' needs faiss, which is not installed (pip install faiss-cpu); "
                "or use knn='torch' (exact, chunked, the default)"
            )
        import faiss

        self._faiss = faiss
        self._ref: torch.Tensor | None = None
        self._key: tuple[Any, ...] = ()
        self._index: Any = None

    def _index_for(self, reference: torch.Tensor) -> Any:
        # rebuilt for another tensor, or for the same one modified in place since
        key = (reference._version, reference.data_ptr(), tuple(reference.shape))
        if self._ref is not reference or self._key != key:
            ref = np.ascontiguousarray(reference.detach().float().cpu().numpy())
            self._index = self._faiss.IndexFlatL2(ref.shape[1])
            self._index.add(ref)
            self._ref, self._key = reference, key
        return self._index

    def __call__(
        self,
        query: torch.Tensor,
        k: int,
        reference: torch.Tensor | None = None,
        ref_includes_query: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if reference is None:
            reference, ref_includes_query = query, True
        index = self._index_for(reference)
        kk = k + int(ref_includes_query)
        q = np.ascontiguousarray(query.detach().float().cpu().numpy())
        d_np, i_np = index.search(q, kk)
        d = torch.from_numpy(d_np).to(query.device)
        i = torch.from_numpy(i_np).to(query.device)
        if ref_includes_query:
            i, d = drop_self(i, torch.arange(len(i), device=i.device), d)
        return d, i

    def reset(self) -> None:
        """Forget the cached index."""
        self._ref, self._key, self._index = None, (), None

    def __repr__(self) -> str:
        return "FaissFlatKNN()"


def _sklearn_kmeans(x: torch.Tensor, num_clusters: int) -> torch.Tensor:
    km = KMeans(n_clusters=num_clusters, n_init=1, random_state=0)
    labels = km.fit_predict(x.detach().float().cpu().numpy())
    return torch.as_tensor(labels, dtype=torch.int64, device=x.device)


def default_kmeans() -> Callable[[torch.Tensor, int], torch.Tensor] | None:
    """PML's clustering for ``NMI``/``AMI`` when faiss is there (``None``), else scikit-learn's."""
    return None if faiss_available() else _sklearn_kmeans
