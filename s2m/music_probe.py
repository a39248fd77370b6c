"""Which music encoder hears what listeners felt (``python -m s2m music-probe``): linear read-outs of frozen music
features, fitted on training tracks and scored on held-out tracks, beside a genre-only baseline.

For each encoder (``a+b`` concatenates): ridge regression from standardised clip features to each GEMS emotion's
listener share and to the track's valence and arousal (:mod:`s2m.data.tracks`), and per GEMS emotion a
class-balanced logistic regression to whether at least a third of the track's listeners marked it (the relevance
classes of the retrieval metrics, :func:`s2m.metrics.retrieval_targets`; a track labelled by one mood: that mood).
A training track contributes every one of its 10-s clips, each with the track's labels; a held-out track is scored
on its one clip, the window the gallery plays. The ridge penalty and each logistic C are chosen by 4-fold
cross-validation grouped by track within the training tracks. Scores: Pearson r per target; the relevance classes'
balanced accuracy, averaged over the GEMS emotions. ``genre`` is the baseline: the same read-outs from the genre
alone (one-hot), which predicts much of these labels (classical is calm, electronic tense).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .data.records import Record
from .data.tracks import Track
from .emotions import GEMS_LABELS, nearest_label, words

ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)
CS = (0.001, 0.01, 0.1, 1.0)
FOLDS = 4


def targets(tracks: Sequence[Track]) -> tuple[list[str], np.ndarray]:
    """(names, float ``(n_tracks, 11)``): the nine GEMS shares, then valence and arousal."""
    names = [*GEMS_LABELS, "valence", "arousal"]
    rows = [[dict(t.shares).get(g, np.nan) for g in GEMS_LABELS] + [t.valence, t.arousal] for t in tracks]
    return names, np.asarray(rows, float)


def genre_features(clips: Sequence[Record], tracks: Sequence[Track]) -> np.ndarray:
    """float ``(n_clips, n_genres)``: each clip's track genre, one-hot (the baseline's features)."""
    genre = {t.track_id: t.genre for t in tracks}
    names = sorted(set(genre.values()))
    return np.asarray([[genre[c.group] == g for g in names] for c in clips], float)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if np.std(a) == 0 or np.std(b) == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def probe(features: np.ndarray, clips: Sequence[Record], tracks: Sequence[Track], split: str = "valid") -> dict:
    """Fit on the training clips of float ``(n_clips, d)`` ``features``; score on the ``split`` clips. Returns
    ``{"r": {target: Pearson r}, "relevance_balanced_accuracy": float, "tracks": n}``."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import GridSearchCV, GroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from .metrics import felt

    by_id = {t.track_id: i for i, t in enumerate(tracks)}
    names, y_tracks = targets(tracks)
    row = np.asarray([by_id[c.group] for c in clips])
    splits = np.asarray([c.split for c in clips])
    fit, score = splits == "train", splits == split
    groups = row[fit]
    cv = GroupKFold(n_splits=FOLDS)
    out: dict = {"r": {}, "tracks": int(score.sum())}
    y = y_tracks[row]
    known = ~np.isnan(y).any(axis=0)
    ridge = GridSearchCV(make_pipeline(StandardScaler(), Ridge()), {"ridge__alpha": ALPHAS}, cv=cv)
    ridge.fit(features[fit], y[fit][:, known], groups=groups)
    predicted = ridge.predict(features[score])
    for j, name in enumerate(n for n, k in zip(names, known, strict=True) if k):
        out["r"][name] = _pearson(predicted[:, j], y[score][:, names.index(name)])
    gems = y[:, : len(GEMS_LABELS)]  # NaN for a track labelled by a position or a word: then its mood alone
    one_word = np.asarray([[tracks[i].mood == g for g in GEMS_LABELS] for i in row], float)
    marked = felt(np.where(np.isnan(gems), one_word, gems))
    logistic = GridSearchCV(
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, class_weight="balanced")),
        {"logisticregression__C": CS},
        cv=cv,
    )
    accuracies = []
    for j in range(len(GEMS_LABELS)):
        if len(set(marked[fit, j])) < 2 or len(set(marked[score, j])) < 2:
            continue  # an emotion nobody (or everybody) felt strongly on one side cannot be scored
        logistic.fit(features[fit], marked[fit, j], groups=groups)
        accuracies.append(balanced_accuracy_score(marked[score, j], logistic.predict(features[score])))
    out["relevance_balanced_accuracy"] = float(np.mean(accuracies))
    return out


def report(results: dict[str, dict], split: str) -> str:
    """Markdown: one row per encoder (and the genre baseline), columns r per GEMS share, valence, arousal, the
    relevance classes' balanced accuracy."""
    names = list(next(iter(results.values()))["r"])
    head = ["features", *[words(n) for n in names], "relevance bal. acc."]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for encoder, res in results.items():
        cells = [f"{res['r'][n]:.2f}" for n in names] + [f"{res['relevance_balanced_accuracy']:.2f}"]
        lines.append(f"| {encoder} | " + " | ".join(cells) + " |")
    n = next(iter(results.values()))["tracks"]
    return "\n".join(lines) + (
        f"\n\nPearson r on {n} {split} tracks (one clip each, the gallery's window); "
        "fitted on the training tracks' clips."
    )


def rule_report(tracks: Sequence[Track], speech_labels: Sequence[str], split: str, table: str = "lexicon") -> str:
    """What the relevance rule (:func:`s2m.metrics.retrieval_targets`) allows on the ``split`` tracks for queries
    of each of ``speech_labels`` (weighted equally): each emotion's relevant mood and its number of tracks, chance
    P@5 (a random ranking: the share of relevant tracks), the best constant ranking (the same for every query: the
    five tracks relevant to the most emotions) and the ceiling (every relevant track first)."""
    from .metrics import constant_ranking, retrieval_targets

    gallery = [t for t in tracks if t.split == split]
    moods = [t.mood for t in gallery]
    shares = np.asarray([t.share_values() for t in gallery]) if all(t.shares for t in gallery) else None
    relevant, _ = retrieval_targets(list(speech_labels), moods, table, shares)
    counts = relevant.sum(axis=1)
    chance = float(np.mean(counts / len(gallery)))
    ceiling = float(np.mean(np.minimum(counts, 5) / 5))
    constant = float(relevant[:, np.argsort(-constant_ranking(relevant))[:5]].mean())
    candidates = list(GEMS_LABELS) if shares is not None else list(dict.fromkeys(moods))
    lines = ["| speech emotion | relevant mood | its tracks |", "|---|---|---|"]
    for label, row in zip(speech_labels, relevant, strict=True):
        lines.append(f"| {label} | {words(nearest_label(label, candidates, table))} | {int(row.sum())} |")
    rule = "a third of its listeners felt it" if shares is not None else "its mood"
    return "\n".join(lines) + (
        f"\n\nOn the {len(gallery)} {split} tracks (relevant: {rule}), each emotion weighted equally: P@5 of "
        f"chance {chance:.3f}, best constant (the five tracks relevant to the most emotions) {constant:.3f}, "
        f"ceiling {ceiling:.3f}."
    )


def listener_agreement(
    tracks: Sequence[Track],
    marks: dict[str, np.ndarray],
    speech_labels: Sequence[str],
    split: str,
    table: str = "lexicon",
    halvings: int = 200,
    seed: int = 0,
) -> dict[str, float]:
    """What listeners themselves reach under the relevance rule on the ``split`` tracks that have at least two
    listeners' ``marks`` (``{track id: int (listeners, 9)}``, :func:`s2m.data.tracks.read_listener_marks`): each
    track's listeners are split at random into two halves; the first half's shares rank the tracks for a query of
    each of ``speech_labels`` (by the share of its VA-nearest GEMS emotion, ties at random) and the second half's
    decide what is relevant (:func:`s2m.metrics.retrieval_targets`), each emotion weighted equally. Beside it the
    constant ranking the first half would choose (its five tracks relevant to the most emotions,
    :func:`s2m.metrics.constant_ranking`), judged by the second half: a best constant picked without the judges'
    labels. Returns the mean P@5 over ``halvings`` ("precision_at_k", its std "precision_at_k_std",
    "constant_precision_at_k") and the number of tracks ("tracks")."""
    import warnings

    from .metrics import constant_ranking, ranking_metrics, retrieval_targets

    gallery = [t for t in tracks if t.split == split and len(marks.get(t.track_id, ())) >= 2]
    if not gallery:
        raise ValueError(f"no {split} track has the marks of two listeners or more")
    labels = list(speech_labels)
    columns = [GEMS_LABELS.index(nearest_label(q, GEMS_LABELS, table)) for q in labels]
    rng = np.random.default_rng(seed)
    ranked, constant = [], []
    for _ in range(halvings):
        halves = []
        for track in gallery:
            own = marks[track.track_id][rng.permutation(len(marks[track.track_id]))]
            halves.append((own[: len(own) // 2].mean(0), own[len(own) // 2 :].mean(0)))
        first, second = (np.asarray(h) for h in zip(*halves, strict=True))
        moods = [GEMS_LABELS[i] for i in second.argmax(1)]
        relevant, gains = retrieval_targets(labels, moods, table, second)
        picked, _ = retrieval_targets(labels, moods, table, first)
        scores = first[:, columns].T + rng.random(relevant.shape) * 1e-6
        shared = np.tile(constant_ranking(picked, seed=int(rng.integers(1 << 31))), (len(labels), 1))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a half may find no track for a rare emotion
            ranked.append(ranking_metrics(scores, relevant, gains)["precision_at_k"])
            constant.append(ranking_metrics(shared, relevant, gains)["precision_at_k"])
    return {
        "precision_at_k": float(np.mean(ranked)),
        "precision_at_k_std": float(np.std(ranked)),
        "constant_precision_at_k": float(np.mean(constant)),
        "tracks": len(gallery),
    }
