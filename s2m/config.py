"""Options of one training run, and the command-line options built from them; importable without torch (the
command line's ``--help`` stays instant)."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field, fields
from pathlib import Path

FRAMEWORKS = ("triplet", "triplet_sp", "triplet_emosim", "triplet_sp_emosim")
PLACE_AT = ("speech", "music")
# A music refit trains this many epochs and keeps the last (no early stopping on 72 validation tracks): chosen by
# 4-fold cross-validation over Emotify's training and validation tracks (model card, "The shipped music side").
REFIT_EPOCHS = 80
# The linear voice reader's inverse L2 strength (scikit-learn C on standardised features): leave-one-corpus-out
# balanced accuracy was flat over 0.003-0.03 (model card, "Voices from elsewhere"); the middle kept.
VOICE_READER_C = 0.01


# Speech preparation that a checkpoint saved before the setting existed does not store: it was trained without it.
UNSTORED_SPEECH_SETTINGS = {"level_norm": False, "denoise": False, "voice_reader": "prototypes", "reader_valid": False}


def saved_config(trained: dict) -> dict:
    """A checkpoint's stored training options (``training["config"]``) with the speech settings it predates filled
    in as they were when it was trained (off), never with today's defaults."""
    return {**UNSTORED_SPEECH_SETTINGS, **trained}


def _opt(default, help: str, **more):
    """A field with its command-line help (``metadata``; :func:`add_options` reads it)."""
    return field(default=default, metadata={"help": help, **more})


@dataclass(frozen=True)
class TrainConfig:
    """Options of one training run. Defaults follow the paper's command (λ 0.5, margin 0.4, batch 64, AdamW 1e-4,
    warm-up 20 of 100 epochs, cosine to 1e-9) and the settings chosen on validation (the model card's "How the
    settings were chosen"). Each field's ``help`` (its metadata) says what it does; the command line offers every
    field as an option (:func:`add_options`), so ``python -m s2m train --help`` lists them with their defaults."""

    modality: str = _opt("audio", "what the speech side reads", choices=("audio", "text", "fusion"))
    framework: str = _opt(
        "triplet_emosim", "training loss: the triplet loss, + structure preservation (sp), + EmoSim", choices=FRAMEWORKS
    )
    ranksim: bool = _opt(False, "use the RankSim form of the emotion-similarity regulariser")
    lam: float = _opt(0.5, "weight of the EmoSim/RankSim term")
    margin: float = _opt(0.4, "triplet margin")
    batch_size: int = _opt(64, "pairs per batch")
    lr: float = _opt(1e-4, "peak learning rate (AdamW)")
    weight_decay: float = _opt(0.01, "AdamW weight decay")
    epochs: int = _opt(100, "training epochs (early stopping may end sooner)")
    warmup_epochs: int = _opt(20, "epochs of linear learning-rate warm-up")
    min_lr: float = _opt(1e-9, "learning rate at the end of the cosine schedule")
    patience: int = _opt(10, "epochs without a better validation score before stopping")
    dropout: float = _opt(0.1, "dropout on each head's input")
    seed: int = _opt(0, "random seed (an ensemble's member i trains from seed + 1000 i)")
    va_table: str = _opt("lexicon", "valence-arousal coordinates of the emotion words", choices=("lexicon", "paper"))
    audio_encoder: str = _opt("whisper-base-layers", "speech encoder (a+b concatenates)")
    text_encoder: str = _opt("minilm", "text encoder of the text models and the label-word tags")
    reader_encoder: str = _opt(
        "e5-small", "late fusion: the text encoder of the text reader (transcripts in any language)"
    )
    music_encoder: str = _opt("mood-dsp", "music encoder")
    level_norm: bool = _opt(
        True, "scale speech to a fixed active level before the speech encoder (recording level is not an emotion)"
    )
    denoise: bool = _opt(
        True,
        "remove steady background noise from speech before the speech encoder (spectral "
        "gating of the untrimmed recording, s2m.audio.reduce_noise)",
    )
    calibrate: bool = _opt(
        True,
        "train on speaker-relative audio features (each training speaker's neutral mean "
        "moved onto the population's); the model is still used uncalibrated unless a user records "
        "a neutral reference",
        aliases=("--calibrated-training",),
    )
    speaker_shift: float = _opt(
        0.0,
        "probability of giving a training item another training speaker's neutral "
        "offset (an augmentation that simulates an unseen voice)",
    )
    speech_hidden: int | None = _opt(
        512,
        "hidden width of the speech head (none: its input width, as in the paper; "
        "the 3,584-d layer-stacked Whisper features need a narrower one)",
    )
    placement: float | None = _opt(
        0.02,
        "temperature with which a query is placed at a softmax mix of per-emotion "
        "targets (s2m.readout.Readout.place; none: at its projection, as in the paper)",
    )
    place_at: str = _opt(
        "music",
        "the placement targets: each emotion's VA-nearest mood among the training music, "
        "or the speech-label prototypes",
        choices=PLACE_AT,
    )
    voice_reader: str = _opt(
        "linear",
        "audio and fusion: how a voice's emotion is read: a logistic reader of the raw speech features, "
        "balanced over corpora and their emotions (linear; chosen by leave-one-corpus-out), or the nearest "
        "speech-label prototype of the trained projection (prototypes, the paper's)",
        choices=("linear", "prototypes"),
    )
    reader_valid: bool = _opt(
        True,
        "the linear voice reader, once its temperature is fitted on the validation speakers, is fitted again on the "
        "training and validation speakers together (more voices read voices it never heard better; chosen by "
        "leave-one-corpus-out)",
    )
    fusion: str = _opt(
        "late",
        "fusion models: the audio reading weighed by a linear text reader's evidence (late) "
        "or one head over audio and text features (early, the paper's)",
        choices=("late", "early"),
    )
    text_weight: float = _opt(
        1.0,
        "late fusion: the power of the words' evidence against the audio reading (1: "
        "Bayes' rule for two calibrated readings; 6 scored below 1 on validation actors)",
    )
    members: int = _opt(
        3,
        "models trained from different seeds and combined into one ensemble checkpoint (their "
        "scores averaged; 1: a single model, as in the paper)",
    )
    augment_rooms: int = _opt(
        0,
        "audio and fusion: also train on this many copies of each training speaker, each "
        "heard through its own simulated room and microphone (s2m.rooms)",
    )
    music_triplet: float = _opt(
        1.0,
        "weight of a music-side triplet term (clips of one mood together, other moods "
        "apart; 0: the paper's loss alone)",
    )

    def __post_init__(self):
        if self.framework not in FRAMEWORKS:
            raise ValueError(f"framework must be one of {FRAMEWORKS}, got {self.framework!r}")
        if self.augment_rooms < 0:
            raise ValueError(f"augment_rooms must be 0 or more, got {self.augment_rooms}")
        if self.members < 1:
            raise ValueError(f"members must be at least 1, got {self.members}")
        if not self.music_triplet >= 0:
            raise ValueError(f"music_triplet must be 0 or more, got {self.music_triplet}")
        if not self.text_weight >= 0:
            raise ValueError(f"text_weight must be 0 or more, got {self.text_weight}")
        if self.place_at not in PLACE_AT:
            raise ValueError(f"place_at must be 'speech' or 'music', got {self.place_at!r}")
        if self.fusion not in ("late", "early"):
            raise ValueError(f"fusion must be 'late' or 'early', got {self.fusion!r}")

    @property
    def label(self) -> str:
        """How a run is named in checkpoints and result tables: the framework, plus "+ranksim" when RankSim
        replaces the EmoSim regulariser (the only frameworks it can change)."""
        return self.framework + ("+ranksim" if self.ranksim and "emosim" in self.framework else "")


_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def _none_or(kind):
    """An argparse type for an optional field: "none" (or 0, never a valid width or temperature) gives None."""

    def parse(text: str):
        if text.strip().lower() == "none":
            return None
        value = kind(text)
        return None if value == 0 else value

    parse.__name__ = kind.__name__  # argparse names the type in its error message
    return parse


def _fits(value, annotation: str) -> bool:
    """Whether a JSON value suits a field annotated ``annotation`` ("int", "float | None", ...)."""
    base, _, rest = annotation.partition(" | ")
    if value is None:
        return rest == "None"
    if base == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return type(value) is _TYPES[base]


def add_options(parser: argparse.ArgumentParser, cls=None, skip: tuple[str, ...] = ()) -> None:
    """One ``--field-name`` option per field of the frozen dataclass ``cls`` (default :class:`TrainConfig`; booleans
    also as ``--no-field-name``), each with its ``help`` and default, plus ``--config FILE`` (a JSON object of fields,
    or a checkpoint's ``config.json``: the options it was trained with). Options left out are not set on the parsed
    namespace; :func:`options_from` builds the config. ``skip``: fields the command sets otherwise."""
    cls = cls or TrainConfig
    group = parser.add_argument_group(f"training options ({cls.__name__}; every field)")
    group.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="start from these options: a JSON object of the fields below, or a checkpoint's "
        "config.json (the options it was trained with); options given here override them",
    )
    defaults = cls()
    for f in fields(cls):
        if f.name in skip:
            continue
        base, _, rest = f.type.partition(" | ")
        kind, optional = _TYPES[base], rest == "None"
        names = ["--" + f.name.replace("_", "-"), *f.metadata.get("aliases", ())]
        default = getattr(defaults, f.name)
        text = f"{f.metadata.get('help', '')} (default: {'none' if default is None else default})"
        if kind is bool:
            group.add_argument(
                *names, dest=f.name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=text
            )
            continue
        group.add_argument(
            *names,
            dest=f.name,
            type=_none_or(kind) if optional else kind,
            choices=f.metadata.get("choices"),
            default=argparse.SUPPRESS,
            help=text,
        )


def given_options(args: argparse.Namespace, cls=None) -> dict:
    """The fields of ``cls`` (default :class:`TrainConfig`) given on the command line: ``{field: value}``."""
    return {f.name: getattr(args, f.name) for f in fields(cls or TrainConfig) if hasattr(args, f.name)}


def options_from(args: argparse.Namespace, cls=None):
    """The config the command line asks for: ``cls``'s defaults, then ``--config FILE``, then the options given.
    Raises ValueError (with the reason) for an unknown field, a file that is not JSON or an
    impossible value."""
    cls = cls or TrainConfig
    values = {}
    if getattr(args, "config", None):
        try:
            loaded = json.loads(Path(args.config).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read --config {args.config}: {exc}") from None
        checkpoint = isinstance(loaded, dict) and isinstance(loaded.get("training"), dict)
        if checkpoint:  # a checkpoint's config.json: the options it was trained with (older ones have more keys)
            loaded = saved_config(loaded["training"].get("config") or {})
        if not isinstance(loaded, dict):
            raise ValueError(f"--config {args.config} must hold a JSON object of options")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(loaded) - names)
        if unknown and not checkpoint:
            raise ValueError(f"--config {args.config}: unknown options {', '.join(unknown)}")
        values = {k: v for k, v in loaded.items() if k in names}
        for f in fields(cls):
            if f.name in values and not _fits(values[f.name], f.type):
                raise ValueError(f"--config {args.config}: {f.name} must be {f.type}, got {values[f.name]!r}")
    try:
        return cls(**{**values, **given_options(args, cls)})
    except TypeError as exc:
        raise ValueError(str(exc)) from None
