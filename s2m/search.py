"""Retrieval: a spoken or typed query -> the joint space -> the library ranked by cosine similarity.

:class:`Engine` loads every checkpoint in a folder and one music library (each model's view of it is a
:class:`s2m.index.LibraryIndex`) and answers :meth:`Engine.search`: the query's features, the model's reading,
the ranked clips and the query's place on the map.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import heads
from .audio import MUSIC_CLIP_SECONDS, SPEECH_MAX_SECONDS, SPEECH_SAMPLE_RATE, AudioError, Clip, load_audio
from .calibration import shift_speakers
from .config import saved_config
from .data.library import LIBRARY_DIR, ClipRow, read_metadata
from .data.readers import read_folder
from .data.records import DatasetError, Record
from .emotions import table_for, va, words
from .encoders import load as load_encoder
from .encoders import recognise
from .features import music_windows, prepare_speech, record_features
from .index import LibraryIndex

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = ROOT / "checkpoints"
INDEX_DIR = ROOT / "assets" / "index"  # committed index of the bundled library; user libraries go to data/index
MAX_TEXT_CHARS = 1000
PROTOTYPE_DISPLAY_TEMPERATURE = 0.1  # the reading shown for a model without a voice reader (softmax over cosines)
FRAMEWORKS = {
    "Triplet": "triplet",
    "Triplet + SP": "triplet_sp",
    "Triplet + EmoSim": "triplet_emosim",
    "Triplet + SP + EmoSim": "triplet_sp_emosim",
}


@dataclass
class Hit:
    """One retrieved clip. score: cosine in [-1, 1]. x, y: its map position. start: where the clip starts in its
    file, s (a song longer than a clip is represented, and played, by its loudest 10 s)."""

    clip_id: str
    path: str
    mood: str
    score: float
    valence: float
    arousal: float
    why: str
    x: float
    y: float
    start: float = 0.0
    window: bool = False  # the file is longer than the clip: only the clip from ``start`` is meant to be played
    title: str = ""
    artist: str = ""
    license: str = ""
    felt: str = ""  # what its listeners felt ("14 listeners: calmness 62 %, nostalgia 29 %"), when known
    detail: str = ""  # the numbers behind the ranking: rank, cosine, VA points and distance


@dataclass
class Result:
    """Everything the UI shows for one query; ``to_dict`` is the API's JSON."""

    modality: str
    framework: str
    transcript: str | None
    emotions: dict[str, float]  # speech label -> probability
    valence: float
    arousal: float
    x: float
    y: float
    hits: list[Hit]
    notices: list[str] = field(default_factory=list)
    language: str | None = None  # the language the recogniser heard (ISO 639-1); None for typed text or audio-only

    def to_dict(self) -> dict:
        """JSON-ready; each hit's server path becomes ``file`` (the clip's file name): no server paths leak, and
        clients that treat a ``path`` key as a file to download (gradio_client does) see plain data."""
        out = asdict(self)
        for hit in out["hits"]:
            hit["file"] = Path(hit.pop("path")).name
        return out


@dataclass(frozen=True)
class SpeechPoint:
    """A speech emotion on a model's map (x, y) and on the valence–arousal plane (valence, arousal); also one
    earlier query of a session (``label`` then names the speaker and what was read)."""

    label: str
    x: float
    y: float
    valence: float
    arousal: float


def query_problem(has_audio: bool, text: str | None, modality: str) -> str | None:
    """Why a query cannot run with this modality (a sentence for the user), or None when it can."""
    if not has_audio and not (text or "").strip():
        return "Nothing to search with: record or upload speech, or type a sentence."
    if not has_audio and modality != "text":
        return f"The {modality} model needs a recording: record or upload your voice, or choose the text model."
    return None


def _playable(path: str) -> bool:
    """Whether a user's file decodes to at least 1 s of sound (unreadable, empty or silent files are skipped)."""
    try:
        load_audio(path, min_seconds=1.0, max_seconds=MUSIC_CLIP_SECONDS, trim_silence=False)
    except AudioError:
        return False
    return True


READ_AS = {"audio": "Your voice sounded", "text": "Your words read as", "fusion": "Your voice and words read as"}


def plain_why(mood: str, heard: str, about: ClipRow | None = None, modality: str = "audio") -> str:
    """Why a clip was chosen, in a sentence a 12-year-old follows: what the music is (title and artist when known),
    what its listeners felt, and that it is the music nearest to how the query was read."""
    what = f"“{about.title}” by {about.artist}" if about and about.title and about.artist else "This clip"
    feel = (
        f"{about.felt[0].upper()}{about.felt[1:]}."
        if about and about.felt
        else f"It sounds {words(mood)}."
        if mood
        else ""
    )
    return (
        f"{what}. {feel} {READ_AS.get(modality, READ_AS['audio'])} {heard}: this is among the music that feels "
        "closest to that."
    ).replace("  ", " ")


def _clock(seconds: float) -> str:
    """``m:ss`` of a time in seconds."""
    whole = int(round(seconds))
    return f"{whole // 60}:{whole % 60:02d}"


class Engine:
    """Every checkpoint under ``checkpoints`` and one music library; :meth:`search` answers queries."""

    def __init__(
        self, checkpoints: Path = CHECKPOINTS, library: Path | str = LIBRARY_DIR, index_dir: Path | None = None
    ):
        self.checkpoints = Path(checkpoints)  # a session's own library is served by the same models
        folders = sorted(p for p in Path(checkpoints).iterdir() if (p / heads.CONFIG_FILE).exists())
        if not folders:
            raise FileNotFoundError(
                f"No checkpoints under {checkpoints}: train one with `python -m s2m evaluate "
                "--save-checkpoints checkpoints`"
            )
        self.models, self.unavailable = {}, []  # unavailable: checkpoints left out because they are damaged
        for folder in folders:
            try:
                model = heads.load(folder)
            except heads.CheckpointError as exc:
                log.error("checkpoint %s left out: %s", folder.name, exc)
                self.unavailable.append(folder.name)
                continue
            framework = model.config.training.get("config", {}).get("framework", model.config.framework)
            self.models[(model.config.modality, framework)] = model
        if not self.models:
            raise heads.CheckpointError(
                f"Every checkpoint under {checkpoints} is damaged: {', '.join(self.unavailable)}"
            )
        self.library = Path(library)
        self._references: dict[tuple, np.ndarray] = {}  # speech features of recent calibration references
        self.skipped: list[str] = []  # files of a user's folder that could not be read
        self.about: dict[str, ClipRow] = {}  # the library's metadata per clip path (title, artist, listeners)
        records, clip_ids, library_id, default_index = self._library_records()
        self.index_dir = Path(index_dir) if index_dir else (INDEX_DIR if default_index else ROOT / "data" / "index")
        self.song_seconds: dict[str, float] = {}  # a user's files: their length, s
        if not (self.library / "metadata.csv").exists():  # a user's songs: each stands, and plays, by its loudest 10 s
            records, seconds = music_windows(records, self.index_dir / "features")
            self.song_seconds = {r.path: t for r, t in zip(records, seconds, strict=True)}
        encoders = {m.config.encoders["music"] for m in self.models.values()}
        try:
            features = {name: record_features(records, name, self.index_dir / "features") for name in encoders}
        except AudioError:  # a missing or damaged clip: skip it (named in the log and in .skipped), keep the rest
            keep = [i for i, r in enumerate(records) if _playable(r.path)]
            self.skipped += [Path(records[i].path).name for i in range(len(records)) if i not in set(keep)]
            log.warning("skipped unreadable library clips: %s", ", ".join(self.skipped))
            if not keep:
                raise DatasetError(f"None of the library's {len(records)} clips could be read.") from None
            records, clip_ids = [records[i] for i in keep], [clip_ids[i] for i in keep]
            library_id += "|skipped:" + ",".join(self.skipped)
            features = {name: record_features(records, name, self.index_dir / "features") for name in encoders}
        about = [self.about.get(r.path) for r in records]  # listener-labelled clips sit at their own VA point
        points = [(a.valence, a.arousal) if a else None for a in about]

        def index(key, reference=None):
            model = self.models[key]
            return LibraryIndex(
                model,
                records,
                clip_ids,
                features[model.config.encoders["music"]],
                library_id,
                self.index_dir,
                reference,
                points,
            )

        ref = index(self.reference_key)  # one picture for every model: the others are aligned to this map
        self.indexes = {key: ref if key == self.reference_key else index(key, ref.coords) for key in self.models}

    def _library_records(self) -> tuple[list[Record], list[str], str, bool]:
        """(records, clip ids, an id of the library's content, whether it is the bundled library)."""
        if (self.library / "metadata.csv").exists():
            rows = read_metadata(self.library)
            root = self.library.resolve()
            for line, r in enumerate(rows, start=2):  # a library never reaches outside its own folder
                if not (self.library / r.path).resolve().is_relative_to(root):
                    raise DatasetError(
                        f"{self.library / 'metadata.csv'}, line {line}, column path: {r.path!r} "
                        "points outside the library folder."
                    )
            records = [Record(str(self.library / r.path), r.mood, r.group, r.split) for r in rows]
            self.about = {str(self.library / r.path): r for r in rows}
            ident = hashlib.sha256((self.library / "metadata.csv").read_bytes()).hexdigest()
            return records, [r.clip_id for r in rows], ident, self.library.resolve() == LIBRARY_DIR.resolve()
        try:
            records = read_folder(self.library, labelled=True)
        except DatasetError:  # files directly in the folder: moods will be predicted
            records = read_folder(self.library, labelled=False)
        known = table_for(next(iter(self.models.values())).config.va_table)
        unknown = sorted({r.label for r in records if r.label and r.label not in known})
        if unknown:
            moods = sorted(next(iter(self.models.values())).config.music_labels)
            raise DatasetError(
                f"Unknown mood folder(s) {', '.join(unknown)} in {self.library}: name each folder by a "
                f"mood the models know ({', '.join(moods)}) or another emotion word of the "
                "valence-arousal table (e.g. peaceful, melancholy, epic)."
            )
        usable = [r for r in records if _playable(r.path)]
        self.skipped = [Path(r.path).name for r in records if r not in usable]
        if not usable:
            raise DatasetError(f"None of the {len(records)} audio files under {self.library} could be read.")
        return usable, [r.group for r in usable], json.dumps([r.path for r in usable]), False

    @property
    def reference_key(self) -> tuple[str, str]:
        """The model whose library map the others are aligned to: the first modality's validation-best framework."""
        return self.modalities[0], self.best_framework(self.modalities[0])

    @property
    def modalities(self) -> list[str]:
        return sorted({m for m, _ in self.models}, key=["audio", "text", "fusion"].index)

    @property
    def frameworks(self) -> list[str]:
        return [
            f
            for f in ("triplet", "triplet_sp", "triplet_emosim", "triplet_sp_emosim")
            if any(k[1] == f for k in self.models)
        ]

    def best_framework(self, modality: str) -> str:
        """The framework whose checkpoint scored best on validation (mean of P@5 and nDCG@5), never on test."""

        def score(f):
            valid = self.models[(modality, f)].config.training.get("valid", {})
            return (valid.get("precision_at_k", 0) + valid.get("ndcg_at_k", 0)) / 2

        return max((f for m, f in self.models if m == modality), key=score)

    def model(self, modality: str, framework: str) -> heads.JointModel:
        try:
            return self.models[(modality, framework)]
        except KeyError:
            known = ", ".join(f"{m}/{f}" for m, f in self.models)
            raise ValueError(f"No model for modality {modality!r} and framework {framework!r}; have {known}") from None

    def _query_features(
        self,
        model: heads.JointModel,
        clip: Clip | None,
        text: str | None,
        reference: Clip | np.ndarray | None,
        spoken: str | None = None,
    ) -> tuple:
        """Speech-side input ``(1, speech_dim)`` for ``model``, the transcript used (if any) and the language the
        recogniser heard (None for typed text); ``spoken``: the language the speaker chose (None: detect)."""
        modality, transcript, language, parts = model.config.modality, None, None, []
        if modality in ("audio", "fusion"):
            name = model.config.encoders["audio"]
            trained = saved_config(model.config.training.get("config", {}))
            prep = bool(trained["level_norm"]), bool(trained["denoise"])
            audio = load_encoder(name).embed([prepare_speech(clip, SPEECH_SAMPLE_RATE, *prep)])
            if reference is not None and model.config.readout.reference_mean is not None:
                target = np.asarray(model.config.readout.reference_mean, np.float32)
                audio = shift_speakers(audio, self._reference_features(name, prep, reference), target)
            parts.append(audio)
        if modality in ("text", "fusion"):
            if not text and clip is not None:
                heard = recognise(clip.samples, clip.sample_rate, language=spoken)
                text, language = heard.text, heard.language
            if not text or not text.strip():
                raise AudioError("No words to read: type a sentence, or record one that contains speech.")
            transcript = text
            parts.append(load_encoder(model.config.encoders["text"]).embed([text]))
        return np.concatenate(parts, axis=1), transcript, language

    def _reference_features(self, encoder: str, prep: tuple[bool, bool], reference: Clip | np.ndarray) -> np.ndarray:
        """``(1, dim)`` features of a calibration reference (16-kHz speech: a :class:`Clip` or its samples) prepared
        as ``prep`` = (level_norm, denoise), embedded once per voice (the last 64 are kept)."""
        audio = reference.whole if isinstance(reference, Clip) else reference  # what a denoised reading starts from
        key = (encoder, prep, hashlib.sha1(np.ascontiguousarray(audio, np.float32).tobytes()).hexdigest())
        if key not in self._references:
            if len(self._references) >= 64:
                self._references.pop(next(iter(self._references)))
            speech = prepare_speech(reference, SPEECH_SAMPLE_RATE, *prep)
            self._references[key] = load_encoder(encoder).embed([speech])
        return self._references[key]

    def search(
        self,
        audio=None,
        text: str | None = None,
        modality: str = "audio",
        framework: str = "triplet_emosim",
        top_k: int = 5,
        reference: Clip | np.ndarray | None = None,
        language: str | None = None,
    ) -> Result:
        """Rank the library for a query. ``audio``: anything :func:`s2m.audio.load_audio` takes (or a decoded
        :class:`Clip`); ``text``: typed words (used instead of ASR for text/fusion); ``reference``: 16-kHz neutral
        speech of the same speaker (a decoded :class:`Clip`, or its float32 ``(T,)`` samples), which calibrates
        audio features to that voice (None: uncalibrated); ``language``: what the speaker speaks (ISO 639-1; None or
        "auto": the recogniser detects it). Raises ``AudioError`` / ``ValueError`` with a message for the user."""
        model = self.model(modality, framework)
        notices = []
        text = (text or "").strip() or None
        if text and len(text) > MAX_TEXT_CHARS:
            text = text[:MAX_TEXT_CHARS]
            notices.append(f"The text was cut to its first {MAX_TEXT_CHARS} characters.")
        clip = audio if isinstance(audio, Clip) or audio is None else load_audio(audio, max_seconds=SPEECH_MAX_SECONDS)
        if clip is not None and clip.notice():
            notices.append(clip.notice())
        problem = query_problem(clip is not None, text, modality)
        if problem:
            raise AudioError(problem)
        features, transcript, language = self._query_features(model, clip, text, reference, language)
        query = model.query(features)[0]
        index = self.indexes[(modality, framework)]
        emotions, (v, a) = self.emotions(model, features)
        scores = index.embeddings @ query
        order = np.argsort(-scores, kind="stable")[: max(1, int(top_k))]
        top_label = max(emotions, key=emotions.get)
        hits = []
        for rank, i in enumerate(order, start=1):
            r = index.records[i]
            cv, ca = (float(c) for c in index.va_points[i])  # where the plane draws it (its listeners' point)
            gap = float(np.hypot(cv - v, ca - a))
            detail = (
                f"#{rank} of {len(index.records)} clips by similarity ({scores[i]:.2f}); it lies at (V {cv:.2f}, "
                f"A {ca:.2f}), {gap:.2f} from your reading, {top_label} (V {v:.2f}, A {a:.2f}), on the "
                "valence–arousal plane"
            )
            about = self.about.get(r.path)
            why = plain_why(r.label, top_label, about, modality)
            seconds = self.song_seconds.get(r.path, 0.0)
            window = seconds > MUSIC_CLIP_SECONDS + 0.5
            if window:
                why += (
                    f" You hear {_clock(r.start)}–{_clock(min(seconds, r.start + MUSIC_CLIP_SECONDS))} of the "
                    f"{_clock(seconds)} song: its loudest 10 s, which stands for the whole song."
                )
            hits.append(
                Hit(
                    index.clip_ids[i],
                    r.path,
                    r.label,
                    float(scores[i]),
                    cv,
                    ca,
                    why,
                    float(index.coords[i, 0]),
                    float(index.coords[i, 1]),
                    r.start,
                    window,
                    *((about.title, about.artist, about.license, about.felt) if about else ()),
                    detail=detail,
                )
            )
        x, y = index.place(query)
        return Result(modality, framework, transcript, emotions, v, a, x, y, hits, notices, language)

    def speech_points(self, modality: str, framework: str) -> list[SpeechPoint]:
        """The speech side of the joint space on a model's map: where a voice read as each speech label is placed
        (:meth:`s2m.readout.Readout.targets`: the training music of its mood, or for older models the mean training
        embedding of that emotion's speech), put on the map as a query would be, with its VA point."""
        model = self.model(modality, framework)
        index = self.indexes[(modality, framework)]
        labels, protos = model.config.readout.prototypes()
        targets = model.config.readout.targets(labels, protos)
        return [
            SpeechPoint(label, *index.place(t), *va(label, model.config.va_table))
            for label, t in zip(labels, targets, strict=True)
        ]

    @staticmethod
    def emotions(model: heads.JointModel, features: np.ndarray, temperature: float | None = None):
        """How the model reads raw speech-side features ``(1, ·)`` (:meth:`JointModel.read` at ``temperature``;
        default: a voice reader's calibrated probabilities, a prototype reading's softmax at 0.1):
        (probability per speech label, the probability-weighted VA point of those labels)."""
        if temperature is None and model.voice_reader is None:
            temperature = PROTOTYPE_DISPLAY_TEMPERATURE
        read = model.read(features, temperature)
        if read is None:
            return {}, (float("nan"), float("nan"))
        labels, _, weights = read
        p = weights[0]
        point = np.asarray([va(lab, model.config.va_table) for lab in labels]).T @ p
        return {lab: float(q) for lab, q in zip(labels, p, strict=True)}, (float(point[0]), float(point[1]))
