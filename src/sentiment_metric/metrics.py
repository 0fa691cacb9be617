"""Evaluation: PML's ``AccuracyCalculator`` with wheel-aware retrieval measures, and a
classification report.

:class:`AffectiveAccuracyCalculator` is a subclass of pytorch-metric-learning's
``AccuracyCalculator``, so PML's testers and hooks take it. Its measures are computed by
:func:`sentiment_metric.functional.per_query_retrieval_metrics` in one chunked pass (exact kNN
with torch by default, no faiss needed); this module only holds the configuration and PML's
plumbing (``calculate_<name>`` methods, ``requires_knn``, averaging per class).
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from pytorch_metric_learning.distances import BaseDistance
from pytorch_metric_learning.utils import common_functions as c_f
from pytorch_metric_learning.utils.accuracy_calculator import (
    AccuracyCalculator,
    get_label_match_counts,
    get_lone_query_labels,
    maybe_get_avg_of_avgs,
    nan_accuracy,
)

from ._checks import (
    SentimentMetricError,
    check_choice,
    check_embeddings,
    check_finite,
    check_labels,
    check_positive_int,
    check_tensor,
    resolve_relations,
)
from .functional.retrieval import (
    RETRIEVAL_METRICS,
    exact_knn,
    mean_wheel_distance_of_errors,
    per_query_retrieval_metrics,
    polarity_accuracy,
    resolve_k,
    wheel_order,
)
from .wheel import MIKELS_WHEEL

if TYPE_CHECKING:
    from .wheel import EmotionWheel, LabelRelations

__all__ = ["AffectiveAccuracyCalculator", "FaissFlatKNN", "TorchKNN", "classification_report"]

KnnFunc = Callable[..., tuple[torch.Tensor, torch.Tensor]]


def _faiss_available() -> bool:
    return importlib.util.find_spec("faiss") is not None


def _as_distance_fn(
    distance: str | BaseDistance,
) -> Literal["euclidean", "cosine"] | Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
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
        >>> from sentiment_metric.metrics import TorchKNN
        >>> x = torch.tensor([[0.0], [1.0], [3.0]])
        >>> d, i = TorchKNN()(x, 1, x, True)
        >>> i.flatten().tolist()
        [1, 0, 1]
    """

    def __init__(
        self, distance: str | BaseDistance = "euclidean", chunk_size: int | None = None
    ) -> None:
        self.distance = distance
        self._fn = _as_distance_fn(distance)
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
        >>> from sentiment_metric.metrics import FaissFlatKNN
        >>> x = torch.tensor([[0.0], [1.0], [3.0]])
        >>> FaissFlatKNN()(x, 1, x, True)[1].flatten().tolist()  # doctest: +SKIP
        [1, 0, 1]
    """

    def __init__(self) -> None:
        if not _faiss_available():
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
            is_self = i == torch.arange(len(i), device=i.device)[:, None]
            is_self[~is_self.any(dim=1), -1] = True
            d, i = d[~is_self].view(len(i), k), i[~is_self].view(len(i), k)
        return d, i

    def reset(self) -> None:
        """Forget the cached index."""
        self._ref, self._key, self._index = None, (), None

    def __repr__(self) -> str:
        return "FaissFlatKNN()"


def _sklearn_kmeans(x: torch.Tensor, num_clusters: int) -> torch.Tensor:
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=num_clusters, n_init=1, random_state=0)
    labels = km.fit_predict(x.detach().float().cpu().numpy())
    return torch.as_tensor(labels, dtype=torch.int64, device=x.device)


_PML_KNN_METRICS = (
    "precision_at_1",
    "r_precision",
    "mean_average_precision_at_r",
    "mean_average_precision",
    "mean_reciprocal_rank",
)


class AffectiveAccuracyCalculator(AccuracyCalculator):
    """PML's ``AccuracyCalculator`` plus wheel-aware retrieval measures, faiss optional.

    Keeps PML's measures (``precision_at_1``, ``r_precision``, ``mean_average_precision_at_r``,
    ``mean_average_precision``, ``mean_reciprocal_rank``; ``NMI``/``AMI`` on request with
    ``include=``) and adds ``precision_at_<n>`` for ``n`` in ``precision_at_ks``,
    ``polarity_precision_at_k``, ``wheel_ndcg_at_k``, ``mean_wheel_distance_at_k``,
    ``first_tier``, ``second_tier`` and ``anmrr``. Notation: query ``q`` with label ``y_q``,
    its candidate references ranked by distance ``r_1, r_2, …`` (the query itself never
    counts), hits ``h_i = [y_{r_i} = y_q]``, ``R_q`` relevant references, ``g`` the polarity:

    .. math::

        PP@k = \\frac{1}{k}\\sum_{i \\le k} [g(y_{r_i}) = g(y_q)], \\qquad
        \\bar d@k = \\frac{1}{k}\\sum_{i \\le k} (\\mathrm{dis}(y_q, y_{r_i}) - 1)

        \\mathrm{nDCG}@k = \\frac{\\sum_{i \\le k} \\mathrm{rel}(y_q, y_{r_i}) / \\log_2(i+1)}
                                {\\mathrm{IDCG}@k}, \\qquad
        \\mathrm{rel}(a, b) = \\begin{cases} 1/\\mathrm{dis}(a, b) &
            \\mathrm{level}(a, b) \\le 1 \\\\ 0 & \\mathrm{level}(a, b) = 2 \\end{cases}

        \\mathrm{FT} = \\frac{1}{R_q}\\sum_{i \\le R_q} h_i, \\qquad
        \\mathrm{ST} = \\frac{1}{R_q}\\sum_{i \\le 2R_q} h_i

        K(q) = \\min(4\\,R_q,\\ 2\\,\\max_{q'} R_{q'}),\\quad
        \\mathrm{NMRR}(q) = \\frac{\\frac{1}{R_q}\\sum_{j} \\mathrm{Rank}^*(j) - 0.5 - R_q/2}
                                 {1.25\\,K(q) - 0.5 - R_q/2}

    The graded relevance ``rel`` is 1 for the same emotion, ``1/dis`` (1/2, 1/3, 1/4 on
    Mikels' wheel) for another emotion of the same polarity and 0 for the opposite polarity;
    ``Rank*(j)`` is the rank of the ``j``-th relevant reference, or ``1.25 K(q)`` beyond
    ``K(q)`` (MPEG-7); ``anmrr`` is the mean NMRR (0 perfect, 1 worst). The first tier equals
    R-precision. Each measure is averaged over the queries whose label has relevant
    references (PML's "lone" queries are left out; NaN if none is left).

    ``k`` has PML's meaning: an int, ``None`` (all references) or ``"max_bin_count"``; it is
    the depth of the ``*_at_k`` measures and of PML's ``mean_average_precision`` (which PML
    divides by ``R_q``) and ``mean_reciprocal_rank``. ``r_precision``,
    ``mean_average_precision_at_r``, the tiers and ANMRR are always computed to the depth they
    need, whatever ``k`` (PML truncates them at ``k``, with a warning).

    Args:
        class_names: the dataset's class names in label order (or give ``relations``).
        relations: a :class:`~sentiment_metric.LabelRelations` instead of ``class_names``.
        wheel: the wheel ``class_names`` are read on (default Mikels').
        k: retrieval depth, PML's ``k`` (default 10).
        precision_at_ks: depths ``n`` of the extra ``precision_at_<n>`` keys.
        include: measure names to compute (default: all but ``NMI``/``AMI``).
        exclude: measure names to leave out.
        avg_of_avgs: average per class, then over classes (PML).
        return_per_class: one value per class (PML).
        knn: ``"torch"`` (exact, chunked, default), ``"faiss"`` (a flat faiss index; needs
            faiss) or a PML-style ``knn_func``.
        distance: ``"euclidean"`` (the ranking of PML's default ``FaissKNN``), ``"cosine"``
            or a PML distance object (``knn="torch"`` only).
        chunk_size: queries per chunk (default: about 96 MB of working memory).
        device: where to compute (default: the query's device).
        knn_func: PML's name for a custom kNN callable (same as ``knn=callable``).
        kmeans_func: PML's clustering callable for ``NMI``/``AMI`` (default: faiss k-means,
            or scikit-learn's without faiss).
        validate: check values (finite embeddings, labels in range, query = reference prefix).

    Example:
        >>> import torch, sentiment_metric as sm
        >>> calc = sm.AffectiveAccuracyCalculator(class_names=sm.MIKELS_WHEEL.emotions, k=3,
        ...                                       precision_at_ks=(1, 3))
        >>> y = torch.arange(8).repeat(4)  # 8 emotions, 4 images each
        >>> angle = y * (2 * torch.pi / 8) + 0.01 * torch.arange(32)  # wheel order on a circle
        >>> x = torch.stack([angle.cos(), angle.sin()], dim=1)
        >>> acc = calc.get_accuracy(x, y)
        >>> {k: round(v, 3) for k, v in sorted(acc.items())}  # doctest: +NORMALIZE_WHITESPACE
        {'anmrr': 0.0, 'first_tier': 1.0, 'mean_average_precision': 1.0,
         'mean_average_precision_at_r': 1.0, 'mean_reciprocal_rank': 1.0,
         'mean_wheel_distance_at_k': 0.0, 'polarity_precision_at_k': 1.0, 'precision_at_1': 1.0,
         'precision_at_3': 1.0, 'r_precision': 1.0, 'second_tier': 1.0, 'wheel_ndcg_at_k': 1.0}
    """

    def __init__(
        self,
        class_names: Sequence[str] | None = None,
        relations: LabelRelations | None = None,
        wheel: EmotionWheel | None = None,
        k: int | Literal["max_bin_count"] | None = 10,
        precision_at_ks: Sequence[int] = (1, 5, 10),
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        avg_of_avgs: bool = False,
        return_per_class: bool = False,
        knn: Literal["torch", "faiss"] | KnnFunc = "torch",
        distance: Literal["euclidean", "cosine"] | BaseDistance = "euclidean",
        chunk_size: int | None = None,
        device: torch.device | str | None = None,
        knn_func: KnnFunc | None = None,
        kmeans_func: Callable[[torch.Tensor, int], torch.Tensor] | None = None,
        validate: bool = True,
    ) -> None:
        self.relations = resolve_relations(class_names, relations, wheel)
        if avg_of_avgs and return_per_class:
            raise SentimentMetricError("avg_of_avgs and return_per_class are mutually exclusive")
        self.wheel = wheel
        if not (
            k is None
            or k == "max_bin_count"
            or (isinstance(k, int) and not isinstance(k, bool) and k >= 1)
        ):
            raise SentimentMetricError(
                f"k must be an int >= 1, None (all references) or 'max_bin_count'; got {k!r}"
            )
        if isinstance(precision_at_ks, (str, bytes)) or not isinstance(precision_at_ks, Sequence):
            raise SentimentMetricError(
                f"precision_at_ks must be a sequence of ints >= 1, got {precision_at_ks!r}"
            )
        self.precision_at_ks = tuple(
            sorted({check_positive_int(n, "precision_at_ks[i]") for n in precision_at_ks})
        )
        for n in self.precision_at_ks:
            if n != 1:  # precision_at_1 is PML's own method
                setattr(
                    self,
                    f"calculate_precision_at_{n}",
                    functools.partial(self._calculate, f"precision_at_{n}"),
                )
        if knn_func is not None:
            if knn != "torch":
                raise SentimentMetricError("give knn= or knn_func=, not both")
            knn = knn_func
        if isinstance(distance, BaseDistance) and knn != "torch":
            raise SentimentMetricError(
                "a PML distance object works with knn='torch' only; with faiss or a custom "
                "knn_func use distance='euclidean' or 'cosine'"
            )
        self.distance = distance
        self._distance_fn = _as_distance_fn(distance)
        self.knn = knn
        self._knn_fn: KnnFunc | None
        if callable(knn):
            self._knn_fn = knn
            knn_obj: KnnFunc = knn
        else:
            check_choice(knn, ("torch", "faiss"), "knn")
            self._knn_fn = FaissFlatKNN() if knn == "faiss" else None
            knn_obj = self._knn_fn if self._knn_fn is not None else TorchKNN(distance, chunk_size)
        self.chunk_size = (
            None if chunk_size is None else check_positive_int(chunk_size, "chunk_size")
        )
        self.validate = bool(validate)
        if len(include) == 0:  # everything but the clustering measures (opt-in)
            include = [
                name.replace("calculate_", "", 1)
                for name in dir(self)
                if name.startswith("calculate_")
                and name.replace("calculate_", "", 1) not in self.requires_clustering()
            ]
        super().__init__(
            include=tuple(include),
            exclude=tuple(exclude),
            avg_of_avgs=avg_of_avgs,
            return_per_class=return_per_class,
            k=None,
            device=torch.device("cpu"),
            knn_func=knn_obj,
            kmeans_func=kmeans_func,
        )
        self.k = k
        self.device = None if device is None else torch.device(device)
        if kmeans_func is None and not _faiss_available():
            self.kmeans_func = _sklearn_kmeans

    # -- PML's metric registry ------------------------------------------------------------
    def _known_metrics(self) -> list[str]:
        return list(self.original_function_dict)

    def check_primary_metrics(self, include: Any = (), exclude: Any = ()) -> None:
        """Raise :class:`SentimentMetricError` for unknown names in ``include``/``exclude``."""
        known = self._known_metrics()
        for arg, met in (("include", include), ("exclude", exclude)):
            if not isinstance(met, (tuple, list)):
                raise SentimentMetricError(
                    f"{arg} must be a tuple or list of metric names, got {type(met).__name__}"
                )
            unknown = [m for m in met if m not in known]
            if unknown:
                raise SentimentMetricError(
                    f"unknown metric name(s) in {arg}: {unknown}; known: {', '.join(known)}"
                )

    def requires_knn(self) -> list[str]:
        """The measures computed from the ranking (PML's, ours, ``precision_at_<n>``)."""
        return [
            *super().requires_knn(),
            "mean_reciprocal_rank",
            *[m for m in RETRIEVAL_METRICS if m not in _PML_KNN_METRICS],
            *[f"precision_at_{n}" for n in self.precision_at_ks if n != 1],
        ]

    def _native(self) -> set[str]:
        return {*RETRIEVAL_METRICS, *[f"precision_at_{n}" for n in self.precision_at_ks]}

    # -- the measures -----------------------------------------------------------------------
    def _calculate(
        self,
        name: str,
        per_query: dict[str, torch.Tensor],
        query_labels: torch.Tensor,
        not_lone_query_mask: torch.Tensor,
        label_counts: tuple[torch.Tensor, torch.Tensor],
        **kwargs: Any,
    ) -> float | list[float]:
        if not bool(not_lone_query_mask.any()):
            return nan_accuracy(label_counts[0], self.return_per_class)
        values = per_query[name][not_lone_query_mask]
        labels = query_labels[not_lone_query_mask]
        return maybe_get_avg_of_avgs(values, labels, self.avg_of_avgs, self.return_per_class)

    def calculate_precision_at_1(self, **kwargs: Any) -> float | list[float]:
        """Share of queries whose nearest neighbour has their label."""
        return self._calculate("precision_at_1", **kwargs)

    def calculate_r_precision(self, **kwargs: Any) -> float | list[float]:
        """R-precision, computed to each query's ``R_q`` whatever ``k``."""
        return self._calculate("r_precision", **kwargs)

    def calculate_mean_average_precision_at_r(self, **kwargs: Any) -> float | list[float]:
        """MAP@R, computed to each query's ``R_q`` whatever ``k``."""
        return self._calculate("mean_average_precision_at_r", **kwargs)

    def calculate_mean_average_precision(self, **kwargs: Any) -> float | list[float]:
        """PML's mean average precision at depth ``k`` (divided by ``R_q``)."""
        return self._calculate("mean_average_precision", **kwargs)

    def calculate_mean_reciprocal_rank(self, **kwargs: Any) -> float | list[float]:
        """Mean reciprocal rank of the first hit within the top ``k`` (0 if none)."""
        return self._calculate("mean_reciprocal_rank", **kwargs)

    def calculate_polarity_precision_at_k(self, **kwargs: Any) -> float | list[float]:
        """Share of the top ``k`` with the query's polarity."""
        return self._calculate("polarity_precision_at_k", **kwargs)

    def calculate_wheel_ndcg_at_k(self, **kwargs: Any) -> float | list[float]:
        """nDCG@k with the wheel's graded relevance (1, 1/dis, 0)."""
        return self._calculate("wheel_ndcg_at_k", **kwargs)

    def calculate_mean_wheel_distance_at_k(self, **kwargs: Any) -> float | list[float]:
        """Mean ``dis − 1`` between the query and its top ``k``."""
        return self._calculate("mean_wheel_distance_at_k", **kwargs)

    def calculate_first_tier(self, **kwargs: Any) -> float | list[float]:
        """First tier: share of the relevant references in the top ``R_q``."""
        return self._calculate("first_tier", **kwargs)

    def calculate_second_tier(self, **kwargs: Any) -> float | list[float]:
        """Second tier: share of the relevant references in the top ``2 R_q``."""
        return self._calculate("second_tier", **kwargs)

    def calculate_anmrr(self, **kwargs: Any) -> float | list[float]:
        """ANMRR (MPEG-7): mean normalised modified retrieval rank; 0 is perfect."""
        return self._calculate("anmrr", **kwargs)

    # -- the evaluation ---------------------------------------------------------------------
    def get_accuracy(
        self,
        query: torch.Tensor | np.ndarray,
        query_labels: torch.Tensor | np.ndarray,
        reference: torch.Tensor | np.ndarray | None = None,
        reference_labels: torch.Tensor | np.ndarray | None = None,
        ref_includes_query: bool = False,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Compute the measures.

        Args:
            query: ``(M, D)`` query embeddings (torch or numpy).
            query_labels: ``(M,)`` integer labels.
            reference: ``(N, D)`` reference embeddings; ``None``: the queries (and
                ``ref_includes_query`` is set).
            reference_labels: ``(N,)`` integer labels.
            ref_includes_query: the first ``M`` references are the queries; a query never
                retrieves itself.
            include: measure names for this call (default: those chosen at construction).
            exclude: measure names to leave out for this call.

        Returns:
            measure name -> float (or a list per class with ``return_per_class``).
        """
        if reference is None:
            if reference_labels is not None:
                raise SentimentMetricError("reference_labels given without reference")
            reference, reference_labels, ref_includes_query = query, query_labels, True
        elif reference_labels is None:
            raise SentimentMetricError("reference given without reference_labels")
        query, reference, query_labels, reference_labels = (
            c_f.numpy_to_torch(x) for x in (query, reference, query_labels, reference_labels)
        )
        device = self.device if self.device is not None else check_tensor(query, "query").device
        query = check_embeddings(query, "query", validate=False).to(device)
        reference = check_embeddings(reference, "reference", validate=False).to(device)
        c = self.relations.num_classes
        query_labels = check_labels(
            query_labels,
            c,
            length=query.shape[0],
            name="query_labels",
            length_name="query",
            validate=self.validate,
        ).to(device)
        reference_labels = check_labels(
            reference_labels,
            c,
            length=reference.shape[0],
            name="reference_labels",
            length_name="reference",
            validate=self.validate,
        ).to(device)
        if self.validate:
            check_finite(query, "query")
            check_finite(reference, "reference")
        if ref_includes_query:
            m = query.shape[0]
            if m > reference.shape[0] or (
                self.validate
                and not (
                    torch.equal(query, reference[:m])
                    and torch.equal(query_labels, reference_labels[:m])
                )
            ):
                raise SentimentMetricError(
                    "ref_includes_query=True needs the first len(query) rows of reference "
                    "(and reference_labels) to equal query (and query_labels)"
                )
        self.check_primary_metrics(list(include), list(exclude))
        self.curr_function_dict = self.get_function_dict(include, exclude)
        curr = self.get_curr_metrics()
        kwargs: dict[str, Any] = {
            "query": query,
            "reference": reference,
            "query_labels": query_labels,
            "reference_labels": reference_labels,
            "ref_includes_query": ref_includes_query,
            "label_comparison_fn": self.label_comparison_fn,
        }
        knn_metrics = [m for m in curr if m in self.requires_knn()]
        if knn_metrics:
            label_counts = get_label_match_counts(
                query_labels, reference_labels, self.label_comparison_fn
            )
            lone_query_labels, not_lone_query_mask = get_lone_query_labels(
                query_labels, label_counts, ref_includes_query, self.label_comparison_fn
            )
            if not bool(not_lone_query_mask.any()):
                c_f.LOGGER.warning("None of the query labels are in the reference set.")
            native = [m for m in knn_metrics if m in self._native()]
            kwargs["per_query"] = per_query_retrieval_metrics(
                query,
                query_labels,
                reference,
                reference_labels,
                relations=self.relations,
                metrics=native,
                k=self.k,
                ref_includes_query=ref_includes_query,
                distance=self._distance_fn
                if self._knn_fn is None
                else ("cosine" if self.distance == "cosine" else "euclidean"),
                knn_fn=self._knn_fn,
                chunk_size=self.chunk_size,
                validate=False,
            )
            kwargs["label_counts"] = label_counts
            kwargs["lone_query_labels"] = lone_query_labels
            kwargs["not_lone_query_mask"] = not_lone_query_mask
            if any(m not in self._native() for m in knn_metrics):
                # a subclass's own kNN measure: give it PML's knn_labels / knn_distances
                n_cand = reference.shape[0] - int(ref_includes_query)
                num_k = resolve_k(
                    self.k, int(label_counts[1].max()) - int(ref_includes_query), n_cand
                )
                knn_distances, knn_indices = self.knn_func(
                    query, num_k, reference, ref_includes_query
                )
                kwargs["knn_labels"] = reference_labels[knn_indices]
                kwargs["knn_distances"] = knn_distances
        if any(m in self.requires_clustering() for m in curr):
            kwargs["cluster_labels"] = self.get_cluster_labels(**kwargs)
        return self._get_accuracy(self.curr_function_dict, **kwargs)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(relations={self.relations!r}, k={self.k!r}, "
            f"precision_at_ks={self.precision_at_ks}, knn={self.knn!r}, "
            f"distance={self.distance!r}, metrics={self.get_curr_metrics()})"
        )


def _to_tensor(x: Any, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    try:
        return torch.as_tensor(np.asarray(x))
    except (TypeError, ValueError) as err:
        raise SentimentMetricError(
            f"{name} must be a tensor or array, got {type(x).__name__}"
        ) from err


def classification_report(
    logits_or_preds: torch.Tensor | np.ndarray | Sequence[int],
    labels: torch.Tensor | np.ndarray | Sequence[int],
    class_names: Sequence[str] | None = None,
    relations: LabelRelations | None = None,
    wheel: EmotionWheel | None = None,
    validate: bool = True,
) -> dict[str, Any]:
    """Classification measures with the wheel in view; plain Python types (JSON-ready).

    Top-1 accuracy, polarity accuracy (the prediction on the right side of the wheel),
    per-emotion precision / recall / F1 / support (scikit-learn), the confusion matrix with
    the classes in wheel order, and the mean wheel distance of the mistakes:

    .. math::

        \\mathrm{acc} = \\frac{1}{B}\\sum_i [\\hat y_i = y_i], \\quad
        \\mathrm{acc}_{pol} = \\frac{1}{B}\\sum_i [g(\\hat y_i) = g(y_i)], \\quad
        \\bar d_{err} = \\frac{1}{|E|}\\sum_{i \\in E} (\\mathrm{dis}(\\hat y_i, y_i) - 1)

    with ``E`` the mistakes. The wheel order sorts the classes by their place on ``wheel``
    (default Mikels'); classes not on it are sorted by polarity, then label.

    Args:
        logits_or_preds: ``(B, C)`` logits/scores (argmax taken) or ``(B,)`` predicted labels.
        labels: ``(B,)`` true labels.
        class_names: the class names in label order (or give ``relations``).
        relations: a :class:`~sentiment_metric.LabelRelations` instead of ``class_names``.
        wheel: the wheel (default Mikels').
        validate: check values (finite logits, labels in range).

    Returns:
        ``{"accuracy", "polarity_accuracy", "per_class": {name: {"precision", "recall",
        "f1", "support"}}, "macro_avg", "weighted_avg", "confusion_matrix"`` (rows: true,
        columns: predicted, both in ``confusion_order``), ``"confusion_order"`` (class names),
        ``"confusion_order_labels"`` (their label indices), ``"mean_wheel_distance_of_errors"``
        (``None`` without mistakes), ``"num_samples"}``.

    Example:
        >>> import torch, sentiment_metric as sm
        >>> names = ["amusement", "anger", "awe", "fear"]
        >>> rep = sm.classification_report(torch.tensor([0, 2, 2, 0]), torch.tensor([0, 0, 2, 3]),
        ...                                class_names=names)
        >>> rep["accuracy"], rep["polarity_accuracy"], rep["mean_wheel_distance_of_errors"]
        (0.5, 0.75, 3.0)
        >>> rep["confusion_order"]
        ['amusement', 'awe', 'fear', 'anger']
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    rel = resolve_relations(class_names, relations, wheel)
    c = rel.num_classes
    x = _to_tensor(logits_or_preds, "logits_or_preds")
    y = check_labels(_to_tensor(labels, "labels"), c, validate=validate)
    if x.dim() == 2:
        if x.shape[1] != c:
            raise SentimentMetricError(
                f"logits_or_preds as logits must have shape (B, {c}) for {c} classes, got "
                f"{tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise SentimentMetricError(
                f"logits_or_preds as (B, C) logits must be floating point, got {x.dtype}"
            )
        if validate:
            check_finite(x, "logits_or_preds")
        preds = x.argmax(dim=1)
    elif x.dim() == 1:
        preds = check_labels(x, c, name="logits_or_preds", validate=validate)
    else:
        raise SentimentMetricError(
            f"logits_or_preds must be (B, C) logits or (B,) predictions, got shape {tuple(x.shape)}"
        )
    if preds.shape[0] != y.shape[0]:
        raise SentimentMetricError(
            f"logits_or_preds has {preds.shape[0]} rows but labels has {y.shape[0]}; they must "
            "match"
        )
    if y.shape[0] == 0:
        raise SentimentMetricError("labels is empty: nothing to report")
    preds = preds.detach().cpu().to(torch.int64)
    y = y.detach().cpu().to(torch.int64)
    p_np, y_np = preds.numpy(), y.numpy()
    names = list(rel.class_names) if rel.class_names is not None else [str(i) for i in range(c)]
    all_labels = list(range(c))
    p, r, f, s = precision_recall_fscore_support(y_np, p_np, labels=all_labels, zero_division=0)
    per_class = {
        names[i]: {
            "precision": float(p[i]),
            "recall": float(r[i]),
            "f1": float(f[i]),
            "support": int(s[i]),
        }
        for i in range(c)
    }

    def avg(kind: str) -> dict[str, float]:
        pa, ra, fa, _ = precision_recall_fscore_support(
            y_np, p_np, labels=all_labels, average=kind, zero_division=0
        )
        return {"precision": float(pa), "recall": float(ra), "f1": float(fa)}

    the_wheel = wheel if wheel is not None else MIKELS_WHEEL
    order = wheel_order(rel.class_names, rel.groups, the_wheel.index)
    cm = confusion_matrix(y_np, p_np, labels=order)
    mwd = mean_wheel_distance_of_errors(preds, y, rel.dis)
    return {
        "accuracy": float((preds == y).double().mean()),
        "polarity_accuracy": polarity_accuracy(preds, y, rel.groups),
        "per_class": per_class,
        "macro_avg": avg("macro"),
        "weighted_avg": avg("weighted"),
        "confusion_matrix": [[int(v) for v in row] for row in cm.tolist()],
        "confusion_order": [names[i] for i in order],
        "confusion_order_labels": [int(i) for i in order],
        "mean_wheel_distance_of_errors": None if mwd is None else float(mwd),
        "num_samples": int(y.shape[0]),
    }
