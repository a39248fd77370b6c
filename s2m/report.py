"""Listening-free sanity reports on the generated data, printed as markdown (``python -m s2m report``).

* the speech corpus: per emotion, median pitch, speaking rate and loudness (eGeMAPS functionals, openSMILE);
* the music library: clips per mood and split, total duration, size on disk;
* music descriptors per mood: tempo, share of major-mode clips, loudness and brightness (``mood-dsp``);
* a linear probe on the music encoder's features, trained and tested on disjoint pieces/tracks.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from .data import library_records, read_metadata
from .data.records import Record
from .encoders import load as load_encoder
from .features import record_features


def _table(header: list[str], rows: list[list]) -> str:
    fmt = lambda v: f"{v:.2f}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows])


def corpus_report(records: list[Record]) -> str:
    """Median F0 (Hz), voiced segments per second, loudness (eGeMAPS equivalent sound level, dB) and duration (s)."""
    import soundfile as sf

    feats = record_features(records, "egemaps")
    names = load_encoder("egemaps").feature_names
    col = {n: i for i, n in enumerate(names)}
    f0 = 27.5 * 2 ** (feats[:, col["F0semitoneFrom27.5Hz_sma3nz_percentile50.0"]] / 12)
    rate = feats[:, col["VoicedSegmentsPerSec"]]
    level = feats[:, col["equivalentSoundLevel_dBp"]]
    dur = np.array([sf.info(r.path).duration for r in records])
    labels = np.array([r.label for r in records])
    rows = []
    for lab in dict.fromkeys(r.label for r in records):
        m = labels == lab
        rows.append(
            [
                lab,
                int(m.sum()),
                float(np.median(f0[m])),
                float(np.median(rate[m])),
                float(np.median(level[m])),
                float(np.median(dur[m])),
            ]
        )
    return _table(
        ["emotion", "utterances", "median F0 (Hz)", "voiced segments/s", "loudness (dB)", "duration (s)"], rows
    )


def library_report(library: Path) -> str:
    """Clips per mood and split, total duration (min) and size on disk (MB)."""
    meta = read_metadata(library)
    counts = Counter((r.mood, r.split) for r in meta)
    rows = []
    for m in sorted({r.mood for r in meta}):
        pieces = len({r.group for r in meta if r.mood == m})
        source = next(r.source for r in meta if r.mood == m).split(" ")[0]
        rows.append([m, counts[(m, "train")], counts[(m, "valid")], counts[(m, "test")], pieces, source])
    minutes = sum(r.end_s - r.start_s for r in meta) / 60
    size = sum(p.stat().st_size for p in Path(library).rglob("*") if p.is_file()) / 1e6
    return (
        _table(["mood", "train", "valid", "test", "pieces/tracks", "source"], rows)
        + f"\n\n{len(meta)} clips, {minutes:.1f} min of music, {size:.1f} MB on disk."
    )


def descriptor_report(library: Path) -> str:
    """Per mood: tempo (from the score/listing, and as estimated), major share, loudness, brightness."""
    from .encoders.music import FEATURE_NAMES

    meta = read_metadata(library)
    feats = record_features(library_records(library), "mood-dsp")
    col = {n: i for i, n in enumerate(FEATURE_NAMES)}
    rows = []
    for mood in sorted({r.mood for r in meta}):
        m = np.array([r.mood == mood for r in meta])
        listed = [float(r.tempo_bpm) for r in meta if r.mood == mood and r.tempo_bpm]
        median = lambda name, m=m: float(np.median(feats[m, col[name]]))  # noqa: E731
        rows.append(
            [
                mood,
                float(np.median(listed)) if listed else "–",
                median("tempo_bpm"),
                float(np.mean(feats[m, col["mode_major_minus_minor"]] > 0)),
                median("rms_db_mean"),
                median("centroid_hz_mean"),
                median("onset_rate_hz"),
            ]
        )
    return _table(
        [
            "mood",
            "tempo, score (bpm)",
            "tempo, estimated (bpm)",
            "major share",
            "loudness (dBFS)",
            "centroid (Hz)",
            "onsets/s",
        ],
        rows,
    )


def _probe(x: np.ndarray, labels: np.ndarray, train: np.ndarray) -> np.ndarray:
    """The linear probe: logistic regression (C 0.5) on standardised features float ``(N, d)``, fitted on the
    ``train`` rows; its predicted labels for the other rows."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000, C=0.5)).fit(x[train], labels[train])
    return clf.predict(x[~train])


def probe_report(library: Path, encoder: str = "mood-dsp", moods: list[str] | None = None) -> str:
    """Logistic regression on standardised features: fit on train clips, score on test clips (disjoint pieces)."""
    records = library_records(library)
    feats = record_features(records, encoder)
    keep = np.array([moods is None or r.label in moods for r in records])
    labels = np.array([r.label for r in records])[keep]
    splits = np.array([r.split for r in records])[keep]
    x = feats[keep]
    train, test = splits != "test", splits == "test"
    pred = _probe(x, labels, train)
    classes = sorted(set(labels))
    rows = [[c, int((labels[test] == c).sum()), float(np.mean(pred[labels[test] == c] == c))] for c in classes]
    acc = float(np.mean(pred == labels[test]))
    return (
        _table(["mood", "test clips", "recall"], rows)
        + f"\n\nAccuracy {acc:.2f} over {int(test.sum())} test clips; chance {1 / len(classes):.2f} "
        f"({len(classes)} moods). Train: train+valid pieces; test: held-out pieces."
    )


def music_encoder_report(library: Path, encoders: list[str], real: str = "immich") -> str:
    """Music encoders side by side, per mood: the linear probe's recall (a) on the whole library, fitted on
    train+valid pieces and scored on held-out pieces, and (b) on the real recordings alone (clips under a folder
    named ``real``), each track held out in turn (leave one track out: few tracks per mood)."""
    records = library_records(library)
    labels = np.array([r.label for r in records])
    test = np.array([r.split == "test" for r in records])
    real_rows = np.array([real in Path(r.path).parts for r in records])
    tracks = np.array([r.group for r in records])[real_rows]
    recalls, names = {}, []
    for encoder in encoders:
        x = record_features(records, encoder)
        whole = _probe(x, labels, ~test)
        y, xr, loto = labels[real_rows], x[real_rows], np.empty(int(real_rows.sum()), dtype=labels.dtype)
        for track in sorted(set(tracks)):
            held = tracks == track
            loto[held] = _probe(xr, y, ~held)
        recalls[encoder] = (
            {c: float(np.mean(whole[labels[test] == c] == c)) for c in sorted(set(labels))}
            | {"accuracy": float(np.mean(whole == labels[test]))},
            {c: float(np.mean(loto[y == c] == c)) for c in sorted(set(y))} | {"accuracy": float(np.mean(loto == y))},
        )
        names.append(encoder)
    out = []
    for part, title in (
        (0, f"(a) whole library, {int(test.sum())} clips of held-out pieces"),
        (
            1,
            f"(b) real recordings alone, {int(real_rows.sum())} clips of {len(set(tracks))} tracks, "
            "leave one track out",
        ),
    ):
        moods = list(recalls[names[0]][part])
        rows = [[m, *[recalls[n][part][m] for n in names]] for m in moods]
        out.append(f"{title}: recall per mood, accuracy last\n\n" + _table(["mood", *[f"`{n}`" for n in names]], rows))
    return "\n\n".join(out)


def map_report(engine, examples: list[Path]) -> str:
    """How stable and truthful the library maps are. Per model: the median distance a clip moves between its map
    and the reference (default) model's, and the largest such median against any other model; over the example
    voices, how far the query star lands from the centre of its own top-3 clips. Distances are fractions of the
    reference map's extent. Last column: how many example voices (named by their emotion, e.g. ``sad.wav``) the
    model reads as that emotion (its most likely one)."""
    ref_key = engine.reference_key
    ref = engine.indexes[ref_key].coords
    extent = float(np.ptp(ref, axis=0).max()) or 1.0
    rows = []
    for key, index in engine.indexes.items():
        move = float(np.median(np.linalg.norm(index.coords - ref, axis=1))) / extent
        worst = max(
            float(np.median(np.linalg.norm(index.coords - other.coords, axis=1))) / extent
            for other in engine.indexes.values()
        )
        gaps, right = [], 0
        for path in examples:
            result = engine.search(audio=str(path), modality=key[0], framework=key[1], top_k=3)
            centre = np.mean([[h.x, h.y] for h in result.hits], axis=0)
            gaps.append(float(np.linalg.norm(np.array([result.x, result.y]) - centre)) / extent)
            right += max(result.emotions, key=result.emotions.get) == path.stem
        rows.append(
            [
                f"{key[0]} / {key[1]}" + (" (reference)" if key == ref_key else ""),
                move,
                worst,
                float(np.median(gaps)),
                float(np.mean(np.array(gaps) <= 0.10)),
                f"{right} of {len(examples)}",
            ]
        )
    return _table(
        [
            "model",
            "median clip move vs reference",
            "… vs the farthest other model",
            "star to top-3 centre (median)",
            "queries with star within 0.10",
            "examples read as their emotion",
        ],
        rows,
    )


def reader_report(
    speech: list[Record],
    encoders: list[str],
    languages: tuple[str, ...] = ("en", "ko", "de", "es"),
    training: tuple[tuple[str, ...], ...] = (("en",), ("en", "ko")),
) -> str:
    """How well a late-fusion text reader reads words, per text encoder and training-sentence languages: fitted as
    :func:`s2m.train.fit_text_reader` does (the training speakers' ASR transcripts of ``speech`` plus the training
    sentences of ``assets/sentences`` in those languages), scored on the validation sentences of each language
    (the reader's encoder is chosen on these, never on test)."""
    from .data import read_sentences
    from .features import asr_transcripts, embed_items
    from .train import reader_fit  # torch comes with it: imported only when this report is asked for

    heard = [r for r in asr_transcripts(speech) if r.split == "train"]
    valid = {lang: [r for r in read_sentences(languages=(lang,)) if r.split == "valid"] for lang in languages}
    rows = []
    for encoder in encoders:
        for langs in training:
            train = [r for r in read_sentences(languages=langs) if r.split == "train"]
            items = [r.transcript for r in heard + train]
            fit = reader_fit(embed_items(encoder, items), [r.label for r in heard + train])
            scores = [
                float(fit.score(embed_items(encoder, [r.transcript for r in v]), [r.label for r in v]))
                for v in valid.values()
            ]
            rows.append([f"`{encoder}`", " + ".join(langs), *scores, float(np.mean(scores))])
    counts = ", ".join(f"{len(v)} {lang}" for lang, v in valid.items())
    return (
        _table(["text encoder", "training sentences", *[f"{lang} accuracy" for lang in languages], "mean"], rows)
        + f"\n\nValidation sentences: {counts}; training transcripts: {len(heard)} (ASR)."
    )


def variance_shares(features: np.ndarray, factors: dict[str, list[str]]) -> dict[str, float]:
    """Per factor (e.g. corpus, speaker, sentence, emotion: N names each), the share of the features' variance that
    its groups' means explain (η², between-group over total sum of squares of the standardised features ``(N, d)``,
    averaged over the d dimensions). Nested factors include their parents' share (a speaker's mean carries its
    corpus's)."""
    z = (features - features.mean(0)) / (features.std(0) + 1e-9)
    total = (z**2).sum(0)
    out = {}
    for name, groups in factors.items():
        g = np.asarray(groups)
        between = sum((g == k).sum() * z[g == k].mean(0) ** 2 for k in np.unique(g))
        out[name] = float(np.mean(between / total))
    return out


def variance_report(
    corpora: dict[str, list[Record]], encoders: list[str], level_norm: bool = True, denoise: bool = True
) -> str:
    """Markdown: for each speech encoder, the share of its features' variance explained by corpus (= language here),
    speaker, sentence (the given transcript) and emotion, over every corpus together (:func:`variance_shares`)."""
    records = [r for rs in corpora.values() for r in rs]
    factors = {
        "corpus (language)": [r.corpus for r in records],
        "speaker": [r.group for r in records],
        "sentence": [f"{r.corpus}/{r.transcript}" for r in records],
        "emotion": [r.label for r in records],
        "emotion within corpus": [f"{r.corpus}/{r.label}" for r in records],
    }
    rows = []
    for encoder in encoders:
        shares = variance_shares(record_features(records, encoder, level_norm=level_norm, denoise=denoise), factors)
        rows.append([encoder, *shares.values()])
    return f"{len(records)} clips of {', '.join(corpora)}\n\n" + _table(["features", *factors], rows)
