"""Encoders run through ``transformers``: the paper's Hub models, the bundled MiniLM, and any compatible model.

Weights come from a local folder or a Hub id at a pinned revision (through the ``huggingface_hub`` cache, so
``HF_HOME`` and ``HF_HUB_OFFLINE`` apply). Nothing here is fine-tuned: every model runs in eval mode under
``torch.inference_mode``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..audio import SPEECH_SAMPLE_RATE
from .base import Encoder, EncoderUnavailable

AUDIO_TYPES = {"wav2vec2", "hubert", "wavlm", "data2vec-audio", "unispeech-sat", "wav2vec2-conformer"}
MUSIC_TYPES = {"audio-spectrogram-transformer"}


def resolve(source: str, revision: str | None = None) -> Path:
    """A local folder as is, else a Hub id fetched (or found in the cache) at ``revision``."""
    if Path(source).is_dir():
        return Path(source)
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(source, revision=revision, allow_patterns=["*.json", "*.txt", "*.safetensors"]))
    except Exception as exc:  # offline, unknown id, no cache: one clear message
        raise EncoderUnavailable(
            f"{source!r} is not a local folder and could not be fetched from the Hugging Face Hub "
            f"({type(exc).__name__}). This model needs the internet once (it is then cached under HF_HOME), or "
            "pass a folder that holds it. The default offline encoders are: prosody, egemaps, whisper-tiny, "
            "minilm, mood-dsp."
        ) from None


def model_type(path: Path) -> str:
    """``model_type`` from a transformers ``config.json``."""
    try:
        return json.loads((path / "config.json").read_text())["model_type"]
    except (OSError, KeyError, json.JSONDecodeError) as exc:
        raise EncoderUnavailable(f"{path} has no readable transformers config.json: {exc}") from None


class _TorchEncoder(Encoder):
    def _load(self, path: Path):
        import torch
        from transformers import AutoModel
        from transformers.utils import logging

        logging.disable_progress_bar()  # a frozen encoder loads silently
        self._torch = torch
        self.model = AutoModel.from_pretrained(str(path), use_safetensors=True).eval()  # never unpickles a .bin
        self.config = self.model.config
        self.dim = int(self.config.hidden_size)
        self.weights = weights_id(path)


def weights_id(path: Path) -> str:
    """A short hash of a model folder's weights as found (the folder — a Hub snapshot's is named by its commit — and
    each weights file's name, size and modification time): features cached for other weights are never reused."""
    import hashlib

    path = Path(path).resolve()
    h = hashlib.sha256(str(path).encode())
    for f in sorted(path.glob("*.safetensors")):
        stat = f.stat()
        h.update(f"{f.name}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return h.hexdigest()[:12]


class HFAudioEncoder(_TorchEncoder):
    """wav2vec2-family model: ``(T,)`` float32 16 kHz -> mean of the last hidden states, float32 ``(hidden,)``.

    Each waveform is normalised to zero mean / unit variance as ``Wav2Vec2FeatureExtractor(do_normalize=True)``
    does; items run one at a time, so no padding or attention mask is involved (method.md §7.11).
    """

    modality = "speech"
    sample_rate = SPEECH_SAMPLE_RATE

    def __init__(self, path: Path, name: str):
        self.name = name
        self._load(path)

    def _embed_one(self, samples: np.ndarray) -> np.ndarray:
        x = (samples - samples.mean()) / np.sqrt(samples.var() + 1e-7)
        with self._torch.inference_mode():
            hidden = self.model(self._torch.from_numpy(x)[None]).last_hidden_state
        return hidden[0].mean(0).numpy()


class HFTextEncoder(_TorchEncoder):
    """Sentence -> float32 ``(hidden,)``: masked mean of the last hidden states (``pooling="mean"``, as
    sentence-transformers does, L2-normalised) or the first token's state (``pooling="first"``, the paper's
    DistilBERT [CLS])."""

    modality = "text"
    sample_rate = None
    max_tokens = 256

    def __init__(self, path: Path, name: str, pooling: str = "mean", normalize: bool = True):
        from transformers import AutoTokenizer

        self.name, self.pooling, self.normalize = name, pooling, normalize
        self._load(path)
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))

    def embed(self, batch) -> np.ndarray:
        texts = list(batch)
        if not all(isinstance(t, str) for t in texts):
            raise TypeError(f"{self.name} embeds text: pass a list of strings")
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        tokens = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="pt")
        if self.config.model_type == "distilbert":  # DistilBERT has no segment embeddings
            tokens.pop("token_type_ids", None)
        with self._torch.inference_mode():
            hidden = self.model(**tokens).last_hidden_state  # (N, L, H)
        if self.pooling == "first":
            out = hidden[:, 0]
        else:
            mask = tokens["attention_mask"][..., None].to(hidden.dtype)
            out = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
        if self.normalize:
            out = self._torch.nn.functional.normalize(out, dim=-1)
        return out.numpy().astype(np.float32)


class ASTEncoder(_TorchEncoder):
    """Audio Spectrogram Transformer (Gong et al. 2021): ``(T,)`` float32 16 kHz -> pooled output ``(hidden,)``.

    The pooled output averages the [CLS] and distillation tokens; the AudioSet-finetuned checkpoint's label set
    includes the seven music moods.
    """

    modality = "music"
    sample_rate = SPEECH_SAMPLE_RATE

    def __init__(self, path: Path, name: str):
        from transformers import ASTFeatureExtractor

        self.name = name
        self._load(path)
        self.extractor = ASTFeatureExtractor(
            num_mel_bins=self.config.num_mel_bins, max_length=self.config.max_length, sampling_rate=self.sample_rate
        )

    def _embed_one(self, samples: np.ndarray) -> np.ndarray:
        inputs = self.extractor(samples, sampling_rate=self.sample_rate, return_tensors="pt")
        with self._torch.inference_mode():
            return self.model(**inputs).pooler_output[0].numpy()


def from_folder(path: Path, name: str | None = None) -> Encoder:
    """Pick the encoder class from a transformers folder's ``model_type``."""
    kind = model_type(path)
    name = name or str(path)
    if kind in AUDIO_TYPES:
        return HFAudioEncoder(path, name)
    if kind in MUSIC_TYPES:
        return ASTEncoder(path, name)
    return HFTextEncoder(
        path, name, pooling="first" if kind == "distilbert" else "mean", normalize=kind != "distilbert"
    )
