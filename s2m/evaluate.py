"""The paper's evaluation protocol (method.md §4) on cached features, over several seeds.

Every test speech item queries the whole test music gallery; P@5, MRR and nDCG@5 come from
:func:`s2m.metrics.ranking_metrics`. Emotion classification from the joint space uses nearest label prototypes
(mean train embedding per label). Results are mean ± std over seeds, per test set (for the s2m corpus: the held-out
natural Piper voice and the held-out espeak voice).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from .calibration import speaker_means
from .config import TrainConfig
from .data.records import Record
from .emotions import nearest_label
from .features import DEFAULT_CACHE
from .featuresets import Data, FeatureSet, load_data
from .heads import CheckpointError, JointModel
from .metrics import classification_metrics, constant_ranking, ranking_metrics, retrieval_targets
from .train import train

METRICS = ("precision_at_k", "mrr", "ndcg_at_k")
CORPUS_TEST_SETS = {"natural voice (Piper)": {"actor24"}, "espeak voice": {"actor23"}}


def _reading(classes: list[str], scores: np.ndarray, labels: list[str], table: str) -> dict:
    """:func:`s2m.metrics.classification_metrics` of argmax over ``classes`` of float ``(N, C)`` scores; a true label
    outside ``classes`` counts as its VA-nearest class (e.g. "bored" -> the model's nearest word)."""
    pred = [classes[i] for i in np.argmax(scores, axis=1)]
    truth = [lab if lab in classes else nearest_label(lab, classes, table) for lab in labels]
    return classification_metrics(truth, pred)


def _music_accuracy(model: JointModel, emb: np.ndarray, labels: list[str]) -> float:
    """Accuracy of the nearest stored music prototype for projected music float32 ``(N, out_dim)``."""
    protos = model.config.readout.music_prototypes
    if not protos or not labels:
        return float("nan")
    scores = emb @ np.asarray(list(protos.values()), np.float32).T
    return _reading(list(protos), scores, labels, model.config.va_table)["accuracy"]


def speech_scores(model: JointModel, features: np.ndarray, labels: list[str]) -> dict[str, float]:
    """How well the model reads raw speech-side features ``(N, ·)`` (:meth:`JointModel.read`: its voice reader or
    the nearest stored speech prototype, with a late-fusion model's words weighing in): ``speech_accuracy`` over all
    its emotions and ``speech_balanced_accuracy``, the mean recall over the true emotions present (a reader that
    answers one emotion for everything scores 1 / their number, however the emotions are balanced); NaN without
    prototypes."""
    read = model.read(features) if labels else None
    if read is None:
        return {"speech_accuracy": float("nan"), "speech_balanced_accuracy": float("nan")}
    scores = _reading(read[0], read[2], labels, model.config.va_table)
    return {"speech_accuracy": scores["accuracy"], "speech_balanced_accuracy": scores["balanced_accuracy"]}


def _queries(data: Data, split: str) -> np.ndarray:
    """bool ``(N,)``: the speech items of ``split`` that may be queries (calibration references never are)."""
    return (np.asarray(data.speech.splits) == split) & ~data.reference


def _test_queries(data: Data, groups: set[str], split: str = "test") -> FeatureSet:
    """``split`` speech of ``groups``, without the calibration references."""
    return data.speech.where(_queries(data, split) & np.isin(data.speech.groups, list(groups)))


def _read_queries(model: JointModel, data: Data, groups: set[str], split: str, calibration: str) -> FeatureSet:
    """The queries of ``groups`` as the model reads them under ``calibration``: "none" (as they come), "speaker"
    (each speaker's neutral references moved onto the training speakers' average neutral voice) or "session"
    (each speaker's mean over *all* their ``split`` utterances, every emotion, moved onto the mean training item:
    no reference needed, but it assumes a speaker's utterances cover the emotions evenly, as RAVDESS's do)."""
    if calibration == "session":
        target = model.config.readout.feature_mean
        if target is None:
            raise CheckpointError(
                "this checkpoint has no feature_mean (trained before session calibration existed); "
                "retrain it to evaluate --calibration session"
            )
        d = len(target)
        everyone = np.ones(len(data.speech.labels), bool)
        session = speaker_means(data.speech.features[:, :d], data.speech.groups, everyone)
        q = replace(data, speech=replace(data.speech, speaker_means=session))
        return _test_queries(q, groups, split).calibrated(np.asarray(target, np.float32))
    q = _test_queries(data, groups, split)
    return q.calibrated(_reference_mean(model)) if calibration == "speaker" else q


def _reference_mean(model: JointModel) -> np.ndarray | None:
    ref = model.config.readout.reference_mean
    return None if ref is None else np.asarray(ref, np.float32)


def train_on(config: TrainConfig, data: Data, progress: bool = False) -> JointModel:
    """:func:`s2m.train.train` on ``data``."""
    model, _ = train(
        config, data.for_training(), data.music, data.tags, progress=progress, text_examples=data.text_examples
    )
    return model


def _test_sets(data: Data, test_sets: dict[str, set[str]] | None, split: str = "test") -> dict[str, set[str]]:
    queries = _queries(data, split)
    return test_sets or {split: {g for g, q in zip(data.speech.groups, queries, strict=True) if q}}


def evaluate_model(
    model: JointModel | None,
    data: Data,
    test_sets: dict[str, set[str]] | None = None,
    *,
    calibration: str = "none",
    chance_seed: int = 0,
    split: str = "test",
    table: str = "lexicon",
    **labels,
) -> list[dict]:
    """One row per test set with P@5, MRR, nDCG@5 and accuracies; ``labels`` (e.g. framework, modality, seed) lead
    each row.

    calibration: "none" (raw features, what a new voice gives), "speaker" (each test speaker's neutral
    references move its voice into the model's training population's frame) or "session" (each speaker's mean
    utterance does; :func:`_read_queries`). ``model=None`` scores a random
    ranking (the chance baseline, seeded by ``chance_seed``) against the relevance of VA table ``table`` (a model's
    rows use its own table). Speech accuracy uses the model's stored prototypes,
    so a test-only data set works. ``split="valid"`` scores validation speakers against validation music (for
    choosing models; never choose on test).
    """
    gallery = data.music.subset(split)
    if model is not None:  # the same for every test set
        m = model.project("music", gallery.features)
        music_accuracy = _music_accuracy(model, m, gallery.labels)
    rows = []
    for name, groups in _test_sets(data, test_sets, split).items():
        q = _test_queries(data, groups, split)
        if not q.labels:
            continue
        relevant, gains = retrieval_targets(
            q.labels, gallery.labels, model.config.va_table if model else table, gallery.shares
        )
        if model is None:
            scores = np.random.default_rng(chance_seed).random(relevant.shape)
            row = {
                "speech_accuracy": float("nan"),
                "speech_balanced_accuracy": float("nan"),
                "music_accuracy": float("nan"),
            }
        else:
            features = _read_queries(model, data, groups, split, calibration).features
            scores = model.query(features) @ m.T
            row = {**speech_scores(model, features, q.labels), "music_accuracy": music_accuracy}
        rows.append(
            {
                **labels,
                "calibration": calibration if model is not None else "–",
                "test_set": name,
                "queries": len(q.labels),
                "gallery": len(gallery.labels),
                **ranking_metrics(scores, relevant, gains, k=5),
                **row,
            }
        )
    return rows


def ceiling_rows(
    model: JointModel, data: Data, test_sets: dict[str, set[str]] | None = None, split: str = "test", **labels
) -> list[dict]:
    """What a perfect reader of speech emotion would score with this model's joint space: every query replaced by
    the point a query read as its true label is placed at (:meth:`s2m.readout.Readout.targets`; the music side and the
    speech→music mapping set this ceiling)."""
    protos = model.config.readout.speech_prototypes
    gallery = data.music.subset(split)
    m = model.project("music", gallery.features)
    rows = []
    for name, groups in _test_sets(data, test_sets, split).items():
        q = _test_queries(data, groups, split)
        known = [lab for lab in q.labels if lab in protos]
        if not known:
            continue
        relevant, gains = retrieval_targets(known, gallery.labels, model.config.va_table, gallery.shares)
        queries = model.config.readout.targets(known, np.asarray([protos[lab] for lab in known], np.float32))
        rows.append(
            {
                **labels,
                "framework": f"{labels.get('framework', model.config.framework)} (true-label placement: ceiling)",
                "calibration": "–",
                "test_set": name,
                "queries": len(known),
                "gallery": len(gallery.labels),
                **ranking_metrics(queries @ m.T, relevant, gains, k=5),
                "speech_accuracy": 1.0,
                "speech_balanced_accuracy": 1.0,
                "music_accuracy": float("nan"),
            }
        )
    return rows


def constant_rows(
    data: Data, test_sets: dict[str, set[str]] | None = None, table: str = "lexicon", split: str = "test", **labels
) -> list[dict]:
    """The best constant ranking per test set: the same ranking for every query, the gallery items relevant to the
    most queries of that test set first (so this is the strongest trivial answer; with one-word labels, the clips of
    the mood most queries want), ties in a fixed random order. Named by the mood of its first item."""
    gallery = data.music.subset(split)
    rows = []
    for name, groups in _test_sets(data, test_sets, split).items():
        q = _test_queries(data, groups, split)
        if not q.labels:
            continue
        relevant, gains = retrieval_targets(q.labels, gallery.labels, table, gallery.shares)
        ranking = constant_ranking(relevant)
        rows.append(
            {
                **labels,
                "framework": f"best constant ({gallery.labels[int(np.argmax(ranking))]} first)",
                "calibration": "–",
                "test_set": name,
                "queries": len(q.labels),
                "gallery": len(gallery.labels),
                **ranking_metrics(np.tile(ranking, (len(q.labels), 1)), relevant, gains, k=5),
                "speech_accuracy": float("nan"),
                "music_accuracy": float("nan"),
            }
        )
    return rows


def per_label_precision(
    model: JointModel, data: Data, groups: set[str], calibration: str = "none", split: str = "test"
) -> dict[str, dict[str, object]]:
    """Per speech emotion: P@5 and the moods of the top-5 clips (counts), for one test set."""
    q = _read_queries(model, data, groups, split, calibration)
    gallery = data.music.subset(split)
    scores = model.query(q.features) @ model.project("music", gallery.features).T
    relevant, _ = retrieval_targets(q.labels, gallery.labels, model.config.va_table, gallery.shares)
    top = np.argsort(-scores, axis=1, kind="stable")[:, :5]
    out = {}
    for label in sorted(set(q.labels)):
        rows = np.flatnonzero(np.asarray(q.labels) == label)
        moods = [gallery.labels[j] for i in rows for j in top[i]]
        counts = {m: moods.count(m) for m in sorted(set(moods), key=moods.count, reverse=True)}
        out[label] = {
            "precision_at_5": float(np.take_along_axis(relevant[rows], top[rows], 1).mean()),
            "top5_moods": counts,
        }
    return out


CALIBRATIONS = ("none", "speaker")


def evaluate_both(
    model: JointModel,
    data: Data,
    test_sets: dict[str, set[str]] | None = None,
    calibrations: Sequence[str] = CALIBRATIONS,
    **labels,
) -> list[dict]:
    """:func:`evaluate_model` once per calibration; text models (no audio features) only uncalibrated."""
    if model.config.modality == "text":
        calibrations = ["none"]
    return [row for c in calibrations for row in evaluate_model(model, data, test_sets, calibration=c, **labels)]


def run_protocol(*args, **kwargs) -> tuple[list[dict], dict]:
    """:func:`protocol_rows` summarised: (mean ± std over seeds per framework × modality × calibration × test set,
    seed-0 models by key); the same arguments."""
    results, models = protocol_rows(*args, **kwargs)
    return summarise(results), models


def protocol_rows(
    speech: Sequence[Record],
    music: Sequence[Record],
    base: TrainConfig,
    frameworks: Sequence[str],
    modalities: Sequence[str],
    seeds: Sequence[int],
    test_sets: dict[str, set[str]] | None = None,
    cache_dir: Path | None = DEFAULT_CACHE,
    progress: bool = True,
    split: str = "test",
    calibrations: Sequence[str] = CALIBRATIONS,
    text_weights: Sequence[float] = (),
    voice_weights: Sequence[float] = (),
    **labels,
) -> tuple[list[dict], dict]:
    """Train and evaluate every framework × modality × seed, each with every one of ``calibrations`` (default
    uncalibrated and speaker-calibrated); returns (one row per model × calibration × test set, seed-0 models by
    key). ``labels`` lead every row (e.g. ``transcripts="asr"``). ``text_weights``: each late-fusion model is also
    scored with the words' evidence raised to each of these powers (framework "<name>, words ×W"; the heads are the
    same, only the reading changes); ``voice_weights``: each model with a voice reader is also scored with the
    reader's share of the audio reading set to each of these (framework "<name>, voice ×V").

    Baselines: "chance" (random ranking), the best constant ranking, and "untrained heads" (random initialisation,
    standardised inputs, read by their prototypes: nothing fitted); and each framework's ceiling
    (:func:`ceiling_rows`: every query read as its true emotion).
    """
    from tqdm import tqdm

    results, models = [], {}
    for modality in modalities:
        data = load_data(speech, music, replace(base, modality=modality), cache_dir)
        results += constant_rows(data, test_sets, base.va_table, split, modality=modality, seed=0, **labels)
        for seed in seeds:
            results += evaluate_model(
                None,
                data,
                test_sets,
                chance_seed=seed,
                split=split,
                table=base.va_table,
                framework="chance",
                modality=modality,
                seed=seed,
                **labels,
            )
            untrained_config = replace(
                base, modality=modality, framework="triplet", seed=seed, epochs=0, voice_reader="prototypes"
            )
            untrained, _ = train(untrained_config, data.for_training(), data.music)
            results += evaluate_both(
                untrained,
                data,
                test_sets,
                calibrations,
                split=split,
                framework="untrained heads",
                modality=modality,
                seed=seed,
                **labels,
            )
        for framework in frameworks:
            for seed in tqdm(seeds, desc=f"{framework}/{modality}", disable=not progress):
                config = replace(base, modality=modality, framework=framework, seed=seed)
                model = train_on(config, data)
                if seed == seeds[0]:
                    models[(framework, modality)] = model
                trained, run = model.config.readout, {"modality": modality, "seed": seed, **labels}
                variants = [("", trained)]  # the trained reading, then the words or the voice reader weighed W
                if model.text_reader is not None:
                    variants += [(f", words ×{w:g}", replace(trained, text_weight=float(w))) for w in text_weights]
                if model.voice_reader is not None:
                    variants += [(f", voice ×{w:g}", replace(trained, voice_weight=float(w))) for w in voice_weights]
                for suffix, readout in variants:
                    model.config.readout, name = readout, config.label + suffix
                    results += evaluate_both(model, data, test_sets, calibrations, split=split, framework=name, **run)
                    if not suffix:
                        results += ceiling_rows(model, data, test_sets, split, framework=name, **run)
                model.config.readout = trained
    return results, models


def leave_one_corpus_out(
    corpora: dict[str, list[Record]],
    music: Sequence[Record],
    base: TrainConfig,
    frameworks: Sequence[str],
    modalities: Sequence[str],
    seeds: Sequence[int],
    cache_dir: Path | None = DEFAULT_CACHE,
    progress: bool = True,
    max_queries: int = 0,
    hear: Callable[[list[Record]], list[Record]] | None = None,
    text_weights: Sequence[float] = (),
    voice_weights: Sequence[float] = (),
    **labels,
) -> list[dict]:
    """For each corpus in turn: train on the others (their train speakers; validation on their valid speakers),
    test uncalibrated on every speaker of the held-out one against the test music (:func:`run_protocol`, with its
    chance, best-constant and untrained rows); test set "NAME (held out)". ``max_queries``: at most this many
    held-out items (a seeded choice; 0: all). ``hear``: for text and fusion, the fold's records with the words the
    app hears (its speech recognition) for the held-out items (the command line's keeps the training speech's
    given transcripts). ``text_weights``, ``voice_weights``: :func:`run_protocol`'s."""
    from .data.corpora import held_out, sample_queries

    rows = []
    for name in corpora:
        speech = sample_queries(held_out(corpora, name), max_queries)
        if hear is not None and set(modalities) - {"audio"}:
            speech = hear(speech)
        test_sets = {f"{name} (held out)": {r.group for r in speech if r.split == "test"}}
        summary, _ = run_protocol(
            speech,
            music,
            base,
            frameworks,
            modalities,
            seeds,
            test_sets,
            cache_dir,
            progress,
            calibrations=("none",),
            text_weights=text_weights,
            voice_weights=voice_weights,
            **labels,
        )
        rows += summary
    return rows


def fold_splits(
    speech: Sequence[Record], music: Sequence[Record], folds: int, fold: int
) -> tuple[list[Record], list[Record]]:
    """Fold ``fold`` of ``folds`` over the non-test data, for choosing models on more than one validation gallery:
    the train + valid speakers, sorted, in consecutive pairs (so RAVDESS's folds mix odd, male, and even, female,
    actors), pair i validation when i mod ``folds`` == ``fold``; and for each music label its train + valid groups
    (tracks, pieces), sorted, group j validation when j mod ``folds`` == ``fold``; everything else of train + valid
    trains. Test speakers and test music keep their split and are never used. Returns re-split (speech, music)."""
    if not 0 <= fold < folds or folds < 2:
        raise ValueError(f"need 2 or more folds and 0 <= fold < folds, got fold {fold} of {folds}")
    speakers = sorted({r.group for r in speech if r.split != "test"})
    held_speakers = {g for i, g in enumerate(speakers) if (i // 2) % folds == fold}
    by_label: dict[str, list[str]] = {}
    for r in music:
        if r.split != "test" and r.group not in by_label.setdefault(r.label, []):
            by_label[r.label].append(r.group)
    held_music = {
        (lab, g) for lab, groups in by_label.items() for j, g in enumerate(sorted(groups)) if j % folds == fold
    }

    def split(r: Record, held: bool) -> Record:
        return r if r.split == "test" else replace(r, split="valid" if held else "train")

    return (
        [split(r, r.group in held_speakers) for r in speech],
        [split(r, (r.label, r.group) in held_music) for r in music],
    )


def run_folds(speech: Sequence[Record], music: Sequence[Record], *args, folds: int, **options) -> list[dict]:
    """:func:`protocol_rows` (the same arguments, scored on the validation split) on each of the ``folds`` re-splits
    of :func:`fold_splits`, scored on that fold's validation speakers against its validation music; summary rows
    over folds × seeds (``seeds`` then counts the runs), test set "valid, N folds", queries = all folds' queries
    (each train + valid speaker is a query once)."""
    results = []
    for fold in range(folds):
        fold_speech, fold_music = fold_splits(speech, music, folds, fold)
        rows, _ = protocol_rows(fold_speech, fold_music, *args, split="valid", **options)
        results += [{**r, "fold": fold, "test_set": f"valid, {folds} folds"} for r in rows]
    first: dict[tuple, dict[int, dict]] = {}  # per summary key, one row per fold (seeds score the same queries)
    for r in results:
        first.setdefault(_key(r), {}).setdefault(r["fold"], r)
    summary = summarise(results)
    for row in summary:  # each fold's validation speakers and music are used once: the counts over folds
        row["queries"] = sum(r["queries"] for r in first[_key(row)].values())
        row["gallery"] = sum(r["gallery"] for r in first[_key(row)].values())
    return summary


def _key(row: dict) -> tuple:
    return row["framework"], row["modality"], row.get("calibration", "–"), row.get("transcripts", "–"), row["test_set"]


def summarise(results: list[dict]) -> list[dict]:
    """Mean and std over seeds for each (framework, modality, calibration, transcripts, test_set); strict JSON
    (a metric that does not apply, like a baseline's speech accuracy, is None, never NaN)."""
    out = []
    for key in dict.fromkeys(_key(r) for r in results):
        group = [r for r in results if _key(r) == key]
        row = dict(zip(("framework", "modality", "calibration", "transcripts", "test_set"), key, strict=True))
        row.update(seeds=len(group), queries=group[0]["queries"], gallery=group[0].get("gallery"))
        for k in (*METRICS, "speech_accuracy", "speech_balanced_accuracy", "music_accuracy"):
            values = np.array([r.get(k, np.nan) for r in group], float)
            ok = not np.isnan(values).any()
            row[k] = float(np.mean(values)) if ok else None
            row[f"{k}_std"] = float(np.std(values)) if ok else None
        out.append(row)
    return out


def markdown(rows: list[dict]) -> str:
    """The paper-style table: rows = framework × modality × calibration, one column block per test set; query
    counts in the header."""
    sets = list(dict.fromkeys(r["test_set"] for r in rows))
    counts = {s: max(r["queries"] for r in rows if r["test_set"] == s) for s in sets}
    head = (
        "| framework | modality | calibration | "
        + " | ".join(f"{s} ({counts[s]} queries): P@5 | MRR | nDCG@5 | speech acc" for s in sets)
        + " |"
    )
    lines = [head, "|" + "---|" * (3 + 4 * len(sets))]
    fmt = lambda r, k: "–" if r.get(k) is None else f"{r[k]:.3f}"  # noqa: E731
    for f, m, c in dict.fromkeys((r["framework"], r["modality"], r.get("calibration", "–")) for r in rows):
        cells = []
        for s in sets:
            r = next(
                (
                    x
                    for x in rows
                    if (x["framework"], x["modality"], x.get("calibration", "–"), x["test_set"]) == (f, m, c, s)
                ),
                None,
            )
            cells += (
                ["–"] * 4
                if r is None
                else [
                    fmt(r, k) + ("" if r.get(k + "_std") is None or r["seeds"] < 2 else f" ± {r[k + '_std']:.3f}")
                    for k in METRICS
                ]
                + [fmt(r, "speech_accuracy")]
            )
        lines.append(f"| {f} | {m} | {c} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
