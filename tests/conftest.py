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


@pytest.fixture(scope="session")
def client():
    """The real app, launched in-process on a free loopback port, and a gradio_client for it."""
    from gradio_client import Client

    import app

    demo = app.create(warm=False)
    _, url, _ = demo.launch(
        prevent_thread_lock=True, quiet=True, allowed_paths=[str(p) for p in app._ALLOWED], max_file_size=app.MAX_UPLOAD
    )
    yield Client(url, verbose=False)
    demo.close()
