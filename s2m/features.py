"""Feature cache: each dataset is embedded once per encoder; training and evaluation read the stored features.

A cache file ``{cache_dir}/{encoder}/{key}.npz`` holds ``features`` float32 ``(N, dim)`` and ``items`` (the paths
or texts, in order). The key hashes the encoder name, this module's ``FEATURE_VERSION``, the loading settings and
every item's content (file bytes or text), so a changed file or setting can never be served stale features.
"""

from __future__ import annotations

import hashlib
import logging
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .audio import (
    MUSIC_CLIP_SECONDS,
    Clip,
    load_audio,
    noise_settings,
    normalise_level,
    reduce_noise,
    song_window,
    trim,
)
from .data.records import Record
from .encoders import load as load_encoder
from .rooms import ROOMS_VERSION, Room, in_room

log = logging.getLogger(__name__)
FEATURE_VERSION = 2  # 2: silence judged after trimming; Whisper features without 30-s padding
DEFAULT_CACHE = Path(__file__).resolve().parents[1] / "data" / "features"


def _folder_name(encoder: str) -> str:
    """The cache folder of an encoder: its name, or for a folder or Hub id ("org/model", "/path/to/model") its last
    part and a short hash of the whole (never a path that leaves the cache)."""
    if "/" not in encoder and "\\" not in encoder and encoder not in ("", ".", ".."):
        return encoder
    return f"{Path(encoder).name or 'model'}-{hashlib.sha256(encoder.encode()).hexdigest()[:8]}"


def _key(encoder: str, items: Sequence[str], settings: str, files: bool) -> str:
    h = hashlib.sha256(f"{encoder}|{FEATURE_VERSION}|{settings}|{len(items)}".encode())
    for item in items:
        h.update(Path(item).read_bytes() if files else item.encode())
        h.update(b"\0")
    return h.hexdigest()[:20]


def cache_path(
    cache_dir: str | Path | None, folder: str, producer: str, items: Sequence[str], settings: str, files: bool = True
) -> Path | None:
    """Where the value computed by ``producer`` (an encoder's or a step's name) from ``items`` (file paths, hashed by
    their content, or texts) under ``settings`` (every other input that changes the value: weights, sample rate,
    decoding options, ...) is cached: ``{cache_dir}/{folder}/{key}.npz``, the key a hash of all of them and
    ``FEATURE_VERSION``. None when ``cache_dir`` is None (no cache)."""
    if cache_dir is None:
        return None
    return Path(cache_dir) / folder / f"{_key(producer, items, settings, files)}.npz"


def cached(
    path: Path | None,
    compute: Callable[[], dict[str, np.ndarray]],
    needs: Sequence[str],
    fits: Callable[[dict], bool] | None = None,
) -> dict:
    """The arrays stored at ``path`` (a :func:`cache_path`) when it holds every array named in ``needs`` (and they
    pass ``fits``, e.g. a shape check); otherwise ``compute()``'s, stored there atomically. ``path`` None: always
    computed. The one way s2m caches a value."""
    stored = _load(path, needs, fits)
    if stored is not None:
        return stored
    arrays = compute()
    if path is not None:
        save_cached(path, **arrays)
    return arrays


def load_for(
    encoder, path: str, level_norm: bool = False, start: float = 0.0, room: str = "", denoise: bool = False
) -> np.ndarray:
    """Decode one file for ``encoder``: speech with the query rules (trimmed, <= 30 s, optionally
    :func:`s2m.audio.reduce_noise` and :func:`s2m.audio.normalise_level`), heard through the simulated ``room`` if
    one is named (:mod:`s2m.rooms`); music as the 10-s clip from ``start`` (s)."""
    rate = encoder.sample_rate
    if encoder.modality == "music":
        return load_audio(
            path, rate, min_seconds=1.0, max_seconds=MUSIC_CLIP_SECONDS, offset_seconds=start, trim_silence=False
        ).samples
    if room:  # the whole take goes through the room, then the query rules as for a recording
        heard = in_room(load_audio(path, rate, trim_silence=False).samples, rate, Room.named(room), Path(path).name)
        return prepare_speech(load_audio((rate, heard), rate), rate, level_norm, denoise)
    return prepare_speech(load_audio(path, rate), rate, level_norm, denoise)


def prepare_speech(speech: Clip | np.ndarray, sample_rate: int, level_norm: bool, denoise: bool = False) -> np.ndarray:
    """What a speech encoder sees, float32 ``(T,)``: decoded speech (a :class:`Clip`, or its trimmed samples),
    with steady noise removed from the untrimmed recording and then trimmed (``denoise``), and level-normalised
    (``level_norm``) when the model was trained that way."""
    samples = speech.samples if isinstance(speech, Clip) else np.asarray(speech, np.float32)
    if denoise:
        whole = speech.whole if isinstance(speech, Clip) else samples
        samples = trim(reduce_noise(whole, sample_rate), sample_rate)
    return normalise_level(samples, sample_rate) if level_norm else samples


def embed_items(
    encoder_name: str,
    items: Sequence[str],
    cache_dir: str | Path | None = DEFAULT_CACHE,
    progress: bool = True,
    level_norm: bool = False,
    starts: Sequence[float] | None = None,
    rooms: Sequence[str] | None = None,
    denoise: bool = False,
) -> np.ndarray:
    """float32 ``(N, dim)`` features of audio paths (audio encoders) or texts (text encoders), cached on disk.

    ``cache_dir=None`` disables the cache. ``"a+b"`` names are cached per part and concatenated. ``starts``: music:
    where each path's 10-s clip starts (s; default the beginning). ``rooms``: speech: the simulated room each path
    is heard through ("": as recorded; :mod:`s2m.rooms`). ``level_norm``, ``denoise``: speech preparation
    (:func:`prepare_speech`).
    """
    if "+" in encoder_name:
        return np.concatenate(
            [
                embed_items(part, items, cache_dir, progress, level_norm, starts, rooms, denoise)
                for part in encoder_name.split("+")
            ],
            axis=1,
        )
    starts = [0.0] * len(items) if starts is None else [float(t) for t in starts]
    rooms = [""] * len(items) if rooms is None else list(rooms)
    encoder = load_encoder(encoder_name)
    text = encoder.modality == "text"
    level_norm = level_norm and encoder.modality == "speech"
    denoise = denoise and encoder.modality == "speech"
    items = list(items)
    settings = f"{encoder.sample_rate}|{encoder.dim}" + ("|level" if level_norm else "")
    settings += f"|weights {encoder.weights}" if encoder.weights else ""  # a Hub model: which snapshot
    settings += f"|denoise: {noise_settings()}" if denoise else ""
    if any(starts):  # clips cut from longer files (the key of whole-file clips is unchanged)
        settings += "|starts:" + ",".join(f"{t:.3f}" for t in starts)
    if any(rooms) and encoder.modality == "speech":
        settings += f"|rooms{ROOMS_VERSION}:" + ",".join(rooms)

    def compute() -> dict[str, np.ndarray]:
        if text:
            features = encoder.embed(items) if items else np.zeros((0, encoder.dim), np.float32)
        else:
            from tqdm import tqdm

            features = np.zeros((len(items), encoder.dim), np.float32)
            batches = tqdm(
                range(0, len(items), 16), desc=f"{encoder_name} features", disable=not progress, unit="batch"
            )
            for i in batches:
                chunk = zip(items[i : i + 16], starts[i : i + 16], rooms[i : i + 16], strict=True)
                clips = [load_for(encoder, p, level_norm, t, room, denoise) for p, t, room in chunk]
                features[i : i + len(clips)] = encoder.embed(clips)
        return {"features": features, "items": np.asarray(items, dtype=str)}

    path = cache_path(cache_dir, _folder_name(encoder_name), encoder_name, items, settings, files=not text)
    return cached(path, compute, ("features",))["features"]


def save_cached(path: Path, **arrays) -> None:
    """Write a cache file atomically: a crash never leaves a half-written one."""
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


def _load(path: Path | None, needs: Sequence[str], fits=None) -> dict[str, np.ndarray] | None:
    """Every array of a cache file, or None when there is none, it lacks one of ``needs`` or fails ``fits``; a damaged
    file is logged and removed, to be rebuilt (never loaded with pickle)."""
    if path is None or not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {name: f[name] for name in f.files}
        missing = [name for name in needs if name not in arrays]
        if missing:
            raise KeyError(f"no {', '.join(missing)}")
        if fits is not None and not fits(arrays):
            raise ValueError("arrays of the wrong shape")
        return arrays
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("cache file %s is damaged (%s): rebuilding it", path, exc)
        path.unlink(missing_ok=True)
        return None


def record_features(
    records: Sequence[Record],
    encoder_name: str,
    cache_dir: str | Path | None = DEFAULT_CACHE,
    level_norm: bool = False,
    denoise: bool = False,
) -> np.ndarray:
    """Features of records: their audio for audio encoders, their transcripts for text encoders (records heard in
    simulated rooms and records as recorded are cached apart, for text encoders too)."""
    from .encoders import modality_of

    # cached apart: adding copies in rooms never re-embeds the recordings, and a corpus is embedded once whichever
    # other corpora it is combined with
    for part_of in (lambda r: bool(r.room), lambda r: r.corpus):
        keys = [part_of(r) for r in records]
        if len(set(keys)) > 1:
            out = None
            for key in dict.fromkeys(keys):
                rows = np.flatnonzero(np.asarray([k == key for k in keys]))
                part = record_features([records[i] for i in rows], encoder_name, cache_dir, level_norm, denoise)
                out = np.empty((len(records), part.shape[1]), np.float32) if out is None else out
                out[rows] = part
            return out
    if modality_of(encoder_name) == "text":  # a text encoder reads the words (a concatenation or Hub id too)
        return embed_items(encoder_name, [r.transcript or "" for r in records], cache_dir)
    return embed_items(
        encoder_name,
        [r.path for r in records],
        cache_dir,
        level_norm=level_norm,
        starts=[r.start for r in records],
        rooms=[r.room for r in records],
        denoise=denoise,
    )


def playable(
    records: Sequence[Record], cache_dir: str | Path | None = DEFAULT_CACHE, progress: bool = True
) -> list[Record]:
    """The records whose audio a query would accept (:func:`s2m.audio.load_audio`: decodable, not silent, at least
    half a second of sound after trimming), so a corpus's too-short single words are left out rather than failing
    feature extraction; which ones pass is cached on disk by file content."""
    from tqdm import tqdm

    from .audio import AudioError

    paths = [r.path for r in records]

    def compute() -> dict[str, np.ndarray]:
        ok = np.zeros(len(paths), bool)
        for i, p in enumerate(tqdm(paths, desc="checking audio", disable=not progress, unit="file")):
            try:
                load_audio(p)
                ok[i] = True
            except AudioError:
                continue
        return {"ok": ok}

    ok = cached(cache_path(cache_dir, "playable", "playable", paths, "query rules"), compute, ("ok",))["ok"]
    return [r for r, good in zip(records, ok, strict=True) if good]


def music_windows(
    records: Sequence[Record], cache_dir: str | Path | None = DEFAULT_CACHE, progress: bool = True
) -> tuple[list[Record], list[float]]:
    """A user's songs as clips: (``records`` each starting at the 10-s window that stands for its file
    (:func:`s2m.audio.song_window`, streamed; 0 for a file no longer than a clip), each file's duration in s). Cached on
    disk by file content; unreadable files start at 0 with duration 0."""
    from dataclasses import replace

    from tqdm import tqdm

    from .audio import AudioError

    paths = [r.path for r in records]

    def compute() -> dict[str, np.ndarray]:
        out = np.zeros((len(paths), 2))
        for i, p in enumerate(tqdm(paths, desc="choosing each song's window", disable=not progress, unit="file")):
            try:  # streamed: a long or many-channel file is never decoded whole
                out[i] = song_window(p)
            except AudioError:
                continue
        return {"windows": out}

    path = cache_path(cache_dir, "windows", "windows", paths, f"{MUSIC_CLIP_SECONDS}|streamed, native rate")
    out = cached(path, compute, ("windows",))["windows"]
    windowed = [replace(r, start=float(w[0])) for r, w in zip(records, out, strict=True)]
    return windowed, [float(w[1]) for w in out]


def track_clips(tracks: Sequence, cache_dir: str | Path | None = DEFAULT_CACHE, progress: bool = True) -> list[Record]:
    """Listener-labelled :class:`s2m.data.tracks.Track` s as the clips the models see
    (:func:`s2m.data.tracks.track_records`): training tracks cut into consecutive 10-s clips over their duration,
    each held-out track as its loudest 10 s (:func:`music_windows`, the same window a user's song gets)."""
    from .data.tracks import track_records

    whole = [Record(t.path, t.mood, t.track_id, t.split) for t in tracks]
    windowed, durations = music_windows(whole, cache_dir, progress)
    return track_records(
        list(tracks), {r.path: d for r, d in zip(whole, durations, strict=True)}, {r.path: r.start for r in windowed}
    )


def asr_transcripts(
    records: Sequence[Record],
    model: str | None = None,
    cache_dir: str | Path | None = DEFAULT_CACHE,
    progress: bool = True,
) -> list[Record]:
    """``records`` with each transcript replaced by what the app's speech recogniser hears (cached like features);
    records without audio (typed sentences) keep theirs."""
    from dataclasses import replace

    heard = iter(_heard([r for r in records if r.path], model, cache_dir, progress)[0])
    return [replace(r, transcript=next(heard)) if r.path else r for r in records]


def asr_languages(
    records: Sequence[Record],
    model: str | None = None,
    cache_dir: str | Path | None = DEFAULT_CACHE,
    progress: bool = True,
) -> list[str]:
    """The language (ISO 639-1) the recogniser heard in each record with audio ("en" for an English-only one)."""
    return _heard([r for r in records if r.path], model, cache_dir, progress)[1]


def _heard(records: Sequence[Record], model: str | None, cache_dir, progress: bool) -> tuple[list[str], list[str]]:
    """(transcripts, languages) of records' audio by ``model`` (default the app's recogniser), cached on disk."""
    from tqdm import tqdm

    from .encoders import ASR_MODEL, recognise
    from .encoders.whisper import decoding_settings

    model = model or ASR_MODEL
    paths = [r.path for r in records]

    def compute() -> dict[str, np.ndarray]:
        texts, languages = [], []
        for p in tqdm(paths, desc=f"{model} transcripts", disable=not progress, unit="file"):
            clip = load_audio(p)
            heard = recognise(clip.samples, clip.sample_rate, model)
            texts.append(heard.text)
            languages.append(heard.language)
        return {
            "texts": np.asarray(texts, dtype=str),
            "languages": np.asarray(languages, dtype=str),
            "items": np.asarray(paths, dtype=str),
        }

    path = cache_path(cache_dir, f"asr-{model}", model, paths, f"asr, {decoding_settings()}")
    heard = cached(path, compute, ("texts", "languages"))
    return [str(t) for t in heard["texts"]], [str(x) for x in heard["languages"]]
