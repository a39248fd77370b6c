"""The library index: one model's view of a music library, and its 2-D map.

:class:`LibraryIndex` holds L2-normalised clip embeddings ``(N, out_dim)`` and a 2-D UMAP map of them, cached on
disk under a hash of what produced them (the embeddings, the library's content, the reference map), so the app only
computes the query. Every model's map starts from the reference model's, is aligned onto it (orthogonal Procrustes,
SciPy) and held near it (:func:`steady`), so a class sees one picture whichever model answers. A query is placed on
the map by the similarity-weighted mean of its nearest clips' positions (UMAP's own initialisation of
``transform``): deterministic and well under a millisecond.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from .data.records import Record
from .emotions import va
from .features import cached
from .heads import JointModel

NEIGHBOURS, TEMPERATURE = 8, 0.05  # star placement: k nearest clips, softmax temperature on cosine
NEAR_FRACTION = 0.15  # star placement: neighbours within this share of the map's extent of the best match
MIN_UMAP_CLIPS = 5  # smaller libraries are mapped by their two principal axes
MAP_DRIFT = 0.045  # the most a model's map may differ from the reference map: median clip move / map extent


class LibraryIndex:
    """One model's embeddings and 2-D map of a library (``records`` with labels, or "" to predict)."""

    def __init__(
        self,
        model: JointModel,
        records: Sequence[Record],
        clip_ids: Sequence[str],
        features: np.ndarray,
        library_id: str,
        cache_dir: Path,
        reference: np.ndarray | None = None,
        points: Sequence[tuple[float, float] | None] = (),
    ):
        """features: float32 ``(N, music_dim)`` of ``records`` from the model's music encoder. reference: float32
        ``(N, 2)`` map of the same clips from another model: this map starts from it, is turned, scaled and
        shifted onto it (:func:`align`) and held near it (:func:`steady`), so every model shows each mood in the same
        place. points: each clip's own (valence, arousal) where its listeners gave one (None: its mood's point)."""
        self.records, self.clip_ids = list(records), list(clip_ids)
        self.embeddings = model.project("music", features)
        protos = model.config.readout.music_prototypes
        if protos and any(not r.label for r in self.records):  # unlabelled library: predict moods
            names, mat = list(protos), np.asarray(list(protos.values()), np.float32)
            guess = [names[i] for i in np.argmax(self.embeddings @ mat.T, axis=1)]
            pairs = zip(self.records, guess, strict=True)
            self.records = [replace(r, label=r.label or g) for r, g in pairs]
        self.moods = [r.label for r in self.records]
        own = list(points) or [None] * len(self.moods)  # each clip's (valence, arousal): its own, else its mood's
        self.va_points = np.asarray(
            [
                p if p is not None else va(m, model.config.va_table) if m else (0.5, 0.5)
                for p, m in zip(own, self.moods, strict=True)
            ],
            float,
        )
        if reference is not None and reference.shape != (len(self.records), 2):
            reference = None
        anchor = b"" if reference is None else np.ascontiguousarray(reference, np.float32).tobytes()
        key = hashlib.sha256(self.embeddings.tobytes() + library_id.encode() + b"umap-v3" + anchor).hexdigest()[:20]
        path = self.map_path = cache_dir / f"map-{key}.npz"

        def compute() -> dict[str, np.ndarray]:
            coords = umap_coords(self.embeddings, init=reference)
            return {"coords": coords if reference is None else steady(align(coords, reference), reference)}

        fits = lambda arrays: arrays["coords"].shape == (len(self.records), 2)  # noqa: E731
        self.coords = cached(path, compute, ("coords",), fits)["coords"]

    def place(self, query: np.ndarray) -> tuple[float, float]:
        """Map position of an L2-normalised ``(64,)`` query: the softmax-weighted mean of its nearest clips'
        positions, keeping only neighbours that lie near the best match on the map (so a query whose neighbours
        straddle two clusters lands by its best match, not in the empty space between them)."""
        sims = self.embeddings @ query
        top = np.argsort(-sims, kind="stable")[:NEIGHBOURS]
        extent = float(np.ptp(self.coords, axis=0).max()) or 1.0
        near = np.linalg.norm(self.coords[top] - self.coords[top[0]], axis=1) <= NEAR_FRACTION * extent
        top = top[near]
        w = np.exp((sims[top] - sims[top].max()) / TEMPERATURE)
        x, y = (w[:, None] * self.coords[top]).sum(0) / w.sum()
        return float(x), float(y)


def umap_coords(embeddings: np.ndarray, seed: int = 0, init: np.ndarray | None = None) -> np.ndarray:
    """float32 ``(N, 2)`` UMAP (cosine metric, seeded, single-threaded so it is reproducible); ``init``: float32
    ``(N, 2)`` starting positions (another model's map), else a spectral start. Fewer than ``MIN_UMAP_CLIPS``
    clips: their first two principal components."""
    n = len(embeddings)
    if n < MIN_UMAP_CLIPS:  # UMAP needs a neighbourhood graph; a handful of clips is shown by its two main axes
        centred = np.asarray(embeddings, np.float64) - np.mean(embeddings, axis=0)
        u, s, _ = np.linalg.svd(centred, full_matrices=False)
        coords = np.zeros((n, 2))
        coords[:, : min(2, u.shape[1])] = (u * s)[:, :2]
        return coords.astype(np.float32)
    import umap

    start = np.asarray(init, np.float64) if init is not None else "spectral" if n > 10 else "random"
    reducer = umap.UMAP(
        n_neighbors=min(15, max(2, n - 1)), min_dist=0.3, metric="cosine", random_state=seed, n_jobs=1, init=start
    )
    return reducer.fit_transform(embeddings).astype(np.float32)


def align(coords: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """float32 ``(N, 2)``: ``coords`` moved onto ``reference`` (the same N points) by the rotation or reflection,
    uniform scale and shift that fit best in least squares (orthogonal Procrustes)."""
    from scipy.linalg import orthogonal_procrustes

    x, y = coords - coords.mean(axis=0), reference - reference.mean(axis=0)
    turn, total = orthogonal_procrustes(x, y)  # total: the sum of x.T @ y's singular values
    scale = total / max(float((x**2).sum()), 1e-12)
    return (scale * x @ turn + reference.mean(axis=0)).astype(np.float32)


def steady(coords: np.ndarray, reference: np.ndarray, limit: float = MAP_DRIFT) -> np.ndarray:
    """float32 ``(N, 2)``: ``coords`` pulled towards ``reference`` (the same N points, already aligned) just enough
    that the median point moves at most ``limit`` × the reference's extent: every point keeps the direction of its
    move and a shared fraction of its length. Two maps held this way differ by about 2 × ``limit`` at most, so a
    class sees one picture whichever model answers, and the moves that remain show what a model changes."""
    extent = float(np.ptp(reference, axis=0).max()) or 1.0
    moves = coords - reference
    median = float(np.median(np.linalg.norm(moves, axis=1))) / extent
    share = min(1.0, limit / median) if median > 0 else 1.0
    return (reference + share * moves).astype(np.float32)
