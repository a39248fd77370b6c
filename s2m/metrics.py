"""Retrieval and classification metrics (method.md §4).

Retrieval: every speech query ranks the whole music gallery. A gallery item labelled by one word is *relevant* to
a query when its label is the query label's VA-nearest label among the gallery's labels; its *gain* is
``max(0, 1 - VA distance)`` between the two words (clipped at 0 because sklearn's nDCG refuses negative gains; with
the lexicon table far-apart labels such as calm and scary are more than 1 apart).

A track labelled by its listeners (the share of them who marked each GEMS emotion, Emotify's layout) is relevant
when at least ``RELEVANT_SHARE`` of its listeners marked the query label's VA-nearest GEMS emotion; its gain is the
same VA closeness averaged over what its listeners marked (shares normalised to sum 1). Why a third and not the
dominant emotion: split in two random halves of its listeners, a track's relevance agrees between the halves with
Cohen's kappa 0.49 for "a third marked it" against 0.37 for "most marked it" (the median margin between a track's
top two emotions is 0.13 of its listeners); thresholds 0.30-0.40 give 0.48-0.49, 0.25 and 0.5 0.47 and 0.44
(50 random halvings of the 288 training and validation tracks, throw-away script; the model card, "Music").
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from .emotions import GEMS_LABELS, nearest_label, similarity_matrix

RELEVANT_SHARE = 1 / 3  # a listener-labelled track is relevant when at least this share of its listeners felt it
SHARE_ROUNDING = 1e-4  # shares published to 4 decimals: 5 of 15 listeners (0.3333) is a third


def ranking_metrics(scores: np.ndarray, relevant: np.ndarray, gains: np.ndarray, k: int = 5) -> dict[str, float]:
    """P@k, MRR and nDCG@k of Q queries over G gallery items.

    scores: float ``(Q, G)``, higher = better. relevant: bool ``(Q, G)``. gains: float ``(Q, G)``, >= 0.
    Ranking ties are broken by gallery order (stable sort) for P@k and MRR; nDCG@k is
    ``sklearn.metrics.ndcg_score(gains, scores, k=k)``, which averages over ties.
    MRR = mean of 1 / (1 + 0-based rank of the first relevant item) over the full ranking; queries without any
    relevant item are left out of MRR with a warning (and score 0 in P@k).
    """
    from sklearn.metrics import ndcg_score

    scores, relevant, gains = np.asarray(scores, float), np.asarray(relevant, bool), np.asarray(gains, float)
    if not scores.shape == relevant.shape == gains.shape or scores.ndim != 2:
        raise ValueError(
            f"scores, relevant, gains must share one (Q, G) shape; got {scores.shape}, {relevant.shape}, {gains.shape}"
        )
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores contain NaN or infinity")
    order = np.argsort(-scores, axis=1, kind="stable")
    ranked = np.take_along_axis(relevant, order, axis=1)
    precision = ranked[:, :k].sum(axis=1) / k
    has = ranked.any(axis=1)
    if not has.all():
        warnings.warn(
            f"{int((~has).sum())} of {len(has)} queries have no relevant gallery item; they are left out of MRR",
            stacklevel=2,
        )
    first = ranked.argmax(axis=1)
    mrr = float(np.mean(1.0 / (1.0 + first[has]))) if has.any() else float("nan")
    ndcg = float(ndcg_score(gains, scores, k=k)) if scores.shape[1] > 1 else float(gains.any())
    return {"precision_at_k": float(precision.mean()), "mrr": mrr, "ndcg_at_k": ndcg}


def felt(shares: np.ndarray) -> np.ndarray:
    """bool, the shape of float ``shares``: whether at least ``RELEVANT_SHARE`` of the listeners marked it."""
    return np.asarray(shares, float) >= RELEVANT_SHARE - SHARE_ROUNDING


def constant_ranking(relevant: np.ndarray, seed: int = 0) -> np.ndarray:
    """float ``(G,)``: the best ranking that is the same for every query of bool ``(Q, G)`` ``relevant`` (its P@k is
    the highest any shared ranking reaches): the items relevant to the most queries first, ties in a fixed random
    order (``seed``)."""
    return relevant.sum(axis=0) + np.random.default_rng(seed).random(relevant.shape[1]) * 0.5


def retrieval_targets(
    query_labels: Sequence[str],
    gallery_labels: Sequence[str],
    table: str | dict = "lexicon",
    shares: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(relevant bool ``(Q, G)``, gains float ``(Q, G)``) from labels and a VA table (module docstring).

    Without ``shares``: relevant when the gallery label equals the query label's VA-nearest label among the
    distinct gallery labels (the paper's hard target); gain ``max(0, 1 - VA distance)`` (its soft target, clipped).
    ``shares``: float ``(G, 9)``, the share of each track's listeners who marked each GEMS emotion (GEMS order):
    relevant when the share of the query's VA-nearest GEMS emotion is at least ``RELEVANT_SHARE``; gain the
    share-weighted mean of ``max(0, 1 - VA distance)`` to the nine GEMS emotions.
    """
    if shares is None:
        candidates = list(dict.fromkeys(gallery_labels))
        target = [nearest_label(q, candidates, table) for q in query_labels]
        relevant = np.asarray(target)[:, None] == np.asarray(gallery_labels)[None, :]
        gains = np.clip(similarity_matrix(query_labels, gallery_labels, table), 0.0, None)
        return relevant, gains
    shares = np.asarray(shares, float)
    if shares.shape != (len(gallery_labels), len(GEMS_LABELS)):
        raise ValueError(f"shares must be ({len(gallery_labels)}, {len(GEMS_LABELS)}); got {shares.shape}")
    columns = [GEMS_LABELS.index(nearest_label(q, GEMS_LABELS, table)) for q in query_labels]
    relevant = felt(shares[:, columns].T)
    weights = shares / np.clip(shares.sum(axis=1, keepdims=True), 1e-9, None)
    gains = np.clip(similarity_matrix(query_labels, GEMS_LABELS, table), 0.0, None) @ weights.T
    return relevant, gains


def classification_metrics(y_true: Sequence, y_pred: Sequence, labels: Sequence | None = None) -> dict:
    """Accuracy, balanced accuracy (mean per-class recall), macro-F1 and the confusion matrix (rows = truth)."""
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score

    labels = list(labels) if labels is not None else sorted(set(y_true) | set(y_pred))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # classes absent from y_pred are an expected case, not a problem
        return {
            "accuracy": float(accuracy_score(y_true, y_pred)),
            "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
            "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
            "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
            "labels": labels,
        }


def _words(text: str) -> str:
    """Lower-case words without punctuation, one space apart (how transcripts are compared)."""
    import re

    return " ".join(re.findall(r"[\w']+", text.lower()))


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus WER (``jiwer``): word-level edits (substitutions + deletions + insertions) summed over pairs / reference
    words summed; words are compared lower-cased without punctuation. Pairs with an empty reference are skipped."""
    return _error_rate(references, hypotheses, "wer")


def character_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus CER (``jiwer``), as :func:`word_error_rate` over characters (spaces included): the fair measure for a
    language written without spaces between words, or with long compound words (Korean, Turkish)."""
    return _error_rate(references, hypotheses, "cer")


def _error_rate(references: Sequence[str], hypotheses: Sequence[str], kind: str) -> float:
    import jiwer

    pairs = [(_words(r), _words(h)) for r, h in zip(references, hypotheses, strict=True) if _words(r)]
    if not pairs:
        return 0.0
    refs, hyps = zip(*pairs, strict=True)
    return float(getattr(jiwer, kind)(list(refs), list(hyps)))
