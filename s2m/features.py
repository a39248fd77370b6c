"""Feature cache: each dataset is embedded once per encoder; training and evaluation read the stored features.

A cache file ``{cache_dir}/{encoder}/{key}.npz`` holds ``features`` float32 ``(N, dim)`` and ``items`` (the paths
or texts, in order). The key hashes the encoder name, this module's ``FEATURE_VERSION``, the loading settings and
every item's content (file bytes or text), so a changed file or setting can never be served stale features.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .audio import MUSIC_CLIP_SECONDS, load_audio
from .data.records import Record
from .encoders import load as load_encoder

FEATURE_VERSION = 1
DEFAULT_CACHE = Path(__file__).resolve().parents[1] / "data" / "features"


def _key(encoder: str, items: Sequence[str], settings: str, files: bool) -> str:
    h = hashlib.sha256(f"{encoder}|{FEATURE_VERSION}|{settings}|{len(items)}".encode())
    for item in items:
        h.update(Path(item).read_bytes() if files else item.encode())
        h.update(b"\0")
    return h.hexdigest()[:20]


def load_for(encoder, path: str) -> np.ndarray:
    """Decode one file for ``encoder``: speech with the query rules (trimmed, <= 30 s); music as a 10-s clip."""
    if encoder.modality == "music":
        return load_audio(path, encoder.sample_rate, min_seconds=1.0, max_seconds=MUSIC_CLIP_SECONDS,
                          trim_silence=False).samples  # fmt: skip
    return load_audio(path, encoder.sample_rate).samples


def embed_items(
    encoder_name: str, items: Sequence[str], cache_dir: str | Path | None = DEFAULT_CACHE, progress: bool = True
) -> np.ndarray:
    """float32 ``(N, dim)`` features of audio paths (audio encoders) or texts (text encoders), cached on disk.

    ``cache_dir=None`` disables the cache.
    """
    encoder = load_encoder(encoder_name)
    text = encoder.modality == "text"
    items = list(items)
    path = None
    if cache_dir is not None:
        key = _key(encoder_name, items, f"{encoder.sample_rate}|{encoder.dim}", files=not text)
        path = Path(cache_dir) / encoder_name / f"{key}.npz"
        if path.exists():
            with np.load(path, allow_pickle=False) as f:
                return f["features"]
    if text:
        features = encoder.embed(items) if items else np.zeros((0, encoder.dim), np.float32)
    else:
        from tqdm import tqdm

        features = np.zeros((len(items), encoder.dim), np.float32)
        for i in tqdm(range(0, len(items), 16), desc=f"{encoder_name} features", disable=not progress, unit="batch"):
            chunk = items[i : i + 16]
            features[i : i + len(chunk)] = encoder.embed([load_for(encoder, p) for p in chunk])
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, features=features, items=np.asarray(items, dtype=str))
        tmp.replace(path)  # atomic: a crash never leaves a half-written cache file
    return features


def record_features(
    records: Sequence[Record], encoder_name: str, cache_dir: str | Path | None = DEFAULT_CACHE
) -> np.ndarray:
    """Features of records: their audio for audio encoders, their transcripts for text encoders."""
    from .encoders import REGISTRY

    if encoder_name in REGISTRY and REGISTRY[encoder_name].modality == "text":
        return embed_items(encoder_name, [r.transcript or "" for r in records], cache_dir)
    return embed_items(encoder_name, [r.path for r in records], cache_dir)
