"""Audio in: every source becomes mono float32 at a requested rate, or one clear :class:`AudioError`.

Sources are a file path, the bytes of a file, or ``(sample_rate, array)`` as Gradio's ``Audio`` component gives
it (int16/int32/uint8/float, ``(N,)`` mono or ``(N, C)`` / ``(C, N)`` multichannel). Decoding uses ``soundfile``
(wav, flac, ogg, opus, mp3), resampling uses ``torchaudio``. Decoding never normalises loudness (the only
scaling is a peak limit that prevents clipping); :func:`normalise_level` is a separate, explicit step that speech
models may choose.
"""

from __future__ import annotations

import contextlib
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

SPEECH_SAMPLE_RATE = 16_000  # Hz, what every speech encoder here expects
MUSIC_SAMPLE_RATE = 22_050  # Hz, what the music descriptors are computed at
MUSIC_CLIP_SECONDS = 10.0  # s, length of one library clip (the paper's AudioSet segments)
SPEECH_MIN_SECONDS = 0.5  # s, shorter speech carries too little prosody to read an emotion from
SPEECH_MAX_SECONDS = 30.0  # s, longer queries are cut (Whisper's window is 30 s)
MIN_INPUT_RATE, MAX_INPUT_RATE = 8_000, 192_000  # Hz, accepted input sample rates
# Decode budget, checked from a file's header before anything is decoded: channels x sample rate may be at most this
# many samples per second (stereo at 192 kHz, 8 channels at 48 kHz). Decoding is streamed block by block into mono,
# so a request holds at most one block of all channels plus the mono audio it keeps (<= 30 s for a query).
MAX_SAMPLES_PER_SECOND = 384_000
BLOCK_SECONDS = 1.0  # s of audio decoded at a time
MAX_SCAN_SECONDS = 20 * 60.0  # s, a song's window is chosen within its first 20 minutes
SILENCE_DBFS = -60.0  # dBFS, a recording whose loudest 20-ms frame stays below this is called silent
TRIM_BELOW_PEAK_DB = 40.0  # dB, leading/trailing frames this far below the loudest frame are trimmed
NOISE_FFT = 1024  # samples, the noise reducer's analysis window (noisereduce's default; 64 ms at 16 kHz)
# dBFS, plain RMS of the active 20-ms frames after :func:`normalise_level` (the number EBU R 128 sets for programme
# loudness, where it is K-weighted LUFS; this is not an R 128 measurement)
SPEECH_LEVEL_DBFS = -23.0

AudioSource = str | Path | bytes | bytearray | tuple


class AudioError(ValueError):
    """Input audio that cannot be used; the message is meant for the person who supplied it."""


@dataclass(frozen=True)
class Clip:
    """Decoded audio.

    samples: float32 ``(T,)`` mono in [-1, 1] at ``sample_rate`` Hz.
    truncated: True when the input was longer than the maximum and was cut.
    input_seconds: duration of the input before cutting and trimming (s).
    untrimmed: float32 ``(T',)`` the same audio before leading/trailing silence was trimmed (None: not trimmed).
    A noise reducer needs it: the pauses around the words are where the room's noise is heard alone.
    """

    samples: np.ndarray
    sample_rate: int
    truncated: bool = False
    input_seconds: float = 0.0
    untrimmed: np.ndarray | None = None

    @property
    def whole(self) -> np.ndarray:
        """float32: the audio before trimming (:attr:`untrimmed`), or :attr:`samples` where nothing was trimmed."""
        return self.samples if self.untrimmed is None else self.untrimmed

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate

    def notice(self) -> str | None:
        """A sentence for the user when the input was cut, else None."""
        if not self.truncated:
            return None
        return f"The recording was {self.input_seconds:.1f} s long; only the first {self.seconds:.1f} s were used."


def load_audio(
    source: AudioSource,
    sample_rate: int = SPEECH_SAMPLE_RATE,
    *,
    min_seconds: float = SPEECH_MIN_SECONDS,
    max_seconds: float = SPEECH_MAX_SECONDS,
    offset_seconds: float = 0.0,
    trim_silence: bool = True,
) -> Clip:
    """Decode ``source`` to mono float32 at ``sample_rate`` Hz.

    Checks the decode budget from the header (:func:`check_budget`), then streams at most ``max_seconds`` (s) from
    ``offset_seconds`` into mono (a 10-minute or 64-channel upload is never decoded whole), resamples, optionally
    trims leading/trailing silence, limits the peak to 1.0, and checks the result is at least ``min_seconds`` long
    and not silent. Raises :class:`AudioError` otherwise.
    """
    data, rate, total_seconds = _decode(source, max_seconds, offset_seconds)
    mono = _to_mono_float(data)
    if mono.size == 0:
        raise AudioError("The audio is empty: it contains no samples.")
    if not np.all(np.isfinite(mono)):
        raise AudioError("The audio contains invalid samples (NaN or infinity); please re-export or re-record it.")
    peak = float(np.max(np.abs(mono)))
    if peak > 1.0:  # float input beyond full scale: limit the peak, keep relative loudness
        mono = mono / peak
    truncated = total_seconds > offset_seconds + max_seconds + 1e-3
    mono = mono[: int(round(max_seconds * rate))]
    samples = untrimmed = resample(mono, rate, sample_rate)
    if trim_silence:
        samples = trim(samples, sample_rate)
    # judged by the loudest 20-ms frame, not the average: a soft take between long pauses is quiet, not silent
    if _peak_frame_dbfs(samples, sample_rate) < SILENCE_DBFS:
        raise AudioError("The audio is silent. Check that the microphone is on and speak closer to it.")
    seconds = len(samples) / sample_rate
    if seconds < min_seconds:
        raise AudioError(f"The audio is too short: {seconds:.2f} s of sound, at least {min_seconds:.1f} s are needed.")
    return Clip(
        samples.astype(np.float32, copy=False),
        sample_rate,
        bool(truncated),
        float(total_seconds),
        untrimmed.astype(np.float32, copy=False) if trim_silence else None,
    )


def resample(samples: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Band-limited resampling of float32 ``(T,)`` from ``orig_rate`` to ``new_rate`` Hz (torchaudio sinc)."""
    if orig_rate == new_rate:
        return np.ascontiguousarray(samples, dtype=np.float32)
    import torch
    import torchaudio.functional as F

    g = math.gcd(int(orig_rate), int(new_rate))
    out = F.resample(torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)), orig_rate // g, new_rate // g)
    return out.numpy()


def _frame_power(samples: np.ndarray, sample_rate: int, frame_seconds: float = 0.02) -> tuple[np.ndarray, int]:
    """(mean square per 20-ms frame ``(n,)`` float64, hop in samples)."""
    hop = max(1, int(frame_seconds * sample_rate))
    n = len(samples) // hop
    return np.mean(samples[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1), hop


def loudest_window(
    samples: np.ndarray, sample_rate: int, seconds: float = MUSIC_CLIP_SECONDS, hop_seconds: float = 2.5
) -> float:
    """Start (s) of the ``seconds``-long window of float32 ``(T,)`` audio with the most energy, on a ``hop_seconds``
    grid (the earliest of equals); 0 for audio no longer than one window. A song's loudest 10 s is usually its chorus
    or main theme, never a fade-in intro or a fade-out: the part that stands for the whole song."""
    power, hop = _frame_power(np.asarray(samples, np.float32), sample_rate)
    return _loudest_start(power, hop / sample_rate, seconds, hop_seconds)


def song_window(path: str | Path, seconds: float = MUSIC_CLIP_SECONDS, hop_seconds: float = 2.5) -> tuple[float, float]:
    """(start s, duration s) of a music file: :func:`loudest_window`, streamed block by block so that a long or
    many-channel file is never held whole (only one 20-ms power value per frame is kept; the first
    ``MAX_SCAN_SECONDS`` are scanned). Raises :class:`AudioError` for a file over the decode budget or unreadable."""
    powers, rest, hop = [], np.zeros(0, np.float32), 1
    with _sound_file(path) as (f, name):
        hop = max(1, int(0.02 * f.samplerate))
        for mono in _mono_blocks(f, int(MAX_SCAN_SECONDS * f.samplerate), name):
            x = np.concatenate([rest, mono])
            power, _ = _frame_power(x, f.samplerate)
            powers.append(power)
            rest = x[len(power) * hop :]
        rate, total = f.samplerate, f.frames
    power = np.concatenate(powers) if powers else np.zeros(0)
    if not len(power):
        raise AudioError(f"The file {name} contains no audio.")
    return _loudest_start(power, hop / rate, seconds, hop_seconds), min(total / rate, MAX_SCAN_SECONDS)


def _loudest_start(power: np.ndarray, frame_seconds: float, seconds: float, hop_seconds: float) -> float:
    """Start (s) of the loudest ``seconds``-long window of per-frame power ``(n,)`` on a ``hop_seconds`` grid."""
    width, step = int(round(seconds / frame_seconds)), max(1, int(round(hop_seconds / frame_seconds)))
    if len(power) <= width:
        return 0.0
    energy = np.concatenate([[0.0], np.cumsum(power)])
    starts = np.arange(0, len(power) - width + 1, step)
    best = starts[int(np.argmax(energy[starts + width] - energy[starts]))]
    return round(float(best * frame_seconds), 3)


def _active(power: np.ndarray) -> np.ndarray:
    """bool: frames within ``TRIM_BELOW_PEAK_DB`` of the loudest frame."""
    level = 10 * np.log10(power + 1e-12)
    return level > level.max() - TRIM_BELOW_PEAK_DB


def trim(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Cut leading/trailing frames quieter than ``TRIM_BELOW_PEAK_DB`` below the loudest 20 ms frame.

    Keeps one frame of margin on each side so onsets and decays are not clipped.
    """
    power, hop = _frame_power(samples, sample_rate)
    if len(power) < 3:
        return samples
    loud = np.flatnonzero(_active(power))
    start = max(0, (loud[0] - 1) * hop)
    end = min(len(samples), (loud[-1] + 2) * hop)
    return samples[start:end]


def reduce_noise(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """float32 ``(T,)`` audio with steady background noise removed: non-stationary spectral gating (PyPI
    ``noisereduce`` with its default settings: per frequency, a short-time bin is kept where it rises above its own
    level smoothed over 2 s by more than the library's threshold, the mask smoothed over 500 Hz and 50 ms). A
    classroom's hum, fan or hiss is a property of the room, not of the emotion. Give it the untrimmed recording
    (:attr:`Clip.untrimmed`), as in training; audio shorter than two 64-ms analysis windows is returned as is."""
    import noisereduce

    x = np.asarray(samples, np.float32)
    if len(x) < 2 * NOISE_FFT:
        return x
    return noisereduce.reduce_noise(y=x, sr=sample_rate, n_fft=NOISE_FFT).astype(np.float32)


def noise_settings() -> str:
    """The noise reducer and its settings, for cache keys: features made otherwise are never served."""
    from importlib.metadata import version

    return f"noisereduce {version('noisereduce')} non-stationary, fft {NOISE_FFT}"


def normalise_level(
    samples: np.ndarray, sample_rate: int = SPEECH_SAMPLE_RATE, target_dbfs: float = SPEECH_LEVEL_DBFS
) -> np.ndarray:
    """float32 ``(T,)`` scaled so its active level (RMS of the 20-ms frames within ``TRIM_BELOW_PEAK_DB`` of the
    loudest) is ``target_dbfs``; the peak is then limited to 1.0.

    A microphone's gain, its distance from the mouth and a corpus's recording level shift every absolute loudness
    feature by a constant: a property of the recording, not of the emotion. Relative loudness (contours, range,
    spectral balance) survives the scaling.
    """
    x = np.asarray(samples, np.float32)
    power, _ = _frame_power(x, sample_rate)
    if len(power) == 0 or power.max() <= 0:
        return x
    y = x * (10 ** (target_dbfs / 20) / np.sqrt(power[_active(power)].mean()))
    peak = float(np.max(np.abs(y)))
    return (y / peak if peak > 1.0 else y).astype(np.float32)


def save_audio(path: str | Path, samples: np.ndarray, sample_rate: int, **kwargs) -> None:
    """Write float32 ``(T,)`` or ``(T, C)`` audio; the format follows the file extension (wav, flac, ogg, mp3)."""
    sf.write(str(path), samples, sample_rate, **kwargs)


def check_budget(channels: int, sample_rate: int, name: str = "the audio") -> None:
    """Refuse audio whose header promises more than the server decodes (:data:`MAX_SAMPLES_PER_SECOND` across
    channels), before a sample of it is decoded."""
    if channels < 1:
        raise AudioError(f"Could not read {name} as audio: it has no channels.")
    if not MIN_INPUT_RATE <= sample_rate <= MAX_INPUT_RATE:
        raise AudioError(
            f"Unsupported sample rate {sample_rate} Hz: expected between {MIN_INPUT_RATE} and {MAX_INPUT_RATE} Hz."
        )
    if channels * sample_rate > MAX_SAMPLES_PER_SECOND:
        who = name if name.startswith("the ") else f"the file {name}"
        raise AudioError(
            f"{who[:1].upper() + who[1:]} has {channels} channels at {sample_rate} Hz: more than "
            f"this server decodes (at most {MAX_SAMPLES_PER_SECOND:,} samples per second over all "
            "channels, e.g. stereo at 192 kHz or 8 channels at 48 kHz). Please send mono or stereo."
        )


@contextlib.contextmanager
def _sound_file(source: str | Path | bytes | bytearray):
    """(open ``soundfile.SoundFile``, a name for messages) of a path or a file's bytes, its header checked against
    the decode budget; every decoder error becomes one :class:`AudioError`. Only the file's name is ever shown."""
    if isinstance(source, bytes | bytearray):
        if len(source) == 0:
            raise AudioError("The uploaded file is empty (0 bytes).")
        handle, name = io.BytesIO(source), "the uploaded data"
    elif isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise AudioError(
                f"The audio file {path.name!r} is not on the server (it may have expired): please "
                "record or upload it again."
            )
        if path.stat().st_size == 0:
            raise AudioError(f"The file {path.name} is empty (0 bytes).")
        handle, name = str(path), path.name
    else:
        raise AudioError(f"Unsupported audio input of type {type(source).__name__}.")
    try:
        f = sf.SoundFile(handle)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioError(_unreadable(name)) from exc
    with f:
        check_budget(f.channels, f.samplerate, name)
        yield f, name


def _unreadable(name: str) -> str:
    return f"Could not read {name} as audio: it is corrupt or not an audio file (supported: wav, flac, ogg/opus, mp3)."


def _mono_blocks(f: sf.SoundFile, frames: int, name: str):
    """Yield float32 ``(n,)`` mono blocks of at most :data:`BLOCK_SECONDS` from ``f``'s position, ``frames`` in all
    at most: however long the header says the file is, no more is decoded and only one block of all channels is
    held at a time. A file damaged part-way ends at the damage."""
    block, first = max(1, int(BLOCK_SECONDS * f.samplerate)), True
    while frames > 0:
        try:
            data = f.read(frames=min(block, frames), dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            if first:
                raise AudioError(_unreadable(name)) from exc
            return  # a file cut short: what decoded before the damage is kept
        first = False
        if not len(data):
            return
        frames -= len(data)
        yield data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]


def _decode(source: AudioSource, max_seconds: float, offset_seconds: float) -> tuple[np.ndarray, int, float]:
    """Return (samples (T,) or (T, C), rate in Hz, whole input duration in s) reading at most what is needed: a
    file is streamed into mono within the decode budget; an in-memory array is checked against it too."""
    if isinstance(source, tuple):
        if len(source) != 2:
            raise AudioError("Expected audio as (sample_rate, samples).")
        rate, data = source
        try:
            rate = int(rate)
        except (TypeError, ValueError, OverflowError):
            raise AudioError(f"Invalid sample rate {rate!r}.") from None
        data = np.asarray(data)
        if data.ndim == 2 and data.shape[0] < data.shape[1] and data.shape[0] <= 8:
            data = data.T  # channels-first -> (T, C)
        if data.ndim not in (1, 2) or not (np.issubdtype(data.dtype, np.number)):
            raise AudioError("Expected audio samples as a 1-D (mono) or 2-D (samples x channels) number array.")
        if rate <= 0:
            raise AudioError(f"Invalid sample rate {rate} Hz.")
        check_budget(data.shape[1] if data.ndim == 2 else 1, rate)
        start = int(offset_seconds * rate)
        return data[start:], rate, len(data) / rate
    with _sound_file(source) as (f, name):
        rate, total = f.samplerate, f.frames
        start = int(offset_seconds * rate)
        if start:
            f.seek(min(start, total))
        blocks = list(_mono_blocks(f, int(math.ceil(max_seconds * rate)) + 1, name))
    data = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
    return data, rate, total / rate if rate else 0.0


def _to_mono_float(data: np.ndarray) -> np.ndarray:
    """(T,) or (T, C) integer/float samples -> float32 (T,) in [-1, 1] for integer input."""
    if np.issubdtype(data.dtype, np.integer):
        info = np.iinfo(data.dtype)
        if info.min == 0:  # unsigned PCM (8-bit wav) is offset by half the range
            data = (data.astype(np.float32) - (info.max + 1) / 2) / ((info.max + 1) / 2)
        else:
            data = data.astype(np.float32) / float(-info.min)
    else:
        data = data.astype(np.float32, copy=False)
    if data.ndim == 2:
        data = data.mean(axis=1)
    return np.ascontiguousarray(data, dtype=np.float32)


def _peak_frame_dbfs(samples: np.ndarray, sample_rate: int) -> float:
    """Level of the loudest 20-ms frame (dBFS; the whole signal when it is shorter than a frame)."""
    power, _ = _frame_power(samples, sample_rate)
    peak = float(power.max()) if len(power) else float(np.mean(samples.astype(np.float64) ** 2)) if len(samples) else 0
    return 10 * math.log10(peak) if peak > 0 else -math.inf
