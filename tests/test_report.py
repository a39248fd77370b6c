"""The music-encoder comparison of `python -m s2m report --compare-music-encoders`."""

import numpy as np
import pytest
import soundfile as sf

from s2m.report import music_encoder_report

from .conftest import tone


def test_music_encoders_are_compared_per_mood_on_the_library_and_on_real_recordings_alone(tmp_path):
    """Two moods a descriptor tells apart at once (slow, low, quiet vs fast, high, loud): the probe gets every held-out
    clip right on the whole library and, track by track, on the "real" recordings alone."""
    rows = ["clip_id,path,mood,valence,arousal,group,split,start_s,end_s,license,source"]
    rng = np.random.default_rng(0)
    for mood, freq, amp, beats in (("sad", 110.0, 0.05, 1.0), ("happy", 660.0, 0.5, 6.0)):
        for t in range(6):
            folder = "immich" if t < 3 else "composed"
            path = tmp_path / folder / mood / f"{mood}{t}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            x = tone(3.0, 22_050, freq=freq * (1 + 0.05 * t), amp=amp)
            pulse = 0.5 + 0.5 * np.sign(np.sin(2 * np.pi * beats * np.arange(len(x)) / 22_050))
            sf.write(path, (x * pulse + 0.001 * rng.normal(size=len(x))).astype(np.float32), 22_050)
            split = "test" if t in (2, 5) else "train"
            rows.append(f"{mood}{t},{folder}/{mood}/{mood}{t}.wav,{mood},0.5,0.5,{mood}-track{t},{split},0,3,CC0,me")
    (tmp_path / "metadata.csv").write_text("\n".join(rows) + "\n")
    out = music_encoder_report(tmp_path, ["mood-dsp"])
    whole, real = out.split("(b) real recordings alone")
    assert "(a) whole library, 4 clips of held-out pieces" in whole
    assert "6 clips of 6 tracks, leave one track out" in real
    for part in (whole, real):
        assert "| mood | `mood-dsp` |" in part
        for mood in ("sad", "happy", "accuracy"):
            assert f"| {mood} | 1.00 |" in part


def test_the_fusion_readers_comparison_scores_each_language_on_its_validation_sentences():
    """The reader learns from training transcripts (here: the eight example voices) plus the training sentences;
    with the Korean training sentences it reads the Korean validation sentences better."""
    from s2m.data import LIBRARY_DIR
    from s2m.data.records import Record
    from s2m.report import reader_report

    examples = sorted((LIBRARY_DIR.parent / "examples").glob("*.wav"))
    speech = [Record(str(p), p.stem, "example", "train") for p in examples]
    out = reader_report(speech, ["e5-small"], languages=("en", "ko"))
    rows = {
        line.split("|")[2].strip(): [float(v) for v in line.split("|")[3:6]]
        for line in out.splitlines()
        if line.startswith("| `e5-small`")
    }
    assert set(rows) == {"en", "en + ko"} and "80 en, 80 ko" in out and "training transcripts: 8" in out
    assert rows["en"][0] > 0.7 and rows["en + ko"][0] > 0.7  # English sentences read well either way
    assert rows["en + ko"][1] > rows["en"][1]  # Korean better with Korean training sentences
    assert rows["en + ko"][2] == pytest.approx(np.mean(rows["en + ko"][:2]), abs=0.006)  # the mean column


def test_variance_shares_measure_what_each_factor_explains():
    from s2m.report import variance_shares

    rng = np.random.default_rng(0)
    corpus = np.repeat(["a", "b"], 200)
    emotion = np.tile(["happy", "sad"], 200)
    x = np.stack([np.where(corpus == "a", 3.0, -3.0) + rng.normal(size=400), rng.normal(size=400)], axis=1)
    shares = variance_shares(x, {"corpus": list(corpus), "emotion": list(emotion)})
    assert 0.42 < shares["corpus"] < 0.48  # 9 / (9 + 1) of the first dimension, none of the second: ~0.45
    assert shares["emotion"] < 0.01
