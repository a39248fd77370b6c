"""musicnn (Pons & Serra 2019): a music-tagging CNN trained on real tagged music, re-written in torch.

The published TensorFlow checkpoints ship in PyPI ``musicnn`` 0.1.0 (ISC licence): ``MSD_musicnn`` (Million Song
Dataset, 50 tags such as happy, sad, chill, Mellow, party) and ``MTT_musicnn`` (MagnaTagATune). ``python -m s2m
convert-musicnn`` turns them once into ``safetensors`` under ``assets/musicnn/`` (TensorFlow is needed for that
command only); at run time only torch and librosa are used.

Input: 16-kHz mono audio -> log-compressed mel spectrogram (librosa, 512-point FFT, hop 256, 96 bands,
``log10(10000 x + 1)``) cut into 3-s patches of 187 frames. Per patch the network gives the 200-d penultimate layer
and 50 tag probabilities; a clip's feature is the mean over its patches of both, ``(250,)`` float32.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .base import Encoder, EncoderUnavailable

SAMPLE_RATE, N_FFT, HOP, N_MELS, PATCH_FRAMES = 16_000, 512, 256, 96, 187
WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "assets" / "musicnn"
EPS = 1e-3  # TensorFlow's batch-normalisation epsilon


def log_mel(audio: np.ndarray) -> np.ndarray:
    """float32 ``(T,)`` 16-kHz audio -> ``(frames, 96)`` float32, as musicnn prepares its input.

    The original casts the mel power to float16 first; on loud (mastered) music that overflows to infinity and the
    network's output becomes meaningless, so s2m keeps float32 (the difference on quieter input is float16
    rounding).
    """
    import librosa

    mel = librosa.feature.melspectrogram(
        y=np.asarray(audio, np.float32), sr=SAMPLE_RATE, hop_length=HOP, n_fft=N_FFT, n_mels=N_MELS
    ).T
    return np.log10(10000 * mel + 1).astype(np.float32)


def patches(mel: np.ndarray) -> np.ndarray:
    """``(frames, 96)`` -> ``(P, 187, 96)`` consecutive 3-s patches (a clip shorter than one patch is padded)."""
    if len(mel) < PATCH_FRAMES:
        mel = np.pad(mel, ((0, PATCH_FRAMES - len(mel)), (0, 0)))
    n = (len(mel) - PATCH_FRAMES) // PATCH_FRAMES + 1
    return np.stack([mel[i * PATCH_FRAMES : (i + 1) * PATCH_FRAMES] for i in range(n)])


class _BN(nn.BatchNorm1d):
    """TensorFlow-style batch norm over the last axis (inference statistics only)."""

    def __init__(self, n: int):
        super().__init__(n, eps=EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.batch_norm(
            x.movedim(-1, 1), self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps
        ).movedim(1, -1)


class MusiCNN(nn.Module):
    """``(B, 187, 96)`` log-mel patches -> (penultimate ``(B, 200)``, tag logits ``(B, n_tags)``)."""

    def __init__(self, n_tags: int = 50, filters: float = 1.6, midend: int = 64, backend: int = 200):
        super().__init__()
        timbral, temporal = int(filters * 128), int(filters * 32)
        self.bn_in = _BN(1)
        self.timbral = nn.ModuleList([nn.Conv2d(1, timbral, (7, int(f * N_MELS))) for f in (0.4, 0.7)])
        self.timbral_bn = nn.ModuleList([_BN(timbral) for _ in range(2)])
        self.temporal = nn.ModuleList([nn.Conv2d(1, temporal, (k, 1)) for k in (128, 64, 32)])
        self.temporal_bn = nn.ModuleList([_BN(temporal) for _ in range(3)])
        front = 2 * timbral + 3 * temporal
        self.mid = nn.ModuleList(
            [nn.Conv2d(1, midend, (7, front))] + [nn.Conv2d(1, midend, (7, midend)) for _ in range(2)]
        )
        self.mid_bn = nn.ModuleList([_BN(midend) for _ in range(3)])
        self.pool_bn = _BN(2 * (front + 3 * midend))
        self.dense = nn.Linear(2 * (front + 3 * midend), backend)
        self.dense_bn = _BN(backend)
        self.out = nn.Linear(backend, n_tags)

    @staticmethod
    def _conv(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, F)`` -> ReLU(conv) as ``(B, T', F', C)`` (channels last, as in TensorFlow)."""
        return torch.relu(conv(x[:, None])).permute(0, 2, 3, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.bn_in(x[..., None])[..., 0]
        feats = []
        padded = nn.functional.pad(x, (0, 0, 3, 3))  # "same" in time only; pooled over all frequencies after
        for conv, bn in zip(self.timbral, self.timbral_bn, strict=True):
            feats.append(bn(self._conv(conv, padded)).amax(dim=2))
        for conv, bn in zip(self.temporal, self.temporal_bn, strict=True):
            k = conv.kernel_size[0]
            same = nn.functional.pad(x, (0, 0, (k - 1) // 2, k - 1 - (k - 1) // 2))  # TensorFlow's "same"
            feats.append(bn(self._conv(conv, same)).amax(dim=2))
        front = torch.cat(feats, dim=2)  # (B, T, 561)
        layers, h = [front], front
        for i, (conv, bn) in enumerate(zip(self.mid, self.mid_bn, strict=True)):
            out = bn(self._conv(conv, nn.functional.pad(h, (0, 0, 3, 3))))[:, :, 0, :]  # (B, T, 64)
            h = out if i == 0 else out + h
            layers.append(h)
        mid = torch.cat(layers, dim=2)  # (B, T, 753)
        pooled = torch.stack([mid.amax(dim=1), mid.mean(dim=1)], dim=2).flatten(1)  # max/mean interleaved
        penultimate = self.dense_bn(torch.relu(self.dense(self.pool_bn(pooled))))
        return penultimate, self.out(penultimate)


def load_musicnn(name: str, folder: Path = WEIGHTS_DIR) -> tuple[MusiCNN, list[str]]:
    """A converted checkpoint (``{name}.safetensors`` + ``{name}.json`` with its tags) in eval mode."""
    from safetensors.torch import load_file

    weights, meta = folder / f"{name}.safetensors", folder / f"{name}.json"
    if not weights.is_file() or not meta.is_file():
        raise EncoderUnavailable(
            f"{weights} is missing: run `python -m s2m convert-musicnn` (needs TensorFlow once, "
            "see requirements-convert.txt)."
        )
    tags = json.loads(meta.read_text())["tags"]
    model = MusiCNN(n_tags=len(tags))
    model.load_state_dict({k: v.float() for k, v in load_file(str(weights)).items()}, strict=True)
    return model.eval(), tags


class MusicnnEncoder(Encoder):
    """``(T,)`` float32 16-kHz music -> mean over 3-s patches of [penultimate ``(200,)`` ‖ tag probabilities]."""

    modality = "music"
    sample_rate = SAMPLE_RATE

    def __init__(self, name: str, checkpoint: str, folder: Path | None = None):
        self.name = name
        self.model, self.tags = load_musicnn(checkpoint, folder or WEIGHTS_DIR)
        self.dim = 200 + len(self.tags)

    @torch.inference_mode()
    def _embed_one(self, x: np.ndarray) -> np.ndarray:
        penultimate, logits = self.model(torch.from_numpy(patches(log_mel(x))))
        return torch.cat([penultimate, torch.sigmoid(logits)], dim=1).mean(0).numpy()
