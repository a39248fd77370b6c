"""The music-encoder comparison of `python -m s2m report --compare-music-encoders`."""

import numpy as np
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
