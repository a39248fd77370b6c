"""Plotly figures of the library: the UMAP map of the joint space and the valence–arousal plane, with the speech
side of the space (where a voice heard as each speech emotion goes), a session's earlier queries and the current
query."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np

from .emotions import colour, words
from .index import LibraryIndex
from .search import Result, SpeechPoint

STAR = dict(symbol="star", size=26, color="#FFD700", line=dict(color="black", width=2))
SPEECH = dict(symbol="x-thin-open", size=14, color="#222222", line=dict(width=2.5))
EARLIER = dict(symbol="star-open", size=18, color="#555555", line=dict(width=2))
# one marker shape per mood besides its colour, so that moods of similar hue stay apart for colour-blind viewers
SYMBOLS = (
    "circle",
    "square",
    "diamond",
    "triangle-up",
    "triangle-down",
    "pentagon",
    "hexagon",
    "cross",
    "star-diamond",
    "hourglass",
    "bowtie",
    "x",
)
# what each quadrant of the valence-arousal plane means, in plain words (x, y, text, anchors), in the corners of the
# plotted range (−0.05 … 1.05), outside the unit square where the moods sit, so that no word prints over a mood's
# markers (scary music sits at the very top left)
QUADRANTS = (
    (1.05, 1.05, "excited · happy", "right", "top"),
    (-0.05, 1.05, "tense · angry · afraid", "left", "top"),
    (-0.05, -0.05, "sad · gloomy", "left", "bottom"),
    (1.05, -0.05, "calm · peaceful", "right", "bottom"),
)


def symbol(mood: str, moods: list[str]) -> str:
    """The marker shape of ``mood`` among a library's ``moods`` (stable for one library: by sorted position)."""
    return SYMBOLS[sorted(set(moods)).index(mood) % len(SYMBOLS)]


def _layout(fig, title: str, xaxis: dict, yaxis: dict, legend_y: float = -0.05):
    # the legend sits under the plot (below the x-axis title: ``legend_y``, a fraction of the plot's height), so that
    # a phone-wide plot keeps its width for the points; two entries a row whatever the width (three cut the
    # longest names on a phone)
    fig.update_layout(
        title=title,
        template="plotly_white",
        height=600,
        margin=dict(l=10, r=10, t=75, b=10),
        legend=dict(
            orientation="h",
            yanchor="top",
            y=legend_y,
            itemsizing="constant",
            entrywidth=0.5,
            entrywidthmode="fraction",
            font=dict(size=11),
        ),
        xaxis=xaxis,
        yaxis=yaxis,
    )
    return fig


# A label's box in units of ``near`` (3 % of the plot's extent, about 15 px): 11-px text is ~1.3 high and each
# character ~0.4 wide; a label beside a marker starts half a text height from its centre, one above or below it a
# little more than half a text height (so it clears the marker and the labels beside it).
_CHAR, _TEXT_HIGH = 0.4, 1.3
Box = tuple[float, float, float, float]  # a label's (centre x, centre y, width, height), data units


def _label_box(label: str, x: float, y: float, side: str, near: float) -> Box:
    """Approximate box of ``label`` printed on ``side`` of a marker at (x, y): (centre x, centre y, width, height),
    in data units."""
    w, h = _CHAR * len(label) * near, _TEXT_HIGH * near
    gap = (h + 0.1 * near) if side in ("top center", "bottom center") else 0.0  # clear the marker, then half a line
    dx = {"middle right": h / 2 + w / 2, "middle left": -(h / 2 + w / 2)}.get(side, 0.0)
    dy = {"top center": gap, "bottom center": -gap}.get(side, 0.0)
    return x + dx, y + dy, w, h


def _overlap(a: Box, b: Box) -> bool:
    return abs(a[0] - b[0]) < (a[2] + b[2]) / 2 and abs(a[1] - b[1]) < (a[3] + b[3]) / 2


def _points(
    fig,
    points: list[tuple[str, float, float]],
    name: str,
    marker: dict,
    hover: str,
    near: float,
    below: bool = False,
    occupied: Sequence[Box] = (),
) -> list[Box]:
    """A labelled marker trace of ``points`` (label, x, y); points closer than ``near`` share one marker whose
    label joins theirs ("fearful · sad"), and a label whose box would overlap a label already printed (approximate
    boxes, :func:`_label_box`) goes to the next free side of its marker (above, below, right, left; below first for
    ``below``), so labels do not print over each other. ``occupied``: boxes of labels another trace already printed,
    avoided the same way. Returns the boxes of this trace's labels."""
    import plotly.graph_objects as go

    merged: list[list] = []
    for label, x, y in points:
        same = next((m for m in merged if np.hypot(m[1] - x, m[2] - y) < near), None)
        if same:
            same[0] += f" · {label}"
        else:
            merged.append([label, x, y])
    sides = ["bottom center", "top center"] if below else ["top center", "bottom center"]
    sides += ["middle right", "middle left"]
    boxes, chosen = list(occupied), []
    for label, x, y in merged:
        options = [(side, _label_box(label, x, y, side, near)) for side in sides]
        side, box = next(((s, b) for s, b in options if not any(_overlap(b, o) for o in boxes)), options[0])
        chosen.append(side)
        boxes.append(box)
    if merged:
        fig.add_trace(
            go.Scatter(
                x=[m[1] for m in merged],
                y=[m[2] for m in merged],
                mode="markers+text",
                name=name,
                marker=marker,
                text=[m[0] for m in merged],
                textposition=chosen,
                textfont=dict(size=11, color=marker["color"]),
                hovertemplate=hover + ": %{text}<extra></extra>",
            )
        )
    return boxes[len(occupied) :]


def _moods_and_query(
    fig,
    xs: np.ndarray,
    ys: np.ndarray,
    index: LibraryIndex,
    result: Result | None,
    qx,
    qy,
    speech: list[tuple[str, float, float]] = (),
    earlier: list[tuple[str, float, float]] = (),
    earlier_name: str = "earlier queries (☆)",
):
    """Music clips by mood, then the speech emotions (×), a session's earlier queries (☆, legend ``earlier_name``)
    and the query (★)."""
    import plotly.graph_objects as go

    hit_ids = {h.clip_id for h in result.hits} if result else set()
    for mood in sorted(set(index.moods)):
        rows = [i for i, m in enumerate(index.moods) if m == mood]
        fig.add_trace(
            go.Scatter(
                x=xs[rows],
                y=ys[rows],
                mode="markers",
                name=words(mood),
                customdata=[index.clip_ids[i] for i in rows],
                marker=dict(
                    symbol=symbol(mood, index.moods),
                    size=10,
                    color=colour(mood),
                    opacity=0.9,
                    line=dict(width=0.6, color="#333333"),
                ),
                hovertemplate="%{customdata}<br>" + words(mood) + "<extra></extra>",
            )
        )
    near = 0.03 * max(float(np.ptp(xs)), float(np.ptp(ys)), 1e-9)
    labelled = _points(fig, speech, "voices (×)", SPEECH, "where a voice heard as this emotion goes", near)
    _points(fig, earlier, earlier_name, EARLIER, "earlier query", near, below=True, occupied=labelled)
    if result:
        rows = [i for i, c in enumerate(index.clip_ids) if c in hit_ids]
        fig.add_trace(
            go.Scatter(
                x=xs[rows],
                y=ys[rows],
                mode="markers",
                name=f"top {len(rows)}",
                marker=dict(symbol="circle-open", size=18, color="black", line=dict(width=2.5)),
                customdata=[f"{index.clip_ids[i]} ({index.moods[i]})" for i in rows],
                hovertemplate="result: %{customdata}<extra></extra>",
            )
        )
        label = max(result.emotions, key=result.emotions.get) if result.emotions else "query"
        fig.add_trace(
            go.Scatter(
                x=[qx],
                y=[qy],
                mode="markers",
                name="your query",
                marker=STAR,
                hovertemplate=f"your query (≈ {label})<extra></extra>",
            )
        )
    return fig


def _picture(
    plane: str,
    index: LibraryIndex,
    result: Result | None = None,
    speech: list[SpeechPoint] = (),
    earlier: list[SpeechPoint] = (),
    earlier_name: str = "earlier queries (☆)",
    heading: str | None = None,
):
    """The library as marks by mood, where each speech emotion goes (×), a session's ``earlier`` queries (☆, legend
    ``earlier_name``), the query (★) and its results ringed, titled ``heading``. ``plane`` "map": the 2-D UMAP of
    the joint-space music embeddings; "va": the clips at their (valence, arousal) (:attr:`LibraryIndex.va_points`:
    a listener-labelled clip's own point, else its mood's), jittered, and speech and query at their VA points."""
    import plotly.graph_objects as go

    fig = go.Figure()
    if plane == "map":
        xy, at = index.coords, lambda p: (p.x, p.y)
    else:  # fixed jitter: the picture never moves between queries
        xy = index.va_points + np.random.default_rng(0).normal(0, 0.015, (len(index.moods), 2))
        at = lambda p: (p.valence, p.arousal)  # noqa: E731
    marks = [[(p.label, *at(p)) for p in points] for points in (speech, earlier)]
    query = at(result) if result else (None, None)
    _moods_and_query(fig, xy[:, 0], xy[:, 1], index, result, *query, *marks, earlier_name)
    if plane == "map":
        axis = dict(showticklabels=False, title="", zeroline=False)
        subtitle = "music (shapes) and speech (×) of similar emotion lie close"
        return _layout(fig, f"{heading or 'Map of the joint space'}<br><sub>{subtitle}</sub>", axis, axis)
    for x, y, text, xanchor, yanchor in QUADRANTS:
        fig.add_annotation(
            x=x, y=y, text=text, showarrow=False, xanchor=xanchor, yanchor=yanchor, font=dict(size=13, color="#555555")
        )
    for line in (dict(x0=0.5, x1=0.5, y0=-0.05, y1=1.05), dict(x0=-0.05, x1=1.05, y0=0.5, y1=0.5)):
        fig.add_shape(type="line", line=dict(color="#BBBBBB", dash="dot"), **line)
    return _layout(
        fig,
        f"{heading or 'Valence–arousal plane'}<br><sub>→ more pleasant · ↑ more energetic</sub>",
        dict(title="valence: unpleasant → pleasant", range=[-0.1, 1.1]),  # room for edge labels
        dict(title="arousal: calm → energetic", range=[-0.05, 1.05]),
        legend_y=-0.17,
    )


library_map = partial(_picture, "map")  # (index, result, speech, earlier, earlier_name, heading): the UMAP map
va_plane = partial(_picture, "va")  # the same arguments: the valence–arousal plane
