"""A hostile client over HTTP (the real app, in-process, on a loopback port): every bad input gets a clear message or
a correct answer, never a traceback, and a normal query still answers afterwards; a bounded burst of concurrent
clients gets no error."""

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from .conftest import tone

EXAMPLES = Path(__file__).resolve().parents[1] / "assets" / "examples"
OK = None  # the query is answered


def _write(data, rate=16_000, **kw):
    def make(path):
        sf.write(path, data, rate, **kw)

    return make


def _bytes(payload: bytes):
    def make(path):
        path.write_bytes(payload)

    return make


def _truncated_flac(path):
    buf = io.BytesIO()
    sf.write(buf, tone(3.0, 16_000), 16_000, format="FLAC")
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])


AUDIO_CASES = [  # (name, writer, suffix, expected message or OK)
    ("silence", _write(np.zeros(16_000, np.float32)), ".wav", "silent"),
    ("50 ms", _write(tone(0.05, 16_000)), ".wav", "too short"),
    ("0 bytes", _bytes(b""), ".wav", "empty|no samples|0 bytes|not an audio file"),
    ("NaN samples", _write(np.full(16_000, np.nan, np.float32), subtype="FLOAT"), ".wav", "NaN"),
    ("infinite samples", _write(np.full(16_000, np.inf, np.float32), subtype="FLOAT"), ".wav", "NaN or infinity"),
    ("4 kHz", _write(tone(1.0, 4_000), 4_000), ".wav", "Unsupported sample rate 4000 Hz"),
    ("384 kHz", _write(tone(1.0, 384_000), 384_000), ".wav", "Unsupported sample rate 384000 Hz"),
    ("6 channels", _write(np.stack([tone(1.5, 16_000)] * 6, axis=1)), ".wav", OK),
    ("8 kHz mono", _write(tone(1.5, 8_000), 8_000), ".wav", OK),
    ("192 kHz", _write(tone(1.5, 192_000), 192_000), ".wav", OK),
    ("clipping float", _write(tone(1.5, 16_000) * 50, subtype="FLOAT"), ".wav", OK),
    ("8-bit unsigned", _write(tone(1.5, 16_000), subtype="PCM_U8"), ".wav", OK),
    ("flac", _write(tone(1.5, 16_000)), ".flac", OK),
    ("ogg", _write(tone(1.5, 16_000), format="OGG"), ".ogg", OK),
    ("corrupt header", _bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 50), ".wav", "not an audio file"),
    ("JPEG renamed .wav", _bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 20), ".wav",
     "not an audio file"),
    ("HTML renamed .wav", _bytes(b"<html><script>alert(1)</script></html>" * 30), ".wav", "not an audio file"),
    ("text file", _bytes(b"just some text, not audio"), ".wav", "not an audio file"),
    ("truncated FLAC", _truncated_flac, ".flac", "not an audio file|too short|silent|" + "OK"),
    ("random bytes", _bytes(np.random.default_rng(0).bytes(40_000)), ".mp3", "not an audio file"),
    ("10-minute file", _write(np.tile(tone(1.0, 8_000), 600), 8_000), ".flac", "only the first 30.0 s"),
]


@pytest.mark.parametrize("name, make, suffix, expected", AUDIO_CASES, ids=[c[0] for c in AUDIO_CASES])
def test_hostile_audio(client, tmp_path, name, make, suffix, expected):
    from gradio_client.exceptions import ValidationError

    from .test_app import _search

    path = tmp_path / f"input{suffix}"
    make(path)
    if expected is OK or expected.startswith("only"):
        out = _search(client, path)
        assert out[6]["hits"]
        if expected is not OK:
            assert expected in out[0]
    elif expected.endswith("|OK"):  # a damaged file that may still hold enough sound to answer
        try:
            assert _search(client, path)[6]["hits"]
        except ValidationError as exc:
            assert any(m in str(exc) for m in expected.split("|")[:-1])
    else:
        with pytest.raises(ValidationError, match=f"audio: .*({expected})"):
            _search(client, path)
    assert _search(client, EXAMPLES / "sad.wav")[6]["hits"]  # still serving


TEXT_CASES = [  # (name, text, modality, expected message or OK)
    ("100 kB of text", "word " * 20_000, "text", "characters long; at most 1000"),
    ("only spaces", "   \n\t ", "text", "Nothing to search"),
    ("emoji", "I got the job!!! 🎉🎉🥳", "text", OK),
    ("right-to-left", "أنا سعيد جدا اليوم", "text", OK),
    ("Korean", "오늘 정말 행복해요", "text", OK),
    ("HTML and script", "<script>alert('x')</script><img src=x onerror=alert(1)> I am furious", "text", OK),
    ("control characters", "sad\x00\x07\x1b[31m words", "text", OK),
    ("text for the audio model", "I am happy", "audio", "needs a recording"),
    ("text for the fusion model", "I am happy", "fusion", "needs a recording"),
]


@pytest.mark.parametrize("name, text, modality, expected", TEXT_CASES, ids=[c[0] for c in TEXT_CASES])
def test_hostile_text(client, name, text, modality, expected):
    from gradio_client.exceptions import ValidationError

    from .test_app import _search

    if expected is OK:
        out = _search(client, None, text=text, modality=modality, framework="Triplet")
        assert out[6]["hits"] and out[6]["transcript"] == text.strip()
    else:
        with pytest.raises(ValidationError, match=expected):
            _search(client, None, text=text, modality=modality, framework="Triplet")
    assert _search(client, EXAMPLES / "sad.wav")[6]["hits"]


CHOICE_CASES = [  # (name, keyword arguments to the search, expected message)
    ("top_k 2.5", {"k": 2.5}, "top_k: .*whole number from 1 to 10"),
    ("top_k 0", {"k": 0}, "top_k: .*whole number from 1 to 10"),
    ("top_k 11", {"k": 11}, "top_k: .*whole number from 1 to 10"),
    ("modality None", {"modality": None}, "modality: Unknown model None: choose one of audio, text, fusion"),
    ("modality video", {"modality": "video"}, "modality: Unknown model 'video': choose one of audio, text, fusion"),
    ("framework None", {"framework": None}, "framework: Unknown framework None: choose one of Triplet"),
    ("framework Magic", {"framework": "Magic"}, "framework: Unknown framework 'Magic': choose one of Triplet, "),
]


@pytest.mark.parametrize("name, kwargs, expected", CHOICE_CASES, ids=[c[0] for c in CHOICE_CASES])
def test_hostile_choices(client, name, kwargs, expected):
    from gradio_client.exceptions import ValidationError

    from .test_app import _search

    with pytest.raises(ValidationError, match=expected):
        _search(client, EXAMPLES / "sad.wav", **kwargs)
    assert _search(client, EXAMPLES / "sad.wav")[6]["hits"]


def test_bounded_concurrent_clients_get_no_errors(client):
    from gradio_client import Client

    from .test_app import _search

    def one(i):
        own = Client(client.src, verbose=False)
        return [len(_search(own, sorted(EXAMPLES.glob("*.wav"))[(i + q) % 8])[6]["hits"]) for q in range(5)]

    with ThreadPoolExecutor(8) as pool:
        answers = [n for ns in pool.map(one, range(8)) for n in ns]
    assert answers == [5] * 40


@pytest.mark.parametrize("text, top_k, where, message", [
    ("sad \ud800 words", 5, 1, "not valid Unicode"),  # a lone surrogate (gradio_client cannot even send it)
    ("I am sad", float("nan"), 4, "whole number from 1 to 10"),  # NaN (not JSON: only a raw client sends it)
    ("I am sad", "5", 4, "whole number from 1 to 10"),
])  # fmt: skip
def test_values_no_client_library_sends_are_named_by_the_validator(text, top_k, where, message):
    import app

    app.ENGINE = app.ENGINE or app.Engine()
    checks = app.check_query(None, text, "text", "Triplet", top_k, None, None)
    assert message in checks[where]["message"] and not checks[where]["is_valid"]
    assert all(c["is_valid"] for i, c in enumerate(checks) if i != where)
