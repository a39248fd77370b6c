"""Speaker calibration: express features relative to a speaker's own neutral voice.

Everybody's "neutral" differs (pitch level, loudness, speaking rate). Subtracting the features of a short neutral
recording of the same speaker removes that offset; a probe (findings.md) found it the biggest single lever for an
unseen voice (8-emotion accuracy .36 -> .61). Without a reference, the training population's neutral mean stands in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .base import Encoder


@dataclass(frozen=True)
class SpeakerCalibration:
    """``offset``: float32 ``(dim,)`` subtracted from every feature vector of this speaker."""

    offset: np.ndarray

    @classmethod
    def from_reference(cls, encoder: Encoder, recordings: Sequence[np.ndarray]) -> SpeakerCalibration:
        """Mean features of one or more neutral recordings (1-D float32 at ``encoder.sample_rate``)."""
        if not len(recordings):
            raise ValueError("calibration needs at least one neutral recording")
        return cls(encoder.embed(list(recordings)).mean(axis=0))

    @classmethod
    def from_features(cls, neutral_features: np.ndarray) -> SpeakerCalibration:
        """Mean of ``(N, dim)`` features of neutral speech (a speaker's, or a population's)."""
        return cls(np.asarray(neutral_features, np.float32).reshape(-1, np.shape(neutral_features)[-1]).mean(0))

    def apply(self, features: np.ndarray) -> np.ndarray:
        """``(N, dim)`` or ``(dim,)`` -> the same shape, relative to this speaker's neutral voice."""
        return (np.asarray(features, np.float32) - self.offset).astype(np.float32)
