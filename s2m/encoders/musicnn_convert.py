"""One-off conversion of musicnn's published TensorFlow checkpoints to safetensors, and the parity fixture.

Runs where TensorFlow is installed (``requirements-convert.txt``; nothing else in s2m needs it) and imports
neither torch nor the rest of s2m's stack. ``python -m s2m convert-musicnn`` writes ``assets/musicnn/{name}
.safetensors`` + ``{name}.json``, and with ``--fixture`` the original model's outputs on a fixed clip, against
which ``tests/test_musicnn.py`` checks the torch re-implementation.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

MODELS = ("MSD_musicnn", "MTT_musicnn")
# TensorFlow variable scopes of the published checkpoints -> modules of s2m.encoders.musicnn.MusiCNN, graph order.
CONVS = ["timbral.0", "timbral.1", "temporal.0", "temporal.1", "temporal.2", "mid.0", "mid.1", "mid.2"]
NORMS = [
    "bn_in",
    "timbral_bn.0",
    "timbral_bn.1",
    "temporal_bn.0",
    "temporal_bn.1",
    "temporal_bn.2",
    "mid_bn.0",
    "mid_bn.1",
    "mid_bn.2",
    "pool_bn",
    "dense_bn",
]


def _package() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("musicnn")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("The musicnn package is needed once: `pip install --no-deps musicnn==0.1.0`.")
    return Path(next(iter(spec.submodule_search_locations)))


def convert(name: str, out: Path) -> Path:
    """``{name}.safetensors`` (float32) + ``{name}.json`` (tags, source, licence) from the installed package."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    from musicnn import configuration
    from safetensors.numpy import save_file

    reader = tf.compat.v1.train.NewCheckpointReader(str(_package() / name) + "/")
    get = lambda key: np.asarray(reader.get_tensor(key), np.float32)  # noqa: E731
    state = {}
    for i, module in enumerate(CONVS):
        scope = "conv2d" + (f"_{i}" if i else "")
        state[f"{module}.weight"] = get(f"{scope}/kernel").transpose(3, 2, 0, 1)  # (kh, kw, in, out) -> torch
        state[f"{module}.bias"] = get(f"{scope}/bias")
    for i, module in enumerate(NORMS):
        scope = "batch_normalization" + (f"_{i}" if i else "")
        for tf_name, torch_name in (
            ("gamma", "weight"),
            ("beta", "bias"),
            ("moving_mean", "running_mean"),
            ("moving_variance", "running_var"),
        ):
            state[f"{module}.{torch_name}"] = get(f"{scope}/{tf_name}")
    for module, scope in (("dense", "dense"), ("out", "dense_1")):
        state[f"{module}.weight"] = get(f"{scope}/kernel").T
        state[f"{module}.bias"] = get(f"{scope}/bias")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.safetensors"
    save_file(
        {k: np.ascontiguousarray(v) for k, v in sorted(state.items())},
        str(path),
        metadata={"source": f"PyPI musicnn 0.1.0, {name}", "licence": "ISC"},
    )
    tags = configuration.MSD_LABELS if name.startswith("MSD") else configuration.MTT_LABELS
    (out / f"{name}.json").write_text(
        json.dumps(
            {"tags": tags, "source": f"PyPI musicnn 0.1.0, {name} (Pons & Serra 2019)", "licence": "ISC"}, indent=1
        )
        + "\n"
    )
    return path


def fixture_clip(seconds: float = 6.0, rate: int = 16_000) -> np.ndarray:
    """A fixed 6-s test clip (a chord with an amplitude pulse and a little seeded noise), float32 ``(T,)``."""
    t = np.arange(int(seconds * rate)) / rate
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.2, 329.6, 440.0)) / 4
    pulse = 0.5 + 0.5 * (np.sin(2 * np.pi * 2 * t) > 0)
    noise = np.random.default_rng(0).normal(0, 0.02, len(t))
    return (0.3 * chord * pulse + noise).astype(np.float32)


def write_fixture(path: Path) -> Path:
    """The original TensorFlow models' penultimate layer and tag probabilities on :func:`fixture_clip`."""
    import soundfile as sf

    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    from musicnn.extractor import extractor

    wav = path.with_suffix(".wav")
    sf.write(wav, fixture_clip(), 16_000, subtype="FLOAT")
    out = {}
    for name in MODELS:
        taggram, _, features = extractor(str(wav), model=name, extract_features=True)
        out[f"{name}/taggram"], out[f"{name}/penultimate"] = taggram, features["penultimate"]
    np.savez(path, **out)
    wav.unlink()
    return path
