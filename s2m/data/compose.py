"""Mood-rule music for the AudioSet moods the bundled library lacks (happy, funny, sad, tender, exciting, angry, scary).

Each piece is composed from structural cues that listeners reliably associate with an emotion, as summarised by
A. Gabrielsson & E. Lindström, "The role of structure in the musical expression of emotions" (Handbook of Music
and Emotion, 2010) and P. N. Juslin & P. Laukka (Psychological Bulletin 129(5), 2003): mode (major = happy/tender,
minor = sad/angry), tempo (fast = happy/exciting/angry, slow = sad/tender), loudness (loud = angry/exciting, soft =
sad/tender), articulation (staccato = happy/funny, legato = sad/tender), register (high = happy/tender, low =
sad/angry), dissonance (angry/scary), rhythmic drive and timbre (bright brass and distorted guitar for anger,
tremolo strings and clusters for fear, bassoon and pizzicato for humour). Pieces are written as MIDI with
``pretty_midi`` and rendered with FluidSynth and the FluidR3 General MIDI SoundFont (MIT licence) at a fixed gain,
so loudness differences between moods survive. Every choice draws from a seeded generator: a rebuild reproduces
the same notes, metadata and audio.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ..audio import MUSIC_CLIP_SECONDS
from ..emotions import AUDIOSET_MOODS, va
from .library import LIBRARY_DIR, ClipRow, clip_starts, split_groups, write_clip, write_metadata

SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/soundfonts/FluidR3_GM.sf2")
RENDER_RATE, RENDER_GAIN = 44_100, 0.7
PIECES_PER_MOOD, CLIPS_PER_PIECE = 6, 4
SOURCE = "s2m mood-rule composer + FluidR3_GM"
LICENSE = "CC0-1.0 (s2m composition); FluidR3_GM SoundFont MIT"

MAJOR, MINOR = (0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10)
# Chord roots as scale degrees (0-based) per bar.
PROGRESSIONS = {
    "major": [(0, 3, 4, 0), (0, 5, 3, 4), (0, 4, 5, 3), (0, 3, 0, 4)],
    "minor": [(0, 5, 3, 4), (0, 3, 4, 0), (0, 5, 6, 4), (0, 6, 5, 4)],
}


@dataclass(frozen=True)
class Style:
    """The cues of one mood. tempo: bpm range. mode: "major" | "minor". register: melody octave (MIDI octave number).
    articulation: sounding fraction of each note (1 = legato). notes_per_beat: melodic density. leap: probability of
    a leap instead of a step. velocity: MIDI loudness range. programs: GM programs for (melody, harmony, bass).
    comp / bass / drums: accompaniment patterns. dissonance: probability of adding a minor second / tritone."""

    tempo: tuple[int, int]
    mode: str
    register: int
    articulation: float
    notes_per_beat: tuple[int, ...]
    leap: float
    velocity: tuple[int, int]
    programs: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]
    comp: str
    bass: str
    drums: str
    dissonance: float = 0.0


STYLES: dict[str, Style] = {
    # piano/marimba/glockenspiel, bright major, bouncy
    "happy": Style(
        (120, 140),
        "major",
        5,
        0.55,
        (2,),
        0.25,
        (80, 100),
        ((0, 12, 9, 24), (0, 24, 4), (32, 33)),
        "stabs",
        "quarters",
        "pop",
    ),
    # bassoon/tuba/pizzicato/xylophone, leaps, oom-pah
    "funny": Style(
        (130, 160),
        "major",
        4,
        0.35,
        (2, 3),
        0.6,
        (75, 100),
        ((70, 13, 71, 72), (45, 0), (58, 32)),
        "offbeat",
        "oompah",
        "march",
        0.05,
    ),
    # strings/cello/piano, slow, low, legato, descending
    "sad": Style(
        (54, 68),
        "minor",
        4,
        1.0,
        (1,),
        0.1,
        (50, 70),
        ((42, 40, 0, 71), (48, 49, 89), (42, 32)),
        "block",
        "whole",
        "none",
    ),
    # flute/harp/celesta/nylon guitar, soft major, legato
    "tender": Style(
        (70, 84),
        "major",
        5,
        0.95,
        (1, 2),
        0.15,
        (58, 78),
        ((73, 46, 8, 24), (24, 46, 0), (32, 42)),
        "arpeggio",
        "whole",
        "none",
    ),
    # brass/synth lead/strings, fast, loud, driving
    "exciting": Style(
        (150, 170),
        "major",
        5,
        0.7,
        (2, 4),
        0.3,
        (95, 120),
        ((61, 81, 56, 30), (48, 61, 81), (38, 33)),
        "eighths",
        "eighths",
        "rock",
    ),
    # distorted guitar/brass, low, loud, minor with dissonance
    "angry": Style(
        (150, 180),
        "minor",
        3,
        0.8,
        (2, 4),
        0.35,
        (105, 127),
        ((30, 29, 61, 57), (30, 29), (34, 38)),
        "power",
        "eighths",
        "metal",
        0.35,
    ),
    # tremolo strings, clusters, low drones, sudden stabs
    "scary": Style(
        (50, 66),
        "minor",
        3,
        1.0,
        (1,),
        0.5,
        (35, 110),
        ((44, 49, 41, 92), (44, 48, 89), (43, 47)),
        "cluster",
        "drone",
        "hits",
        0.7,
    ),
}

EIGHTHS = tuple(range(0, 16, 2))
DRUM_PATTERNS = {  # (GM drum note, 16th-step positions in a 4/4 bar, velocity)
    "pop": [(36, (0, 8), 90), (38, (4, 12), 80), (42, EIGHTHS, 60)],
    "march": [(36, (0, 8), 80), (38, (4, 12, 14), 70)],
    "rock": [(36, (0, 6, 8, 10), 110), (38, (4, 12), 110), (42, EIGHTHS, 80), (49, (0,), 100)],
    "metal": [(36, EIGHTHS, 120), (38, (4, 12), 125), (51, EIGHTHS, 90), (49, (0, 8), 110)],
    "hits": [(47, (0,), 100)],
    "none": [],
}


def compose(mood: str, piece: int, seed: int = 0):
    """A ``pretty_midi.PrettyMIDI`` of ``CLIPS_PER_PIECE`` × 10 s (+1 s) in ``mood``; returns (midi, tempo, key)."""
    import pretty_midi

    style = STYLES[mood]
    rng = np.random.default_rng([seed, AUDIOSET_MOODS.index(mood), piece])
    tempo = float(rng.integers(style.tempo[0], style.tempo[1] + 1))
    root = int(rng.integers(0, 12))
    scale = MAJOR if style.mode == "major" else MINOR
    progression = PROGRESSIONS[style.mode][int(rng.integers(len(PROGRESSIONS[style.mode])))]
    programs = [int(rng.choice(p)) for p in style.programs]
    beat = 60.0 / tempo
    total = CLIPS_PER_PIECE * MUSIC_CLIP_SECONDS + 1.0
    midi = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    melody, harmony, bass = (pretty_midi.Instrument(program=p) for p in programs)
    drums = pretty_midi.Instrument(program=0, is_drum=True)

    def add(inst, pitch, start, dur, vel):
        if start < total:
            vel = int(np.clip(vel + rng.integers(-6, 7), 1, 127))
            inst.notes.append(pretty_midi.Note(vel, int(np.clip(pitch, 21, 108)), start, min(start + dur, total)))

    def degree_pitch(degree: int, octave: int) -> int:
        return 12 * (octave + 1) + root + scale[degree % 7] + 12 * (degree // 7)

    lo, hi = style.velocity
    position = 0  # melody scale degree relative to the tonic of the register
    n_bars = int(np.ceil(total / (4 * beat)))
    for bar in range(n_bars):
        t0 = bar * 4 * beat
        chord_degree = progression[bar % len(progression)]
        chord = [degree_pitch(chord_degree + k, style.register - 1) for k in (0, 2, 4)]
        bass_note = degree_pitch(chord_degree, 2)
        _accompany(style, add, harmony, bass, chord, bass_note, t0, beat, lo, hi, rng)
        for note, steps, vel in DRUM_PATTERNS[style.drums]:
            if style.drums == "hits" and rng.random() > 0.35:
                continue  # scary: irregular, unpredictable hits
            for s in steps:
                add(drums, note, t0 + s * beat / 4, beat / 4, vel)
        density = int(rng.choice(style.notes_per_beat))
        step = beat / density
        for i in range(4 * density):
            if style.mode == "minor" and style.comp == "block" and rng.random() < 0.3:
                position -= 1  # sad melodies drift downwards
            elif rng.random() < style.leap:
                position += int(rng.choice([-5, -4, -3, 3, 4, 5]))
            else:
                position += int(rng.choice([-1, 1]))
            position = int(np.clip(position, -3, 9))
            pitch = degree_pitch(position, style.register)
            if rng.random() < style.dissonance:
                pitch += int(rng.choice([1, 6, -1]))  # minor second / tritone against the key
            add(melody, pitch, t0 + i * step, step * style.articulation, rng.integers(lo, hi + 1))
    midi.instruments.extend([melody, harmony, bass, drums])
    key = f"{pretty_midi.note_number_to_name(60 + root)[:-1]} {style.mode}"
    return midi, tempo, key


def _accompany(style, add, harmony, bass, chord, bass_note, t0, beat, lo, hi, rng) -> None:
    """One bar of harmony and bass in the style's patterns."""
    soft = (lo + hi) // 2 - 10
    if style.comp == "block":
        for p in chord:
            add(harmony, p, t0, 4 * beat, soft)
    elif style.comp == "arpeggio":
        for i in range(8):
            add(harmony, chord[[0, 1, 2, 1][i % 4]] + (12 if i % 8 == 6 else 0), t0 + i * beat / 2, beat, soft)
    elif style.comp == "stabs":
        for b in range(4):
            for p in chord:
                add(harmony, p, t0 + b * beat, beat * 0.4, soft)
    elif style.comp == "offbeat":
        for b in range(4):
            for p in chord:
                add(harmony, p, t0 + (b + 0.5) * beat, beat * 0.25, soft)
    elif style.comp == "eighths":
        for i in range(8):
            for p in chord:
                add(harmony, p, t0 + i * beat / 2, beat * 0.45, soft + 10)
    elif style.comp == "power":  # root + fifth + octave, chugging 8ths, accents on strong beats
        for i in range(8):
            for p in (chord[0] - 12, chord[0] - 5, chord[0]):
                add(harmony, p, t0 + i * beat / 2, beat * 0.45, hi - (0 if i % 2 == 0 else 15))
    elif style.comp == "cluster":  # tremolo on a semitone cluster with a tritone, and a sudden stab
        cluster = (chord[0], chord[0] + 1, chord[0] + 6)
        for i in range(16):
            for p in cluster:
                add(harmony, p, t0 + i * beat / 4, beat / 4, lo + 10 + i * 2)
        if rng.random() < 0.4:
            for p in (chord[0] - 24, chord[0] - 23, chord[0] - 18):
                add(harmony, p, t0 + int(rng.integers(0, 4)) * beat, beat, hi)
    if style.bass == "whole":
        add(bass, bass_note, t0, 4 * beat, soft)
    elif style.bass == "drone":
        add(bass, bass_note - 12, t0, 4 * beat, lo + 20)
        add(bass, bass_note - 6, t0 + 2 * beat, 2 * beat, lo + 10)
    elif style.bass == "quarters":
        for b in range(4):
            add(bass, bass_note + (7 if b == 2 else 0), t0 + b * beat, beat * 0.8, soft + 10)
    elif style.bass == "oompah":
        for b in range(4):
            add(bass, bass_note + (7 if b % 2 else 0) - (0 if b % 2 else 12), t0 + b * beat, beat * 0.3, soft + 10)
    elif style.bass == "eighths":
        for i in range(8):
            add(bass, bass_note, t0 + i * beat / 2, beat * 0.45, hi - 5)


def soundfont() -> str:
    """Path of the FluidR3 GM SoundFont (Debian package ``fluid-soundfont-gm``)."""
    for path in SOUNDFONTS:
        if Path(path).exists():
            return path
    raise RuntimeError("FluidR3_GM.sf2 not found: `apt-get install fluidsynth fluid-soundfont-gm`")


def render(midi, sf2: str) -> tuple[np.ndarray, int]:
    """Render with the FluidSynth command line at a fixed gain -> float32 mono ``(T,)`` at 44.1 kHz."""
    with tempfile.TemporaryDirectory() as tmp:
        mid, wav = Path(tmp) / "piece.mid", Path(tmp) / "piece.wav"
        midi.write(str(mid))
        try:
            subprocess.run(
                [
                    "fluidsynth",
                    "-ni",
                    "-q",
                    "-g",
                    str(RENDER_GAIN),
                    "-F",
                    str(wav),
                    "-r",
                    str(RENDER_RATE),
                    sf2,
                    str(mid),
                ],
                check=True,
                capture_output=True,
            )
        except FileNotFoundError:
            raise RuntimeError("fluidsynth is not installed: `apt-get install fluidsynth fluid-soundfont-gm`") from None
        audio, rate = sf.read(str(wav), dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    peak = float(np.max(np.abs(audio)))
    return (audio * (0.99 / peak) if peak > 0.99 else audio), rate  # a limiter for the rare loud piece


def plan_rows(seed: int = 0) -> list[tuple[ClipRow, str, int]]:
    """Metadata rows of every composed clip (no audio needed), each with its mood and piece number."""
    groups = {m: [f"compose-{m}-{p:02d}" for p in range(PIECES_PER_MOOD)] for m in AUDIOSET_MOODS}
    split = split_groups(groups, seed)
    rows = []
    for mood in AUDIOSET_MOODS:
        v, a = va(mood)
        for piece in range(PIECES_PER_MOOD):
            group = f"compose-{mood}-{piece:02d}"
            _, tempo, key = compose(mood, piece, seed)
            for k, start in enumerate(clip_starts(CLIPS_PER_PIECE * MUSIC_CLIP_SECONDS, split[group] != "train")):
                clip_id = f"{group}_{k:02d}"
                rows.append(
                    (
                        ClipRow(
                            clip_id,
                            f"compose/{mood}/{clip_id}.mp3",
                            mood,
                            v,
                            a,
                            group,
                            split[group],
                            start,
                            start + MUSIC_CLIP_SECONDS,
                            LICENSE,
                            SOURCE,
                            f"{tempo:.0f}",
                            key,
                        ),
                        mood,
                        piece,
                    )
                )
    return rows


def build_composed(library: Path = LIBRARY_DIR, seed: int = 0) -> list[ClipRow]:
    """Compose, render and cut every piece into the library; merge its rows into ``metadata.csv``."""
    from tqdm import tqdm

    sf2 = soundfont()
    planned = plan_rows(seed)
    rendered: dict[tuple[str, int], tuple[np.ndarray, int]] = {}
    for row, mood, piece in tqdm(planned, desc="composing", unit="clip"):
        if (mood, piece) not in rendered:
            rendered = {(mood, piece): render(compose(mood, piece, seed)[0], sf2)}  # keep one piece in memory
        audio, rate = rendered[(mood, piece)]
        first = int(round(row.start_s * rate))
        write_clip(audio[first : first + int(MUSIC_CLIP_SECONDS * rate)], rate, library / row.path)
    rows = [r for r, _, _ in planned]
    write_metadata(rows, library, replace_sources=(SOURCE,))
    return rows
