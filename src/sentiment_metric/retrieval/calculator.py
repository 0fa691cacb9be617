"""PML's ``AccuracyCalculator`` with the wheel-aware retrieval measures of the registry.

:class:`AffectiveAccuracyCalculator` is a subclass of pytorch-metric-learning's
``AccuracyCalculator``, so PML's testers and hooks take it. Its measures are computed by
:func:`sentiment_metric.functional.per_query_retrieval_metrics` in one chunked pass (exact kNN
with torch by default, no faiss needed); this module only holds the configuration and PML's
plumbing (a ``calculate_<name>`` per registry entry, ``requires_knn``, averaging per class).
"""

from __future__ import annotations

import functools
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

from .._checks import (
    check_choice,
    check_embeddings,
    check_labels,
    check_norms,
    check_positive_int,
    check_tensor,
)
from ..errors import SentimentMetricError
from ..functional.retrieval import (
    MEASURES,
    per_query_retrieval_metrics,
    resolve_k,
    resolve_reference,
)
from ..wheel import resolve_relations
from .knn import FaissFlatKNN, TorchKNN, as_distance_fn, default_kmeans

if TYPE_CHECKING:
    from ..wheel import EmotionWheel, LabelRelations

__all__ = ["AffectiveAccuracyCalculator"]

KnnFunc = Callable[..., tuple[torch.Tensor, torch.Tensor]]


class AffectiveAccuracyCalculator(AccuracyCalculator):
    """PML's ``AccuracyCalculator`` plus wheel-aware retrieval measures, faiss optional.

    Keeps PML's measures (``precision_at_1``, ``r_precision``, ``mean_average_precision_at_r``,
    ``mean_average_precision``, ``mean_reciprocal_rank``, ``NMI``, ``AMI``) and adds
    ``precision_at_<n>`` for ``n`` in ``precision_at_ks``, ``polarity_precision_at_k``,
    ``wheel_ndcg_at_k``, ``mean_wheel_distance_at_k``, ``first_tier``, ``second_tier``,
    ``anmrr``, ``hierarchical_average_precision`` (H-AP, over the whole ranking) and
    ``group_miss_share_at_k``: one ``calculate_<name>`` per entry of
    :data:`~sentiment_metric.functional.retrieval.MEASURES`, so a measure added there is here
    too. Notation: query ``q`` with label ``y_q``,
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
    references (PML's "lone" queries are left out; NaN if none is left); a measure that is
    undefined for some queries (``group_miss_share_at_k`` for a query whose top ``wheel_k``
    are all of its class) is averaged over the queries where it is defined.

    ``k`` has PML's meaning: an int, ``None`` (all references) or ``"max_bin_count"``; it is
    the depth of PML's ``mean_average_precision`` (which PML divides by ``R_q``) and
    ``mean_reciprocal_rank``. The wheel measures (``*_at_k``) have their own depth
    ``wheel_k``: by default ``k`` when ``k`` is an int, else 10 — a depth that depends on the
    data (``k=None``, ``"max_bin_count"``) never reaches them. ``r_precision``,
    ``mean_average_precision_at_r``, the tiers and ANMRR are always computed to the depth they
    need, whatever ``k`` (PML truncates them at ``k``, with a warning). ``NMI`` and ``AMI``
    cluster the queries with faiss k-means when faiss is installed (PML's), else with
    scikit-learn's ``KMeans`` (seeded), so they are there either way.

    Args:
        class_names: the dataset's class names in label order (or give ``relations``).
        relations: a :class:`~sentiment_metric.LabelRelations` instead of ``class_names``.
        wheel: the wheel ``class_names`` are read on (default Mikels').
        k: retrieval depth, PML's ``k`` (default 10).
        wheel_k: depth of the wheel measures (default: ``k`` if it is an int, else 10).
        precision_at_ks: depths ``n`` of the extra ``precision_at_<n>`` keys.
        include: measure names to compute (default: all, as in PML).
        exclude: measure names to leave out.
        avg_of_avgs: average per class, then over classes (PML).
        return_per_class: one value per class (PML).
        knn: ``"torch"`` (exact, chunked, default), ``"faiss"`` (a flat faiss index; needs
            faiss) or a PML-style ``knn_func``.
        distance: ``"euclidean"`` (the ranking of PML's default ``FaissKNN``), ``"cosine"``
            or a PML distance object (``knn="torch"`` only).
        chunk_size: queries per chunk (default: about 96 MB of working memory).
        device: where to compute: a ``torch.device`` or a name (``"cpu"``, ``"cuda:1"``,
            ...; default: the query's device). ``float16``/``bfloat16`` embeddings are
            computed in ``float32``.
        knn_func: PML's name for a custom kNN callable (same as ``knn=callable``).
        kmeans_func: PML's clustering callable for ``NMI``/``AMI`` (default: faiss k-means,
            or scikit-learn's without faiss).
        validate: check values (finite embeddings, labels in range, query = reference prefix).

    Example:
        >>> import torch, sentiment_metric as sm
        >>> calc = sm.AffectiveAccuracyCalculator(class_names=sm.MIKELS_WHEEL.emotions, k=3,
        ...                                       precision_at_ks=(1, 3), exclude=("NMI", "AMI"))
        >>> y = torch.arange(8).repeat(4)  # 8 emotions, 4 images each
        >>> angle = y * (2 * torch.pi / 8) + 0.01 * torch.arange(32)  # wheel order on a circle
        >>> x = torch.stack([angle.cos(), angle.sin()], dim=1)
        >>> acc = calc.get_accuracy(x, y)
        >>> # no wrong neighbour in any top 3: group_miss_share_at_k is undefined (NaN); H-AP
        >>> # reads the whole ranking, where the circle puts anger next to amusement
        >>> {k: round(v, 3) for k, v in sorted(acc.items())}  # doctest: +NORMALIZE_WHITESPACE
        {'anmrr': 0.0, 'first_tier': 1.0, 'group_miss_share_at_k': nan,
         'hierarchical_average_precision': 0.865, 'mean_average_precision': 1.0,
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
        wheel_k: int | None = None,
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
        _check_k(k)
        self.wheel_k = None if wheel_k is None else check_positive_int(wheel_k, "wheel_k")
        self.precision_at_ks = _check_precision_at_ks(precision_at_ks)
        self.knn = _knn_choice(knn, knn_func, distance)
        self.distance = distance
        self._distance_fn = as_distance_fn(distance)
        self.chunk_size = (
            None if chunk_size is None else check_positive_int(chunk_size, "chunk_size")
        )
        self._knn_fn, knn_obj = _knn_callables(self.knn, distance, self.chunk_size)
        self.validate = bool(validate)
        self._bind_measures()
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
        self.device = _check_device(device)
        if kmeans_func is None and (kmeans := default_kmeans()) is not None:
            self.kmeans_func = kmeans

    # -- PML's metric registry, read from ours ---------------------------------------------
    def _bind_measures(self) -> None:
        """A ``calculate_<name>`` for every measure the engine computes (not where a subclass
        wrote its own)."""
        for name in self._native():
            attr = f"calculate_{name}"
            if getattr(type(self), attr, None) is getattr(AccuracyCalculator, attr, None):
                setattr(self, attr, functools.partial(self._calculate, name))

    def _calculate_names(self) -> list[str]:
        return [n.replace("calculate_", "", 1) for n in dir(self) if n.startswith("calculate_")]

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
        """The measures computed from the ranking (PML's, the registry's, ``precision_at_<n>``)."""
        return list(dict.fromkeys([*super().requires_knn(), *self._native()]))

    def _native(self) -> list[str]:
        """The measures the engine computes: the registry's and ``precision_at_<n>``."""
        return [*MEASURES, *(f"precision_at_{n}" for n in self.precision_at_ks if n != 1)]

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
        defined = ~torch.isnan(values)
        if bool(defined.all()):
            return maybe_get_avg_of_avgs(values, labels, self.avg_of_avgs, self.return_per_class)
        return _mean_where_defined(values, labels, defined, self.avg_of_avgs, self.return_per_class)

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
        reference, reference_labels, ref_includes_query = resolve_reference(
            query, query_labels, reference, reference_labels, ref_includes_query
        )
        kwargs: dict[str, Any] = dict(
            zip(
                ("query", "query_labels", "reference", "reference_labels"),
                self._checked(query, query_labels, reference, reference_labels),
                strict=True,
            )
        )
        if ref_includes_query:
            self._check_query_prefix(**kwargs)
        self.check_primary_metrics(list(include), list(exclude))
        self.curr_function_dict = self.get_function_dict(include, exclude)
        curr = self.get_curr_metrics()
        kwargs["ref_includes_query"] = ref_includes_query
        kwargs["label_comparison_fn"] = self.label_comparison_fn
        knn_metrics = [m for m in curr if m in self.requires_knn()]
        if knn_metrics:
            kwargs.update(self._knn_kwargs(knn_metrics, **kwargs))
        if any(m in self.requires_clustering() for m in curr):
            kwargs["cluster_labels"] = self.get_cluster_labels(**kwargs)
        return self._get_accuracy(self.curr_function_dict, **kwargs)

    def _checked(
        self, query: Any, query_labels: Any, reference: Any, reference_labels: Any
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Torch tensors on the calculator's device, checked (values if ``validate``)."""
        query, reference, query_labels, reference_labels = (
            c_f.numpy_to_torch(x) for x in (query, reference, query_labels, reference_labels)
        )
        device = self.device if self.device is not None else check_tensor(query, "query").device
        # half precision is computed in float32 (faiss, numpy and k-means have no bfloat16)
        query, reference = (
            _at_least_float32(check_embeddings(x, name, validate=False)).to(device)
            for x, name in ((query, "query"), (reference, "reference"))
        )
        query_labels, reference_labels = (
            check_labels(
                lab,
                self.relations.num_classes,
                length=emb.shape[0],
                name=f"{name}_labels",
                length_name=name,
                validate=self.validate,
            ).to(device)
            for lab, emb, name in (
                (query_labels, query, "query"),
                (reference_labels, reference, "reference"),
            )
        )
        if self.validate:
            check_norms(query, "query")  # finite, and not too large for the distances
            check_norms(reference, "reference")
        return query, query_labels, reference, reference_labels

    def _check_query_prefix(
        self,
        query: torch.Tensor,
        query_labels: torch.Tensor,
        reference: torch.Tensor,
        reference_labels: torch.Tensor,
    ) -> None:
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

    def _knn_kwargs(
        self,
        knn_metrics: list[str],
        query: torch.Tensor,
        query_labels: torch.Tensor,
        reference: torch.Tensor,
        reference_labels: torch.Tensor,
        ref_includes_query: bool,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """PML's kNN keyword arguments for the ``calculate_*`` methods, plus ``per_query``
        (the engine's per-query values of the native measures)."""
        label_counts = get_label_match_counts(
            query_labels, reference_labels, self.label_comparison_fn
        )
        lone_query_labels, not_lone_query_mask = get_lone_query_labels(
            query_labels, label_counts, ref_includes_query, self.label_comparison_fn
        )
        if not bool(not_lone_query_mask.any()):
            c_f.LOGGER.warning("None of the query labels are in the reference set.")
        out: dict[str, Any] = {
            "label_counts": label_counts,
            "lone_query_labels": lone_query_labels,
            "not_lone_query_mask": not_lone_query_mask,
            "per_query": per_query_retrieval_metrics(
                query,
                query_labels,
                reference,
                reference_labels,
                relations=self.relations,
                metrics=[m for m in knn_metrics if m in self._native()],
                k=self.k,
                wheel_k=self.wheel_k,
                ref_includes_query=ref_includes_query,
                distance=self._engine_distance(),
                knn_fn=self._knn_fn,
                chunk_size=self.chunk_size,
                validate=False,
            ),
        }
        if any(m not in self._native() for m in knn_metrics):
            # a subclass's own kNN measure: give it PML's knn_labels / knn_distances
            n_cand = reference.shape[0] - int(ref_includes_query)
            max_bin = int(label_counts[1].max()) - int(ref_includes_query)
            num_k = resolve_k(self.k, max_bin, n_cand)
            knn_distances, knn_indices = self.knn_func(query, num_k, reference, ref_includes_query)
            out["knn_labels"] = reference_labels[knn_indices]
            out["knn_distances"] = knn_distances
        return out

    def _engine_distance(self) -> Any:
        if self._knn_fn is None:
            return self._distance_fn
        return "cosine" if self.distance == "cosine" else "euclidean"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(relations={self.relations!r}, k={self.k!r}, "
            f"wheel_k={self.wheel_k!r}, "
            f"precision_at_ks={self.precision_at_ks}, knn={self.knn!r}, "
            f"distance={self.distance!r}, metrics={self.get_curr_metrics()})"
        )


def _mean_where_defined(
    values: torch.Tensor,
    labels: torch.Tensor,
    defined: torch.Tensor,
    avg_of_avgs: bool,
    return_per_class: bool,
) -> float | list[float]:
    """PML's mean (or per-class means) of a measure that is NaN for some queries (e.g.
    ``group_miss_share_at_k`` without a wrong neighbour): over the queries where it is
    defined; a class with none gets NaN and is left out of ``avg_of_avgs``."""
    if not (avg_of_avgs or return_per_class):
        return float(values[defined].mean()) if bool(defined.any()) else float("nan")
    classes, which = torch.unique(labels, return_inverse=True)
    zero = torch.zeros(classes.shape[0], dtype=torch.float64, device=values.device)
    sums = zero.index_add(0, which, torch.where(defined, values, 0.0).double())
    per_class = sums / zero.index_add(0, which, defined.double())
    if return_per_class:
        return per_class.cpu().tolist()
    return float(per_class.nanmean())


def _check_device(device: Any) -> torch.device | None:
    """``None`` (the query's device) or a valid torch device, CUDA only where available."""
    if device is None:
        return None
    accepted = "None (the query's device), a torch.device or a name such as 'cpu', 'cuda', "
    accepted += "'cuda:1', 'mps'"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise SentimentMetricError(f"device must be {accepted}; got {device!r}") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SentimentMetricError(
            f"device {device!r} asks for CUDA, but torch.cuda.is_available() is False"
        )
    return dev


def _at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """``float16``/``bfloat16`` embeddings as ``float32``; others unchanged."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _check_k(k: Any) -> None:
    if not (
        k is None
        or k == "max_bin_count"
        or (isinstance(k, int) and not isinstance(k, bool) and k >= 1)
    ):
        raise SentimentMetricError(
            f"k must be an int >= 1, None (all references) or 'max_bin_count'; got {k!r}"
        )


def _check_precision_at_ks(precision_at_ks: Any) -> tuple[int, ...]:
    if isinstance(precision_at_ks, (str, bytes)) or not isinstance(precision_at_ks, Sequence):
        raise SentimentMetricError(
            f"precision_at_ks must be a sequence of ints >= 1, got {precision_at_ks!r}"
        )
    return tuple(sorted({check_positive_int(n, "precision_at_ks[i]") for n in precision_at_ks}))


def _knn_choice(knn: Any, knn_func: KnnFunc | None, distance: Any) -> Any:
    """``knn`` (``knn_func`` being PML's name for a callable ``knn``), checked with ``distance``."""
    if knn_func is not None:
        if knn != "torch":
            raise SentimentMetricError("give knn= or knn_func=, not both")
        knn = knn_func
    if isinstance(distance, BaseDistance) and knn != "torch":
        raise SentimentMetricError(
            "a PML distance object works with knn='torch' only; with faiss or a custom "
            "knn_func use distance='euclidean' or 'cosine'"
        )
    if not callable(knn):
        check_choice(knn, ("torch", "faiss"), "knn")
    return knn


def _knn_callables(
    knn: Any, distance: Any, chunk_size: int | None
) -> tuple[KnnFunc | None, KnnFunc]:
    """(the engine's external kNN or ``None`` for its own torch ranking, PML's ``knn_func``)."""
    if callable(knn):
        return knn, knn
    if knn == "faiss":
        faiss_knn = FaissFlatKNN()
        return faiss_knn, faiss_knn
    return None, TorchKNN(distance, chunk_size)
