"""Retrieval and classification metrics (method.md §4).

Retrieval: every speech query ranks the whole music gallery. A gallery item is *relevant* to a query when its
music label is the query label's VA-nearest label among the gallery's labels; its *gain* is
``max(0, 1 - VA distance)`` (clipped at 0 because sklearn's nDCG refuses negative gains; with the lexicon table
far-apart labels such as calm and scary are more than 1 apart).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from .emotions import nearest_label, similarity_matrix


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


def retrieval_targets(
    query_labels: Sequence[str], gallery_labels: Sequence[str], table: str | dict = "lexicon"
) -> tuple[np.ndarray, np.ndarray]:
    """(relevant bool ``(Q, G)``, gains float ``(Q, G)``) from labels and a VA table.

    Relevant: the gallery label equals the query label's VA-nearest label among the distinct gallery labels
    (the paper's hard target). Gain: ``max(0, 1 - VA distance)`` (the paper's soft target, clipped).
    """
    candidates = list(dict.fromkeys(gallery_labels))
    target = [nearest_label(q, candidates, table) for q in query_labels]
    relevant = np.asarray(target)[:, None] == np.asarray(gallery_labels)[None, :]
    gains = np.clip(similarity_matrix(query_labels, gallery_labels, table), 0.0, None)
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
