"""The torch re-implementation of musicnn matches the published TensorFlow model on a fixed clip.

``tests/fixtures/musicnn_parity.npz`` holds the original's outputs (``python -m s2m convert-musicnn --fixture``,
run once where TensorFlow is installed). Only the first patch's penultimate layer is compared: the original
extractor returns the first patch's intermediate features again for every later patch (a bug in musicnn 0.1.0);
its tag probabilities are right for every patch.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from s2m import encoders
from s2m.encoders.musicnn import load_musicnn, log_mel, patches
from s2m.encoders.musicnn_convert import MODELS, fixture_clip

FIXTURE = Path(__file__).parent / "fixtures" / "musicnn_parity.npz"


@pytest.mark.parametrize("name", MODELS)
def test_parity_with_the_published_tensorflow_model(name):
    reference = np.load(FIXTURE)
    model, tags = load_musicnn(name)
    with torch.inference_mode():
        penultimate, logits = model(torch.from_numpy(patches(log_mel(fixture_clip()))))
    np.testing.assert_allclose(torch.sigmoid(logits).numpy(), reference[f"{name}/taggram"], atol=5e-4)
    np.testing.assert_allclose(penultimate[0].numpy(), reference[f"{name}/penultimate"][0], atol=5e-3)
    assert len(tags) == 50 and ("happy" in tags if name.startswith("MSD") else "slow" in tags)


def test_musicnn_encoder_embeds_any_length(make_tone):
    enc = encoders.load("musicnn-msd")
    out = enc.embed([make_tone(10.0, 16_000), make_tone(1.0, 16_000, freq=440)])  # 3 patches; one padded patch
    assert out.shape == (2, 250) and np.isfinite(out).all()
    assert ((out[:, 200:] >= 0) & (out[:, 200:] <= 1)).all()  # tag probabilities
    loud = enc.embed([make_tone(10.0, 16_000, amp=1.0) * 3])  # mastered-loud music stays finite
    assert np.isfinite(loud).all()
