"""Speaker calibration: moving a voice into the training speakers' frame.

A speaker's neutral voice (the mean audio features of a few neutral references) says who speaks, not how they feel.
Calibrated training moves each training speaker's neutral mean onto the training population's; at inference a user
who records a neutral reference is moved the same way (the app's optional "calibrate"). Uncalibrated use — the
default — leaves a voice as it comes. Pure numpy: inference and training both use it.
"""

from __future__ import annotations

import numpy as np


def calibration_references(labels: list[str], groups: list[str]) -> np.ndarray:
    """bool ``(N,)``: every other neutral item of each speaker (1st, 3rd, ...) serves as its calibration reference.

    Evaluation leaves these items out of the queries, so no query is compared with itself.
    """
    seen: dict[str, int] = {}
    out = np.zeros(len(labels), bool)
    for i, (lab, g) in enumerate(zip(labels, groups, strict=True)):
        if lab == "neutral":
            out[i] = seen.get(g, 0) % 2 == 0
            seen[g] = seen.get(g, 0) + 1
    return out


def speaker_means(features: np.ndarray, groups: list[str], reference: np.ndarray) -> np.ndarray:
    """float32 ``(N, d)``: for each item, the mean features of its speaker's reference items (NaN without any)."""
    groups_a = np.asarray(groups)
    out = np.full(features.shape, np.nan, np.float32)
    for g in np.unique(groups_a):
        rows, ref = groups_a == g, (groups_a == g) & reference
        if ref.any():
            out[rows] = features[ref].mean(0)
    return out


def population_mean(means: np.ndarray | None, groups: list[str]) -> np.ndarray | None:
    """``(d,)``: the mean neutral voice of the speakers of float32 ``(N, d)`` per-item speaker ``means`` (each
    speaker weighted once, speakers without references left out), or None."""
    if means is None:
        return None
    _, first = np.unique(np.asarray(groups), return_index=True)
    known = means[first]
    known = known[~np.isnan(known).any(axis=1)]
    return known.mean(0).astype(np.float32) if len(known) else None


def shift_speakers(features: np.ndarray, means: np.ndarray | None, target: np.ndarray | None) -> np.ndarray:
    """``features`` with the first ``len(target)`` columns moved by ``target − means`` on rows whose mean is known."""
    if means is None or target is None:
        return features
    out = np.array(features, np.float32, copy=True)
    known = ~np.isnan(means).any(axis=1)
    out[known, : len(target)] += target - means[known]
    return out
