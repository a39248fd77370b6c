"""Options of one training run, importable without torch (the command line's ``--help`` stays instant)."""

from __future__ import annotations

from dataclasses import dataclass

FRAMEWORKS = ("triplet", "triplet_sp", "triplet_emosim", "triplet_sp_emosim")


# Speech preparation that a checkpoint saved before the setting existed does not store: it was trained without it.
UNSTORED_SPEECH_SETTINGS = {"level_norm": False, "denoise": False}


def saved_config(trained: dict) -> dict:
    """A checkpoint's stored training options (``training["config"]``) with the speech settings it predates filled
    in as they were when it was trained (off), never with today's defaults."""
    return {**UNSTORED_SPEECH_SETTINGS, **trained}


@dataclass(frozen=True)
class TrainConfig:
    """Options of one training run; defaults follow the paper's command (λ 0.5, margin 0.4, batch 64, AdamW 1e-4,
    warm-up 20 of 100 epochs, cosine to 1e-9) and the encoders chosen on validation actors.

    level_norm: speech audio is scaled to a fixed active level before every speech encoder (recording level is not
    an emotion). denoise: steady background noise is removed from speech before the speech encoder
    (non-stationary spectral gating of the untrimmed recording, :func:`s2m.audio.reduce_noise`; a room's hum or
    hiss is not an emotion either). calibrate: train on speaker-relative audio features (each training speaker's
    neutral mean moved onto the training population's); the model is used uncalibrated unless a user records a
    neutral reference.
    speaker_shift: probability, per training item, of moving its audio features by the difference between two
    training speakers' neutral means (an augmentation that simulates an unseen voice). speech_hidden: hidden width
    of the speech head, at most its input width (None: the input width, as in the paper; the 3,584-d layer-stacked
    Whisper features need a narrower one).
    placement: temperature τ with which a query is placed at a softmax mix of per-label targets
    (:meth:`s2m.readout.Readout.place`); None places it at its projection, as in the paper. place_at: those
    targets: "music" (each speech label's VA-nearest mood among the training music, at that mood's mean training
    embedding) or "speech" (the speech-label prototypes: where the training speech of that emotion lies).
    reader_encoder: the text encoder of a late-fusion model's text reader (the words of a transcript in any language);
    ``text_encoder`` gives the text models' and the label-word tags' features.
    members: models trained from seeds ``seed``, ``seed + 1000``, … and combined into one ensemble checkpoint
    (their scores averaged; :class:`s2m.heads.Members`); 1 trains a single model, as in the paper. 3 was chosen
    on validation actors (one seed's music head decided much of a single model's score; README "Ensembles").
    augment_rooms: audio and fusion: train also on this many copies of each training speaker, each copy a new
    speaker heard through its own simulated room and microphone (:mod:`s2m.rooms`; 0: as recorded only). A copy is
    calibrated with its studio twin's neutral voice, so calibrated training removes the speaker but keeps the room.
    fusion: how a fusion model combines audio and words: "late" (the audio head's reading times the evidence of a
    linear text reader, :meth:`s2m.heads.JointModel.read`) or "early" (one head over audio ‖ text, the paper's).
    music_triplet: weight of a music-side triplet term added to the loss: training clips of one mood are pulled
    together and clips of other moods pushed apart, so that held-out music of a mood lies nearer that mood's mean
    training embedding, where a query read as a matching emotion is placed (0: the paper's loss alone; 1 was chosen
    on validation actors and validation sentences, README "Choosing the encoders").
    text_weight: late fusion: the power to which the words' evidence is raised before it multiplies the audio
    reading (1: Bayes' rule for two calibrated, independent readings). More weight lets emotional words overrule an
    unfamiliar voice, but it also amplifies what the reader learned from ASR slips in emotionless sentences; on
    RAVDESS validation actors 6 scored below 1 (README, "Choosing the encoders"), so 1 stays.
    """

    modality: str = "audio"
    framework: str = "triplet_emosim"
    ranksim: bool = False
    lam: float = 0.5
    margin: float = 0.4
    batch_size: int = 64
    lr: float = 1e-4
    weight_decay: float = 0.01
    epochs: int = 100
    warmup_epochs: int = 20
    min_lr: float = 1e-9
    patience: int = 10
    dropout: float = 0.1
    seed: int = 0
    va_table: str = "lexicon"
    audio_encoder: str = "whisper-base-layers"
    text_encoder: str = "minilm"
    reader_encoder: str = "e5-small"
    music_encoder: str = "mood-dsp"
    level_norm: bool = True
    denoise: bool = True
    calibrate: bool = True
    speaker_shift: float = 0.0
    speech_hidden: int | None = 512
    placement: float | None = 0.02
    place_at: str = "music"
    fusion: str = "late"
    text_weight: float = 1.0
    members: int = 3
    augment_rooms: int = 0
    music_triplet: float = 1.0

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
        if self.place_at not in ("speech", "music"):
            raise ValueError(f"place_at must be 'speech' or 'music', got {self.place_at!r}")
        if self.fusion not in ("late", "early"):
            raise ValueError(f"fusion must be 'late' or 'early', got {self.fusion!r}")

    @property
    def label(self) -> str:
        """How a run is named in checkpoints and result tables: the framework, plus "+ranksim" when RankSim
        replaces the EmoSim regulariser (the only frameworks it can change)."""
        return self.framework + ("+ranksim" if self.ranksim and "emosim" in self.framework else "")
