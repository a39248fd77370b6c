"""Speed and memory, printed as numbers (``python -m s2m bench``); never asserted in tests.

* cold start to first answer: a fresh Python process imports the app, builds the engine (checkpoints + cached
  library index) and answers one spoken query;
* warm query latency per modality (p50 / p90 over repeated example queries), including decoding, features, ASR
  for text/fusion, projection, ranking and star placement;
* star placement alone; peak resident memory;
* the paper's query encoders (wav2vec2-base + DistilBERT, architecture-true random weights built offline from
  their configs) on the same example, and their time relative to s2m's whole audio query;
* with ``--load``: the app served on a loopback port, N clients × M queries through its API (errors, p50 / p95,
  server memory).
"""

from __future__ import annotations

import contextlib
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
COLD = """
import time; t0 = time.perf_counter()
import app
demo = app.create(warm=False); t1 = time.perf_counter()
app.ENGINE.search(audio=str(app.EXAMPLES[0]), modality="audio", framework=app.ENGINE.frameworks[0])
t2 = time.perf_counter()
print(f"{t1 - t0:.2f} {t2 - t0:.2f}")
"""


def warm_median_ms(call, repeats: int) -> float:
    """Milliseconds: the median of ``repeats`` timed calls of ``call()`` after one untimed warm-up call."""
    call()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def cold_start() -> tuple[float, float]:
    """(seconds to a built UI, seconds to the first answer) in a fresh interpreter."""
    out = subprocess.run([sys.executable, "-c", COLD], cwd=ROOT, capture_output=True, text=True, check=True)
    ui, first = map(float, out.stdout.strip().splitlines()[-1].split())
    return ui, first


def run(repeats: int = 20) -> str:
    from .search import Engine

    ui, first = cold_start()
    lines = [
        "| measure | value |",
        "|---|---|",
        f"| cold start: import + engine + UI built | {ui:.2f} s |",
        f"| cold start to first answer (audio query) | {first:.2f} s |",
    ]
    engine = Engine()
    examples = sorted((ROOT / "assets" / "examples").glob("*.wav"))
    framework = engine.frameworks[-1]
    audio_p50 = float("nan")
    for modality in engine.modalities:
        engine.search(audio=str(examples[0]), modality=modality, framework=framework)  # load encoders
        times = []
        for i in range(repeats):
            t = time.perf_counter()
            engine.search(audio=str(examples[i % len(examples)]), modality=modality, framework=framework)
            times.append(time.perf_counter() - t)
        q = statistics.quantiles(times, n=10)
        if modality == "audio":
            audio_p50 = statistics.median(times)
        lines.append(
            f"| warm query, {modality} ({framework}) p50 / p90 | {statistics.median(times) * 1000:.0f} / "
            f"{q[-1] * 1000:.0f} ms |"
        )
    index = next(iter(engine.indexes.values()))
    t = time.perf_counter()
    for i in range(1000):
        index.place(index.embeddings[i % len(index.embeddings)])
    per_call_ms = (time.perf_counter() - t) / 1000 * 1000
    lines.append(f"| star placement (mean of 1000) | {per_call_ms:.3f} ms |")
    clips = speech_clips(examples)
    lines += language_times(engine, framework, clips)
    asr = asr_times(clips)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the paper's encoders are loaded
    lines.append(f"| peak resident memory (this process, every model and encoder loaded) | {peak:.0f} MB |")
    lines += asr
    lines += paper_encoders(str(examples[0]), audio_p50)
    lines += encoder_times(str(examples[0]))
    lines.append(index_speed())
    return "\n".join(lines)


def index_speed(songs: int = 6, seconds: float = 180.0, encoder: str = "mood-dsp") -> str:
    """Row: indexing a user's songs (``songs`` generated ``seconds``-long FLAC files of the bundled library's clips
    played one after another) with the default music encoder, as a folder library does on first use: each song's
    window (:func:`s2m.features.music_windows`), then its features; no cache. Real-time factor = seconds of music
    per second of indexing."""
    import tempfile

    import soundfile as sf

    from .audio import MUSIC_SAMPLE_RATE, load_audio
    from .data import LIBRARY_DIR
    from .data.readers import read_folder
    from .features import music_windows, record_features

    clips = sorted(LIBRARY_DIR.rglob("*.mp3"))[:40]
    parts = [load_audio(str(p), MUSIC_SAMPLE_RATE, max_seconds=10.0, trim_silence=False).samples for p in clips]
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(songs):  # each song its own run of clips
            song = np.concatenate([parts[(i * 7 + k) % len(parts)] for k in range(int(seconds // 10))])
            path = Path(tmp) / "songs" / f"song{i}.flac"
            path.parent.mkdir(exist_ok=True)
            sf.write(path, song, MUSIC_SAMPLE_RATE)
        records = read_folder(Path(tmp) / "songs", labelled=False)
        t = time.perf_counter()
        windowed, _ = music_windows(records, cache_dir=None, progress=False)
        record_features(windowed, encoder, cache_dir=None)
        took = time.perf_counter() - t
    total = songs * seconds
    return (
        f"| index a user's songs ({songs} × {seconds / 60:.0f} min, `{encoder}`: window + features) | "
        f"{took:.1f} s, {total / took:.0f}× real time |"
    )


GERMAN = "Ich habe endlich den Job bekommen, den ich wollte, und ich freue mich so sehr darauf."


def speech_clips(examples: list[Path], seconds: float = 5.0) -> dict[str, np.ndarray]:
    """``seconds`` of speech per language, float32 at 16 kHz: English (the example voices joined), Korean (real
    voice actors of ``korean-emotion`` in :func:`s2m.data.corpora.data_dir`, when present; never committed) and, when
    espeak-ng is installed, German (synthesised)."""
    import shutil
    import tempfile

    from .audio import SPEECH_SAMPLE_RATE, load_audio
    from .data.corpora import data_dir

    def joined(paths) -> np.ndarray:
        return np.concatenate([load_audio(str(p)).samples for p in paths])[: int(seconds * SPEECH_SAMPLE_RATE)]

    clips = {"English": joined(examples)}
    korean = sorted((data_dir() / "korean-emotion").glob("*/*.flac"))
    if korean:
        clips["Korean (korean-emotion)"] = joined(korean[:3])
    if shutil.which("espeak-ng"):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "de.wav"
            subprocess.run(["espeak-ng", "-v", "de", "-w", str(path), GERMAN], check=True, capture_output=True)
            clips["German (espeak-ng)"] = joined([path, path])
    return clips


def language_times(engine, framework: str, clips: dict[str, np.ndarray], repeats: int = 5) -> list[str]:
    """Rows: warm p50 of a whole audio and fusion query (decoding, noise removal, features, speech recognition,
    projection, ranking) on each of :func:`speech_clips`'s ``clips``."""
    import tempfile

    import soundfile as sf

    from .audio import SPEECH_SAMPLE_RATE

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, x) in enumerate(clips.items()):
            path = str(Path(tmp) / f"query{i}.wav")
            sf.write(path, x, SPEECH_SAMPLE_RATE)
            ms = [
                warm_median_ms(lambda m=m, q=path: engine.search(audio=q, modality=m, framework=framework), repeats)
                for m in ("audio", "fusion")
                if m in engine.modalities
            ]
            heard = engine.search(audio=path, modality="fusion", framework=framework).language
            rows.append(
                f"| warm query, {len(x) / SPEECH_SAMPLE_RATE:.1f} s of {name} speech: audio / fusion p50 | "
                f"{' / '.join(f'{t:.0f}' for t in ms)} ms (heard: {heard}) |"
            )
    return rows


def asr_times(clips: dict[str, np.ndarray], repeats: int = 5) -> list[str]:
    """Rows: the app's recogniser on each of :func:`speech_clips`'s ``clips``, p50 of ``repeats`` (warm), with the
    language it heard; and each text encoder per sentence."""
    from .audio import SPEECH_SAMPLE_RATE
    from .encoders import load, recognise

    rows = []
    for name, x in clips.items():
        ms = warm_median_ms(lambda x=x: recognise(x, SPEECH_SAMPLE_RATE), repeats)
        rows.append(
            f"| speech recognition, {len(x) / SPEECH_SAMPLE_RATE:.1f} s of {name} speech, p50 | "
            f"{ms:.0f} ms (heard: {recognise(x, SPEECH_SAMPLE_RATE).language}) |"
        )
    for name in ("minilm", "e5-small"):
        encoder = load(name)
        ms = warm_median_ms(lambda e=encoder: e.embed(["I finally got the job I always wanted!"]), repeats)
        rows.append(f"| text encoder {name}, one sentence, p50 | {ms:.0f} ms |")
    return rows


def paper_encoders(example: str, audio_p50: float, repeats: int = 5) -> list[str]:
    """Rows timing the paper's wav2vec2-base and DistilBERT on ``example`` (random weights, the same architecture
    and size as the published ones: speed does not depend on the weights)."""
    import torch
    from transformers import DistilBertConfig, DistilBertModel, Wav2Vec2Config, Wav2Vec2Model

    from .audio import load_audio

    torch.manual_seed(0)
    clip = load_audio(example)
    wav2vec2, distilbert = Wav2Vec2Model(Wav2Vec2Config()).eval(), DistilBertModel(DistilBertConfig()).eval()
    audio = torch.from_numpy(clip.samples)[None]
    tokens = torch.randint(1000, 30000, (1, 12))  # a 12-token sentence
    times = {"wav2vec2-base": [], "DistilBERT": []}
    with torch.inference_mode():
        for _ in range(repeats + 1):
            t = time.perf_counter()
            wav2vec2(audio)
            times["wav2vec2-base"].append(time.perf_counter() - t)
            t = time.perf_counter()
            distilbert(tokens)
            times["DistilBERT"].append(time.perf_counter() - t)
    rows = []
    for name, ts in times.items():
        p50 = statistics.median(ts[1:])  # the first call warms up
        rows.append(
            f"| paper's {name} alone ({clip.seconds:.1f}-s example), p50 | {p50 * 1000:.0f} ms "
            f"({p50 / audio_p50:.1f}× s2m's whole audio query) |"
        )
    return rows


SPEECH_ENCODERS = ("egemaps", "whisper-tiny", "whisper-base", "whisper-base-layers", "egemaps+whisper-base")
MUSIC_ENCODERS = ("mood-dsp", "musicnn-msd", "musicnn-mtt")


def encoder_times(example: str, repeats: int = 5) -> list[str]:
    """Rows: each speech encoder's time per second of audio on ``example``, each music encoder's on a 10-s library clip
    (median of ``repeats``, warm)."""
    from .audio import load_audio
    from .encoders import load

    clip = load_audio(example)
    rows = []
    for name in SPEECH_ENCODERS:
        encoder = load(name)
        ms = warm_median_ms(lambda e=encoder: e.embed([clip.samples]), repeats)
        rows.append(
            f"| speech encoder {name} ({clip.seconds:.1f}-s example) | {ms:.0f} ms, "
            f"{ms / clip.seconds:.0f} ms per second of audio |"
        )
    from .audio import reduce_noise

    ms = warm_median_ms(lambda: reduce_noise(clip.whole, clip.sample_rate), repeats)
    seconds = len(clip.whole) / clip.sample_rate
    rows.append(
        f"| speech noise reduction before the encoder ({seconds:.1f}-s untrimmed example) | {ms:.0f} ms, "
        f"{ms / seconds:.0f} ms per second of audio |"
    )
    from .data import LIBRARY_DIR

    song = next(iter(sorted(LIBRARY_DIR.rglob("*.mp3"))))
    for name in MUSIC_ENCODERS:
        encoder = load(name)
        music = load_audio(str(song), encoder.sample_rate, max_seconds=10.0, trim_silence=False)
        ms = warm_median_ms(lambda e=encoder, x=music.samples: e.embed([x]), repeats)
        rows.append(
            f"| music encoder {name} (10-s library clip) | {ms:.0f} ms, "
            f"{ms / music.seconds:.0f} ms per second of audio |"
        )
    return rows


@contextlib.contextmanager
def served(port: int):
    """``app.py`` served on 127.0.0.1:``port`` in a subprocess while the block runs; yields (url, process)."""
    import os
    import urllib.request

    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port)}
    server = subprocess.Popen(
        [sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.time() + 180
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    raise RuntimeError("the app did not start") from None
                time.sleep(1)
        yield url, server
    finally:
        server.terminate()
        server.wait(timeout=30)


def load(rounds: tuple[tuple[int, int], ...] = ((20, 5), (50, 2)), port: int = 7871) -> str:
    """The app served on loopback (``python app.py`` in a subprocess) and, for each (clients, queries) of
    ``rounds``, that many threads each with its own ``gradio_client`` sending example voices to ``/search`` (audio,
    Triplet + SP) one after another: latency per query as the client sees it (queued: the app answers 2 at a
    time and keeps at most 32 waiting, so a larger burst is partly refused with "Queue is full" by design), and
    throughput = answered queries / wall-clock time of the round. Then the hostile inputs of :func:`hostile_inputs`,
    one at a time: how far each raised the server's peak resident memory above what it held just before."""
    import os
    import tempfile
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import Client, handle_file

    examples = sorted((ROOT / "assets" / "examples").glob("*.wav"))
    lines = [
        f"Measured on {os.cpu_count()} cores: app on 127.0.0.1 in a subprocess, each client a thread with its own "
        "gradio_client; latency as the client sees it (queue included).",
        "",
        "| clients × queries | answered | refused (queue full) / other errors | p50 / p95 latency | throughput |",
        "|---|---|---|---|---|",
    ]
    with served(port) as (url, server):
        for clients, queries in rounds:

            def one_client(i: int, queries: int = queries) -> list[tuple[float, str | None]]:
                client, out = Client(url, verbose=False), []
                for q in range(queries):
                    t = time.perf_counter()
                    try:
                        client.predict(
                            handle_file(str(examples[(i + q) % len(examples)])),
                            "",
                            "audio",
                            "Triplet + SP",
                            5,
                            api_name="/search",
                        )
                        out.append((time.perf_counter() - t, None))
                    except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
                        out.append((time.perf_counter() - t, "full" if "Queue is full" in str(exc) else "other"))
                return out

            t0 = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                results = [r for rs in pool.map(one_client, range(clients)) for r in rs]
            wall = time.perf_counter() - t0
            times = sorted(t for t, e in results if e is None)
            errors = [e for _, e in results if e]
            q = statistics.quantiles(times, n=20) if len(times) > 1 else times * 19
            lines.append(
                f"| {clients} × {queries} | {len(times)} of {len(results)} | {errors.count('full')} / "
                f"{errors.count('other')} | {statistics.median(times) * 1000:.0f} / {q[-1] * 1000:.0f} ms | "
                f"{len(times) / wall:.1f} queries/s |"
            )
        lines += ["", "| hostile input (one request) | answer | server peak memory above idle |", "|---|---|---|"]
        client = Client(url, verbose=False)
        with tempfile.TemporaryDirectory() as folder:
            for name, path in hostile_inputs(Path(folder)):
                before = _server_memory(server.pid, reset=True)
                try:
                    client.predict(handle_file(str(path)), "", "audio", "Triplet + SP", 5, api_name="/search")
                    answer = "answered"
                except Exception as exc:  # noqa: BLE001 - the refusal is what is measured
                    budget = "more than this server decodes" in str(exc)
                    answer = "refused: over the decode budget" if budget else f"refused: {str(exc)[-60:]}"
                lines.append(f"| {name} | {answer} | {max(0.0, _server_memory(server.pid) - before):.0f} MB |")
    return "\n".join(lines)


def hostile_inputs(folder: Path) -> list[tuple[str, Path]]:
    """Small files that decode to a lot: (description, path), written into ``folder``."""
    import numpy as np
    import soundfile as sf

    many, long = folder / "many.ogg", folder / "long.flac"
    with sf.SoundFile(many, "w", 192_000, 64, format="OGG") as f:
        f.write(np.zeros((192_000, 64), np.float32))
    with sf.SoundFile(long, "w", 192_000, 8, format="FLAC") as f:
        for _ in range(36):
            f.write(np.zeros((1_920_000, 8), np.int16))
    return [
        (f"64 channels at 192 kHz, Ogg ({many.stat().st_size // 1024} KB)", many),
        (f"6 min of 8 channels at 192 kHz, FLAC ({long.stat().st_size // 1024} KB)", long),
    ]


def _server_memory(pid: int, reset: bool = False) -> float:
    """MB: the process's resident memory, after resetting its peak (``reset``), or its peak since the last reset."""
    if reset:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    key = "VmRSS:" if reset else "VmHWM:"
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith(key))
    return int(line.split()[1]) / 1024


def browser(screenshot: Path | None = None, port: int = 7872) -> str:
    """The page as a class meets it, in headless Chromium (Debian's ``chromium``): seconds from opening the page to
    an enabled example button, and from pressing "Find music" to the first result; optionally a screenshot of the
    first screen (1400 × 1000) with an example's results, as the README shows."""
    import shutil

    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("bench --browser needs Chromium: apt-get install chromium")
    with served(port) as (url, _), sync_playwright() as p:
        chrome = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"])
        page = chrome.new_page(viewport={"width": 1400, "height": 1000})
        t = time.perf_counter()
        page.goto(url)
        page.get_by_text("happy", exact=True).first.wait_for(timeout=60_000)
        ready = time.perf_counter() - t
        page.get_by_text("happy", exact=True).first.click()
        page.wait_for_function("() => !document.querySelector('#submit').disabled", timeout=30_000)
        t = time.perf_counter()
        page.locator("#submit").click()
        page.get_by_text("#1 ·").first.wait_for(timeout=60_000)
        answered = time.perf_counter() - t
        if screenshot:
            page.wait_for_timeout(1_000)  # let the map finish drawing
            page.screenshot(path=str(screenshot))
        chrome.close()
    return "\n".join(
        [
            "| measure | value |",
            "|---|---|",
            f"| page load to interactive (example buttons shown) | {ready:.2f} s |",
            f"| click Find music to first result shown (example voice) | {answered:.2f} s |",
        ]
    )
