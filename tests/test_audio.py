import io

import numpy as np
import pytest
import soundfile as sf

from s2m.audio import SPEECH_SAMPLE_RATE, AudioError, load_audio

from .conftest import tone


def test_stereo_int16_44k_becomes_16k_mono_float32():
    x = (tone(1.5, 44_100)[:, None] * np.array([[1.0, 0.5]]) * 32767).astype(np.int16)
    clip = load_audio((44_100, x), trim_silence=False)
    assert clip.samples.dtype == np.float32 and clip.samples.ndim == 1
    assert clip.sample_rate == SPEECH_SAMPLE_RATE
    assert len(clip.samples) == 24_000
    # channel mean of full-scale int16: the level survives (no loudness normalisation)
    expected = np.sqrt(np.mean((tone(1.5, 44_100) * 0.75) ** 2))
    assert np.sqrt(np.mean(clip.samples**2)) == pytest.approx(expected, rel=0.02)


def test_mono_8k_float_and_channels_first():
    clip = load_audio((8_000, tone(2.0, 8_000)), trim_silence=False)
    assert len(clip.samples) == 32_000 and clip.samples.dtype == np.float32
    chans_first = np.stack([tone(1.0, 48_000)] * 2)  # (2, T)
    assert len(load_audio((48_000, chans_first), trim_silence=False).samples) == 16_000


def test_file_path_and_bytes_agree(tmp_path):
    path = tmp_path / "a.flac"
    sf.write(path, tone(1.0, 22_050), 22_050)
    a = load_audio(path, trim_silence=False).samples
    b = load_audio(path.read_bytes(), trim_silence=False).samples
    np.testing.assert_array_equal(a, b)
    assert len(a) == 16_000


def test_trims_silence_but_keeps_speech():
    x = np.concatenate([np.zeros(16_000), tone(1.0, 16_000), np.zeros(16_000)]).astype(np.float32)
    clip = load_audio((16_000, x))
    assert 1.0 <= clip.seconds <= 1.1


def test_long_input_is_cut_and_caller_told():
    clip = load_audio((16_000, tone(40.0, 16_000)), max_seconds=30.0, trim_silence=False)
    assert clip.truncated and clip.seconds == pytest.approx(30.0)
    assert "40.0 s" in clip.notice()
    assert load_audio((16_000, tone(5.0, 16_000))).notice() is None


def test_long_file_is_not_decoded_whole(tmp_path):
    path = tmp_path / "long.wav"
    sf.write(path, np.tile(tone(1.0, 8_000), 600), 8_000)  # 10 minutes
    clip = load_audio(path)
    assert clip.truncated and clip.input_seconds == pytest.approx(600.0) and clip.seconds <= 30.0


def test_peak_is_limited_for_out_of_range_float():
    clip = load_audio((16_000, tone(1.0, 16_000) * 10), trim_silence=False)
    assert np.max(np.abs(clip.samples)) <= 1.0 + 1e-3


@pytest.mark.parametrize(
    "source, message",
    [
        ((16_000, np.zeros(0, np.float32)), "empty"),
        ((16_000, np.zeros(16_000, np.float32)), "silent"),
        ((16_000, tone(0.05, 16_000)), "too short"),
        ((16_000, np.full(16_000, np.nan, np.float32)), "NaN"),
        ((4_000, tone(1.0, 4_000)), "sample rate"),
        (b"", "empty"),
        (b"this is not audio at all" * 100, "not an audio file"),
        ("/no/such/file.wav", "^The audio file .file.wav. is not on the server"),  # its name, never its folder
        ((16_000, np.array(["a", "b"])), "number array"),
    ],
)
def test_bad_input_raises_audio_error_with_its_own_message(source, message):
    with pytest.raises(AudioError, match=message):
        load_audio(source)


def test_corrupt_wav_header(tmp_path):
    buf = io.BytesIO()
    sf.write(buf, tone(1.0, 16_000), 16_000, format="WAV")
    data = bytearray(buf.getvalue())
    data[8:16] = b"XXXXXXXX"  # break the RIFF/WAVE header
    path = tmp_path / "broken.wav"
    path.write_bytes(bytes(data))
    with pytest.raises(AudioError, match="corrupt"):
        load_audio(path)


def test_soft_speech_between_pauses_is_quiet_not_silent(make_tone):
    soft = np.concatenate([np.zeros(24_000), make_tone(1.0, 16_000, amp=0.004), np.zeros(24_000)]).astype(np.float32)
    clip = load_audio((16_000, soft))  # about -55 dBFS at its loudest, -62 dBFS on average: a soft RAVDESS take
    assert 0.9 < clip.seconds < 1.2  # the pauses are trimmed
    hiss = np.random.default_rng(0).normal(0, 10 ** (-75 / 20), 32_000).astype(np.float32)
    with pytest.raises(AudioError, match="silent"):
        load_audio((16_000, hiss))


def test_level_normalisation_removes_the_recording_gain(make_tone):
    from s2m.audio import SPEECH_LEVEL_DBFS, normalise_level

    x = np.concatenate([make_tone(1.0, 16_000, amp=0.2), make_tone(1.0, 16_000, amp=0.05)])
    a, b = normalise_level(x), normalise_level(x * 0.01)
    np.testing.assert_allclose(a, b, atol=1e-5)
    loud = a[:16_000]
    assert abs(10 * np.log10(np.mean(a**2)) - SPEECH_LEVEL_DBFS) < 3
    assert np.sqrt(np.mean(loud**2)) > 2 * np.sqrt(np.mean(a[16_000:] ** 2))  # relative loudness survives
    assert np.max(np.abs(normalise_level(x, target_dbfs=0.0))) <= 1.0


def _voice(seconds: float) -> np.ndarray:
    """float32 (T,) 16 kHz: speech-like syllables, 4 per second, of a buzz whose pitch glides around 150 Hz
    (harmonics up to 4 kHz), peak 0.3."""
    t = np.arange(int(seconds * 16_000)) / 16_000
    phase = 2 * np.pi * np.cumsum(150 + 30 * np.sin(2 * np.pi * 1.5 * t)) / 16_000
    buzz = sum(np.sin(h * phase) / np.sqrt(h) for h in range(1, 26))
    return (0.3 * buzz / np.abs(buzz).max() * np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 0.5).astype(np.float32)


def _noisy_take(snr_db: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """(clean, noisy) float32 (T,) 16 kHz: 1 s of pause, a 1-s vowel, 1 s of pause; noisy adds steady white noise."""
    clean = np.concatenate([np.zeros(16_000), _voice(1.0), np.zeros(16_000)]).astype(np.float32)
    rms = np.sqrt(np.mean(clean[16_000:32_000] ** 2))
    noise = np.random.default_rng(1).normal(0, rms * 10 ** (-snr_db / 20), clean.shape)
    return clean, (clean + noise).astype(np.float32)


def _db(a: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(a.astype(np.float64) ** 2)))


def test_noise_reduction_removes_steady_noise_and_keeps_the_voice():
    from s2m.audio import reduce_noise

    clean, noisy = _noisy_take()
    y = reduce_noise(noisy, 16_000)
    assert y.shape == noisy.shape and y.dtype == np.float32
    pause, voice = slice(2_000, 14_000), slice(18_000, 30_000)
    assert _db(y[pause]) < _db(noisy[pause]) - 12  # the noise heard alone: mostly gone
    assert _db(y[voice]) - _db(y[pause]) > _db(noisy[voice]) - _db(noisy[pause]) + 8  # the voice stands out more
    studio = reduce_noise(clean + 1e-4 * noisy, 16_000)  # near-silent pauses: the voice keeps its shape
    assert np.dot(studio[voice], clean[voice]) / np.linalg.norm(studio[voice]) / np.linalg.norm(clean[voice]) > 0.9
    short = noisy[:1_000]
    np.testing.assert_array_equal(reduce_noise(short, 16_000), short)  # too short to estimate noise: unchanged


def test_a_clip_keeps_its_untrimmed_audio_for_the_noise_reducer():
    from dataclasses import replace

    from s2m.features import prepare_speech

    clean, noisy = _noisy_take()
    clip = load_audio((16_000, noisy))
    assert clip.untrimmed is not None and len(clip.untrimmed) == len(noisy)
    quiet = load_audio((16_000, clean))  # the studio take: its pauses are trimmed ...
    assert clip.seconds > 2.5 and quiet.seconds < 1.2  # ... in steady noise they are not
    denoised = prepare_speech(clip, 16_000, level_norm=False, denoise=True)
    assert len(denoised) <= len(clip.untrimmed)
    assert _db(denoised[:12_000]) < _db(clip.samples[:12_000]) - 12  # the pause heard through the noise reducer
    assert load_audio((16_000, noisy), trim_silence=False).untrimmed is None
    np.testing.assert_array_equal(prepare_speech(clip, 16_000, level_norm=False), clip.samples)
    samples_only = prepare_speech(clip.samples, 16_000, False, denoise=True)
    np.testing.assert_array_equal(samples_only, prepare_speech(replace(clip, untrimmed=None), 16_000, False, True))


def test_denoised_features_are_cached_apart(tmp_path):
    from s2m.features import embed_items

    path = tmp_path / "noisy.wav"
    sf.write(path, _noisy_take()[1], 16_000)
    plain = embed_items("prosody", [str(path)], tmp_path / "cache", progress=False)
    denoised = embed_items("prosody", [str(path)], tmp_path / "cache", progress=False, denoise=True)
    assert plain.shape == denoised.shape and not np.allclose(plain, denoised)
    assert len(list((tmp_path / "cache" / "prosody").glob("*.npz"))) == 2
    np.testing.assert_array_equal(embed_items("prosody", [str(path)], tmp_path / "cache", denoise=True), denoised)
