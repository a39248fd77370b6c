import pickle

import numpy as np
import pytest
import torch

from s2m import heads
from s2m.heads import CheckpointError, HeadsConfig, JointModel


def _model(tag_dim=None):
    torch.manual_seed(0)
    config = HeadsConfig(
        modality="fusion",
        speech_dim=12,
        music_dim=5,
        tag_dim=tag_dim,
        encoders={"audio": "prosody", "text": "minilm", "music": "mood-dsp"},
        music_labels=["sad", "happy"],
    )
    model = JointModel(config)
    model.speech.set_standardisation(np.random.default_rng(0).normal(3, 2, size=(40, 12)))
    model.train()
    for _ in range(3):  # move BatchNorm running statistics away from their init
        model.embed_speech(torch.randn(8, 12)), model.embed_music(torch.randn(8, 5))
    return model.eval()


def test_head_architecture_matches_paper():
    head = JointModel(HeadsConfig(modality="audio", speech_dim=768, music_dim=64)).speech
    linears = [m for m in head.modules() if isinstance(m, torch.nn.Linear)]
    norms = [m for m in head.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert [lin.bias for lin in linears] == [None, None]
    assert norms[0].affine and not norms[1].affine
    trainable = sum(p.numel() for p in head.parameters())
    assert trainable == 768 * 768 + 2 * 768 + 768 * 64  # the paper's audio head without the music head


def test_narrow_speech_head():
    head = JointModel(HeadsConfig(modality="audio", speech_dim=3584, music_dim=64, speech_hidden=512)).speech
    assert sum(p.numel() for p in head.parameters()) == 3584 * 512 + 2 * 512 + 512 * 64


def test_shapes():
    model = _model(tag_dim=7)
    assert model.embed_speech(torch.randn(3, 12)).shape == (3, 64)
    assert model.embed_tags(torch.randn(3, 7)).shape == (3, 64)
    out = model.project("music", np.ones((2, 5), np.float32))
    assert out.shape == (2, 64) and np.allclose(np.linalg.norm(out, axis=1), 1)


def test_save_load_bit_identical(tmp_path):
    model = _model(tag_dim=7)
    x = np.random.default_rng(1).normal(size=(4, 12)).astype(np.float32)
    model.save(tmp_path / "ckpt")
    again = heads.load(tmp_path / "ckpt")
    np.testing.assert_array_equal(model.project("speech", x), again.project("speech", x))
    assert again.config == model.config


def test_pickle_payload_is_refused(tmp_path):
    model = _model()
    model.save(tmp_path)

    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('pickle code ran')",))

    (tmp_path / "model.safetensors").write_bytes(pickle.dumps(Boom()))
    with pytest.raises(CheckpointError, match="not a valid safetensors"):
        heads.load(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="refuses to unpickle"):
        heads.load(tmp_path)


def test_unknown_hub_id_offline_fails_clearly(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(CheckpointError, match="neither a local checkpoint"):
        heads.load("someone/not-a-cached-model")
