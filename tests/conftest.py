"""Shared fixtures: short generated audio, so no test needs a file from outside the repo."""

import numpy as np
import pytest


def tone(seconds: float, rate: int, freq: float = 220.0, amp: float = 0.3) -> np.ndarray:
    """float32 (T,) harmonic tone with a slow amplitude wobble, like a sustained vowel."""
    t = np.arange(int(seconds * rate)) / rate
    wave = sum(np.sin(2 * np.pi * freq * h * t) / h for h in (1, 2, 3))
    return (amp * wave * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) / 1.8).astype(np.float32)


@pytest.fixture
def make_tone():
    return tone
