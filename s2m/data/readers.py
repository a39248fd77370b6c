"""Readers for the paper's datasets and for any folder-per-label collection; all return :class:`Record` lists.

Each reader validates what it finds and raises :class:`DatasetError` naming the offending file.
"""

from __future__ import annotations

import csv
import logging
import re
from pathlib import Path

from ..emotions import HIKIA_LABELS, RAVDESS_LABELS
from .records import SPLITS, DatasetError, Record

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".opus", ".mp3"}
MAX_FILES, MAX_FILE_BYTES = 5000, 200 << 20  # a music folder: at most this many files, each at most 200 MB
RAVDESS_STATEMENTS = {1: "Kids are talking by the door.", 2: "Dogs are sitting by the door."}
log = logging.getLogger(__name__)
_RAVDESS_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")


def ravdess_split(actor: int) -> str:
    """RAVDESS actor split as the reference uses it: actors 1–19 train, 20–22 valid, 23–24 test."""
    return "train" if actor <= 19 else "valid" if actor <= 22 else "test"


def read_ravdess(root: str | Path) -> list[Record]:
    """RAVDESS (or the s2m corpus, which uses its naming) under ``root``: speech files only, actor split.

    ``MM-VV-EE-II-SS-RR-AA``: modality, vocal channel (01 speech, 02 song: skipped), emotion 01–08, intensity,
    statement, repetition, actor 01–24. Transcripts: RAVDESS's two statements, or ``transcripts.csv`` (statement,
    text) in ``root`` when present.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"RAVDESS folder not found: {root}")
    statements = dict(RAVDESS_STATEMENTS)
    table = root / "transcripts.csv"
    if table.exists():
        with table.open(newline="") as f:
            statements.update({int(r["statement"]): r["text"] for r in csv.DictReader(f)})
    records = []
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES):
        m = _RAVDESS_NAME.match(path.stem)
        if not m:
            raise DatasetError(
                f"{path}: not a RAVDESS file name (expected MM-VV-EE-II-SS-RR-AA, e.g. 03-01-05-02-01-01-12.wav)"
            )
        modality, channel, emotion, intensity, statement, _, actor = map(int, m.groups())
        if channel == 2:
            continue  # song
        if channel != 1 or not 1 <= emotion <= 8 or intensity not in (1, 2) or not 1 <= actor <= 99:
            raise DatasetError(
                f"{path}: field out of range (channel {channel}, emotion {emotion}, "
                f"intensity {intensity}, actor {actor})"
            )
        records.append(
            Record(
                str(path),
                RAVDESS_LABELS[emotion - 1],
                f"actor{actor:02d}",
                ravdess_split(actor),
                statements.get(statement),
            )
        )
    if not records:
        raise DatasetError(f"No RAVDESS speech files under {root}")
    return records


IEMOCAP_CODES = {
    "ang": "angry",
    "hap": "happy",
    "neu": "neutral",
    "sad": "sad",
    "exc": "excitement",
    "fru": "frustration",
}
_IEMOCAP_LINE = re.compile(r"^\[[\d.]+ - [\d.]+\]\s+(\S+)\s+(\w+)\s+\[")
_IEMOCAP_TEXT = re.compile(r"^(\S+) \[[\d.]+-[\d.]+\]: (.*)$")


def read_iemocap(root: str | Path, valid_fraction: float = 0.1, seed: int = 42) -> list[Record]:
    """IEMOCAP ``Session1..5``: 6 classes (ang, hap, neu, sad, exc, fru; others dropped), Session 5 = test.

    Validation is a per-label random ``valid_fraction`` of **Sessions 1–4 only** (the reference drew it from all
    sessions, leaking the test session into training, method.md §7.10). Transcripts come from ``transcriptions``.
    """
    import numpy as np

    root = Path(root)
    sessions = sorted(root.glob("Session[1-5]"))
    if not sessions:
        raise DatasetError(f"No IEMOCAP Session1..5 folders under {root}")
    records = []
    for session in sessions:
        texts = {}
        for f in sorted((session / "dialog" / "transcriptions").glob("*.txt")):
            for line in f.read_text(errors="replace").splitlines():
                if m := _IEMOCAP_TEXT.match(line.strip()):
                    texts[m.group(1)] = m.group(2)
        evaluations = sorted((session / "dialog" / "EmoEvaluation").glob("*.txt"))
        if not evaluations:
            raise DatasetError(f"{session}: no dialog/EmoEvaluation/*.txt files")
        for f in evaluations:
            for line in f.read_text(errors="replace").splitlines():
                m = _IEMOCAP_LINE.match(line)
                if not m or m.group(2) not in IEMOCAP_CODES:
                    continue
                utt = m.group(1)
                wav = session / "sentences" / "wav" / utt.rsplit("_", 1)[0] / f"{utt}.wav"
                if not wav.exists():
                    raise DatasetError(f"{f}: lists {utt}, but {wav} is missing")
                split = "test" if session.name == "Session5" else "train"
                records.append(
                    Record(str(wav), IEMOCAP_CODES[m.group(2)], f"{session.name}_{utt[5]}", split, texts.get(utt))
                )
    rng = np.random.default_rng(seed)
    out = []
    for r in records:
        out.append(
            r if r.split == "test" or rng.random() >= valid_fraction else Record(**{**r.__dict__, "split": "valid"})
        )
    return out


def read_hikia(root: str | Path) -> list[Record]:
    """Hi,KIA from its split files ``split/{train,valid,test}.csv`` (columns: file name + one-hot angry, sad,
    happy, neutral, as the reference expects) with audio under ``root``; the wake-up word is the transcript."""
    root = Path(root)
    records = []
    for split in SPLITS:
        table = root / "split" / f"{split}.csv"
        if not table.exists():
            raise DatasetError(f"Hi,KIA split file missing: {table}")
        with table.open(newline="") as f:
            for row in csv.DictReader(f):
                name = row.get("fname") or row.get("file") or next(iter(row.values()))
                hot = [lab for lab in HIKIA_LABELS if row.get(lab, "0") not in ("0", "0.0", "")]
                if len(hot) != 1:
                    raise DatasetError(f"{table}: row {name!r} needs exactly one of {HIKIA_LABELS} set")
                path = next((p for p in (root / name, root / "wav" / name, root / f"{name}.wav") if p.exists()), None)
                if path is None:
                    raise DatasetError(f"{table}: audio file {name!r} not found under {root}")
                speaker = Path(name).stem.split("_")[0]
                records.append(Record(str(path), hot[0], speaker, split, "hi, kia"))
    return records


def read_audioset_csv(csv_path: str | Path, audio_root: str | Path | None = None) -> list[Record]:
    """AudioSet mood subset from a CSV with columns ``file, label, group`` (and optional ``split``).

    ``group`` is the source video/track, so clips of one source stay in one split; without ``split`` the reader
    assigns one test and one valid group per label by :func:`s2m.data.library.split_groups` (seed 0).
    """
    from .library import split_groups

    csv_path = Path(csv_path)
    root = Path(audio_root) if audio_root else csv_path.parent
    with csv_path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    missing = {"file", "label", "group"} - set(rows[0] if rows else {})
    if missing:
        raise DatasetError(f"{csv_path}: missing column(s) {sorted(missing)}")
    for r in rows:
        if not (root / r["file"]).exists():
            raise DatasetError(f"{csv_path}: audio file {r['file']!r} not found under {root}")
        if r.get("split") and r["split"] not in SPLITS:
            raise DatasetError(f"{csv_path}: unknown split {r['split']!r} for {r['file']!r}")
    groups: dict[str, list[str]] = {}
    for r in rows:
        groups.setdefault(r["label"], []).append(r["group"])
    auto = split_groups({k: sorted(set(v)) for k, v in groups.items()}, seed=0)
    return [Record(str(root / r["file"]), r["label"], r["group"], r.get("split") or auto[r["group"]]) for r in rows]


def _inside(path: Path, root: Path) -> bool:
    """Whether ``path`` really lies under ``root``: its resolved path (every symbolic link and ``..`` followed) is
    inside the resolved root, and the file has no second name elsewhere (a hard link, seen as a link count above 1)."""
    real = path.resolve()
    return real.is_relative_to(root.resolve()) and real.stat().st_nlink == 1


def read_folder(root: str | Path, labelled: bool = True) -> list[Record]:
    """Audio under ``root``; with ``labelled`` each first-level folder name is the label (folder-per-mood).

    Each file is its own group; splits are all "test" (a user's folder is a gallery, not training data).
    Unlabelled files get the label "" (to be predicted). Files whose real path lies outside ``root`` (symbolic links,
    ``..``) or that are hard-linked elsewhere are skipped, and so are files over ``MAX_FILE_BYTES``.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"Folder not found: {root}")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    outside = [p for p in files if not _inside(p, root)]
    if outside:  # a link (symbolic, or hard where the count shows it) may lead to a file the folder's owner never meant
        log.warning(
            "skipped %d file(s) that lead outside %s or are linked elsewhere: %s",
            len(outside),
            root.name,
            ", ".join(p.name for p in outside[:10]),
        )
        files = [p for p in files if p not in outside]
    big = [p.name for p in files if p.stat().st_size > MAX_FILE_BYTES]
    files = [p for p in files if p.stat().st_size <= MAX_FILE_BYTES]  # device files and huge files are never read
    if len(files) > MAX_FILES:
        raise DatasetError(f"{root} holds {len(files)} audio files; at most {MAX_FILES} are indexed at once.")
    if big:
        log.warning("skipped files over %d MB: %s", MAX_FILE_BYTES >> 20, ", ".join(big[:10]))
    if not files:
        raise DatasetError(f"No audio files ({', '.join(sorted(AUDIO_SUFFIXES))}) under {root}")
    records = []
    for p in files:
        rel = p.relative_to(root)
        if labelled and len(rel.parts) < 2:
            raise DatasetError(f"{p}: a labelled folder needs one sub-folder per label (e.g. {root}/happy/a.mp3)")
        records.append(Record(str(p), rel.parts[0].lower() if labelled else "", str(rel.with_suffix("")), "test"))
    return records


def read_speech_csv(csv_path: str | Path, table: str = "lexicon") -> list[Record]:
    """Any labelled speech set from a CSV with columns ``path, label, speaker`` (and optional ``text``, ``split``).

    Paths are relative to the CSV's folder (or absolute). Every label must be a word the VA table knows (e.g.
    bored, excited, frustrated); unknown labels are refused in one message that names them all. Without a
    ``split`` column every row is a test item: a saved model's prototypes come from its checkpoint.
    """
    from ..emotions import table_for

    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise DatasetError(f"Speech CSV not found: {csv_path}")
    with csv_path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = {"path", "label", "speaker"} - set(reader.fieldnames or ())
        if missing:
            raise DatasetError(
                f"{csv_path}: missing column(s) {', '.join(sorted(missing))} "
                "(expected path,label,speaker[,text][,split])"
            )
        rows = list(reader)
    if not rows:
        raise DatasetError(f"{csv_path}: no rows")
    known = table_for(table)
    unknown = sorted({r["label"].strip().lower() for r in rows} - set(known))
    if unknown:
        raise DatasetError(
            f"{csv_path}: label(s) {', '.join(unknown)} are not in the {table} valence-arousal table; "
            f"use words it knows, e.g. {', '.join(sorted(known)[:12])}, ..."
        )
    records = []
    for line, r in enumerate(rows, start=2):
        path = Path(r["path"]) if Path(r["path"]).is_absolute() else csv_path.parent / r["path"]
        if not path.is_file():
            raise DatasetError(f"{csv_path}, line {line}: audio file {r['path']!r} not found")
        split = (r.get("split") or "test").strip()
        if split not in SPLITS:
            raise DatasetError(f"{csv_path}, line {line}: unknown split {split!r} (expected one of {SPLITS})")
        records.append(
            Record(
                str(path),
                r["label"].strip().lower(),
                r["speaker"].strip(),
                split,
                (r.get("text") or "").strip() or None,
            )
        )
    return records


SENTENCES_CSV = Path(__file__).resolve().parents[2] / "assets" / "sentences" / "sentences.csv"
LANGUAGES = {"en": "English", "ko": "Korean", "de": "German", "es": "Spanish"}


def read_sentences(csv_path: str | Path = SENTENCES_CSV, languages: tuple[str, ...] = ("en",)) -> list[Record]:
    """The project's emotion sentences (``assets/sentences``) as text-only records (``path`` empty, the sentence
    as ``transcript``): the train split in English and in those of ``languages`` it has been translated into, the
    validation and test splits once per language in ``languages`` (each row's group is ``<id>-<language>``; a
    sentence and its translations share a split). Columns: id, emotion, split, en, and one column per translated
    language."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise DatasetError(f"Sentence set not found: {csv_path}")
    with csv_path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    unknown = [lang for lang in languages if not rows or lang not in rows[0]]
    if unknown:
        raise DatasetError(f"{csv_path}: no column for language(s) {', '.join(unknown)}")
    records = []
    for line, r in enumerate(rows, start=2):
        if r["split"] not in SPLITS or r["emotion"] not in RAVDESS_LABELS:
            raise DatasetError(f"{csv_path}, line {line}: unknown split or emotion ({r['split']!r}, {r['emotion']!r})")
        for lang in dict.fromkeys(("en", *languages)) if r["split"] == "train" else languages:
            text = (r.get(lang) or "").strip()
            if not text and r["split"] == "train":
                continue  # a training sentence is used in English and in the languages it was translated into
            if not text:
                raise DatasetError(f"{csv_path}, line {line}: no {lang} text for a {r['split']} sentence")
            records.append(Record("", r["emotion"], f"{r['id']}-{lang}", r["split"], text))
    return records
