"""Hierarchy-aware objectives and decisions: the maths, once.

Three families from the "better mistakes" literature, each a function of a batch of embeddings
(or logits), labels and the label hierarchy (a :class:`~sentiment_metric.LabelRelations`'s
``level`` or ``dis`` matrix):

- **hierarchical class centres** (Barz & Denzler, "Hierarchy-based Image Embeddings for
  Semantic Image Retrieval", WACV 2019): unit vectors whose cosine similarities are fixed by
  the hierarchy, :func:`hierarchical_centres`, and the softmax over the cosines to them,
  :func:`hierarchical_proxy_loss` (fixed proxies, as in hierarchical proxy losses);
- **a smooth hierarchical average precision** (HAPPIER: Ramzi et al., "Hierarchical Average
  Precision Training for Pertinent Image Retrieval", ECCV 2022), :func:`smooth_hierarchical_ap`;
- **conditional risk minimisation** (Karthik et al., "No Cost Likelihood Manipulation at Test
  Time for Making Better Mistakes in Deep Networks", ICLR 2021): the decision of least expected
  hierarchy cost, :func:`expected_cost_predictions`, and its retrieval form,
  :func:`expected_cost_embedding`.

The hierarchy enters through one rule, :func:`hierarchy_similarity`: class similarity
``S = 1 − (dis − 1) / (max dis − 1)`` (1 for the same class, 0 for the farthest pair), and its
complement, the normalised cost ``1 − S``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from .._checks import (
    check_embeddings,
    check_labels,
    check_nonnegative_float,
    check_positive_float,
    check_shape,
    check_tensor,
)
from ..errors import SentimentMetricError

__all__ = [
    "expected_cost_embedding",
    "expected_cost_predictions",
    "hierarchical_centres",
    "hierarchical_proxy_loss",
    "hierarchy_relevance",
    "hierarchy_similarity",
    "smooth_hierarchical_ap",
]

_CHUNK_ELEMENTS = 1 << 22
"""The most ``(queries, refs, refs)`` entries :func:`smooth_hierarchical_ap` holds at once."""


def _check_dis(dis: torch.Tensor) -> torch.Tensor:
    dis = check_shape(dis, ("C", "C"), "dis")
    if dis.shape[0] == 0:
        raise SentimentMetricError("dis is empty: the hierarchy needs at least one class")
    dis = dis.detach().to(torch.float64)
    if not bool(torch.isfinite(dis).all()) or bool((dis < 1).any()):
        raise SentimentMetricError("dis must be finite and >= 1 everywhere (dis = 1 + steps)")
    return dis


def hierarchy_similarity(dis: torch.Tensor) -> torch.Tensor:
    """Class similarity from the hierarchy distance: ``S = 1 − (dis − 1) / (max dis − 1)``.

    1 on the diagonal, 0 for the farthest pairs; the normalised cost of confusing ``i`` with
    ``j`` is ``1 − S_ij``. For :meth:`LabelRelations.from_groups` (``dis = 1 + level``) that is
    1, 1/2 and 0 for the same class, the same group and the other group; for Mikels' wheel it
    is ``1 − steps / 4``, a circle.

    .. math::

        S_{ij} = 1 - \\frac{\\mathrm{dis}_{ij} - 1}{\\max_{kl} \\mathrm{dis}_{kl} - 1}

    Args:
        dis: ``(C, C)`` hierarchy distances (``LabelRelations.dis``), ``>= 1``.

    Returns:
        ``(C, C)`` float64.

    Example:
        >>> import sentiment_metric as sm
        >>> rel = sm.LabelRelations.from_groups([0, 0, 1])
        >>> sm.functional.hierarchy_similarity(rel.dis)
        tensor([[1.0000, 0.5000, 0.0000],
                [0.5000, 1.0000, 0.0000],
                [0.0000, 0.0000, 1.0000]], dtype=torch.float64)
    """
    dis = _check_dis(dis)
    top = float(dis.max())
    if top == 1.0:
        return torch.ones_like(dis)
    return 1.0 - (dis - 1.0) / (top - 1.0)


def hierarchy_relevance(level: torch.Tensor) -> torch.Tensor:
    """Graded relevance of a two-level hierarchy: ``(2 − level) / 2``.

    1 for the same class, 1/2 for the same group, 0 for the other group: HAPPIER's linear
    relevance for a tree of depth 2, the relevance of
    :func:`~sentiment_metric.functional.hierarchical_average_precision`.

    Example:
        >>> import sentiment_metric as sm
        >>> sm.functional.hierarchy_relevance(sm.LabelRelations.from_groups([0, 0, 1]).level)
        tensor([[1.0000, 0.5000, 0.0000],
                [0.5000, 1.0000, 0.0000],
                [0.0000, 0.0000, 1.0000]], dtype=torch.float64)
    """
    level = check_shape(level, ("C", "C"), "level")
    return (2.0 - level.to(torch.float64)) / 2.0


def hierarchical_centres(dis: torch.Tensor, dim: int, *, seed: int = 0) -> torch.Tensor:
    """Unit class centres whose cosine similarities are :func:`hierarchy_similarity`.

    Barz & Denzler's construction: factor ``S = L Lᵀ`` (eigendecomposition; eigenvalues
    below zero, which a ``dis`` that is not a Euclidean geometry may have, are set to zero and
    the rows renormalised), then place the ``C`` rows in ``R^dim`` by a fixed random
    orthonormal map (seeded), which keeps every inner product. Needs ``dim >=`` the rank of
    ``S`` (at most ``C``).

    .. math::

        c_i \\cdot c_j = S_{ij}, \\qquad \\lVert c_i \\rVert = 1

    Args:
        dis: ``(C, C)`` hierarchy distances.
        dim: the embedding size ``D``.
        seed: the seed of the orthonormal map.

    Returns:
        ``(C, D)`` float64 centres.

    Example:
        >>> import sentiment_metric as sm
        >>> c = sm.functional.hierarchical_centres(sm.MIKELS_WHEEL.relations(
        ...     sm.MIKELS_WHEEL.emotions).dis, dim=16)
        >>> c.shape, round(float(c[0] @ c[1]), 4), abs(round(float(c[0] @ c[4]), 4))
        (torch.Size([8, 16]), 0.75, 0.0)
    """
    sim = hierarchy_similarity(dis)
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise SentimentMetricError(f"dim must be a positive int, got {dim!r}")
    vals, vecs = torch.linalg.eigh(sim)
    keep = vals > 1e-9 * float(vals.abs().max())
    rank = int(keep.sum())
    if dim < rank:
        raise SentimentMetricError(
            f"dim={dim} is too small for this hierarchy: its class similarities need {rank} "
            "dimensions (give an embedding at least that large)"
        )
    factor = vecs[:, keep] * vals[keep].sqrt()
    factor = factor / factor.norm(dim=1, keepdim=True)
    gen = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(dim, rank, generator=gen, dtype=torch.float64))
    return factor @ basis.T


def hierarchical_proxy_loss(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    centres: torch.Tensor,
    *,
    temperature: float = 0.1,
    validate: bool = True,
) -> torch.Tensor:
    """Softmax over the cosines to fixed class centres: one loss per sample.

    With :func:`hierarchical_centres` as the centres, the embedding of a class is pulled to
    its centre and pushed from the others in proportion to their closeness, so the classes
    settle at the hierarchy's positions (same-group centres at cosine 1/2, the others at 0).

    .. math::

        \\ell_i = -\\log \\frac{\\exp(\\cos(x_i, c_{y_i}) / \\tau)}
        {\\sum_{k} \\exp(\\cos(x_i, c_k) / \\tau)}

    Args:
        embeddings: ``(B, D)``.
        labels: ``(B,)`` class indices in ``[0, C)``.
        centres: ``(C, D)`` class centres (normalised here).
        temperature: ``τ > 0``.
        validate: check the values (finite embeddings, labels in range).

    Returns:
        ``(B,)`` losses in the embeddings' dtype.

    Example:
        >>> import torch, sentiment_metric as sm
        >>> c = sm.functional.hierarchical_centres(sm.LabelRelations.from_groups([0, 0, 1]).dis, 4)
        >>> loss = sm.functional.hierarchical_proxy_loss(c.float(), torch.tensor([0, 1, 2]), c)
        >>> bool((loss < 0.2).all())
        True
    """
    embeddings = check_embeddings(embeddings, validate=validate)
    centres = check_shape(centres, ("C", embeddings.shape[1]), "centres")
    labels = check_labels(labels, centres.shape[0], length=embeddings.shape[0], validate=validate)
    tau = check_positive_float(temperature, "temperature")
    cos = F.normalize(embeddings, dim=1) @ F.normalize(centres.to(embeddings), dim=1).T
    return F.cross_entropy(cos / tau, labels.to(embeddings.device), reduction="none")


def _smooth_hap_chunk(
    sim: torch.Tensor, rel: torch.Tensor, valid: torch.Tensor, tau: float
) -> torch.Tensor:
    """H-AP surrogate of a chunk of queries: ``sim``, ``rel``, ``valid`` are ``(b, N)``."""
    # step[b, k, j] = σ((s_j − s_k) / τ): how far j ranks above k
    step = torch.sigmoid((sim[:, None, :] - sim[:, :, None]) / tau)
    others = valid[:, None, :] & valid[:, :, None]
    others = others & ~torch.eye(sim.shape[1], dtype=torch.bool, device=sim.device)
    step = step * others
    rank = 1.0 + step.sum(dim=2)
    h_rank = rel + (torch.minimum(rel[:, :, None], rel[:, None, :]) * step).sum(dim=2)
    total = rel.sum(dim=1)
    hap = (h_rank / rank * (rel > 0)).sum(dim=1)
    return hap / total.clamp_min(torch.finfo(sim.dtype).tiny)


def smooth_hierarchical_ap(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    level: torch.Tensor,
    *,
    ref_emb: torch.Tensor | None = None,
    ref_labels: torch.Tensor | None = None,
    temperature: float = 0.01,
    validate: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A differentiable hierarchical average precision per query (HAPPIER's H-AP, smoothed).

    Cosine similarities ``s``; the indicator "``j`` ranks above ``k``" becomes the sigmoid
    ``σ((s_j − s_k)/τ)`` in both the rank and the hierarchical rank (the Smooth-AP surrogate;
    HAPPIER bounds the rank from above with a piecewise-linear ramp instead). Relevance is
    :func:`hierarchy_relevance` (1, 1/2, 0). Each query is ranked against the references
    (``ref_emb``, else the batch without the query itself). Memory grows like
    ``B·N²``: it is computed in chunks of queries, each recomputed in the backward
    (activation checkpointing) when the batch is large.

    .. math::

        \\widetilde{\\mathrm{H\\text{-}AP}}(q) = \\frac{1}{\\sum_{k \\in \\Omega^+} r_k}
        \\sum_{k \\in \\Omega^+} \\frac{r_k + \\sum_{j \\in \\Omega^+, j \\ne k}
        \\min(r_k, r_j)\\,\\sigma\\!\\left(\\frac{s_j - s_k}{\\tau}\\right)}
        {1 + \\sum_{j \\ne k} \\sigma\\!\\left(\\frac{s_j - s_k}{\\tau}\\right)}

    Args:
        embeddings: ``(B, D)`` queries.
        labels: ``(B,)`` class indices in ``[0, C)``.
        level: ``(C, C)`` hierarchy levels (``LabelRelations.level``).
        ref_emb: ``(N, D)`` references, or ``None`` for the batch itself (self excluded).
        ref_labels: ``(N,)`` their labels (with ``ref_emb``).
        temperature: ``τ > 0`` of the sigmoid.
        validate: check the values.

    Returns:
        ``(hap, has_relevant)``: ``(B,)`` surrogate H-AP per query (0 where the query has no
        relevant reference) and ``(B,)`` bool, the queries with one.

    Example:
        >>> import torch, sentiment_metric as sm
        >>> rel = sm.LabelRelations.from_groups([0, 0, 1])
        >>> x = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.6, 0.4], [0.0, 1.0]])
        >>> hap, ok = sm.functional.smooth_hierarchical_ap(x, torch.tensor([0, 0, 1, 2]), rel.level)
        >>> [round(v, 3) for v in hap.tolist()], ok.tolist()
        ([1.0, 1.0, 1.0, 0.0], [True, True, True, False])
    """
    embeddings = check_embeddings(embeddings, validate=validate)
    level = check_shape(check_tensor(level, "level"), ("C", "C"), "level")
    c = level.shape[0]
    labels = check_labels(labels, c, length=embeddings.shape[0], validate=validate)
    tau = check_positive_float(temperature, "temperature")
    if ref_emb is None:
        ref, ref_y, self_mask = embeddings, labels, True
    else:
        ref = check_embeddings(ref_emb, "ref_emb", validate=validate)
        if ref.shape[1] != embeddings.shape[1]:
            raise SentimentMetricError(
                f"ref_emb has embedding size {ref.shape[1]} but embeddings has "
                f"{embeddings.shape[1]}; they must match"
            )
        if ref_labels is None:
            raise SentimentMetricError("ref_labels is required with ref_emb")
        ref_y = check_labels(
            ref_labels, c, length=ref.shape[0], name="ref_labels", length_name="ref_emb",
            validate=validate,
        )  # fmt: skip
        self_mask = False
    dev = embeddings.device
    labels, ref_y = labels.to(dev), ref_y.to(dev)
    sim = F.normalize(embeddings, dim=1) @ F.normalize(ref.to(embeddings), dim=1).T
    rel = hierarchy_relevance(level).to(device=dev, dtype=embeddings.dtype)[labels][:, ref_y]
    valid = torch.ones_like(sim, dtype=torch.bool)
    if self_mask:
        valid = ~torch.eye(sim.shape[0], dtype=torch.bool, device=dev)
        rel = rel * valid
    n = sim.shape[1]
    rows = max(1, _CHUNK_ELEMENTS // max(1, n * n))
    parts = []
    for start in range(0, sim.shape[0], rows):
        args = (sim[start : start + rows], rel[start : start + rows], valid[start : start + rows])
        if rows < sim.shape[0] and torch.is_grad_enabled() and sim.requires_grad:
            parts.append(checkpoint(_smooth_hap_chunk, *args, tau, use_reentrant=False))
        else:
            parts.append(_smooth_hap_chunk(*args, tau))
    hap = torch.cat(parts) if parts else sim.new_zeros(0)
    return hap, rel.sum(dim=1) > 0


def expected_cost_predictions(
    logits: torch.Tensor, dis: torch.Tensor, *, validate: bool = True
) -> torch.Tensor:
    """The class of least expected hierarchy cost (conditional risk minimisation).

    With ``p = softmax(logits)`` and the normalised cost ``1 − S``
    (:func:`hierarchy_similarity`), predict ``argmin_k Σ_j p_j (1 − S_kj)``, i.e.
    ``argmax_k Σ_j S_kj p_j``: a confident prediction stays the top-1, an uncertain one moves
    towards the classes its rivals are close to. No training; Karthik et al. (ICLR 2021).

    .. math::

        \\hat y = \\operatorname*{arg\\,min}_k \\sum_j p_j \\,(1 - S_{kj})

    Args:
        logits: ``(B, C)`` class scores.
        dis: ``(C, C)`` hierarchy distances.
        validate: check that the logits are finite.

    Returns:
        ``(B,)`` int64 predictions.

    Example:
        >>> import torch, sentiment_metric as sm
        >>> dis = sm.LabelRelations.from_groups([0, 0, 1]).dis
        >>> probs = torch.tensor([[0.25, 0.35, 0.4]])  # the top-1 is class 2, alone in its group
        >>> sm.functional.expected_cost_predictions(probs.log(), dis)
        tensor([1])
    """
    logits = check_embeddings(logits, "logits", validate=validate)
    sim = hierarchy_similarity(dis)
    if sim.shape[0] != logits.shape[1]:
        raise SentimentMetricError(
            f"logits has {logits.shape[1]} classes but dis is {tuple(sim.shape)}; they must match"
        )
    probs = torch.softmax(logits.to(torch.float64), dim=1)
    return (probs @ sim.to(probs.device).T).argmax(dim=1)


def expected_cost_embedding(
    embeddings: torch.Tensor,
    logits: torch.Tensor,
    dis: torch.Tensor,
    weight: float,
    *,
    validate: bool = True,
) -> torch.Tensor:
    """Retrieval by distance plus expected hierarchy cost, as one inner product.

    Ranking the references ``x`` of a query ``q`` by
    ``‖e_q − e_x‖² + w · E[cost(y_q, y_x)]`` (``e`` the L2-normalised embeddings, the classes
    drawn from each side's softmax, cost ``1 − S`` from :func:`hierarchy_similarity`) is
    ranking by the inner product of ``z = [e, sqrt(w/2) · Lᵀ p]``, where ``S = L Lᵀ``: so a
    flat index with inner product (``DotProductSimilarity(normalize_embeddings=False)``,
    faiss ``IndexFlatIP``) retrieves with the re-ranking built in. ``w = 0`` is plain cosine
    retrieval. The factor ``L`` is :func:`hierarchical_centres`'s (exact where ``S`` is a
    Gram matrix, as for groups and for Mikels' wheel).

    .. math::

        \\lVert e_q - e_x \\rVert^2 + w\\, p_q^\\top (1 - S)\\, p_x
        = 2 + w - 2\\, z_q \\cdot z_x

    Args:
        embeddings: ``(B, D)``.
        logits: ``(B, C)`` class scores of the same samples.
        dis: ``(C, C)`` hierarchy distances.
        weight: ``w >= 0``, the weight of the expected cost (choose it on validation).
        validate: check the values.

    Returns:
        ``(B, D + C)`` float64 retrieval vectors (compare by inner product, unnormalised).

    Example:
        >>> import torch, sentiment_metric as sm
        >>> dis = sm.LabelRelations.from_groups([0, 0, 1]).dis
        >>> z = sm.functional.expected_cost_embedding(torch.eye(3), torch.eye(3) * 9, dis, 1.0)
        >>> z.shape
        torch.Size([3, 6])
    """
    embeddings = check_embeddings(embeddings, validate=validate)
    logits = check_shape(logits, (embeddings.shape[0], None), "logits")
    logits = check_embeddings(logits, "logits", validate=validate)
    weight = check_nonnegative_float(weight, "weight")
    c = logits.shape[1]
    dis = _check_dis(dis)
    if dis.shape[0] != c:
        raise SentimentMetricError(
            f"logits has {c} classes but dis is {tuple(dis.shape)}; they must match"
        )
    factor = hierarchical_centres(dis, c)
    probs = torch.softmax(logits.to(torch.float64), dim=1)
    e = F.normalize(embeddings.to(torch.float64), dim=1)
    return torch.cat([e, math.sqrt(weight / 2.0) * probs @ factor.to(probs.device)], dim=1)
