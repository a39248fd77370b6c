"""Several real speech corpora side by side: named, split by speaker, cleaned of clips a query would refuse, and
held out one at a time (leave-one-corpus-out).

A corpus is named by ``NAME=PATH`` (or just ``PATH``: the folder's name): a RAVDESS folder, a speech CSV
(``path,label,speaker[,text][,split]``, :func:`s2m.data.read_speech_csv`) or a folder holding ``labels.csv``.
Every record gets ``corpus=NAME`` and ``group="NAME/speaker"``, so speakers of different corpora never merge.
RAVDESS keeps its actor split; a corpus without a split column is split by speaker: sorted speakers, every
``VALID_EVERY``-th (the 3rd, 6th, ...) validation, the rest training.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from .readers import read_ravdess, read_speech_csv
from .records import DatasetError, Record

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
VALID_EVERY = 3  # a CSV corpus's speakers: every 3rd (sorted) validates, the others train


def data_dir() -> Path:
    """Where the real corpora live: ``$S2M_DATA``, else ``../shared/data`` beside the repository."""
    return Path(os.environ.get("S2M_DATA") or SHARED_DATA)


def default_specs(root: Path | None = None) -> list[str]:
    """``NAME=PATH`` of every speech corpus under ``root`` (default :func:`data_dir`): ``ravdess/`` and each
    folder with a ``labels.csv``, sorted by name."""
    root = root or data_dir()
    specs = [f"ravdess={root / 'ravdess'}"] if (root / "ravdess").is_dir() else []
    specs += [f"{p.parent.name}={p}" for p in sorted(root.glob("*/labels.csv"))]
    return specs


def read_corpus(spec: str) -> tuple[str, list[Record]]:
    """(name, records) of one corpus ``NAME=PATH`` or ``PATH`` (module docstring)."""
    name, _, path_text = spec.rpartition("=") if "=" in spec else ("", "", spec)
    path = Path(path_text)
    if path.is_dir() and (path / "labels.csv").is_file():
        path = path / "labels.csv"
    name = name or (path.parent.name if path.suffix.lower() == ".csv" else path.name)
    if not name or "/" in name:
        raise DatasetError(f"corpus name {name!r} in {spec!r}: give NAME=PATH with a name without '/'")
    if path.suffix.lower() == ".csv":
        records = read_speech_csv(path)
        if all(r.split == "test" for r in records):  # no split column: split by speaker
            speakers = sorted({r.group for r in records})
            valid = {g for i, g in enumerate(speakers) if i % VALID_EVERY == VALID_EVERY - 1}
            records = [replace(r, split="valid" if r.group in valid else "train") for r in records]
    elif path.is_dir():
        records = read_ravdess(path)
    else:
        raise DatasetError(f"No speech corpus at {path} (a RAVDESS folder, a speech CSV or a folder with labels.csv)")
    return name, [replace(r, corpus=name, group=f"{name}/{r.group}") for r in records]


def read_corpora(specs: Sequence[str]) -> dict[str, list[Record]]:
    """``{name: records}`` of :func:`read_corpus` for each spec; two corpora with one name are refused."""
    corpora: dict[str, list[Record]] = {}
    for spec in specs:
        name, records = read_corpus(spec)
        if name in corpora:
            raise DatasetError(f"two corpora are named {name!r}: name them NAME=PATH")
        corpora[name] = records
    if not corpora:
        raise DatasetError(f"No speech corpora given or found under {data_dir()}")
    return corpora


def held_out(corpora: dict[str, list[Record]], name: str) -> list[Record]:
    """Every record of the other corpora with its split (their test speakers left out: they are nobody's training
    or validation data) and all of corpus ``name`` as test items."""
    if name not in corpora:
        raise DatasetError(f"no corpus named {name!r} (have {', '.join(corpora)})")
    rest = [r for other, records in corpora.items() if other != name for r in records if r.split != "test"]
    return rest + [replace(r, split="test") for r in corpora[name]]


def combined(corpora: dict[str, list[Record]]) -> list[Record]:
    """Every corpus with its own splits: training on all of them, each corpus's test speakers kept for testing."""
    return [r for records in corpora.values() for r in records]


def sample_queries(records: Sequence[Record], limit: int, seed: int = 0) -> list[Record]:
    """``records`` with at most ``limit`` test items left as queries (a seeded random choice); the others get split
    "unused" (kept in place, so every corpus's features are still read from one cache file). ``limit`` 0 keeps every
    query. For costly readings (speech recognition) of large held-out corpora."""
    import numpy as np

    test = [i for i, r in enumerate(records) if r.split == "test"]
    if not limit or len(test) <= limit:
        return list(records)
    keep = set(np.random.default_rng(seed).choice(test, size=limit, replace=False).tolist())
    return [replace(r, split="unused") if r.split == "test" and i not in keep else r for i, r in enumerate(records)]
