"""Speed and memory, printed as numbers (``python -m s2m bench``); never asserted in tests.

* cold start to first answer: a fresh Python process imports the app, builds the engine (checkpoints + cached
  library index) and answers one spoken query;
* warm query latency per modality (p50 / p90 over repeated example queries), including decoding, features, ASR
  for text/fusion, projection, ranking and star placement;
* star placement alone; peak resident memory.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLD = """
import time; t0 = time.perf_counter()
import app
demo = app.create(warm=False); t1 = time.perf_counter()
app.ENGINE.search(audio=str(app.EXAMPLES[0]), modality="audio", framework=app.ENGINE.frameworks[0])
t2 = time.perf_counter()
print(f"{t1 - t0:.2f} {t2 - t0:.2f}")
"""


def cold_start() -> tuple[float, float]:
    """(seconds to a built UI, seconds to the first answer) in a fresh interpreter."""
    out = subprocess.run([sys.executable, "-c", COLD], cwd=ROOT, capture_output=True, text=True, check=True)
    ui, first = map(float, out.stdout.strip().splitlines()[-1].split())
    return ui, first


def run(repeats: int = 20) -> str:
    from .search import Engine

    ui, first = cold_start()
    lines = ["| measure | value |", "|---|---|",
             f"| cold start: import + engine + UI built | {ui:.2f} s |",
             f"| cold start to first answer (audio query) | {first:.2f} s |"]  # fmt: skip
    engine = Engine()
    examples = sorted((ROOT / "assets" / "examples").glob("*.wav"))
    framework = engine.frameworks[-1]
    for modality in engine.modalities:
        engine.search(audio=str(examples[0]), modality=modality, framework=framework)  # load encoders
        times = []
        for i in range(repeats):
            t = time.perf_counter()
            engine.search(audio=str(examples[i % len(examples)]), modality=modality, framework=framework)
            times.append(time.perf_counter() - t)
        q = statistics.quantiles(times, n=10)
        lines.append(f"| warm query, {modality} ({framework}) p50 / p90 | {statistics.median(times) * 1000:.0f} / "
                     f"{q[-1] * 1000:.0f} ms |")  # fmt: skip
    index = next(iter(engine.indexes.values()))
    t = time.perf_counter()
    for i in range(1000):
        index.place(index.embeddings[i % len(index.embeddings)])
    per_call_ms = (time.perf_counter() - t) / 1000 * 1000
    lines.append(f"| star placement (mean of 1000) | {per_call_ms:.3f} ms |")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines.append(f"| peak resident memory (this process) | {peak:.0f} MB |")
    return "\n".join(lines)
