"""The one record type every dataset reader returns, and the split names."""

from __future__ import annotations

from dataclasses import dataclass

SPLITS = ("train", "valid", "test")


class DatasetError(ValueError):
    """A dataset folder or file that does not look as expected; the message names the offending file."""


@dataclass(frozen=True)
class Record:
    """One labelled audio file.

    path: absolute path of the audio. label: emotion/mood word. group: speaker (speech) or source track/piece
    (music); items of one group never straddle splits. split: "train" | "valid" | "test". transcript: the words
    spoken, when known. start: music: where the clip to embed and play starts in the file, s (a whole song is
    represented by one window of it). room: speech: the simulated room the recording is heard through
    (:mod:`s2m.rooms`; "": as recorded). corpus: speech: the named corpus the record comes from when several are
    combined (:mod:`s2m.data.corpora`; "": a single data set). shares: music labelled by its listeners: the share
    of them who marked each GEMS emotion, in GEMS order (:data:`s2m.emotions.GEMS_LABELS`; (): labelled by one word).
    """

    path: str
    label: str
    group: str
    split: str
    transcript: str | None = None
    start: float = 0.0
    room: str = ""
    corpus: str = ""
    shares: tuple[float, ...] = ()
