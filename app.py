"""s2m demo: speak, hear music that matches the emotion in your voice, and see where you land on the map.

    python app.py [--library FOLDER] [--host 0.0.0.0] [--port 7860] [--share]

The library (s2m/) does the work; this file is layout, input validation and wiring.
"""

# ruff: noqa: E402 - the command line is parsed before the heavy imports (an instant --help)
from __future__ import annotations

import argparse
import atexit
import contextlib
import functools
import logging
import math
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path


def arguments() -> argparse.ArgumentParser:
    """The command line (defined before the heavy imports below, so that ``--help`` and mistakes answer at once)."""
    parser = argparse.ArgumentParser(description="s2m demo: music for the emotion in your voice")
    parser.add_argument(
        "--library",
        default=None,
        help="the bundled library (default, or S2M_LIBRARY), a folder with metadata.csv, or a folder of audio",
    )
    parser.add_argument("--checkpoints", default=None, help="a folder of saved models (default: checkpoints/)")
    parser.add_argument("--host", default=None, help="e.g. 0.0.0.0 for a classroom (default: GRADIO_SERVER_NAME)")
    parser.add_argument("--port", type=int, default=None, help="default: GRADIO_SERVER_PORT or 7860")
    parser.add_argument("--share", action="store_true", help="also open a public gradio.live link")
    parser.add_argument(
        "--allow-folders",
        default=None,
        metavar="DIR",
        help="let visitors index music folders inside DIR (off for remote visitors otherwise)",
    )
    parser.add_argument(
        "--ssl-certfile",
        default=None,
        metavar="FILE",
        help="serve HTTPS with this certificate (browsers allow microphones only on HTTPS or "
        "localhost; README 'In a class' makes a self-signed one in one command)",
    )
    parser.add_argument("--ssl-keyfile", default=None, metavar="FILE", help="the certificate's private key")
    return parser


if __name__ == "__main__":
    arguments().parse_args()  # --help, or a mistake in the arguments, answers before torch and Gradio load

from s2m.audio import MUSIC_SAMPLE_RATE, SPEECH_MAX_SECONDS, AudioError, load_audio
from s2m.classroom import IDLE_SECONDS, ClassError, ClassPoint, Classroom, clean_name
from s2m.data import DatasetError
from s2m.data.library import LIBRARY_DIR
from s2m.data.readers import AUDIO_SUFFIXES
from s2m.data.uploads import MAX_UPLOAD_FILES, unpack_uploads
from s2m.emotions import words
from s2m.encoders import EncoderUnavailable
from s2m.encoders.whisper import LANGUAGE_NAMES
from s2m.heads import CheckpointError
from s2m.plots import library_map, va_plane
from s2m.search import CHECKPOINTS, FRAMEWORKS, MAX_TEXT_CHARS, Engine, SpeechPoint, query_problem

# This process's own temp folder, named before Gradio is imported: Gradio keeps uploads, example voices and result
# clips there, so another Gradio process (a second app, a test run) that cleans its own folder never deletes ours, and
# no file another process left in the shared default folder can be sent back to us as a query.
INSTANCE_DIR = Path(tempfile.mkdtemp(prefix="s2m-app-"))
os.environ["GRADIO_TEMP_DIR"] = str(INSTANCE_DIR / "gradio")
atexit.register(shutil.rmtree, INSTANCE_DIR, True)

import gradio as gr  # after GRADIO_TEMP_DIR

log = logging.getLogger("s2m.app")
ROOT = Path(__file__).resolve().parent
EXAMPLE_DIR = ROOT / "assets" / "examples"
EXAMPLES: list[Path] = []  # the example voices that decode (create() checks them; a damaged one is left out)
UNAVAILABLE: list[str] = []  # what start-up left out (damaged files), said on the page
MAX_K = 10
# what a search shows, in the order its handlers return it: notices, transcript, emotions, VA line, map, plane, raw
# result, then a player and a "why" per result slot (build() wires exactly these; rerun skips them all)
SEARCH_OUTPUTS = (
    "notices",
    "heard",
    "emotions",
    "where",
    "map",
    "plane",
    "raw",
    *[f"player {i}" for i in range(MAX_K)],
    *[f"why {i}" for i in range(MAX_K)],
)
MAX_HISTORY = 60  # a session's earlier queries kept on the class map
SPOKEN = {"auto": "Detect automatically", **dict(sorted(LANGUAGE_NAMES.items(), key=lambda kv: kv[1]))}  # code: name
COMPARED = ("triplet", "triplet_emosim")  # the side-by-side view: what the EmoSim regulariser changes
MAX_UPLOAD = "50mb"  # larger uploads are refused before they are stored
SESSION_SECONDS = 3600  # per-session state and uploaded files are deleted after this long
ON_SPACE = bool(os.environ.get("SPACE_ID"))
RECORDING_ONLY = "The recording must be an uploaded audio file."
FILES_ONLY = "Send the music as a list of uploaded files."
USER_ERRORS = (AudioError, DatasetError, EncoderUnavailable, ClassError)  # their messages: for whoever caused them
CLASSES = Classroom()  # this server's live class sessions (memory only)
CLASS_POLL_SECONDS = 2.0  # how often the teacher's class map looks for new points
# event settings: searches share one queue of two workers (a model query is CPU-bound); indexing a folder runs alone
SEARCHING = {"api_visibility": "private", "concurrency_limit": 2, "concurrency_id": "search"}
INDEXING = {"api_visibility": "private", "concurrency_limit": 1, "concurrency_id": "index-folder"}
DECODES = threading.BoundedSemaphore(2)  # validators decode at most two inputs at once, however many requests join
_PATH = re.compile(r"(?<![\w.])(?:/[^\s'\"`,;:()<>|]+)+")  # an absolute path (not "ogg/opus")


def public(message: str) -> str:
    """A message with every file-system path cut to its last name: a visitor never learns the server's folders."""
    return _PATH.sub(lambda m: Path(m.group()).name or "(a folder)", str(message)).strip("'\"")


def guarded(handler):
    """An event handler whose errors reach the page as a clear message: the user's own mistakes in their words (no
    server path), anything else as "something went wrong on our side" with an id that is also in the server log."""

    @functools.wraps(handler)
    def run(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except gr.Error:
            raise
        except USER_ERRORS as exc:
            raise gr.Error(public(str(exc)), title="Could not do that") from None
        except Exception:
            ident = secrets.token_hex(4)
            log.exception("internal error %s in %s", ident, handler.__name__)
            raise gr.Error(
                f"Something went wrong on our side (id {ident}). Please try again; if it keeps happening, "
                "tell whoever runs this page the id.",
                title="Sorry",
            ) from None

    return run


# Browsers clean up microphone audio by default (echo cancellation, noise suppression, automatic gain), which
# flattens exactly the loudness cues an emotion model reads; ask for the raw signal. Also: one clip plays at a time.
HEAD = """<style>
/* A validation message stands above the input it concerns instead of covering it (Gradio overlays it; its status
   wrapper has the class no-click exactly while a validation message shows; :has() would slow every page update). */
.wrap.no-click { position: relative !important; inset: auto !important; height: auto !important;
  min-height: 0 !important; background: none !important; margin-bottom: 6px; }
.wrap.no-click > .validation-error { position: relative !important; inset: auto !important; }
</style>
<script>
(() => {
  const md = navigator.mediaDevices;
  if (md && md.getUserMedia && !md.__s2mRaw) {
    const original = md.getUserMedia.bind(md);
    md.getUserMedia = (constraints) => {
      if (constraints && constraints.audio) {
        const raw = {echoCancellation: false, noiseSuppression: false, autoGainControl: false};
        constraints = {...constraints, audio: constraints.audio === true ? raw : {...constraints.audio, ...raw}};
      }
      return original(constraints);
    };
    md.__s2mRaw = true;
  }
  // One clip at a time. Gradio's players keep their <audio> inside shadow roots, where a "play" listener on the
  // document never hears them, so every media element's play() pauses the one that played before it.
  const play = HTMLMediaElement.prototype.play;
  if (!play.__s2mOne) {
    let current = null;
    HTMLMediaElement.prototype.play = function (...args) {
      if (current && current !== this && !current.paused) current.pause();
      current = this;
      return play.apply(this, args);
    };
    HTMLMediaElement.prototype.play.__s2mOne = true;
  }
})();
</script>"""

INTRO = """# s2m: music for the emotion in your voice
**1.** Type your name. **2.** Press the microphone, say something with feeling (*"I finally got the job!"*), stop.
**3.** Press **Find music**, or click an example voice. s2m reads *how* you speak (text and fusion models: also
*what* you say) and plays the music nearest to it on the map. Microphones need `localhost` or HTTPS."""

# after a search, a page whose answer is off screen (a phone: the answer column comes after the controls) scrolls to it
SCROLL_TO_ANSWER = """(...args) => {
  const answer = document.querySelector('#heard');
  const box = answer && answer.getBoundingClientRect();
  if (box && (box.top > window.innerHeight || box.bottom < 0)) answer.scrollIntoView({behavior: 'smooth'});
  return args;
}"""

MODALITY_WORDS = {
    "audio": "**audio**: *how* you speak (pitch, loudness, tempo, voice quality), read from a speech encoder's "
    "numbers by a simple classifier (*logistic regression*) that learned from actors in four languages",
    "text": "**text**: *what* you say (the words of your transcript or of a typed sentence)",
    "fusion": "**fusion**: both; the words weigh in only as far as they tell an emotion (*late fusion*)",
}
FRAMEWORK_WORDS = {
    "triplet": "**Triplet**: speech is pulled towards music of the matching mood and pushed away from other moods "
    "(*triplet loss*)",
    "triplet_sp": "**Triplet + SP**: … and the words for the emotions (*happy*, *sad*, …) are placed in the same "
    "space too, which keeps its structure (*structure-preserving loss*)",
    "triplet_emosim": "**Triplet + EmoSim**: … and how close two emotions are on the valence–arousal plane shapes how "
    "close they lie in the space, so a near miss (*calm* for *sad*) beats a far one (*EmoSim regulariser*, the "
    "paper's contribution; compare it with Triplet in the third tab)",
    "triplet_sp_emosim": "**Triplet + SP + EmoSim**: both of the above",
}


def about(engine: Engine) -> str:
    """The "About the model" panel: plain words with the precise term beside them, and how the speech emotions
    map onto the library's music moods (from the default model's training record)."""
    model = engine.model(*engine.reference_key)
    mapping = model.config.readout.mapping
    rows = "\n".join(f"| {speech} | {words(music)} |" for speech, music in mapping.items())
    return (
        "**What the models listen to**\n\n"
        + "\n".join(f"* {MODALITY_WORDS[m]}" for m in engine.modalities)
        + "\n\n**How they were trained** (*training framework*; the default is the best on held-out speakers)\n\n"
        + "\n".join(f"* {FRAMEWORK_WORDS[f]}" for f in engine.frameworks if f in FRAMEWORK_WORDS)
        + "\n\n**The picture.** Every clip and every voice becomes a point in one *joint space* (64 numbers). The map "
        "squeezes it onto a page (*UMAP*); the valence–arousal plane puts each mood where people rate it: "
        "unpleasant → pleasant (*valence*) and calm → energetic (*arousal*), from people's ratings of the words "
        "(*NRC-VAD lexicon*; the nine music feelings from *Warriner et al. 2013*); a song sits where the feelings its "
        "listeners marked average out. "
        "× marks each speech emotion (on the plane at its own rating, on the map where a voice heard as that emotion "
        "lands: among the music of its mood), ★ is you, ☆ are earlier queries of this page.\n\n"
        "**Speech emotions and music moods.** The speech data has its emotion words; the music is labelled by what "
        "most of its listeners felt (*GEMS*, in the Emotify game). Each speech emotion is matched with the music mood "
        "nearest to it on the valence–arousal plane:\n\n"
        f"| speech emotion | music mood |\n|---|---|\n{rows}\n\n"
        "**Similarity** is the *cosine* between your point and a clip's (1 = same direction). " + _learned_from(model)
    )


def _learned_from(model) -> str:
    """One sentence on the speech a model learned from (its checkpoint's record of the corpora it saw)."""
    corpora = model.config.training.get("corpora") or {}
    if not corpora:
        return "A voice, language or recording far from the ones the models learned from may be read wrongly."
    speakers = sum(int(c.get("speakers", 0)) for c in corpora.values())
    return (
        f"The voice models learned from {speakers} actors in {len(corpora)} collections of emotional speech "
        f"({', '.join(corpora)}); a voice, language or recording far from theirs may be read wrongly."
    )


def _engine(state: Engine | None) -> Engine:
    return state or ENGINE


def _served() -> Path:
    """The checkpoints this server runs (``--checkpoints``): a session's own library is ranked by them too."""
    return ENGINE.checkpoints if ENGINE else CHECKPOINTS


def framework_name(key: str) -> str:
    """The name a framework key is shown by ("triplet_emosim" -> "Triplet + EmoSim")."""
    return next(k for k, v in FRAMEWORKS.items() if v == key)


def _framework_key(label: str) -> str:
    return FRAMEWORKS.get(label, label)


class Shutdown:
    """Graceful stop on SIGTERM: refuse new searches, let those in flight finish (at most ``grace`` seconds)."""

    def __init__(self, grace: float = 20.0):
        self.grace, self.stopping, self._active, self._lock = grace, threading.Event(), 0, threading.Lock()

    @contextlib.contextmanager
    def job(self):
        with self._lock:
            self._active += 1
        try:
            yield
        finally:
            with self._lock:
                self._active -= 1

    def drain(self) -> int:
        """Stop taking new searches and wait for the running ones; returns how many were still running."""
        self.stopping.set()
        deadline = time.monotonic() + self.grace
        while self._active and time.monotonic() < deadline:
            time.sleep(0.05)
        return self._active


SHUTDOWN = Shutdown()


@guarded
def search(audio, text, modality, framework, top_k, calibration, engine_state, history=None, language="auto"):
    """The retrieval behind the UI and the `search` API endpoint (``language``: what the speaker speaks, ISO 639-1,
    or "auto" to detect it)."""
    with SHUTDOWN.job():
        return _search(audio, text, modality, framework, top_k, calibration, engine_state, history, language)


def _run(engine: Engine, audio, text, modality: str, framework: str, top_k, calibration, language="auto"):
    """One search; (result, notes). An example voice is read as it comes, like any voice. Errors a user can fix
    become a visible message."""
    calibrated = calibration is not None and modality != "text"
    notes = ["Read relative to your neutral voice (calibrated)."] if calibrated else []
    try:
        result = engine.search(
            audio=audio or None,
            text=text,
            modality=modality,
            framework=framework,
            top_k=int(top_k),
            reference=calibration,
            language=language,
        )
    except USER_ERRORS as exc:
        raise gr.Error(public(str(exc)), title="Could not search") from None
    return result, notes


def _maps(engine: Engine, modality: str, framework: str, result=None, history=None):
    """The model's map and valence–arousal plane with its speech emotions, the session's earlier queries and
    ``result``'s star."""
    key = (modality, _framework_key(framework))
    index, speech = engine.indexes[key], engine.speech_points(*key)
    earlier = [SpeechPoint(**h) for h in history or [] if _entry_problem(h) is None]
    return library_map(index, result, speech, earlier), va_plane(index, result, speech, earlier)


def _search(audio, text, modality, framework, top_k, calibration, engine_state, history=None, language="auto"):
    engine = _engine(engine_state)
    result, notes = _run(engine, audio, text, modality, _framework_key(framework), top_k, calibration, language)
    players, whys = _result_slots(result.hits)
    typed = bool((text or "").strip())
    if result.transcript and typed:
        heard = f"**You typed:** {result.transcript}"
    elif result.transcript:
        heard = f"**Transcript ({LANGUAGE_NAMES.get(result.language, result.language)}):** {result.transcript}"
    else:
        heard = "*No transcript (audio-only model).*"
    read_from = {"audio": "your voice", "text": "your words", "fusion": "your voice and words"}[modality]
    where = (
        f"**Valence** {result.valence:.2f} · **Arousal** {result.arousal:.2f}: where the ★ sits on the plane. "
        "Your songs (◯) are the nearest on the map, so on the plane they can lie away from the ★."
    )
    notices = "\n".join([f"⚠️ {n}" for n in result.notices] + [f"ℹ️ {n}" for n in notes])
    emotions = gr.Label(result.emotions, label=f"Emotion in {read_from}")
    return [
        notices,
        heard,
        emotions,
        where,
        *_maps(engine, modality, framework, result, history),
        result.to_dict(),
        *players,
        *whys,
    ]


@guarded
def remember(result, name, history):
    """After a search from the Find-music button: the query joins the session's class map as a labelled marker
    ("Ana — happy"); the newest MAX_HISTORY are kept. The name is cleaned as a class session's
    (:func:`s2m.classroom.clean_name`: no markup characters, at most 30 characters)."""
    history = [h for h in history or [] if _entry_problem(h) is None] if isinstance(history, list) else []
    if result is None:
        return history
    emotions = result.get("emotions") if isinstance(result, dict) else None
    if (
        not isinstance(emotions, dict)
        or not emotions
        or not all(isinstance(k, str) and _finite(v) for k, v in emotions.items())
    ):
        raise gr.Error("Nothing to put on the class map: the result has no emotions.")
    who = clean_name(name) or f"query {len(history) + 1}"
    top = max(emotions, key=emotions.get)
    entry = {"label": f"{who} — {top}"[:80], **{k: result.get(k) for k in ("x", "y", "valence", "arousal")}}
    problem = _entry_problem(entry)
    if problem:
        raise gr.Error(f"Nothing to put on the class map: {problem}")
    return [*history, entry][-MAX_HISTORY:]


def _finite(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _entry_problem(entry) -> str | None:
    """What is wrong with one class-map entry ({label, x, y, valence, arousal}), or None."""
    if not isinstance(entry, dict) or set(entry) != {"label", "x", "y", "valence", "arousal"}:
        return "an entry needs exactly label, x, y, valence and arousal."
    if not isinstance(entry["label"], str) or len(entry["label"]) > 80:
        return "its label must be text of at most 80 characters."
    if not all(_finite(entry[k]) for k in ("x", "y", "valence", "arousal")):
        return "x, y, valence and arousal must be finite numbers."
    return None


@guarded
def clear_history(modality, framework, engine_state):
    """A fresh start for the next student on this page: no earlier queries, no reading, no results, no star.
    Outputs: history, last query, then the search's outputs (notices, transcript, emotions, VA, map, plane, raw
    result, players, whys)."""
    engine = _engine(engine_state)
    problem = _model_problem(engine, modality, framework)
    if problem:
        raise gr.Error(problem)
    return [[], "", *_emptied(engine, modality, framework)]


def _emptied(
    engine: Engine, modality, framework, history=None, notice: str = "", label: str = "Emotion in your voice"
) -> list:
    """The SEARCH_OUTPUTS of no result: ``notice``, no transcript, reading, results or star; the pictures with
    ``history``."""
    players, whys = _result_slots([])
    return [
        notice,
        "",
        gr.Label(None, label=label),
        "",
        *_maps(engine, modality, framework, None, history),
        None,
        *players,
        *whys,
    ]


@guarded
def compare(audio, text, modality, top_k, calibration, engine_state, language="auto"):
    """The same query through Triplet and Triplet + EmoSim, side by side: two maps whose titles list the moods of
    each model's results."""
    engine = _engine(engine_state)
    problem = next((p for p in _problems(engine, audio, text, modality, "Triplet", top_k, language) if p), None)
    if problem:
        raise gr.Error(problem)
    missing = [f for f in COMPARED if (modality, f) not in engine.models]
    if missing:
        raise gr.Error(f"No {modality} model for {', '.join(missing)}: this comparison needs both frameworks.")
    figures, results = [], []
    with SHUTDOWN.job():
        for framework in COMPARED:
            result, _ = _run(engine, audio, text, modality, framework, top_k, calibration, language)
            figure = _maps(engine, modality, framework, result)[0]
            name = framework_name(framework)
            top = max(result.emotions, key=result.emotions.get)
            moods = ", ".join(words(h.mood) for h in result.hits)
            figure.update_layout(title=f"{name}: reads {top}<br><sub>results: {moods}</sub>", height=520)
            figures.append(figure)
            results.append(result)
    return [*figures, _difference(*results)]


def _difference(first, second) -> str:
    """One paragraph on how far apart two models' answers to the same query are: their readings and how many
    songs they share."""
    names = [framework_name(r.framework) for r in (first, second)]
    tops = [max(r.emotions, key=r.emotions.get) for r in (first, second)]
    ids = [[h.clip_id for h in r.hits] for r in (first, second)]
    shared = len(set(ids[0]) & set(ids[1]))
    read = (
        f"Both read **{tops[0]}**"
        if tops[0] == tops[1]
        else f"{names[0]} reads **{tops[0]}**, {names[1]} reads **{tops[1]}**"
    )
    moved = (abs(first.valence - second.valence) + abs(first.arousal - second.arousal)) / 2
    return (
        f"{read}; they share **{shared} of {len(ids[0])}** songs"
        + (" (in the same order)" if ids[0] == ids[1] else "")
        + f", and their stars lie {moved:.2f} apart on the valence–arousal plane (0 = same place, 1 = opposite "
        "corners). The rings on each map are that model's songs."
    )


def _result_slots(hits) -> tuple[list, list]:
    """The MAX_K result players and their "why" lines: one per hit, the rest hidden."""
    players, whys = [], []
    for i in range(MAX_K):
        if i < len(hits):
            h = hits[i]
            value = h.path if _servable(h.path) and not h.window else _decoded(h.path, h.start)
            name = f"{h.title} — {h.artist}" if h.title and h.artist else words(h.mood)
            players.append(gr.Audio(value=value, label=f"#{i + 1} · {name}", visible=True))
            licence = f" <sub>Licence: {h.license}.</sub>" if h.license else ""
            whys.append(
                gr.Markdown(
                    f"{h.why}{licence}\n<details><summary>the numbers</summary>{h.clip_id}: {h.detail}</details>",
                    visible=True,
                )
            )
        else:
            players.append(gr.Audio(value=None, visible=False))
            whys.append(gr.Markdown("", visible=False))
    return players, whys


def _model_problem(engine: Engine, modality, framework) -> str | None:
    """What is wrong with a (model, framework) choice as a client sent it, or None."""
    if not isinstance(modality, str) or modality not in engine.modalities:
        return f"Unknown model {_shown(modality)}: choose one of {', '.join(engine.modalities)}."
    if not isinstance(framework, str) or _framework_key(framework) not in engine.frameworks:
        labels = [k for k, v in FRAMEWORKS.items() if v in engine.frameworks]
        return f"Unknown framework {_shown(framework)}: choose one of {', '.join(labels)}."
    return None


def _shown(value) -> str:
    """A value a client sent, as a message may show it (short)."""
    text = repr(value) if isinstance(value, str | int | float | type(None)) else f"of type {type(value).__name__}"
    return text if len(text) <= 40 else text[:37] + "…"


def _problems(engine: Engine, audio, text, modality, framework, top_k, language) -> list[str | None]:
    """One problem (or None) per query input: audio, text, modality, framework, top_k, language. Types and ranges
    first; the audio is decoded (at most two at once, :data:`DECODES`) only when everything else is in order."""
    problems = [None] * 6
    choice = _model_problem(engine, modality, framework)
    if choice:  # on the model input when the model is unknown, else on the framework input
        problems[3 if isinstance(modality, str) and modality in engine.modalities else 2] = choice
    if not _finite(top_k) or top_k != int(top_k) or not 1 <= top_k <= MAX_K:
        problems[4] = f"Clips to show must be a whole number from 1 to {MAX_K}."
    if text is not None and not isinstance(text, str):
        problems[1] = "The text must be a string."
    elif text and len(text) > MAX_TEXT_CHARS:
        problems[1] = f"The text is {len(text)} characters long; at most {MAX_TEXT_CHARS} are read."
    elif text and not text.encode("utf-8", "replace").decode("utf-8") == text:
        problems[1] = "The text contains characters that are not valid Unicode text."
    if not isinstance(language, str) or language not in SPOKEN:
        problems[5] = f"Unknown language {_shown(language)}: choose one from the list."
    if audio is not None and not isinstance(audio, str):
        problems[0] = RECORDING_ONLY
    if not any(problems):
        problems[0] = query_problem(bool(audio), text, modality)
    if not any(problems) and audio:
        with DECODES:
            try:
                load_audio(audio, max_seconds=SPEECH_MAX_SECONDS)  # within the decode budget, streamed
            except AudioError as exc:
                problems[0] = public(str(exc))
    return problems


def check_query(audio, text, modality, framework, top_k, calibration, engine_state, history=None, language="auto"):
    """The checks before the search: a problem is shown on the input it concerns, and the outputs keep showing
    the last answer (a failed search would mark every output as an error)."""
    slots = (0, 1, 2, 3, 4, 8)  # where audio, text, modality, framework, top_k and language sit among the inputs
    problems = [None] * len(check_query.inputs)
    if SHUTDOWN.stopping.is_set():
        problems[0] = "The server is restarting: please try again in a minute."
    else:
        try:
            found = _problems(_engine(engine_state), audio, text, modality, framework, top_k, language)
        except Exception:  # a validator never fails silently: the visitor gets an id, the log the traceback
            ident = secrets.token_hex(4)
            log.exception("internal error %s while checking a query", ident)
            found = [f"Something went wrong on our side (id {ident}). Please try again."] + [None] * 5
        for slot, problem in zip(slots, found, strict=True):
            problems[slot] = problem
    return [gr.validate(not p, p or "") for p in problems]


check_query.inputs = (
    "audio",
    "text",
    "modality",
    "framework",
    "top_k",
    "calibration",
    "engine_state",
    "history",
    "language",
)


def check_rerun(
    audio, text, modality, framework, top_k, calibration, engine_state, history=None, language="auto", last=None
):
    """Like :func:`check_query`, but switching model before any query is fine (nothing happens), and so is a known
    model the current query does not suit (:func:`rerun` clears the results and says why). ``last``: the extra
    input of a re-run (which query was searched last), never a problem."""
    engine = _engine(engine_state)
    known = _model_problem(engine, modality, framework) is None
    quiet = not audio and not (isinstance(text, str) and text.strip())
    if quiet or known and isinstance(text, str | None) and query_problem(bool(audio), text, modality):
        return [gr.validate(True, "")] * (len(check_query.inputs) + 1)
    checked = check_query(audio, text, modality, framework, top_k, calibration, engine_state, history, language)
    return [*checked, gr.validate(True, "")]


def query_id(audio, text) -> str:
    """Which recording or text a search was for (a short hash of the audio input's value and the typed words)."""
    import hashlib

    return hashlib.sha256(f"{audio or ''}\n{(text or '').strip()}".encode()).hexdigest()[:16]


def relocate(result, history, last, audio, text):
    """After a model switch re-ran the last searched recording: its class-map entry moves to the new model's
    reading (one star per recording, never a second one for the same voice). Anything else: unchanged."""
    history = history if isinstance(history, list) else []
    if not history or last != query_id(audio, text) or _entry_problem(history[-1]) is not None:
        return history
    moved = remember(result, history[-1]["label"].split(" — ")[0], history[:-1])
    return moved if len(moved) == len(history) else history


@guarded
def rerun(audio, text, modality, framework, top_k, calibration, engine_state, history=None, language="auto", last=None):
    """Switching model re-runs the last query without re-recording; nothing to do before the first query. When the
    query does not suit the new model (typed text, then the audio model), the old results are cleared, not left
    under the new model's name. The re-run recording's own entry is left off the class map it draws (the star
    shows it; :func:`relocate` then moves the entry)."""
    if not audio and not (text or "").strip():
        return [gr.skip()] * len(SEARCH_OUTPUTS)
    if isinstance(history, list) and history and last == query_id(audio, text):
        history = history[:-1]
    problem = query_problem(bool(audio), text, modality)
    if problem:
        return _emptied(_engine(engine_state), modality, framework, history, f"⚠️ {problem}", "Emotion")
    return search(audio, text, modality, framework, top_k, calibration, engine_state, history, language)


# --- A class session: students add their readings to the teacher's class map (s2m.classroom) ---------------------


def _page_link(page, code: str) -> str:
    """The link students open: this page's address as the teacher's browser sees it (so it is right behind a proxy,
    a --share tunnel or a Space), with ``?class=CODE``."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(page if isinstance(page, str) and len(page) <= 500 else "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise gr.Error("Could not read this page's address for the class link; reload the page and try again.")
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", f"class={code}", ""))


def class_card(code: str, link: str) -> str:
    """The teacher's card: the code in large letters, the link, and a QR code of the link (SVG, drawn here)."""
    import html

    import segno

    qr = segno.make(link, error="m").svg_data_uri(scale=5, border=2)
    return (
        f'<div id="class-card"><p style="font-size:2.4em;letter-spacing:0.15em;margin:0"><b>{code}</b></p>'
        f'<p>Students: open <a href="{html.escape(link)}">{html.escape(link)}</a> or type the code.</p>'
        f'<img src="{qr}" alt="QR code of the class link" width="200" height="200"></div>'
    )


def _model_tag(modality: str, framework_key: str) -> str:
    """Which model's map a class point lies on ("audio/triplet")."""
    return f"{modality}/{framework_key}"


def _member(code: str) -> dict:
    return {"code": code, "id": secrets.token_hex(8)}


def _running(teacher) -> bool:
    """Whether ``teacher`` (a browser's saved class) names a live class of this server with its right key."""
    if not isinstance(teacher, dict) or not isinstance(teacher.get("code"), str):
        return False
    try:
        CLASSES.version(teacher["code"], teacher.get("key"))
    except ClassError:
        return False
    return True


@guarded
def start_class(page, teacher):
    """A teacher starts a class (or sees the one this page already runs): (teacher, member, card, controls,
    timer, tabs, last drawn version, status). The teacher's own searches join the class too."""
    code, key = (teacher["code"], teacher["key"]) if _running(teacher) else CLASSES.start()
    link = _page_link(page, code)
    hours = IDLE_SECONDS // 3600
    status = (
        f"Class **{code}** is running. Readings appear on the **Class** tab; the class ends when you end it "
        f"or {hours} hours after its last reading."
    )
    return (
        {"code": code, "key": key},
        _member(code),
        class_card(code, link),
        gr.Row(visible=True),
        gr.Timer(active=True),
        gr.Tabs(selected="class"),
        -1,
        status,
    )


@guarded
def join_class(code, member):
    """A student joins with the code the teacher shows: (member, status, name box)."""
    code = CLASSES.join(code if isinstance(code, str) else "")
    if isinstance(member, dict) and member.get("code") == code:
        return member, *_joined(code)
    return _member(code), *_joined(code)


def _joined(code: str) -> tuple[str, gr.Textbox]:
    return (
        f"✅ You are in class **{code}**: each reading of your voice (your name and the emotion, never the "
        "recording) appears on your teacher's class map.",
        gr.Textbox(label=f"Your name (shown on class {code}'s map)"),
    )


def open_page(page, teacher, request: gr.Request):
    """When a page opens: a teacher's browser that runs a class (a reload) gets its class tab back; a link with
    ``?class=CODE`` joins that class. Outputs: code box, member, status, name box, accordion, then the teacher's
    state, card, controls, timer and drawn version."""
    if teacher is not None and not _running(teacher):  # the class ended meanwhile (or the server restarted)
        return [gr.skip()] * 5 + [None, "", gr.Row(visible=False), gr.Timer(active=False), -1]
    if teacher is not None:
        running = start_class(page, teacher)
        return [
            gr.skip(),
            running[1],
            running[7],
            gr.skip(),
            gr.Accordion(open=True),
            running[0],
            *running[2:5],
            running[6],
        ]
    code = (getattr(request, "query_params", None) or {}).get("class") if request else None
    if not code:
        return [gr.skip()] * 10
    try:
        code = CLASSES.join(code)
    except ClassError as exc:
        return [gr.skip(), None, f"⚠️ {exc}", gr.skip(), gr.Accordion(open=True), *[gr.skip()] * 5]
    return [code, _member(code), *_joined(code), gr.Accordion(open=True), *[gr.skip()] * 5]


@guarded
def share(result, name, member, recording, modality, framework, engine_state):
    """After a search: a student in a class sends the reading (name, emotion, positions; no audio, no words) to the
    class map; re-reading the same recording with another model moves its point. A class that ended is said,
    and the search itself stands."""
    if not isinstance(member, dict) or not member.get("code") or not isinstance(result, dict):
        return gr.skip()
    emotions = result.get("emotions") or {}
    reading = max(emotions, key=emotions.get) if isinstance(emotions, dict) and emotions else ""
    model = "" if engine_state is not None else _model_tag(modality, _framework_key(framework))  # own library: own map
    point = ClassPoint(
        name=clean_name(name) or "someone",
        reading=reading,
        model=model,
        member=member["id"],
        recording=str(recording or ""),
        **{k: result.get(k) for k in ("valence", "arousal", "x", "y")},
    )
    try:
        CLASSES.add(member["code"], point)
    except ClassError as exc:
        return f"⚠️ Not on the class map: {exc}"
    return f"✅ Sent to class **{member['code']}**: {point.name} — {reading}."


def _class_pictures(teacher, seen, hide, modality, framework, engine_state):
    """The teacher's class tab: (VA plane, map, roster, version drawn); every output skipped when nothing changed."""
    if not isinstance(teacher, dict) or not teacher.get("code"):
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    code, key = teacher["code"], teacher.get("key")
    try:
        version = CLASSES.version(code, key)
    except ClassError as exc:
        return gr.skip(), gr.skip(), f"⚠️ {exc}", gr.skip()
    if version == seen:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    engine = _engine(engine_state)
    problem = _model_problem(engine, modality, framework)
    if problem:
        raise gr.Error(problem)
    points = CLASSES.points(code, key)
    framework = _framework_key(framework)
    marks = [
        SpeechPoint(p.reading if hide else f"{p.name} — {p.reading}", p.x, p.y, p.valence, p.arousal) for p in points
    ]
    on_map = [m for m, p in zip(marks, points, strict=True) if p.model == _model_tag(modality, framework)]
    index, speech = engine.indexes[(modality, framework)], engine.speech_points(modality, framework)
    plane = va_plane(index, None, speech, marks, "the class (☆)", f"Class {code} on the valence–arousal plane")
    picture = library_map(
        index, None, speech, on_map, "the class (☆)", f"Class {code} on the map of the {modality} model"
    )
    counts = Counter(p.reading for p in points).most_common()
    people = len({p.member for p in points})
    roster = f"**Class {code}**: {len(points)} reading(s) from {people} device(s)" + (
        ": " + " · ".join(f"{n} {e}" for e, n in counts) if counts else ". Waiting for the first voice…"
    )
    if len(on_map) < len(points):
        roster += (
            f"\n\n{len(points) - len(on_map)} reading(s) by another model are on the valence–arousal plane "
            "only (each model has its own map)."
        )
    return plane, picture, roster, version


@guarded
def class_view(teacher, seen, hide, modality, framework, engine_state):
    """The timer's look at the class: redraws only when a point came, moved or went."""
    return _class_pictures(teacher, seen, hide, modality, framework, engine_state)


@guarded
def class_redraw(teacher, hide, modality, framework, engine_state):
    """Redraw the class tab now (names hidden or shown, another model picked)."""
    return _class_pictures(teacher, -1, hide, modality, framework, engine_state)


@guarded
def clear_class(teacher, hide, modality, framework, engine_state):
    """The teacher empties the class map; the class goes on."""
    if isinstance(teacher, dict) and teacher.get("code"):
        CLASSES.clear(teacher["code"], teacher.get("key"))
    return _class_pictures(teacher, -1, hide, modality, framework, engine_state)


@guarded
def end_class(teacher, member):
    """The teacher ends the class: its points are forgotten and its code stops working. (teacher, member, card,
    controls, timer, roster, status)"""
    if isinstance(teacher, dict) and isinstance(teacher.get("code"), str):
        try:
            CLASSES.join(teacher["code"])
        except ClassError:
            pass  # ended already (idle): nothing left to end
        else:
            CLASSES.end(teacher["code"], teacher.get("key"))  # a live class: only its own key ends it
        if isinstance(member, dict) and member.get("code") == teacher["code"]:
            member = None
    return (
        None,
        member,
        "",
        gr.Row(visible=False),
        gr.Timer(active=False),
        "The class has ended; its map is forgotten.",
        "Class ended. Start a new one for the next lesson.",
    )


def _decoded(path: str, start: float = 0.0):
    """(rate, samples) of the 10-s clip from ``start`` (s) of a music file, for a player."""
    clip = load_audio(
        path, MUSIC_SAMPLE_RATE, min_seconds=0.1, max_seconds=10.0, offset_seconds=start, trim_silence=False
    )
    return MUSIC_SAMPLE_RATE, clip.samples


@guarded
def calibrate(reference, engine_state):
    """A neutral recording of the user's own voice, kept in this session only: later queries are read relative
    to it."""
    if not reference:
        raise gr.Error("Record a few seconds of calm, neutral speech first.")
    if not isinstance(reference, str):
        raise gr.Error(RECORDING_ONLY)
    clip = load_audio(reference, max_seconds=SPEECH_MAX_SECONDS)
    return clip, f"✅ Calibrated to your voice ({clip.seconds:.1f} s reference). Queries now use it."


LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@dataclass(frozen=True)
class FolderPolicy:
    """Who may index a folder on the server. ``root``: only folders inside it (the operator's ``--allow-folders``);
    without a root, only a server that listens on loopback alone, asked by a loopback client, may index any folder
    the server can read. Never on a Space or with ``--share`` unless the operator named a root."""

    enabled: bool = False
    root: Path | None = None

    @classmethod
    def for_launch(cls, host: str | None, share: bool, allow: str | None) -> FolderPolicy:
        if allow:
            return cls(True, Path(allow).expanduser().resolve())
        loopback_only = (host or os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1") in LOOPBACK
        return cls(loopback_only and not share and not ON_SPACE)

    def check(self, folder: str | None, client_host: str | None) -> Path:
        """The folder to index, or ``gr.Error`` saying why not (nothing about the server's files is revealed)."""
        if not self.enabled:
            raise gr.Error(
                "Indexing folders on the server is turned off here. The operator can allow one folder "
                "tree with `python app.py --allow-folders DIR`."
            )
        if self.root is None and client_host not in LOOPBACK:
            raise gr.Error("Only a user on the server itself may index its folders.")
        text = (folder or "").strip()
        if not text:
            raise gr.Error("Type the path of a folder of music.")
        path = Path(text).expanduser()
        if self.root is not None:
            path = (self.root / path) if not path.is_absolute() else path
            if not path.resolve().is_relative_to(self.root):
                raise gr.Error(f"Only folders inside {self.root} may be indexed on this server.")
        if not path.is_dir():
            raise gr.Error(f"Not a folder: {text!r}")
        return path.resolve()


FOLDERS = FolderPolicy()


@guarded
def use_folder(folder, engine_state, request: gr.Request, progress=gr.Progress(track_tqdm=True)):  # noqa: B008
    """Index a folder of the user's music (folder-per-mood, or flat: moods predicted) for this session."""
    if folder is not None and not isinstance(folder, str):
        raise gr.Error("The folder must be given as text.")
    path = FOLDERS.check(folder, getattr(getattr(request, "client", None), "host", None))
    engine = Engine(_served(), path)
    n = len(next(iter(engine.indexes.values())).records)
    skipped = (
        f" Skipped {len(engine.skipped)} unreadable file(s): {', '.join(engine.skipped[:5])}." if engine.skipped else ""
    )
    forget_library(engine_state)
    shown = path.relative_to(FOLDERS.root) if FOLDERS.root else path  # the operator's root stays unnamed
    return engine, f"✅ Using {n} clips from `{shown}` in this session.{skipped}"


class _Open:
    """Mixin for a Gradio input: any value an API caller sends is passed to the validator, which names the allowed
    ones (Gradio's own check answers a bare "400 Bad Request" to gradio_client). A subclass is named "Open" + the
    component's class, so the browser still draws that component."""

    def preprocess(self, payload):
        return payload

    def get_block_name(self) -> str:
        return type(self).__name__.removeprefix("Open").lower()


class OpenRadio(_Open, gr.Radio):
    """A radio group whose API values reach the validator (:class:`_Open`)."""


class OpenDropdown(_Open, gr.Dropdown):
    """A dropdown whose API values reach the validator (:class:`_Open`)."""


class OpenSlider(_Open, gr.Slider):
    """A slider whose out-of-range API values reach the validator (:class:`_Open`)."""


def recording_input(label: str, elem_id: str):
    """A microphone-or-upload audio input (a file path for the handler) that refuses a malformed payload clearly."""
    audio = gr.Audio(sources=["microphone", "upload"], type="filepath", label=label, elem_id=elem_id)
    return refuse_malformed(audio, RECORDING_ONLY)


def refuse_malformed(component, refusal: str):
    """``component`` (a Gradio file input) with a message for a payload Gradio cannot read (a number, a dict without
    a path) instead of Gradio's blank "Error": Gradio checks an input's shape against its data model, then
    preprocesses it, before the handler or its validator runs. The component's class is unchanged, so the browser
    draws it (and its examples) as usual."""
    component.data_model = _refusing(component.data_model, refusal)
    preprocess = component.preprocess

    def checked(payload):
        try:
            return preprocess(payload)
        except Exception:
            raise gr.Error(refusal) from None

    component.preprocess = checked
    return component


@functools.cache
def _refusing(model: type, refusal: str) -> type:
    """``model`` (a Gradio pydantic data model) whose validation failure is ``gr.Error(refusal)``: Gradio validates an
    input's shape before the handler or its validator runs, and would answer a bare error or a pydantic message."""

    class Refusing(model):
        @classmethod
        def model_validate(cls, obj, *args, **kwargs):
            try:
                return model.model_validate(obj, *args, **kwargs)
            except Exception:
                raise gr.Error(refusal) from None

    Refusing.__name__ = model.__name__
    return Refusing


UPLOAD_ROOT = INSTANCE_DIR / "uploads"  # one folder per uploaded library, deleted with its session


def forget_library(engine: Engine | None) -> None:
    """Delete a session's uploaded library (its files, features and maps): on replacement or when the session ends."""
    if engine is not None and engine.library.resolve().is_relative_to(UPLOAD_ROOT.resolve()):
        shutil.rmtree(engine.library.parent, ignore_errors=True)


@guarded
def use_uploads(files, engine_state, progress=gr.Progress(track_tqdm=True)):  # noqa: B008 - Gradio's idiom
    """A visitor's own music (audio files or zips, bounded) indexed for this session only."""
    if files is not None and not isinstance(files, list):
        raise gr.Error(FILES_ONLY)
    paths = [getattr(f, "name", f) for f in (files or [])]
    if not paths:
        raise gr.Error("Choose some music files (or a zip) first.")
    if not all(isinstance(p, str) for p in paths):
        raise gr.Error(FILES_ONLY)
    UPLOAD_ROOT.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=UPLOAD_ROOT))
    try:
        engine = Engine(_served(), unpack_uploads(paths, folder / "music"), index_dir=folder / "index")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    forget_library(engine_state)
    n = len(next(iter(engine.indexes.values())).records)
    skipped = f" Skipped unreadable file(s): {', '.join(engine.skipped[:5])}." if engine.skipped else ""
    return engine, f"✅ Using your {n} clips in this session (deleted when it ends).{skipped}"


def enable(audio, text):
    return gr.Button(interactive=bool(audio) or bool((text or "").strip()))


def build(engine: Engine) -> gr.Blocks:
    # uploaded and generated files are deleted after an hour (checked every 10 minutes)
    with gr.Blocks(title="s2m — music for the emotion in your voice", delete_cache=(600, SESSION_SECONDS)) as demo:
        # per-session state, dropped an hour after the session's last use
        engine_state = gr.State(
            None,
            time_to_live=SESSION_SECONDS,  # a session's own library, when it picks one
            delete_callback=forget_library,
        )
        calibration = gr.State(None, time_to_live=SESSION_SECONDS)  # a session's neutral reference recording
        history = gr.State([], time_to_live=SESSION_SECONDS)  # this page's earlier queries (the class map)
        last_query = gr.State("", time_to_live=SESSION_SECONDS)  # query_id of the recording or text last searched
        member = gr.State(None, time_to_live=SESSION_SECONDS)  # the class this page's readings go to, if any
        # the class this browser runs (its code and secret key), kept in the browser so that a reload keeps it
        teacher = gr.BrowserState(None, storage_key="s2m-class-teacher")
        drawn = gr.State(-1, time_to_live=SESSION_SECONDS)  # the class version the teacher's class tab shows
        gr.Markdown(INTRO)
        if UNAVAILABLE:
            gr.Markdown(
                "⚠️ Not available on this server right now (damaged files, named in the server's log): "
                + "; ".join(UNAVAILABLE)
                + ".",
                elem_id="unavailable",
            )
        start_map, start_va = _maps(engine, *engine.reference_key)
        with gr.Row():
            with gr.Column(scale=4):
                name = gr.Textbox(
                    label="Your name (labels your point on the class map)",
                    max_lines=1,
                    max_length=30,
                    elem_id="query-name",
                )
                audio = recording_input("Your voice: press Record, or upload a file (⬆ below)", "query-audio")
                spoken = OpenDropdown(
                    [(name, code) for code, name in SPOKEN.items()],
                    value="auto",
                    label="Language you speak",
                    elem_id="query-language",
                    info="for the transcript (text and fusion models); naming it helps short or unusual speech",
                )
                text = gr.Textbox(
                    label="…or type a sentence (text models)",
                    elem_id="query-text",
                    max_lines=4,
                    max_length=MAX_TEXT_CHARS,
                )
                submit = gr.Button("Find music", variant="primary", interactive=False, elem_id="submit")
                notices = gr.Markdown(elem_id="notices")
                if EXAMPLES:
                    gr.Examples(
                        [[str(p)] for p in EXAMPLES],
                        inputs=[audio],
                        label="Example voices (two real actors no model trained on)",
                        example_labels=[p.stem for p in EXAMPLES],
                    )
                modality = OpenRadio(
                    engine.modalities,
                    value=engine.modalities[0],
                    label="Model: what it listens to",
                    info="audio = how you speak · text = what you say · fusion = both",
                )
                labels = [k for k, v in FRAMEWORKS.items() if v in engine.frameworks]
                best = framework_name(engine.best_framework(engine.modalities[0]))
                framework = OpenRadio(
                    labels,
                    value=best,
                    label="Training framework",
                    info="default: the best on held-out speakers (see About the model)",
                )
                top_k = OpenSlider(1, MAX_K, value=5, step=1, label="Clips to show")
                with gr.Accordion(
                    "Class session: one map for the whole class", open=False, elem_id="class-session"
                ) as class_box:
                    gr.Markdown(
                        "**Students:** type the code your teacher shows (or open the teacher's link). Your "
                        "name and the emotion read from each of your recordings then appear on the "
                        "teacher's class map; recordings never leave this page's search."
                    )
                    with gr.Row():
                        class_code = gr.Textbox(
                            label="Class code", max_lines=1, max_length=12, scale=3, elem_id="class-code"
                        )
                        join_button = gr.Button("Join", scale=1, elem_id="join-class")
                    class_status = gr.Markdown(elem_id="class-status")
                    gr.Markdown(
                        f"**Teacher:** start a class and show its code or QR code; the **Class** tab then "
                        "collects every student's reading, live. Kept in this server's memory only, until "
                        f"you end the class or {IDLE_SECONDS // 3600} hours after its last reading."
                    )
                    start_button = gr.Button("Start a class", elem_id="start-class")
                    page_url = gr.Textbox(visible=False)
                with gr.Accordion("About the model (plain words)", open=False, elem_id="about"):
                    gr.Markdown(about(engine))
                with gr.Accordion("Read relative to my neutral voice (optional)", open=False):
                    gr.Markdown(
                        "Record 3–5 s of calm, neutral speech where you will speak; your queries are then "
                        "read relative to your own voice in that room, and the query on screen is run again. "
                        "Steady room noise (a fan, a hum) is removed before any voice is read, with or "
                        "without this; on two held-out actors a reference raised the share of fitting clips "
                        "among the first five from about 63 % to 69 %. Kept in this browser session "
                        "only."
                    )
                    reference = recording_input("Neutral reference", "reference-audio")
                    cal_button = gr.Button("Calibrate", elem_id="calibrate")
                    cal_status = gr.Markdown()
                with gr.Accordion("Use my own music (upload)", open=False):
                    gr.Markdown(
                        f"Up to {MAX_UPLOAD_FILES} clips (wav, flac, ogg, mp3) or a zip; a zip with one folder "
                        "per mood (happy/, sad/, …) keeps your moods, otherwise they are predicted. Used "
                        "for this session only and deleted when it ends."
                    )
                    uploads = refuse_malformed(
                        gr.File(
                            file_count="multiple", label="Your music", file_types=[*sorted(AUDIO_SUFFIXES), ".zip"]
                        ),
                        FILES_ONLY,
                    )
                    upload_button = gr.Button("Use these clips")
                    upload_status = gr.Markdown()
                # always wired, shown only where allowed: a client calling the handler directly gets the refusal
                with gr.Accordion("Use my own music folder", open=False, visible=FOLDERS.enabled):
                    where_ok = f" (inside {FOLDERS.root})" if FOLDERS.root else ""
                    folder = gr.Textbox(
                        label=f"Folder on this computer{where_ok}: one sub-folder per mood, or a flat folder"
                    )
                    folder_button = gr.Button("Index folder")
                    folder_status = gr.Markdown()
            with gr.Column(scale=6):
                heard = gr.Markdown(elem_id="heard")
                emotions = gr.Label(label="Emotion in your voice", num_top_classes=4, elem_id="emotions")
                where = gr.Markdown()
                with gr.Tabs(overflow_behavior="wrap") as tabs:
                    with gr.Tab("Valence–arousal plane"):
                        va_plot = gr.Plot(value=start_va, elem_id="va-plane", label="How pleasant and how energetic")
                    with gr.Tab("Map of the joint space"):
                        map_plot = gr.Plot(value=start_map, elem_id="map", label="Which songs lie near your voice")
                    with gr.Tab("Triplet vs EmoSim"):
                        gr.Markdown(
                            "The same query through two models trained without and with the EmoSim "
                            "regulariser (the paper's contribution): where it lands and what it plays. The "
                            "*audio* and *fusion* models read a voice with one shared reader (it reads languages "
                            "they never heard best) and share one music side, so for a voice they answer alike; "
                            "the *text* models still differ."
                        )
                        compare_button = gr.Button("Compare for the current query", elem_id="compare")
                        compare_note = gr.Markdown(elem_id="compare-note")
                        with gr.Row():
                            compare_plots = [
                                gr.Plot(elem_id=f"compare-{f}", label=f"Trained with {framework_name(f)}")
                                for f in COMPARED
                            ]
                    with gr.Tab("Class", id="class"):
                        card = gr.HTML()
                        roster = gr.Markdown(
                            "Start a class (left, under *Class session*) to collect the readings of "
                            "every student's device here.",
                            elem_id="class-roster",
                        )
                        with gr.Row(visible=False) as teacher_controls:
                            hide_names = gr.Checkbox(label="Hide names", elem_id="hide-names")
                            clear_class_button = gr.Button("Clear the class", size="sm", elem_id="clear-class")
                            end_button = gr.Button("End the class", size="sm", variant="stop", elem_id="end-class")
                        class_va = gr.Plot(elem_id="class-va", label="The class on the valence–arousal plane")
                        class_map = gr.Plot(elem_id="class-map", label="The class on the map")
                class_timer = gr.Timer(CLASS_POLL_SECONDS, active=False)
                clear = gr.Button("Clear my map and results", size="sm", elem_id="clear-history")
                gr.Markdown("### Music for you")
                players, whys = [], []
                for i in range(MAX_K):
                    players.append(gr.Audio(visible=False, interactive=False, elem_id=f"result-{i}"))
                    whys.append(gr.Markdown(visible=False))
                with gr.Accordion("Raw result (JSON, as the `search` API returns it)", open=False):
                    raw = gr.JSON()
        inputs = [audio, text, modality, framework, top_k, calibration, engine_state, history, spoken]
        outputs = [notices, heard, emotions, where, map_plot, va_plot, raw, *players, *whys]
        assert len(outputs) == len(SEARCH_OUTPUTS), "SEARCH_OUTPUTS names every output of a search"
        audio.change(enable, [audio, text], submit, queue=False, api_visibility="private")
        text.change(enable, [audio, text], submit, queue=False, api_visibility="private")
        for trigger, api in (
            (submit.click, {"api_name": "search", "api_visibility": "public"}),
            (text.submit, {"api_visibility": "private"}),
        ):
            trigger(search, inputs, outputs, **{**SEARCHING, **api}, validator=check_query).success(
                remember, [raw, name, history], history, api_visibility="private", js=SCROLL_TO_ANSWER
            ).success(query_id, [audio, text], last_query, api_visibility="private").success(
                share,
                [raw, name, member, last_query, modality, framework, engine_state],
                class_status,
                api_visibility="private",
            )
        for control in (modality, framework):
            control.change(
                rerun,
                [*inputs, last_query],
                outputs,
                **SEARCHING,
                validator=check_rerun,
            ).success(relocate, [raw, history, last_query, audio, text], history, api_visibility="private").success(
                share,
                [raw, name, member, last_query, modality, framework, engine_state],
                class_status,
                api_visibility="private",
            )
            control.change(
                class_redraw,
                [teacher, hide_names, modality, framework, engine_state],
                [class_va, class_map, roster, drawn],
                api_visibility="private",
            )
        class_inputs = [teacher, hide_names, modality, framework, engine_state]
        class_outputs = [class_va, class_map, roster, drawn]
        start_button.click(
            start_class,
            [page_url, teacher],
            [teacher, member, card, teacher_controls, class_timer, tabs, drawn, class_status],
            js="(page, teacher) => [window.location.href, teacher]",
            api_visibility="private",
        ).success(class_redraw, class_inputs, class_outputs, api_visibility="private")
        join_button.click(join_class, [class_code, member], [member, class_status, name], api_visibility="private")
        class_code.submit(join_class, [class_code, member], [member, class_status, name], api_visibility="private")
        class_timer.tick(
            class_view,
            [teacher, drawn, hide_names, modality, framework, engine_state],
            class_outputs,
            api_visibility="private",
            show_progress="hidden",
            concurrency_id="class",
            concurrency_limit=4,
        )
        hide_names.change(class_redraw, class_inputs, class_outputs, api_visibility="private")
        clear_class_button.click(clear_class, class_inputs, class_outputs, api_visibility="private")
        end_button.click(
            end_class,
            [teacher, member],
            [teacher, member, card, teacher_controls, class_timer, roster, class_status],
            api_visibility="private",
        )
        demo.load(
            open_page,
            [page_url, teacher],
            [class_code, member, class_status, name, class_box, teacher, card, teacher_controls, class_timer, drawn],
            js="(page, teacher) => [window.location.href, teacher]",
            api_visibility="private",
        )
        clear.click(
            clear_history,
            [modality, framework, engine_state],
            [history, last_query, *outputs],
            api_visibility="private",
        )
        compare_button.click(
            compare,
            [audio, text, modality, top_k, calibration, engine_state, spoken],
            [*compare_plots, compare_note],
            **SEARCHING,
        )
        cal_button.click(
            calibrate,
            [reference, engine_state],
            [calibration, cal_status],
            **SEARCHING,
        ).success(
            rerun,
            [*inputs, last_query],
            outputs,
            **SEARCHING,
            validator=check_rerun,
        ).success(
            relocate, [raw, history, last_query, audio, text], history, api_visibility="private"
        )  # calibrating re-runs the query: one star
        upload_button.click(
            use_uploads,
            [uploads, engine_state],
            [engine_state, upload_status],
            **INDEXING,
        )
        folder_button.click(
            use_folder,
            [folder, engine_state],
            [engine_state, folder_status],
            **INDEXING,
        )
    return demo


def warm_up(engine: Engine) -> None:
    """Load every encoder and run one query per modality, so the first visitor does not wait."""
    if not EXAMPLES:
        return
    for modality in engine.modalities:
        engine.search(audio=str(EXAMPLES[0]), modality=modality, framework=engine.best_framework(modality))


def _usable_examples(folder: Path) -> tuple[list[Path], list[str]]:
    """(example voices that decode, names of those that do not: logged and left out of the page)."""
    good, bad = [], []
    for path in sorted(folder.glob("*.wav")):
        try:
            load_audio(str(path))
            good.append(path)
        except AudioError as exc:
            log.error("example voice %s left out: %s", path.name, exc)
            bad.append(path.stem)
    return good, bad


ENGINE: Engine | None = None
DEMO: gr.Blocks | None = None
_ALLOWED: list[Path] = [LIBRARY_DIR]


def _servable(path: str) -> bool:
    """Gradio serves files only from allowed folders; clips elsewhere (a folder picked in the UI) go out decoded."""
    return any(Path(path).resolve().is_relative_to(p.resolve()) for p in _ALLOWED)


def create(library: str | Path = LIBRARY_DIR, checkpoints: str | Path = CHECKPOINTS, warm: bool = True) -> gr.Blocks:
    """Build the engine and the UI (tests call this and launch in-process)."""
    global ENGINE
    ENGINE = Engine(Path(checkpoints), Path(library))
    EXAMPLES[:], bad = _usable_examples(EXAMPLE_DIR)
    UNAVAILABLE[:] = [f"model {name}" for name in ENGINE.unavailable] + [f"example voice {name}" for name in bad]
    if Path(library) not in _ALLOWED:
        _ALLOWED.append(Path(library))
    if warm:
        warm_up(ENGINE)
    global DEMO
    DEMO = build(ENGINE).queue(default_concurrency_limit=2, max_size=32)
    return DEMO


def main() -> None:
    args = arguments().parse_args()
    args.library = args.library or os.environ.get("S2M_LIBRARY") or str(LIBRARY_DIR)
    args.checkpoints = args.checkpoints or str(CHECKPOINTS)
    if bool(args.ssl_certfile) != bool(args.ssl_keyfile):
        sys.exit("s2m: cannot start: HTTPS needs both --ssl-certfile and --ssl-keyfile")
    for path in filter(None, (args.ssl_certfile, args.ssl_keyfile)):
        if not Path(path).is_file():
            sys.exit(f"s2m: cannot start: no file {path}")
    global FOLDERS
    FOLDERS = FolderPolicy.for_launch(args.host, args.share, args.allow_folders)
    try:
        demo = create(args.library, args.checkpoints)
    except (CheckpointError, DatasetError, FileNotFoundError, NotADirectoryError) as exc:
        sys.exit(f"s2m: cannot start: {exc}")

    def stop(signum, frame):  # SIGTERM (a container or Space stopping): finish what is running, then exit
        if SHUTDOWN.stopping.is_set():
            return  # already stopping
        left = SHUTDOWN.drain()
        print(
            f"s2m: stopped; {left} search(es) were cut off after the {SHUTDOWN.grace:.0f}-s grace period"
            if left
            else "s2m: stopped after the running searches finished",
            file=sys.stderr,
        )
        demo.close()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    demo.launch(
        server_name=args.host,
        server_port=args.port,
        share=args.share or None,
        head=HEAD,
        max_file_size=MAX_UPLOAD,
        allowed_paths=[str(p) for p in _ALLOWED],
        theme=gr.themes.Soft(),
        **https_options(args.ssl_certfile, args.ssl_keyfile),
    )


def https_options(certfile: str | None, keyfile: str | None) -> dict:
    """``launch`` options that serve HTTPS with a certificate and key (none without them). A classroom's
    certificate is self-signed, so Gradio's own start-up request must not verify it (``ssl_verify=False``); the
    students' browsers show their warning once and then allow the microphone."""
    if not certfile:
        return {}
    return {"ssl_certfile": certfile, "ssl_keyfile": keyfile, "ssl_verify": False}


if __name__ == "__main__":
    main()
