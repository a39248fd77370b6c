"""Losses of the joint space (method.md §2.4–2.9).

All take float tensors and are differentiable in their feature arguments. Randomness comes only from an explicit
``torch.Generator``, so a seeded run is reproducible (the reference seeds nothing, method.md §7.16).

Deliberate differences from the reference code, each a defect listed in method.md §7:
* :func:`sample_negatives` masks by the **mapped music tag** of each row, not the speech tag (§7.6): two speech
  emotions that map to the same music mood no longer make a clip of the positive's own mood a "negative". A row
  with no valid negative gets index -1 and is left out of :func:`triplet_loss` instead of crashing.
* :func:`emosim_loss` reproduces the reference exactly (first matching column, §7.1–7.2); training builds
  ``label_sim`` from a per-tag lookup so equal tags give bit-identical values (§7.4).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SP_WEIGHTS = (0.4, 0.3, 0.3)  # speech->music, tag->speech, tag->music (method.md §2.6)


def _as_class_ids(labels: torch.Tensor) -> torch.Tensor:
    """``(B,)`` class ids, or ``(B, K)`` one-hot/multi-hot -> ``(B,)`` ids of the argmax."""
    labels = torch.as_tensor(labels)
    return labels.argmax(dim=1) if labels.ndim == 2 else labels


def cosine_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``(B, D)``, ``(C, D)`` -> ``(B, C)`` cosine similarities."""
    return F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T


def triplet_loss(
    anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, margin: float = 0.4
) -> torch.Tensor:
    """Mean over rows of ``relu(margin - cos(a, p) + cos(a, n))``; all inputs ``(B, D)``. Returns a scalar."""
    pos = F.cosine_similarity(anchor, positive, dim=-1)
    neg = F.cosine_similarity(anchor, negative, dim=-1)
    return F.relu(margin - pos + neg).mean()


def sample_negatives(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    labels: torch.Tensor,
    weighted: bool = True,
    generator: torch.Generator | None = None,
    allowed: torch.Tensor | None = None,
) -> torch.Tensor:
    """For each anchor row i, the index j of a negative among the positives (method.md §2.4).

    anchor, positive: ``(B, D)`` row-aligned; labels: ``(B,)`` ids (or ``(B, K)`` one-hot) of the rows' mapped
    music tags. j is drawn among rows with a different label, with probability ∝ ``(cos(a_i, p_j) + 1) / 2`` when
    ``weighted`` (harder negatives slightly preferred), else uniformly. Returns int64 ``(B,)``; -1 where row i has
    no row of another label. No gradient flows through the choice. ``allowed``: bool ``(B, B)``, row j may be row
    i's negative only where True (e.g. only music of moods that row i's corpus has words for).
    """
    ids = _as_class_ids(labels).to(anchor.device)
    valid = ids[:, None] != ids[None, :]
    if allowed is not None:
        valid = valid & allowed.to(anchor.device)
    with torch.no_grad():
        if weighted:
            weights = (cosine_matrix(anchor, positive) + 1) / 2 + 1e-6  # epsilon: cos = -1 stays drawable
        else:
            weights = torch.ones(valid.shape, device=anchor.device)
        weights = torch.where(valid, weights, torch.zeros_like(weights))
        has = valid.any(dim=1)
        out = torch.full((len(ids),), -1, dtype=torch.long, device=anchor.device)
        if has.any():
            out[has] = torch.multinomial(weights[has], 1, generator=generator).squeeze(1)
    return out


def sampled_triplet_loss(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    labels: torch.Tensor,
    margin: float = 0.4,
    weighted: bool = True,
    generator: torch.Generator | None = None,
    allowed: torch.Tensor | None = None,
) -> torch.Tensor:
    """:func:`triplet_loss` with negatives from :func:`sample_negatives` (``allowed``: its mask); rows without a
    negative are skipped."""
    idx = sample_negatives(anchor, positive, labels, weighted=weighted, generator=generator, allowed=allowed)
    keep = idx >= 0
    if not keep.any():
        return anchor.sum() * 0.0
    return triplet_loss(anchor[keep], positive[keep], positive[idx[keep]], margin)


def _select_first_columns(feature_sim: torch.Tensor, label_sim: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference's EmoSim selection (method.md §2.7 steps 3–4).

    ``U = unique(label_sim, dim=1)`` (distinct columns, sorted), ``(B, u)``; for each row i and each value v of
    ``U[i]``, the first column j with ``label_sim[i, j] == v``. Returns (``feature_sim`` at those j, U).
    """
    unique = torch.unique(label_sim, dim=1)
    matches = label_sim[:, None, :] == unique[:, :, None]  # (B, u, B)
    first = matches.to(torch.uint8).argmax(dim=2)  # argmax returns the first of equal maxima
    return feature_sim.gather(1, first), unique


def emosim_loss(feature_sim: torch.Tensor, label_sim: torch.Tensor) -> torch.Tensor:
    """EmoSim regulariser exactly as the reference computes it: MSE between selected cosines and VA similarity.

    feature_sim: ``(B, B)`` cosine of speech row i and music column j. label_sim: ``(B, B)`` ``1 - ||VA_i - VA_j||``
    (a constant). With all columns distinct this equals ``MSE(feature_sim, label_sim)``.
    """
    selected, unique = _select_first_columns(feature_sim, label_sim.detach())
    return F.mse_loss(selected, unique.to(selected.dtype))


def _rank_normalised(x: torch.Tensor) -> torch.Tensor:
    """Row-wise descending rank (largest = 1) divided by the row length: ``(B, u)`` -> ``(B, u)`` in (0, 1]."""
    rank = torch.argsort(torch.argsort(x, dim=1).flip(1), dim=1)
    return (rank + 1).to(x.dtype) / x.shape[1]


class _TrueRanker(torch.autograd.Function):
    """Blackbox-backprop ranking (Vlastelica et al. 2020) as RankSim uses it (Gong et al., ICML 2022)."""

    @staticmethod
    def forward(ctx, sequence: torch.Tensor, interpolation: float) -> torch.Tensor:
        rank = _rank_normalised(sequence)
        ctx.interpolation = interpolation
        ctx.save_for_backward(sequence, rank)
        return rank

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        sequence, rank = ctx.saved_tensors
        rank_prime = _rank_normalised(sequence + ctx.interpolation * grad_output)
        return -(rank - rank_prime) / (ctx.interpolation + 1e-8), None


def ranksim_loss(feature_sim: torch.Tensor, label_sim: torch.Tensor, interpolation: float = 2.0) -> torch.Tensor:
    """RankSim variant (method.md §2.8): MSE between rank-normalised selected cosines and rank-normalised U."""
    selected, unique = _select_first_columns(feature_sim, label_sim.detach())
    return F.mse_loss(_TrueRanker.apply(selected, interpolation), _rank_normalised(unique).to(selected.dtype))


def structure_preserving_loss(
    stm: torch.Tensor, tts: torch.Tensor, ttm: torch.Tensor, weights: tuple[float, float, float] = SP_WEIGHTS
) -> torch.Tensor:
    """``0.4·speech→music + 0.3·tag→speech + 0.3·tag→music`` triplet losses (method.md §2.6)."""
    return weights[0] * stm + weights[1] * tts + weights[2] * ttm


def total_loss(main: torch.Tensor, regulariser: torch.Tensor | None = None, lam: float = 0.5) -> torch.Tensor:
    """``main + λ·regulariser`` (EmoSim or RankSim); λ = 0.5 as in the paper's training command."""
    return main if regulariser is None else main + lam * regulariser
