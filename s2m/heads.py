"""Trained projection heads: frozen encoder features -> the joint 64-d speech-music space.

The head is the paper's (a MoCo-v3-style MLP, method.md §2.2): Dropout on the input feature, bias-free Linear(d, d),
BatchNorm1d(d), ReLU, bias-free Linear(d, out), BatchNorm1d(out, affine=False). s2m adds a fixed per-dimension
standardisation of the input (mean/std of the training features, stored with the weights) because the offline
encoders' features (pitch in Hz, loudness in dB, ...) have very different scales.

A :class:`JointModel` holds one speech head for its modality (``audio``, ``text`` or ``fusion``), one music head, and
optionally the tag head of the structure-preserving loss. A fusion model reads audio ‖ text features either with one
head over both (``early``, the paper's) or (``late``, s2m's default) with the speech head over the audio part and a
linear *text reader* whose calibrated emotion probabilities, divided by the training label frequencies, multiply the
audio reading (:meth:`JointModel.read`): words that carry no emotion (every label equally likely) leave the audio
reading as it is, words that do sharpen or overrule it. The audio reading itself is the nearest speech-label prototype
of the projection (the paper's) or, in models trained with one, a linear *voice reader* of the raw speech features
(:class:`VoiceReader`; across corpora it reads held-out languages better than the prototypes of the trained head).
An *ensemble* (``members`` > 1) holds several heads per side, trained from different seeds: each side's embedding is
its members' L2-normalised embeddings side by side, scaled by 1/√members, so a cosine in the joint space is the mean
of the members' cosines (their scores are averaged).
A checkpoint is a folder with
``model.safetensors`` and ``config.json``; :func:`load` rebuilds the model from those two files alone and never
unpickles anything.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .readout import DEFAULT_TEMPERATURE, Readout, softmax, upgrade

MODALITIES = ("audio", "text", "fusion")
WEIGHTS_FILE, CONFIG_FILE = "model.safetensors", "config.json"


class CheckpointError(RuntimeError):
    """A checkpoint folder that cannot be loaded safely (missing files, pickle payloads, bad config)."""


class Standardised(nn.Module):
    """A module whose ``(B, in_dim)`` input is standardised per dimension by the mean/std of the training features
    (buffers stored with the weights)."""

    def __init__(self, in_dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(in_dim))
        self.register_buffer("std", torch.ones(in_dim))

    def set_standardisation(self, features: np.ndarray | torch.Tensor) -> None:
        """Store mean/std of training features ``(N, in_dim)``; constant dimensions get std 1."""
        x = torch.as_tensor(np.asarray(features), dtype=torch.float32)
        std = x.std(dim=0, unbiased=False)
        self.mean.copy_(x.mean(dim=0))
        self.std.copy_(torch.where(std > 1e-8, std, torch.ones_like(std)))

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class ProjectionHead(Standardised):
    """``(B, in_dim)`` float features -> ``(B, out_dim)`` embeddings (not normalised; compare by cosine)."""

    def __init__(self, in_dim: int, out_dim: int = 64, hidden_dim: int | None = None, dropout: float = 0.1):
        super().__init__(in_dim)
        hidden_dim = hidden_dim or in_dim
        self.net = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(in_dim, hidden_dim, bias=False),
            nn.BatchNorm1d(hidden_dim),
            nn.ReLU(inplace=True),
            nn.Linear(hidden_dim, out_dim, bias=False),
            nn.BatchNorm1d(out_dim, affine=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.standardise(x))


class VoiceReader(Standardised):
    """The linear voice reader: standardised speech features float ``(B, in_dim)`` -> ``(B, C)`` scores, one per
    speech label, on the scale of prototype cosines (softmax(scores / the placement temperature) are its calibrated
    probabilities; :func:`s2m.train.fit_voice_reader`)."""

    def __init__(self, in_dim: int, labels: int):
        super().__init__(in_dim)
        self.linear = nn.Linear(in_dim, labels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.standardise(x))


class Members(nn.Module):
    """An ensemble's side: ``(B, in_dim)`` -> ``(B, members × out_dim)``, each member's L2-normalised embedding
    side by side, scaled by 1/√members (unit norm; a dot product is the mean of the members' cosines)."""

    def __init__(self, heads: list[ProjectionHead]):
        super().__init__()
        self.members = nn.ModuleList(heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = [nn.functional.normalize(head(x), dim=-1) for head in self.members]
        return torch.cat(parts, dim=-1) / len(parts) ** 0.5


@dataclass
class HeadsConfig:
    """Everything needed to rebuild a :class:`JointModel` and to know what it was trained on.

    speech_dim / music_dim: input sizes of the speech and music heads (early fusion: audio dim + text dim).
    text_dim: late fusion only: size of the text features that follow the speech head's input (the text reader's
    input); None otherwise.
    voice_reader: the speech side is read by a linear :class:`VoiceReader` of its features (fitted after training,
    :func:`s2m.train.fit_voice_reader`) instead of by the nearest speech-label prototype of the projection.
    encoders: encoder names per input, e.g. ``{"audio": "prosody", "text": "minilm", "music": "mood-dsp"}``.
    tag_dim: size of the label-word embeddings for the structure-preserving tag head; None = no tag head.
    speech_hidden: hidden width of the speech head; None = its input width (the paper's head).
    members: heads per side (an ensemble of models trained from different seeds); the joint space then has
    ``members × out_dim`` dimensions. weights_dtype: how the checkpoint file stores floating-point weights
    ("float16" halves an ensemble's file; they are used as float32). readout: how a query is read and placed at
    inference (:class:`s2m.readout.Readout`). training: what the model was trained on and how it scored
    (options, corpora, epochs, validation metrics): a record for people, never read to answer a query.
    """

    modality: str
    speech_dim: int
    music_dim: int
    out_dim: int = 64
    dropout: float = 0.1
    tag_dim: int | None = None
    speech_hidden: int | None = None
    text_dim: int | None = None
    voice_reader: bool = False
    members: int = 1
    weights_dtype: str = "float32"
    encoders: dict[str, str] = field(default_factory=dict)
    framework: str = "triplet"
    va_table: str = "lexicon"
    speech_labels: list[str] = field(default_factory=list)
    music_labels: list[str] = field(default_factory=list)
    readout: Readout = field(default_factory=Readout)
    training: dict = field(default_factory=dict)

    def __post_init__(self):
        if isinstance(self.readout, dict):  # from config.json
            self.readout = Readout(**self.readout)
        if not isinstance(self.readout, Readout):
            raise ValueError(f"readout must be a Readout or its fields, got {type(self.readout).__name__}")
        if self.modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {self.modality!r}")
        if self.weights_dtype not in ("float32", "float16"):
            raise ValueError(f"weights_dtype must be float32 or float16, got {self.weights_dtype!r}")
        if not isinstance(self.members, int) or self.members < 1:
            raise ValueError(f"members must be a positive integer, got {self.members!r}")


class JointModel(nn.Module):
    """Speech head + music head (+ optional tag head) into one ``out_dim`` space."""

    def __init__(self, config: HeadsConfig):
        super().__init__()
        self.config = config
        c = config
        if c.members > 1 and c.tag_dim:
            raise ValueError("an ensemble has no tag head (it is only used in training its members)")

        def side(in_dim: int, hidden: int | None = None) -> nn.Module:
            if c.members == 1:
                return ProjectionHead(in_dim, c.out_dim, hidden, dropout=c.dropout)
            return Members([ProjectionHead(in_dim, c.out_dim, hidden, dropout=c.dropout) for _ in range(c.members)])

        self.speech = side(c.speech_dim, c.speech_hidden)
        self.music = side(c.music_dim)
        self.tag = ProjectionHead(c.tag_dim, c.out_dim, dropout=c.dropout) if c.tag_dim else None
        self.text_reader = self.voice_reader = None
        # the readers are fitted after training (s2m.train.fit_text_reader / fit_voice_reader) and built without
        # drawing from torch's random stream, so the heads train exactly as without them
        with torch.random.fork_rng():
            if c.text_dim:
                self.text_reader = nn.Linear(c.text_dim, len(c.speech_labels))
            if c.voice_reader:
                self.voice_reader = VoiceReader(c.speech_dim, len(c.speech_labels))

    def embed_speech(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, speech_dim [+ text_dim])`` -> ``(B, out_dim)``; a late-fusion model's text columns are not read."""
        return self.speech(features[:, : self.config.speech_dim])

    def embed_music(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, music_dim)`` -> ``(B, out_dim)``."""
        return self.music(features)

    def embed_tags(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, tag_dim)`` -> ``(B, out_dim)``; only for models built with a tag head."""
        if self.tag is None:
            raise RuntimeError("this model has no tag head (HeadsConfig.tag_dim is None)")
        return self.tag(features)

    @torch.no_grad()
    def project(self, side: str, features: np.ndarray) -> np.ndarray:
        """Eval-mode, L2-normalised embeddings: float32 ``(N, in)`` numpy -> float32 ``(N, members × out_dim)``
        numpy."""
        head = {"speech": self.embed_speech, "music": self.music, "tag": self.tag}[side]
        was_training = self.training
        self.eval()
        out = head(torch.as_tensor(np.asarray(features, dtype=np.float32)))
        self.train(was_training)
        return nn.functional.normalize(out, dim=-1).numpy()

    @torch.no_grad()
    def text_evidence(self, text: np.ndarray) -> np.ndarray:
        """Late fusion: text features float32 ``(N, text_dim)`` -> float32 ``(N, C)`` how much more likely each
        speech label is after the words than before (the reader's probabilities at its calibrated temperature
        ``readout.text_temperature`` / the training label frequencies ``readout.text_prior``; all ones for words
        that carry no emotion). Labels in ``speech_labels`` order."""
        readout = self.config.readout
        logits = self.text_reader(torch.as_tensor(np.asarray(text, np.float32))) / float(readout.text_temperature)
        prior = np.asarray(readout.text_prior, np.float32)
        return (torch.softmax(logits, dim=-1).numpy() / prior).astype(np.float32)

    @torch.no_grad()
    def scores(self, features: np.ndarray):
        """How raw speech-side features float32 ``(N, speech_dim [+ text_dim])`` score against each speech label:
        (labels, their prototypes float32 ``(C, out_dim)``, scores float32 ``(N, C)``), or None without prototypes.
        The scores are the projection's cosines to the prototypes, or when the model has a :class:`VoiceReader`
        its scores (the same scale), pooled with the cosines by ``readout.voice_weight``."""
        labels, p = self.config.readout.prototypes()
        if not labels:
            return None
        weight = self.config.readout.voice_weight if self.voice_reader is not None else 0.0
        scores = self.project("speech", features) @ p.T if weight < 1 else 0.0
        if weight > 0:
            x = torch.as_tensor(np.asarray(features, np.float32)[:, : self.config.speech_dim])
            index = [self.config.speech_labels.index(lab) for lab in labels]
            scores = weight * self.voice_reader(x).numpy()[:, index] + (1 - weight) * scores
        return labels, p, scores

    def read(self, features: np.ndarray, temperature: float | None = None):
        """Which emotion raw speech-side features float32 ``(N, speech_dim [+ text_dim])`` carry: (labels, their
        prototypes float32 ``(C, out_dim)``, probabilities float32 ``(N, C)``), or None without prototypes.

        The softmax of :meth:`scores` at ``temperature`` (default the placement temperature, else 0.1). A
        late-fusion model first reads the audio at its calibrated temperature and weighs in the words' evidence
        (:meth:`s2m.readout.Readout.fuse`).
        """
        readout = self.config.readout
        tau = temperature or readout.placement or DEFAULT_TEMPERATURE
        scored = self.scores(features)
        if scored is None:
            return None
        labels, p, scores = scored
        if self.text_reader is None:
            return labels, p, softmax(scores, tau)
        evidence = self.text_evidence(np.asarray(features)[:, self.config.speech_dim :])
        index = [self.config.speech_labels.index(lab) for lab in labels]
        return labels, p, readout.fuse(softmax(scores, readout.read_temperature), evidence[:, index], tau)

    def query(self, features: np.ndarray) -> np.ndarray:
        """Raw speech-side features float32 ``(N, speech_dim [+ text_dim])`` -> where each query sits in the joint
        space, float32 ``(N, out_dim)``, L2-normalised: :meth:`s2m.readout.Readout.place` of the projection with
        :meth:`read` 's weights (a voice reader's or a late-fusion model's words weighing in)."""
        readout = self.config.readout
        read = self.read(features, readout.placement) if readout.placement else None
        return readout.place(self.project("speech", features), None if read is None else read[2])

    def save(self, directory: str | Path) -> Path:
        """Write ``model.safetensors`` + ``config.json`` into ``directory`` (created if needed); floating-point
        weights are stored as ``config.weights_dtype``."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        dtype = getattr(torch, self.config.weights_dtype)
        state = {
            k: (v.to(dtype) if v.is_floating_point() else v).detach().contiguous()
            for k, v in sorted(self.state_dict().items())
        }  # stable file bytes
        save_file(state, str(directory / WEIGHTS_FILE), metadata={"format": "pt", "library": "s2m"})
        (directory / CONFIG_FILE).write_text(json.dumps(asdict(self.config), indent=2, sort_keys=True) + "\n")
        return directory


def load(dir_or_hub_id: str | Path, revision: str | None = None) -> JointModel:
    """Rebuild a :class:`JointModel` from a local checkpoint folder or a Hugging Face Hub model id.

    A Hub id goes through ``huggingface_hub`` (its cache, ``HF_HOME`` and ``HF_HUB_OFFLINE`` apply). Only
    safetensors weights are accepted: pickle files are refused, never executed.
    """
    directory = Path(dir_or_hub_id)
    if not directory.is_dir():
        directory = _download(str(dir_or_hub_id), revision)
    weights, config_path = directory / WEIGHTS_FILE, directory / CONFIG_FILE
    if not config_path.is_file() or not weights.is_file():
        pickles = [p.name for p in directory.glob("*") if p.suffix in (".bin", ".pt", ".pth", ".ckpt", ".pkl")]
        hint = f" Found {', '.join(pickles)}, which s2m refuses to unpickle." if pickles else ""
        raise CheckpointError(f"{directory} needs {WEIGHTS_FILE} and {CONFIG_FILE}.{hint}")
    try:
        config = HeadsConfig(**upgrade(json.loads(config_path.read_text())))
    except (json.JSONDecodeError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"Invalid {config_path}: {exc}") from exc
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights} is not a valid safetensors file (pickled checkpoints are refused).") from exc
    model = JointModel(config)
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{weights} does not match {config_path}: {exc}") from exc
    return model.eval()


def _download(repo_id: str, revision: str | None) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        path = snapshot_download(repo_id, revision=revision, allow_patterns=[WEIGHTS_FILE, CONFIG_FILE])
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{repo_id!r} is neither a local checkpoint folder nor a Hub model that could be fetched "
            f"(offline, or not found): {exc}"
        ) from exc
    return Path(path)
