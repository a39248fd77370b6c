"""The query readout: what a checkpoint needs at inference to turn a projected query into a reading and a place.

A trained head projects speech into the joint space; the :class:`Readout` stored beside its weights says what that
projection means: the speech-label prototypes (where each emotion's training speech lies), the music prototypes and
the speech → mood mapping (where a query read as an emotion is placed), the placement and calibrated temperatures,
the late-fusion text reader's prior and weight, and the training speakers' neutral voice (calibration). It is a
frozen, typed part of :class:`s2m.heads.HeadsConfig` (``config.json`` → ``"readout"``); :func:`upgrade` is the one
place that reads checkpoints saved before it existed (when these fields sat in the free-form ``training`` record).
Pure numpy: the heads call it, and nothing here trains.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from .config import PLACE_AT

DEFAULT_TEMPERATURE = 0.1  # a reading's softmax temperature on prototype cosines when the model names none


@dataclass(frozen=True)
class Readout:
    """How a model reads and places a query (every vector a JSON list of floats, ``D`` = the joint space's size).

    speech_prototypes: ``{speech label: (D,)}``, the L2-normalised mean training embedding of each speech label (the
    nearest-prototype reading; an empty dict: the model cannot name emotions). music_prototypes: ``{mood: (D,)}`` the
    same for the training music (a mood predictor for unlabelled libraries, and the placement targets).
    mapping: ``{speech label: mood}``, each speech label's VA-nearest training mood (the pairs it was trained on).
    placement: softmax temperature τ of :meth:`place` (None: the paper's use of the projection itself). place_at:
    "music" (a query read as an emotion goes to its mapped mood's music prototype) or "speech" (to the speech-label
    prototype). read_temperature / text_temperature: late fusion's calibrated temperatures of the audio reading and
    of the text reader's logits (fitted on validation speakers). text_prior: late fusion: ``(C,)`` training label
    frequencies of the text reader, in ``HeadsConfig.speech_labels`` order; text_weight: the exponent of the words'
    evidence. voice_weight: a model with a voice reader: its share α of the audio reading's scores, α · the reader's
    + (1 − α) · the prototype cosines (log-linear pooling of the two readings; 1: the reader alone). reference_mean:
    ``(d_audio,)`` the training speakers' mean neutral voice (a calibrating speaker is moved onto it);
    feature_mean: ``(d_audio,)`` the mean training item in that frame (session calibration).
    """

    speech_prototypes: dict[str, list[float]] = field(default_factory=dict)
    music_prototypes: dict[str, list[float]] = field(default_factory=dict)
    mapping: dict[str, str] = field(default_factory=dict)
    placement: float | None = None
    place_at: str = "speech"
    read_temperature: float = DEFAULT_TEMPERATURE
    text_temperature: float = 1.0
    text_prior: list[float] | None = None
    text_weight: float = 1.0
    voice_weight: float = 1.0
    reference_mean: list[float] | None = None
    feature_mean: list[float] | None = None

    def __post_init__(self):
        if self.place_at not in PLACE_AT:
            raise ValueError(f"place_at must be one of {PLACE_AT}, got {self.place_at!r}")
        for name in ("placement", "read_temperature", "text_temperature"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive, got {value!r}")

    def prototypes(self) -> tuple[list[str], np.ndarray]:
        """The speech labels and their prototypes float32 ``(C, D)`` (``C`` = 0 for a model that cannot name
        emotions)."""
        p = np.asarray(list(self.speech_prototypes.values()), np.float32)
        return list(self.speech_prototypes), p.reshape(len(self.speech_prototypes), -1)

    def fuse(self, audio: np.ndarray, evidence: np.ndarray, temperature: float) -> np.ndarray:
        """Late fusion: the audio reading float32 ``(N, C)`` (at ``read_temperature``) times the words' evidence
        float32 ``(N, C)`` (same label order) raised to ``text_weight``, then sharpened or softened to
        ``temperature``; float32 ``(N, C)`` probabilities (without evidence: the softmax at ``temperature``)."""
        logits = np.log(audio + 1e-30) + self.text_weight * np.log(evidence)
        logits = logits * self.read_temperature / temperature
        mixed = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (mixed / mixed.sum(axis=1, keepdims=True)).astype(np.float32)

    def targets(self, labels: list[str], prototypes: np.ndarray) -> np.ndarray:
        """Where a query read as each of the speech ``labels`` is placed, float32 ``(C, D)``: with ``place_at ==
        "music"`` the music prototype of each label's mapped mood (angry speech goes to the angry training music,
        neutral speech to the nostalgic); otherwise the speech-label ``prototypes`` float32 ``(C, D)`` themselves."""
        music, mapping = self.music_prototypes, self.mapping
        if self.place_at != "music" or not music or not mapping:
            return np.asarray(prototypes, np.float32)
        return np.asarray([music[mapping[lab]] for lab in labels], np.float32)

    def place(self, speech: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Projected speech float32 ``(N, D)`` -> where each query sits in the joint space, L2-normalised.

        With a placement temperature τ a query goes to the mix of the :meth:`targets` of the speech labels, weighted
        by ``weights`` float32 ``(N, C)`` (the model's reading, :meth:`s2m.heads.JointModel.read`; default
        softmax(cosine to the speech-label prototypes / τ)): the model says which emotion it hears, and the query
        goes where that emotion's music lies, so that a voice the model was not trained on lands among the music of
        that emotion rather than between moods. Without τ or prototypes (the paper's models) the projection itself.
        """
        if not self.placement or not self.speech_prototypes:
            return speech
        labels, p = self.prototypes()
        if weights is None:
            weights = softmax(np.asarray(speech, np.float32) @ p.T, self.placement)
        return mix(weights, self.targets(labels, p))


def softmax(scores: np.ndarray, temperature: float) -> np.ndarray:
    """float ``(N, C)`` scores -> float32 ``(N, C)`` softmax(scores / ``temperature``) per row."""
    logits = np.asarray(scores, np.float32) / temperature
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    return weights / weights.sum(axis=1, keepdims=True)


def mix(weights: np.ndarray, prototypes: np.ndarray) -> np.ndarray:
    """float32 ``(N, C)`` weights over ``(C, D)`` prototypes -> their L2-normalised mixes, float32 ``(N, D)``."""
    mixed = weights @ prototypes
    return (mixed / np.linalg.norm(mixed, axis=1, keepdims=True)).astype(np.float32)


FIELDS = tuple(f.name for f in fields(Readout))


def upgrade(config: dict) -> dict:
    """A checkpoint's ``config.json`` (as a dict) in the current layout: checkpoints saved before the readout was
    typed kept its fields in the free-form ``training`` record; they move to ``"readout"`` (absent ones take the
    defaults that those checkpoints were read with). A current config is returned as it is."""
    if "readout" in config:
        return config
    training = dict(config.get("training") or {})
    readout = {name: training.pop(name) for name in FIELDS if name in training}
    return {**config, "training": training, "readout": readout}
