"""The features training and evaluation work on: a :class:`FeatureSet` per side, assembled from the feature cache.

:func:`load_data` turns speech and music :class:`~s2m.data.records.Record` s into one modality's :class:`Data`:
speech features (audio, text or audio ‖ text) with each speaker's neutral mean for calibration, the music features,
the label-word embeddings of the structure-preserving loss and, for late fusion, the text reader's extra sentences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .calibration import calibration_references, population_mean, shift_speakers, speaker_means
from .config import TrainConfig
from .data.records import Record
from .features import DEFAULT_CACHE, embed_items, record_features
from .rooms import in_rooms


@dataclass
class FeatureSet:
    """Features of one side. features: float32 ``(N, d)``; labels / groups / splits: N strings each.

    speaker_means: float32 ``(N, d_audio)``, for speech: the mean audio features of each item's speaker's neutral
    references (NaN rows for speakers without any); the audio features are the first ``d_audio`` columns.
    text_columns: for fusion, how many of the last columns are text-encoder features (0: none).
    corpora: speech: the corpus of each item (N strings) when several are combined (:mod:`s2m.data.corpora`).
    shares: music labelled by its listeners: float ``(N, 9)``, the share of each item's listeners who marked each
    GEMS emotion (GEMS order), which decides relevance (:func:`s2m.metrics.retrieval_targets`); None: by label.
    """

    features: np.ndarray
    labels: list[str]
    groups: list[str]
    splits: list[str]
    speaker_means: np.ndarray | None = None
    text_columns: int = 0
    corpora: list[str] | None = None
    shares: np.ndarray | None = None

    def corpus_labels(self) -> dict[str, list[str]]:
        """``{corpus: its sorted labels}`` when items come from two or more corpora, else ``{}``."""
        if self.corpora is None or len(set(self.corpora)) < 2:
            return {}
        out: dict[str, set[str]] = {}
        for c, lab in zip(self.corpora, self.labels, strict=True):
            out.setdefault(c, set()).add(lab)
        return {c: sorted(labs) for c, labs in sorted(out.items())}

    def where(self, mask: np.ndarray) -> FeatureSet:
        """The items where bool ``(N,)`` ``mask`` is True."""
        idx = np.flatnonzero(mask)
        pick = lambda xs: [xs[i] for i in idx]  # noqa: E731
        means = None if self.speaker_means is None else self.speaker_means[idx]
        corpora = None if self.corpora is None else pick(self.corpora)
        shares = None if self.shares is None else self.shares[idx]
        return replace(
            self,
            features=self.features[idx],
            labels=pick(self.labels),
            groups=pick(self.groups),
            splits=pick(self.splits),
            speaker_means=means,
            corpora=corpora,
            shares=shares,
        )

    def subset(self, split: str) -> FeatureSet:
        return self.where(np.asarray(self.splits) == split)

    def neutral_mean(self) -> np.ndarray | None:
        """``(d_audio,)``: the mean neutral voice of these items' speakers, each speaker once (None without any)."""
        return population_mean(self.speaker_means, self.groups)

    def calibrated(self, reference_mean: np.ndarray | None) -> FeatureSet:
        """Each speaker moved into the training population's frame: audio features − the speaker's neutral mean +
        ``reference_mean`` ``(d_audio,)``; speakers without references are left as they are."""
        return replace(self, features=shift_speakers(self.features, self.speaker_means, reference_mean))


def music_set(features: np.ndarray, music: Sequence[Record]) -> FeatureSet:
    """The music side: float ``(N, d)`` ``features`` of ``music`` with its labels, tracks and splits, and its
    listeners' shares when every record has them."""
    shares = np.asarray([r.shares for r in music], np.float32) if music and all(r.shares for r in music) else None
    return FeatureSet(
        features, [r.label for r in music], [r.group for r in music], [r.split for r in music], shares=shares
    )


@dataclass
class Data:
    """Everything one modality's training and evaluation needs. speech.features are raw (uncalibrated), with
    speech.speaker_means set for calibration."""

    speech: FeatureSet
    music: FeatureSet
    reference: np.ndarray  # bool (N,): calibration references, never used as queries
    tags: dict[str, np.ndarray]
    text_examples: tuple[np.ndarray, list[str]] | None = None  # late fusion: more sentences for the text reader
    scoring_only: np.ndarray | None = None  # bool (N,): held-out speakers heard in simulated rooms

    def for_training(self) -> FeatureSet:
        """The speech a model trains and is selected on: without the held-out speakers' copies in simulated rooms
        (scored, never used to choose an epoch)."""
        return self.speech if self.scoring_only is None else self.speech.where(~self.scoring_only)


READER_LANGUAGES = ("en", "ko")  # the languages the training sentences are written or translated in


def reader_sentences() -> tuple[list[str], list[str]]:
    """(sentences, labels): the training split of the project's own emotion sentences (``assets/sentences``,
    written for s2m) in English and Korean, which a late-fusion model's text reader learns from besides the
    training speech's transcripts."""
    from .data import read_sentences

    train = [r for r in read_sentences(languages=READER_LANGUAGES) if r.split == "train"]
    return [r.transcript for r in train], [r.label for r in train]


def load_data(
    speech: Sequence[Record], music: Sequence[Record], config: TrainConfig, cache_dir: Path | None = DEFAULT_CACHE
) -> Data:
    """Features for ``config.modality`` (audio / text / fusion = audio ‖ text) and the music side; with
    ``config.augment_rooms``, audio and fusion also get the training speakers' copies in simulated rooms."""
    copies = []
    if config.augment_rooms and config.modality != "text":
        copies = in_rooms([r for r in speech if r.split == "train"], config.augment_rooms)
        speech = list(speech) + copies
    labels, groups, splits = [r.label for r in speech], [r.group for r in speech], [r.split for r in speech]
    reference = calibration_references(labels, groups) & np.asarray([bool(r.path) for r in speech], bool)
    parts, means, examples = [], None, None
    if config.modality in ("audio", "fusion"):
        audio = record_features(
            speech, config.audio_encoder, cache_dir, level_norm=config.level_norm, denoise=config.denoise
        )
        means = speaker_means(audio, groups, reference)
        if copies:  # a training copy keeps its studio twin's neutral voice: calibrated training removes who
            first = {g: i for i, g in reversed(list(enumerate(groups)))}  # speaks, not the room they speak in
            twins = [first[r.group.rsplit("~", 1)[0]] for r in copies]
            means[len(speech) - len(copies) :] = means[twins]
        parts.append(audio)
    late = config.modality == "fusion" and config.fusion == "late"
    words_encoder = config.reader_encoder if late else config.text_encoder
    if config.modality in ("text", "fusion"):
        parts.append(record_features(speech, words_encoder, cache_dir))
    if late:
        sentences, sentence_labels = reader_sentences()
        examples = embed_items(words_encoder, sentences, cache_dir), sentence_labels
    m = record_features(music, config.music_encoder, cache_dir)
    words = sorted(set(labels) | {r.label for r in music})
    tag_feats = embed_items(config.text_encoder, words, cache_dir)
    text_columns = parts[-1].shape[1] if config.modality == "fusion" else 0
    return Data(
        FeatureSet(
            np.concatenate(parts, axis=1).astype(np.float32),
            labels,
            groups,
            splits,
            means,
            text_columns,
            [r.corpus for r in speech] if any(r.corpus for r in speech) else None,
        ),
        music_set(m, music),
        reference,
        dict(zip(words, tag_feats, strict=True)),
        examples,
        np.asarray([bool(r.room) and r.split != "train" for r in speech], bool),
    )
