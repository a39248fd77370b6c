"""Music labelled by its listeners: a CSV of tracks (Emotify's ``tracks.csv`` layout or any like it), the rule from
listeners' marks to a mood and a valence-arousal position, a split by track, and the 10-s clips the models see.

A music CSV has a ``path`` column (relative to the CSV, or absolute) and one way of saying how the music feels:
- the nine GEMS share columns (``amazement`` ... ``sadness``: the share of listeners, 0-1, who marked that emotion,
  as Emotify publishes them): the track's **mood** is its dominant GEMS emotion (the one most listeners marked;
  ties go to the first in GEMS order) and its **position** the share-weighted mean of the GEMS emotions' VA points
  (:data:`s2m.emotions.GEMS`);
- or ``valence,arousal`` (each 0-1): the position as given, the mood the VA-nearest GEMS emotion;
- or ``mood`` (or ``label``): a word of the VA table, its point the position.
Optional columns: ``track_id`` (else the path names the track), ``split``, ``genre``, ``artist``, ``title``,
``album``, ``listeners``, ``license``. Without ``split``, tracks are split by :func:`stratified_split`.

Relevance for the metrics (:func:`s2m.metrics.retrieval_targets`): a track with shares is relevant to a query when
at least a third of its listeners marked the query emotion's VA-nearest GEMS emotion (P@5, MRR), its gain for nDCG@5
the VA closeness of that emotion to what its listeners marked; a track labelled by a position or a word is relevant
when its mood is the query emotion's VA-nearest mood among the gallery's moods, its gain ``max(0, 1 - VA
distance)`` between the two words' points.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..emotions import GEMS, GEMS_LABELS, nearest_label, table_for, words
from .records import SPLITS, DatasetError, Record

EMOTIFY_LICENSE = "CC BY-NC-SA (Magnatune, via Emotify)"
VALID_EVERY = 5  # stratified split: of every 5 tracks in a stratum's order, the 4th validates and the 5th tests


@dataclass(frozen=True)
class Track:
    """One listener-labelled track. shares: ``{GEMS emotion: share of listeners}`` (empty when the CSV gives a
    position or a mood instead); valence, arousal in [0, 1]."""

    path: str
    track_id: str
    mood: str
    valence: float
    arousal: float
    split: str
    genre: str = ""
    artist: str = ""
    title: str = ""
    album: str = ""
    listeners: int = 0
    license: str = ""
    shares: tuple[tuple[str, float], ...] = ()

    def share_values(self) -> tuple[float, ...]:
        """The listeners' shares in GEMS order (() for a track labelled by a position or a word)."""
        return tuple(v for _, v in self.shares)

    def felt(self, top: int = 2) -> str:
        """What listeners felt, in words: "14 listeners: calmness 62 %, nostalgia 29 %" ("" without shares)."""
        if not self.shares:
            return ""
        best = sorted(self.shares, key=lambda kv: -kv[1])[:top]
        who = f"{self.listeners} listeners" if self.listeners else "listeners"
        return f"{who}: " + ", ".join(f"{words(k)} {round(100 * v)} %" for k, v in best)


def gems_position(shares: np.ndarray) -> tuple[float, float]:
    """float ``(9,)`` listener shares in GEMS order -> (valence, arousal): the share-weighted mean of the GEMS
    points (the centre of the plane, (0.5, 0.5), when nobody marked anything)."""
    shares = np.clip(np.asarray(shares, float), 0, None)
    if shares.sum() <= 0:
        return 0.5, 0.5
    points = np.asarray([GEMS[g] for g in GEMS_LABELS])
    v, a = (shares / shares.sum()) @ points
    return round(float(v), 3), round(float(a), 3)


def stratified_split(strata: list[str], seed: int = 0) -> list[str]:
    """A split per item, balanced over ``strata`` (e.g. "genre/mood"): items ordered stratum by stratum (sorted),
    shuffled within each by ``seed``; of every ``VALID_EVERY`` consecutive items the 4th is "valid", the 5th
    "test", the rest "train" (60/20/20 overall and within every large stratum)."""
    rng = np.random.default_rng(seed)
    order = []
    for stratum in sorted(set(strata)):
        members = [i for i, s in enumerate(strata) if s == stratum]
        order += [members[j] for j in rng.permutation(len(members))]
    out = [""] * len(strata)
    for position, i in enumerate(order):
        k = position % VALID_EVERY
        out[i] = "valid" if k == VALID_EVERY - 2 else "test" if k == VALID_EVERY - 1 else "train"
    return out


def _number(row: dict, column: str, where: str) -> float:
    try:
        value = float(row[column])
    except (TypeError, ValueError):
        raise DatasetError(f"{where}, column {column}: {row[column]!r} is not a number") from None
    if not 0 <= value <= 1:
        raise DatasetError(f"{where}, column {column}: {value} is outside 0-1")
    return value


def _csv_rows(csv_path: Path, what: str) -> tuple[set[str], list[dict[str, str]]]:
    """(column names, rows as dicts) of a CSV (a BOM is ignored); :class:`DatasetError` "``what`` not found" when
    the file is missing."""
    if not csv_path.is_file():
        raise DatasetError(f"{what} not found: {csv_path}")
    with csv_path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        return set(reader.fieldnames or ()), list(reader)


def read_music_csv(csv_path: str | Path, table: str = "lexicon") -> list[Track]:
    """The tracks of a music CSV (module docstring); every file must exist. Raises :class:`DatasetError` naming
    the file, line and column of the first problem."""
    csv_path = Path(csv_path)
    columns, rows = _csv_rows(csv_path, "Music CSV")
    if "path" not in columns:
        raise DatasetError(
            f"{csv_path}: no 'path' column (expected path and the nine GEMS shares, or valence,arousal, or mood)"
        )
    kind = (
        "shares"
        if set(GEMS_LABELS) <= columns
        else "va"
        if {"valence", "arousal"} <= columns
        else "mood"
        if "mood" in columns
        else "label"
        if "label" in columns
        else None
    )
    if kind is None:
        raise DatasetError(
            f"{csv_path}: say how each track feels: the nine GEMS share columns "
            f"({', '.join(GEMS_LABELS)}), or valence,arousal, or mood"
        )
    if not rows:
        raise DatasetError(f"{csv_path}: no rows")
    known = table_for(table)
    tracks, strata = [], []
    for line, r in enumerate(rows, start=2):
        where = f"{csv_path}, line {line}"
        path = Path(r["path"]) if Path(r["path"]).is_absolute() else csv_path.parent / r["path"]
        if not path.is_file():
            raise DatasetError(f"{where}: audio file {r['path']!r} not found")
        shares: tuple[tuple[str, float], ...] = ()
        if kind == "shares":
            values = np.asarray([_number(r, g, where) for g in GEMS_LABELS])
            shares = tuple(zip(GEMS_LABELS, (float(v) for v in values), strict=True))
            mood, (v, a) = GEMS_LABELS[int(np.argmax(values))], gems_position(values)
        elif kind == "va":
            v, a = _number(r, "valence", where), _number(r, "arousal", where)
            mood = GEMS_LABELS[int(np.argmin([np.hypot(v - GEMS[g][0], a - GEMS[g][1]) for g in GEMS_LABELS]))]
        else:
            mood = r[kind].strip().lower()
            if mood not in known:
                raise DatasetError(
                    f"{where}: mood {mood!r} is not in the {table} valence-arousal table; use "
                    f"words it knows, e.g. {', '.join(sorted(known)[:12])}, ..."
                )
            v, a = known[mood]
        split = (r.get("split") or "").strip()
        if split and split not in SPLITS:
            raise DatasetError(f"{where}: unknown split {split!r} (expected one of {SPLITS})")
        listeners = (r.get("listeners") or "0").strip()
        tracks.append(
            Track(
                str(path),
                (r.get("track_id") or "").strip() or r["path"],
                mood,
                v,
                a,
                split,
                (r.get("genre") or "").strip(),
                (r.get("artist") or "").strip(),
                (r.get("title") or "").strip(),
                (r.get("album") or "").strip(),
                int(listeners) if listeners.isdigit() else 0,
                (r.get("license") or "").strip(),
                shares,
            )
        )
        strata.append(f"{tracks[-1].genre}/{mood}")
    if any(not t.split for t in tracks):
        auto = stratified_split(strata)
        tracks = [t if t.split else replace(t, split=s) for t, s in zip(tracks, auto, strict=True)]
    return tracks


def read_listener_marks(csv_path: str | Path) -> dict[str, np.ndarray]:
    """Each listener's marks, as Emotify's ``annotations.csv`` gives them: one row per listener and track, a track
    column (``track id`` or ``track_id``, as the tracks CSV names the track) and the nine GEMS columns, 1 where that
    listener marked the emotion; other columns are ignored. Returns ``{track id: int (listeners, 9)}`` (GEMS order).
    Raises :class:`DatasetError` naming the file and line of the first problem."""
    csv_path = Path(csv_path)
    columns, rows = _csv_rows(csv_path, "Listener annotations")
    key = "track id" if "track id" in columns else "track_id"
    if key not in columns or not set(GEMS_LABELS) <= columns:
        raise DatasetError(f"{csv_path}: expected a 'track id' column and the nine GEMS columns")
    marks: dict[str, list[list[int]]] = {}
    for line, r in enumerate(rows, start=2):
        row = [_number(r, g, f"{csv_path}, line {line}") for g in GEMS_LABELS]
        marks.setdefault(r[key].strip(), []).append([int(v > 0) for v in row])
    return {track: np.asarray(rows, dtype=np.int64) for track, rows in marks.items()}


def is_emotify(csv_path: str | Path) -> bool:
    """Whether a music CSV is Emotify's (its README names it), so its licence can be filled in."""
    readme = Path(csv_path).parent / "README.md"
    return readme.is_file() and "Emotify" in readme.read_text(errors="replace")[:2000]


def track_records(
    tracks: list[Track], durations: dict[str, float] | None = None, windows: dict[str, float] | None = None
) -> list[Record]:
    """The clips the models see, as :class:`Record` s (group = track id): a training track gives every
    consecutive 10-s clip of its first ``durations[path]`` seconds (one clip from 0 when unknown); a held-out
    (valid/test) track gives one clip, the window that stands for it (``windows[path]``, s; default 0)."""
    from .library import clip_starts

    out = []
    for t in tracks:
        if t.split == "train":
            starts = clip_starts((durations or {}).get(t.path, 0.0), held_out=False) or [0.0]
        else:
            starts = [(windows or {}).get(t.path, 0.0)]
        out += [Record(t.path, t.mood, t.track_id, t.split, start=s, shares=t.share_values()) for s in starts]
    return out


def nearest_mood(label: str, tracks: list[Track], table: str = "lexicon") -> str:
    """The gallery mood a query of ``label`` is relevant to (the binary rule of the module docstring)."""
    return nearest_label(label, list(dict.fromkeys(t.mood for t in tracks)), table)
