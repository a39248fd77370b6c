"""Prosodic functionals with openSMILE's eGeMAPSv02 (Eyben et al., IEEE Trans. Affective Computing 2016).

``egemaps``: all 88 functionals, the field's standard baseline. ``prosody``: the 27 pitch, loudness and timing
functionals. A probe (findings.md) found that the spectral / voice-quality functionals shift by up to 8 SDs
between synthesizers while pitch, loudness and rhythm carry the emotion across voices.
"""

from __future__ import annotations

import numpy as np

from ..audio import SPEECH_SAMPLE_RATE
from .base import Encoder, EncoderUnavailable

_PROSODY_PREFIXES = (
    "F0semitone",
    "loudness_sma3",
    "loudnessPeaks",
    "VoicedSegments",
    "MeanVoiced",
    "StddevVoiced",
    "MeanUnvoiced",
    "StddevUnvoiced",
    "equivalentSoundLevel",
)


class EgemapsEncoder(Encoder):
    """eGeMAPSv02 functionals of one utterance at 16 kHz -> float32 ``(dim,)`` (88 or the 27 prosodic ones)."""

    modality = "speech"
    sample_rate = SPEECH_SAMPLE_RATE

    def __init__(self, name: str = "egemaps", prosody_only: bool = False):
        try:
            import opensmile
        except ImportError:
            raise EncoderUnavailable("eGeMAPS needs openSMILE: `pip install opensmile`") from None
        self.name = name
        self._smile = opensmile.Smile(
            feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=opensmile.FeatureLevel.Functionals
        )
        names = self._smile.feature_names
        self._columns = [i for i, n in enumerate(names) if not prosody_only or n.startswith(_PROSODY_PREFIXES)]
        self.feature_names = [names[i] for i in self._columns]
        self.dim = len(self._columns)

    def _embed_one(self, samples: np.ndarray) -> np.ndarray:
        values = self._smile.process_signal(samples, self.sample_rate).to_numpy()[0]
        return values[self._columns]
