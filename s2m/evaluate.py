"""The paper's evaluation protocol (method.md §4) on cached features, over several seeds.

Every test speech item queries the whole test music gallery; P@5, MRR and nDCG@5 come from
:func:`s2m.metrics.ranking_metrics`. Emotion classification from the joint space uses nearest label prototypes
(mean train embedding per label). Results are mean ± std over seeds, per test set (for the s2m corpus: the held-out
natural Piper voice and the held-out espeak voice).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .data.records import Record
from .features import DEFAULT_CACHE, embed_items, record_features
from .heads import JointModel
from .metrics import classification_metrics, ranking_metrics, retrieval_targets
from .train import FeatureSet, TrainConfig, calibrate_by_speaker, calibration_references, label_means, train

METRICS = ("precision_at_k", "mrr", "ndcg_at_k")
CORPUS_TEST_SETS = {"natural voice (Piper)": {"actor24"}, "espeak voice": {"actor23"}}


@dataclass
class Data:
    """Everything one modality's training and evaluation needs. speech.features are already calibrated when
    ``offset`` is not None (``offset``: the population's reference mean of the audio features)."""

    speech: FeatureSet
    music: FeatureSet
    reference: np.ndarray  # bool (N,): calibration references, never used as queries
    tags: dict[str, np.ndarray]
    offset: np.ndarray | None


def load_data(speech: Sequence[Record], music: Sequence[Record], config: TrainConfig,
              cache_dir: Path | None = DEFAULT_CACHE) -> Data:  # fmt: skip
    """Features for ``config.modality`` (audio / text / fusion = audio ‖ text) and the music side."""
    labels, groups, splits = [r.label for r in speech], [r.group for r in speech], [r.split for r in speech]
    reference = calibration_references(labels, groups) if config.calibrate else np.zeros(len(labels), bool)
    parts, offset = [], None
    if config.modality in ("audio", "fusion"):
        audio = record_features(speech, config.audio_encoder, cache_dir)
        if config.calibrate:
            audio, offset = calibrate_by_speaker(audio, groups, reference)
        parts.append(audio)
    if config.modality in ("text", "fusion"):
        parts.append(record_features(speech, config.text_encoder, cache_dir))
    m = record_features(music, config.music_encoder, cache_dir)
    words = sorted(set(labels) | {r.label for r in music})
    tag_feats = embed_items(config.text_encoder, words, cache_dir)
    return Data(
        FeatureSet(np.concatenate(parts, axis=1).astype(np.float32), labels, groups, splits),
        FeatureSet(m, [r.label for r in music], [r.group for r in music], [r.split for r in music]),
        reference, dict(zip(words, tag_feats, strict=True)), offset,
    )  # fmt: skip


def _prototype_accuracy(train_emb, train_labels, test_emb, test_labels) -> float:
    """Accuracy of nearest-prototype classification (prototypes from :func:`s2m.train.label_means`)."""
    classes, protos = label_means(train_emb, train_labels)
    pred = [classes[i] for i in np.argmax(test_emb @ protos.T, axis=1)]
    return classification_metrics(test_labels, pred)["accuracy"]


def _test_queries(data: Data, groups: set[str]) -> FeatureSet:
    """Test-split speech of ``groups``, without the calibration references."""
    test = (np.asarray(data.speech.splits) == "test") & ~data.reference
    return data.speech.where(test & np.isin(data.speech.groups, list(groups)))


def framework_label(config: TrainConfig) -> str:
    """How a run is named in result tables: the framework, plus "+ranksim" when the regulariser is RankSim."""
    return config.framework + ("+ranksim" if config.ranksim and "emosim" in config.framework else "")


def train_on(config: TrainConfig, data: Data, progress: bool = False) -> JointModel:
    """:func:`s2m.train.train` on ``data``, recording the population calibration offset in the model's config."""
    model, _ = train(config, data.speech, data.music, data.tags, progress=progress)
    if data.offset is not None:
        model.config.training["population_offset"] = data.offset.tolist()
    return model


def evaluate_model(model: JointModel | None, data: Data, test_sets: dict[str, set[str]] | None = None, *,
                   chance_seed: int = 0, **labels) -> list[dict]:  # fmt: skip
    """One row per test set with P@5, MRR, nDCG@5 and classification accuracies; ``labels`` (e.g. framework,
    modality, seed) lead each row.

    ``model=None`` scores a random ranking (the chance baseline, seeded by ``chance_seed``).
    """
    test = (np.asarray(data.speech.splits) == "test") & ~data.reference
    test_sets = test_sets or {"test": {g for g, t in zip(data.speech.groups, test, strict=True) if t}}
    gallery = data.music.subset("test")
    if model is not None:  # the same for every test set
        m = model.project("music", gallery.features)
        train_s, train_m = data.speech.subset("train"), data.music.subset("train")
        train_s_emb, train_m_emb = model.project("speech", train_s.features), model.project("music", train_m.features)
        music_accuracy = _prototype_accuracy(train_m_emb, train_m.labels, m, gallery.labels)
    rows = []
    for name, groups in test_sets.items():
        q = _test_queries(data, groups)
        if not q.labels:
            continue
        relevant, gains = retrieval_targets(q.labels, gallery.labels, model.config.va_table if model else "lexicon")
        if model is None:
            scores = np.random.default_rng(chance_seed).random(relevant.shape)
            row = {"speech_accuracy": float("nan"), "music_accuracy": float("nan")}
        else:
            s = model.project("speech", q.features)
            scores = s @ m.T
            row = {"speech_accuracy": _prototype_accuracy(train_s_emb, train_s.labels, s, q.labels),
                   "music_accuracy": music_accuracy}  # fmt: skip
        rows.append({**labels, "test_set": name, "queries": len(q.labels), "gallery": len(gallery.labels),
                     **ranking_metrics(scores, relevant, gains, k=5), **row})  # fmt: skip
    return rows


def per_label_precision(model: JointModel, data: Data, groups: set[str]) -> dict[str, dict[str, object]]:
    """Per speech emotion: P@5 and the moods of the top-5 clips (counts), for one test set."""
    q = _test_queries(data, groups)
    gallery = data.music.subset("test")
    scores = model.project("speech", q.features) @ model.project("music", gallery.features).T
    relevant, _ = retrieval_targets(q.labels, gallery.labels, model.config.va_table)
    top = np.argsort(-scores, axis=1, kind="stable")[:, :5]
    out = {}
    for label in sorted(set(q.labels)):
        rows = np.flatnonzero(np.asarray(q.labels) == label)
        moods = [gallery.labels[j] for i in rows for j in top[i]]
        counts = {m: moods.count(m) for m in sorted(set(moods), key=moods.count, reverse=True)}
        out[label] = {"precision_at_5": float(np.take_along_axis(relevant[rows], top[rows], 1).mean()),
                      "top5_moods": counts}  # fmt: skip
    return out


def run_protocol(speech: Sequence[Record], music: Sequence[Record], base: TrainConfig,
                 frameworks: Sequence[str], modalities: Sequence[str], seeds: Sequence[int],
                 test_sets: dict[str, set[str]] | None = None, cache_dir: Path | None = DEFAULT_CACHE,
                 progress: bool = True) -> tuple[list[dict], dict]:  # fmt: skip
    """Train and evaluate every framework × modality × seed; returns (summary rows, seed-0 models by key).

    Summary rows: framework, modality, test_set, the three metrics and their ``_std`` over seeds, accuracies.
    Baselines: "chance" (random ranking) and "untrained heads" (random initialisation, standardised inputs).
    """
    from tqdm import tqdm

    results, models = [], {}
    for modality in modalities:
        data = load_data(speech, music, replace(base, modality=modality), cache_dir)
        for seed in seeds:
            results += evaluate_model(None, data, test_sets, chance_seed=seed, framework="chance", modality=modality,
                                      seed=seed)  # fmt: skip
            untrained_config = replace(base, modality=modality, framework="triplet", seed=seed, epochs=0)
            untrained, _ = train(untrained_config, data.speech, data.music)
            results += evaluate_model(untrained, data, test_sets, framework="untrained heads", modality=modality,
                                      seed=seed)  # fmt: skip
        for framework in frameworks:
            for seed in tqdm(seeds, desc=f"{framework}/{modality}", disable=not progress):
                config = replace(base, modality=modality, framework=framework, seed=seed)
                model = train_on(config, data)
                if seed == seeds[0]:
                    models[(framework, modality)] = model
                results += evaluate_model(model, data, test_sets, framework=framework_label(config),
                                          modality=modality, seed=seed)  # fmt: skip
    return summarise(results), models


def summarise(results: list[dict]) -> list[dict]:
    """Mean and std over seeds for each (framework, modality, test_set)."""
    keys = list(dict.fromkeys((r["framework"], r["modality"], r["test_set"]) for r in results))
    out = []
    for f, m, t in keys:
        group = [r for r in results if (r["framework"], r["modality"], r["test_set"]) == (f, m, t)]
        row = {"framework": f, "modality": m, "test_set": t, "seeds": len(group), "queries": group[0]["queries"]}
        for k in (*METRICS, "speech_accuracy", "music_accuracy"):
            values = np.array([r[k] for r in group], float)
            row[k], row[f"{k}_std"] = float(np.mean(values)), float(np.std(values))
        out.append(row)
    return out


def markdown(rows: list[dict]) -> str:
    """The paper-style table: rows = framework × modality, one column block per test set."""
    sets = list(dict.fromkeys(r["test_set"] for r in rows))
    head = "| framework | modality | " + " | ".join(f"{s}: P@5 | MRR | nDCG@5 | speech acc" for s in sets) + " |"
    lines = [head, "|" + "---|" * (2 + 4 * len(sets))]
    for f, m in dict.fromkeys((r["framework"], r["modality"]) for r in rows):
        cells = []
        for s in sets:
            r = next((x for x in rows if (x["framework"], x["modality"], x["test_set"]) == (f, m, s)), None)
            cells += ["–"] * 4 if r is None else [
                f"{r[k]:.3f} ± {r[k + '_std']:.3f}" for k in METRICS] + [
                "–" if np.isnan(r["speech_accuracy"]) else f"{r['speech_accuracy']:.3f}"]  # fmt: skip
        lines.append(f"| {f} | {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
