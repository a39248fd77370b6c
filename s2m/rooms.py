"""What a room and a cheap microphone do to a voice: reverberation, a narrow band, steady noise, another level.

A speaker recorded *in a room* is a copy of their recordings passed through one simulated room (the same room for
all of that speaker's takes, as in a classroom): drawn once from the room's name, so every run builds the same
rooms. Used to test how a model fares away from a recording studio (``python -m s2m evaluate --rooms``) and, as
augmentation, to train on copies of the training speakers in rooms (``--augment-rooms N``).

The simulation (per room, each part independently): reverberation with probability 0.7 — an impulse response of
exponentially decaying Gaussian noise, RT60 0.2–0.8 s, plus a direct path carrying 30–100 % of the amplitude
(a talker 0.5–2 m from a laptop in a classroom); a band-pass of a telephone or a cheap microphone with probability 0.3
(4th-order Butterworth, 150–400 Hz to 3–5 kHz); steady noise with probability 0.8 — white, pink or brown, at a
signal-to-noise ratio of 5–30 dB over the whole take; and a peak level 0–20 dB below full scale.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .data.records import Record

NOISE_COLOURS = ("white", "pink", "brown")  # power falling as f^0, f^-1, f^-2
ROOMS_VERSION = 1  # part of the feature cache key: a changed simulation never serves stale features


@dataclass(frozen=True)
class Room:
    """One simulated room and microphone. rt60: reverberation time, s (None: none); direct: amplitude of the
    direct path relative to the unit-energy reverberant tail; band: pass band, Hz (None: full band); noise: colour
    (None: none); snr_db: speech-to-noise ratio over the take, dB; peak_db: the take's peak level, dBFS."""

    name: str
    rt60: float | None
    direct: float
    band: tuple[float, float] | None
    noise: str | None
    snr_db: float
    peak_db: float

    @classmethod
    def named(cls, name: str) -> Room:
        """The room called ``name``: the same name always gives the same room."""
        rng = _rng(name)
        rt60 = float(rng.uniform(0.2, 0.8)) if rng.random() < 0.7 else None
        direct = float(1.0 / rng.uniform(0.3, 1.0))
        band = (float(rng.uniform(150, 400)), float(rng.uniform(3000, 5000))) if rng.random() < 0.3 else None
        noise = NOISE_COLOURS[int(rng.integers(3))] if rng.random() < 0.8 else None
        return cls(name, rt60, direct, band, noise, float(rng.uniform(5, 30)), float(rng.uniform(-20, 0)))


def _rng(*names: str) -> np.random.Generator:
    """A generator seeded by the names' CRC-32s (stable across processes, unlike ``hash``)."""
    return np.random.default_rng([zlib.crc32(n.encode()) for n in names])


def impulse_response(room: Room, sample_rate: int) -> np.ndarray | None:
    """float64 ``(rt60 · sample_rate,)``: the direct path, then exponentially decaying noise (−60 dB at RT60),
    normalised to unit energy; None for a room without reverberation."""
    if room.rt60 is None:
        return None
    n = max(2, int(room.rt60 * sample_rate))
    t = np.arange(n) / sample_rate
    ir = _rng(room.name, "ir").standard_normal(n) * np.exp(-6.9 * t / room.rt60)
    ir[0] = room.direct
    return ir / np.sqrt(np.sum(ir**2))


def coloured_noise(n: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    """float64 ``(n,)`` Gaussian noise whose power falls as f^0 (white), f^-1 (pink) or f^-2 (brown)."""
    white = rng.standard_normal(n)
    slope = NOISE_COLOURS.index(colour) / 2
    if slope == 0:
        return white
    spectrum = np.fft.rfft(white) / np.arange(1.0, n // 2 + 2) ** slope
    return np.fft.irfft(spectrum, n)


def in_room(samples: np.ndarray, sample_rate: int, room: Room, take: str = "") -> np.ndarray:
    """float32 ``(T',)``: mono ``samples`` ``(T,)`` as heard through ``room`` (T' = T plus half the reverberant tail).
    ``take`` names the recording, so its noise is the same on every run."""
    from scipy.signal import butter, fftconvolve, sosfilt

    x = np.asarray(samples, np.float64)
    ir = impulse_response(room, sample_rate)
    if ir is not None:
        x = fftconvolve(x, ir)[: len(x) + len(ir) // 2]
    if room.band is not None:
        high = min(room.band[1], 0.45 * sample_rate)
        x = sosfilt(butter(4, [room.band[0], high], btype="band", fs=sample_rate, output="sos"), x)
    if room.noise is not None:
        noise = coloured_noise(len(x), room.noise, _rng(room.name, take))
        power = float(np.mean(x**2))
        x = x + noise * np.sqrt(power / 10 ** (room.snr_db / 10) / max(float(np.mean(noise**2)), 1e-20))
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    return (x * (10 ** (room.peak_db / 20) / peak if peak > 0 else 1.0)).astype(np.float32)


def in_rooms(records: list[Record], copies: int = 1, tag: str = "room") -> list[Record]:
    """Copies of speech ``records``, each speaker's ``k``-th copy a new speaker ``"{group}~{tag}{k}"`` recorded in
    the room of that name (k = 1 … ``copies``; the original group is the name before the last "~"); labels, splits
    and transcripts are kept."""
    return [
        replace(r, group=f"{r.group}~{tag}{k}", room=f"{r.group}~{tag}{k}")
        for k in range(1, copies + 1)
        for r in records
    ]
