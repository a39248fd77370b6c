"""``mood-dsp``: hand-crafted music-emotion descriptors of a clip (no learned weights).

The structural cues that listeners use to judge musical emotion (Gabrielsson & Lindström, "The role of structure
in the musical expression of emotions", 2010; Eerola & Vuoskoski 2013): tempo and event rate, mode (major/minor),
loudness and its dynamics, brightness (spectral centroid), spectral contrast and flatness (roughness / noisiness),
percussive share, plus MFCC statistics for timbre. Computed with librosa at 22 050 Hz.
"""

from __future__ import annotations

import numpy as np

from ..audio import MUSIC_SAMPLE_RATE
from .base import Encoder

# Krumhansl–Kessler key profiles (Krumhansl 1990), C major / C minor.
_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
N_MFCC = 13
FEATURE_NAMES = (
    [
        "tempo_bpm",
        "onset_rate_hz",
        "beat_strength",
        "major_corr",
        "minor_corr",
        "mode_major_minus_minor",
        "rms_db_mean",
        "rms_db_std",
        "rms_db_range",
        "centroid_hz_mean",
        "centroid_hz_std",
        "rolloff_hz_mean",
        "flatness_mean",
        "zcr_mean",
        "percussive_share",
    ]
    + [f"contrast{i}_mean" for i in range(7)]
    + [f"mfcc{i}_mean" for i in range(N_MFCC)]
    + [f"mfcc{i}_std" for i in range(N_MFCC)]
)


def key_correlations(chroma_mean: np.ndarray) -> tuple[float, float]:
    """Best Pearson correlation of a 12-bin chroma profile with the 12 major and the 12 minor key profiles."""
    c = chroma_mean - chroma_mean.mean()
    best = []
    for profile in (_MAJOR, _MINOR):
        rolled = np.stack([np.roll(profile, k) for k in range(12)])
        rolled = rolled - rolled.mean(1, keepdims=True)
        den = np.linalg.norm(rolled, axis=1) * (np.linalg.norm(c) + 1e-12)
        best.append(float(np.max(rolled @ c / den)))
    return best[0], best[1]


class MoodDSP(Encoder):
    """``(T,)`` float32 at 22 050 Hz (a ~10-s clip) -> float32 ``(48,)`` descriptors named in ``FEATURE_NAMES``."""

    name = "mood-dsp"
    modality = "music"
    sample_rate = MUSIC_SAMPLE_RATE
    dim = len(FEATURE_NAMES)
    feature_names = FEATURE_NAMES

    def _embed_one(self, y: np.ndarray) -> np.ndarray:
        import librosa

        sr, hop = self.sample_rate, 512
        seconds = max(len(y) / sr, 1e-3)
        stft = np.abs(librosa.stft(y, n_fft=2048, hop_length=hop))
        harmonic, percussive = librosa.decompose.hpss(stft)
        onset_env = librosa.onset.onset_strength(S=librosa.amplitude_to_db(stft, ref=np.max), sr=sr)
        tempo = float(np.atleast_1d(librosa.feature.tempo(onset_envelope=onset_env, sr=sr, hop_length=hop))[0])
        onsets = librosa.onset.onset_detect(onset_envelope=onset_env, sr=sr, hop_length=hop)
        chroma = librosa.feature.chroma_stft(S=harmonic**2, sr=sr).mean(axis=1)
        major, minor = key_correlations(chroma)
        rms_db = librosa.amplitude_to_db(librosa.feature.rms(S=stft, frame_length=2048).ravel() + 1e-6, ref=1.0)
        centroid = librosa.feature.spectral_centroid(S=stft, sr=sr).ravel()
        rolloff = librosa.feature.spectral_rolloff(S=stft, sr=sr).ravel()
        flatness = librosa.feature.spectral_flatness(S=stft).ravel()
        zcr = librosa.feature.zero_crossing_rate(y, hop_length=hop).ravel()
        contrast = librosa.feature.spectral_contrast(S=stft, sr=sr).mean(axis=1)
        mfcc = librosa.feature.mfcc(
            S=librosa.power_to_db(librosa.feature.melspectrogram(S=stft**2, sr=sr)), n_mfcc=N_MFCC
        )
        perc_share = float((percussive**2).sum() / ((harmonic**2).sum() + (percussive**2).sum() + 1e-12))
        return np.concatenate(
            [
                [
                    tempo,
                    len(onsets) / seconds,
                    float(onset_env.mean()),
                    major,
                    minor,
                    major - minor,
                    rms_db.mean(),
                    rms_db.std(),
                    np.percentile(rms_db, 95) - np.percentile(rms_db, 5),
                    centroid.mean(),
                    centroid.std(),
                    rolloff.mean(),
                    flatness.mean(),
                    zcr.mean(),
                    perc_share,
                ],
                contrast,
                mfcc.mean(axis=1),
                mfcc.std(axis=1),
            ]
        )
