"""A hostile client over HTTP (the real app, in-process, on a loopback port): every bad input gets a clear message or
a correct answer, never a traceback, and a normal query still answers afterwards; a bounded burst of concurrent
clients gets no error."""

import io
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from .conftest import tone

EXAMPLES = Path(__file__).resolve().parents[1] / "assets" / "examples"
OK = None  # the query is answered


def _write(data, rate=16_000, **kw):
    def make(path):
        sf.write(path, data, rate, **kw)

    return make


def _bytes(payload: bytes):
    def make(path):
        path.write_bytes(payload)

    return make


def _truncated_flac(path):
    buf = io.BytesIO()
    sf.write(buf, tone(3.0, 16_000), 16_000, format="FLAC")
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])


AUDIO_CASES = [  # (name, writer, suffix, expected message or OK)
    ("silence", _write(np.zeros(16_000, np.float32)), ".wav", "silent"),
    ("50 ms", _write(tone(0.05, 16_000)), ".wav", "too short"),
    ("0 bytes", _bytes(b""), ".wav", "empty|no samples|0 bytes|not an audio file"),
    ("NaN samples", _write(np.full(16_000, np.nan, np.float32), subtype="FLOAT"), ".wav", "NaN"),
    ("infinite samples", _write(np.full(16_000, np.inf, np.float32), subtype="FLOAT"), ".wav", "NaN or infinity"),
    ("4 kHz", _write(tone(1.0, 4_000), 4_000), ".wav", "Unsupported sample rate 4000 Hz"),
    ("384 kHz", _write(tone(1.0, 384_000), 384_000), ".wav", "Unsupported sample rate 384000 Hz"),
    ("6 channels", _write(np.stack([tone(1.5, 16_000)] * 6, axis=1)), ".wav", OK),
    ("8 kHz mono", _write(tone(1.5, 8_000), 8_000), ".wav", OK),
    ("192 kHz", _write(tone(1.5, 192_000), 192_000), ".wav", OK),
    ("clipping float", _write(tone(1.5, 16_000) * 50, subtype="FLOAT"), ".wav", OK),
    ("8-bit unsigned", _write(tone(1.5, 16_000), subtype="PCM_U8"), ".wav", OK),
    ("flac", _write(tone(1.5, 16_000)), ".flac", OK),
    ("ogg", _write(tone(1.5, 16_000), format="OGG"), ".ogg", OK),
    ("corrupt header", _bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 50), ".wav", "not an audio file"),
    (
        "JPEG renamed .wav",
        _bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 20),
        ".wav",
        "not an audio file",
    ),
    ("HTML renamed .wav", _bytes(b"<html><script>alert(1)</script></html>" * 30), ".wav", "not an audio file"),
    ("text file", _bytes(b"just some text, not audio"), ".wav", "not an audio file"),
    ("truncated FLAC", _truncated_flac, ".flac", "not an audio file|too short|silent|" + "OK"),
    ("random bytes", _bytes(np.random.default_rng(0).bytes(40_000)), ".mp3", "not an audio file"),
    ("10-minute file", _write(np.tile(tone(1.0, 8_000), 600), 8_000), ".flac", "only the first 30.0 s"),
]


@pytest.mark.parametrize("name, make, suffix, expected", AUDIO_CASES, ids=[c[0] for c in AUDIO_CASES])
def test_hostile_audio(client, tmp_path, name, make, suffix, expected):
    from gradio_client.exceptions import ValidationError

    from .test_app import _search

    path = tmp_path / f"input{suffix}"
    make(path)
    if expected is OK or expected.startswith("only"):
        out = _search(client, path)
        assert out[6]["hits"]
        if expected is not OK:
            assert expected in out[0]
    elif expected.endswith("|OK"):  # a damaged file that may still hold enough sound to answer
        try:
            assert _search(client, path)[6]["hits"]
        except ValidationError as exc:
            assert any(m in str(exc) for m in expected.split("|")[:-1])
    else:
        with pytest.raises(ValidationError, match=f"audio: .*({expected})"):
            _search(client, path)
    assert _search(client, EXAMPLES / "sad.wav")[6]["hits"]  # still serving


TEXT_CASES = [  # (name, text, modality, expected message or OK)
    ("100 kB of text", "word " * 20_000, "text", "characters long; at most 1000"),
    ("only spaces", "   \n\t ", "text", "Nothing to search"),
    ("emoji", "I got the job!!! 🎉🎉🥳", "text", OK),
    ("right-to-left", "أنا سعيد جدا اليوم", "text", OK),
    ("Korean", "오늘 정말 행복해요", "text", OK),
    ("HTML and script", "<script>alert('x')</script><img src=x onerror=alert(1)> I am furious", "text", OK),
    ("control characters", "sad\x00\x07\x1b[31m words", "text", OK),
    ("text for the audio model", "I am happy", "audio", "needs a recording"),
    ("text for the fusion model", "I am happy", "fusion", "needs a recording"),
]


@pytest.mark.parametrize("name, text, modality, expected", TEXT_CASES, ids=[c[0] for c in TEXT_CASES])
def test_hostile_text(client, name, text, modality, expected):
    from gradio_client.exceptions import ValidationError

    from .test_app import _search

    if expected is OK:
        out = _search(client, None, text=text, modality=modality, framework="Triplet")
        assert out[6]["hits"] and out[6]["transcript"] == text.strip()
    else:
        with pytest.raises(ValidationError, match=expected):
            _search(client, None, text=text, modality=modality, framework="Triplet")
    assert _search(client, EXAMPLES / "sad.wav")[6]["hits"]


CHOICE_CASES = [  # (name, keyword arguments to the search, expected message)
    ("top_k 2.5", {"k": 2.5}, "top_k: .*whole number from 1 to 10"),
    ("top_k 0", {"k": 0}, "top_k: .*whole number from 1 to 10"),
    ("top_k 11", {"k": 11}, "top_k: .*whole number from 1 to 10"),
    ("modality None", {"modality": None}, "modality: Unknown model None: choose one of audio, text, fusion"),
    ("modality video", {"modality": "video"}, "modality: Unknown model 'video': choose one of audio, text, fusion"),
    ("framework None", {"framework": None}, "framework: Unknown framework None: choose one of Triplet"),
    ("framework Magic", {"framework": "Magic"}, "framework: Unknown framework 'Magic': choose one of Triplet, "),
]


@pytest.mark.parametrize("name, kwargs, expected", CHOICE_CASES, ids=[c[0] for c in CHOICE_CASES])
def test_hostile_choices(client, name, kwargs, expected):
    from gradio_client.exceptions import ValidationError

    from .test_app import _search

    with pytest.raises(ValidationError, match=expected):
        _search(client, EXAMPLES / "sad.wav", **kwargs)
    assert _search(client, EXAMPLES / "sad.wav")[6]["hits"]


def test_bounded_concurrent_clients_get_no_errors(client):
    from gradio_client import Client

    from .test_app import _search

    def one(i):
        own = Client(client.src, verbose=False)
        return [len(_search(own, sorted(EXAMPLES.glob("*.wav"))[(i + q) % 8])[6]["hits"]) for q in range(5)]

    with ThreadPoolExecutor(8) as pool:
        answers = [n for ns in pool.map(one, range(8)) for n in ns]
    assert answers == [5] * 40


@pytest.mark.parametrize(
    "text, top_k, where, message",
    [
        ("sad \ud800 words", 5, 1, "not valid Unicode"),  # a lone surrogate (gradio_client cannot even send it)
        ("I am sad", float("nan"), 4, "whole number from 1 to 10"),  # NaN (not JSON: only a raw client sends it)
        ("I am sad", "5", 4, "whole number from 1 to 10"),
    ],
)
def test_values_no_client_library_sends_are_named_by_the_validator(text, top_k, where, message):
    import app

    app.ENGINE = app.ENGINE or app.Engine()
    checks = app.check_query(None, text, "text", "Triplet", top_k, None, None)
    assert message in checks[where]["message"] and not checks[where]["is_valid"]
    assert all(c["is_valid"] for i, c in enumerate(checks) if i != where)


# --- A raw client: any JSON value, to every handler the page wires (those the UI does not show too) -----------------


def _raw(client, handler: str, data: list, session: str | None = None) -> str:
    """What a raw HTTP client gets when it calls ``handler`` by its index: "OK", or the message shown (a validator's
    messages joined, or the handler's error). The body is written by hand, so it may carry Infinity, NaN or 1e400."""
    import json
    import uuid

    import httpx

    import app

    index = next(i for i, f in app.DEMO.fns.items() if f.fn is not None and f.fn.__name__ == handler)
    session = session or uuid.uuid4().hex[:12]
    body = json.dumps(
        {"data": data, "fn_index": index, "session_hash": session, "event_data": None, "trigger_id": None}
    ).replace('"<1e400>"', "1e400")
    joined = httpx.post(
        f"{client.src.rstrip('/')}/gradio_api/queue/join",
        content=body,
        headers={"content-type": "application/json"},
        timeout=60,
    )
    if joined.status_code == 422:
        return " | ".join(d["message"] for d in joined.json()["detail"] if not d["is_valid"])
    if joined.status_code != 200:
        return f"HTTP {joined.status_code}: {joined.json().get('detail', joined.text)}"
    url = f"{client.src.rstrip('/')}/gradio_api/queue/data?session_hash={session}"
    with httpx.stream("GET", url, timeout=120) as stream:
        for line in stream.iter_lines():
            msg = json.loads(line[5:]) if line.startswith("data:") else {}
            if msg.get("msg") == "process_completed":
                return "OK" if msg["success"] else (msg["output"] or {}).get("error") or "blank error"
    return "no answer"


def _query(**changes) -> list:
    """The search handler's inputs as a raw client sends them (states as null), with ``changes``."""
    names = ["audio", "text", "modality", "framework", "top_k", "calibration", "engine_state", "history", "language"]
    values = {
        "audio": None,
        "text": "I am so happy today",
        "modality": "text",
        "framework": "Triplet",
        "top_k": 5,
        "language": "auto",
        **changes,
    }
    return [values.get(n) for n in names]


WHOLE = "whole number from 1 to 10"
RAW_CASES = [  # (name, handler, inputs, expected message: a regular expression, or OK)
    ("top_k Infinity", "search", _query(top_k=float("inf")), WHOLE),
    ("top_k -Infinity", "search", _query(top_k=float("-inf")), WHOLE),
    ("top_k 1e400", "search", _query(top_k="<1e400>"), WHOLE),
    ("top_k NaN", "search", _query(top_k=float("nan")), WHOLE),
    ("top_k true", "search", _query(top_k=True), WHOLE),
    ("top_k list", "search", _query(top_k=[5]), WHOLE),
    ("top_k text", "search", _query(top_k="5"), WHOLE),
    ("language list", "search", _query(language=["en"]), "Unknown language of type list"),
    ("language dict", "search", _query(language={"en": 1}), "Unknown language of type dict"),
    ("language number", "search", _query(language=7), "Unknown language 7"),
    ("framework list", "search", _query(framework=["Triplet"]), "Unknown framework of type list"),
    ("framework dict", "search", _query(framework={"a": 1}), "Unknown framework of type dict"),
    ("modality list", "search", _query(modality=["text"]), "Unknown model of type list"),
    ("modality number", "search", _query(modality=3), "Unknown model 3"),
    ("text number", "search", _query(text=42), OK),  # a text box reads any value as text
    ("text list", "search", _query(text=["I am happy"]), OK),
    ("audio a number", "search", _query(audio=5, modality="audio"), "uploaded audio file"),
    ("audio a dict without a path", "search", _query(audio={"url": "x"}, modality="audio"), "uploaded audio file"),
    (
        "a file never uploaded",
        "search",
        _query(audio={"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}, modality="audio"),
        "not uploaded",
    ),
    (
        "remember x 'A'",
        "remember",
        [{"emotions": {"happy": 1.0}, "x": "A", "y": 0, "valence": 0.5, "arousal": 0.5}, "Ana", None],
        "finite numbers",
    ),
    (
        "remember x NaN",
        "remember",
        [{"emotions": {"happy": 1.0}, "x": float("nan"), "y": 0, "valence": 0.5, "arousal": 0.5}, "Ana", None],
        "finite numbers",
    ),
    ("remember emotions list", "remember", [{"emotions": ["happy"], "x": 0, "y": 0}, "Ana", None], "no emotions"),
    (
        "remember emotion Infinity",
        "remember",
        [{"emotions": {"happy": float("inf")}, "x": 0, "y": 0, "valence": 0, "arousal": 0}, None, None],
        "no emotions",
    ),
    ("remember a string", "remember", ["happy", "Ana", None], "no emotions"),
    ("remember nothing", "remember", [None, "Ana", None], OK),
    ("clear modality list", "clear_history", [["audio"], "Triplet", None], "Unknown model of type list"),
    ("clear framework Magic", "clear_history", ["audio", "Magic", None], "Unknown framework 'Magic'"),
    ("compare top_k Infinity", "compare", [None, "I am sad", "text", float("inf"), None, None, "auto"], WHOLE),
    ("compare language list", "compare", [None, "I am sad", "text", 5, None, None, ["ko"]], "Unknown language"),
    ("compare modality dict", "compare", [None, "I am sad", {"m": 1}, 5, None, None, "auto"], "Unknown model"),
    ("compare nothing", "compare", [None, "", "audio", 5, None, None, "auto"], "Nothing to search with"),
    ("calibrate nothing", "calibrate", [None, None], "Record a few seconds"),
    ("uploads nothing", "use_uploads", [[], None], "Choose some music"),
    ("uploads a dict", "use_uploads", [{"a": 1}, None], "list of uploaded files"),
    ("uploads numbers", "use_uploads", [[1, 2], None], "list of uploaded files"),
    ("folder while turned off", "use_folder", ["/", None], "turned off"),
    ("rerun top_k Infinity", "rerun", [*_query(top_k=float("inf")), None], WHOLE),  # + which query was last
    ("rerun text dict", "rerun", [*_query(text={"t": 1}), None], OK),
    ("join code list", "join_class", [["K7P2QX", "A"], None], "class code has 6"),
    ("join code markup", "join_class", ["<b>K7P2QX</b>", None], "class code has 6"),
    ("join no such class", "join_class", ["ZZZZZZ", None], "no class ZZZZZZ"),
    ("start from a script link", "start_class", ["javascript:alert(1)", None], "address"),
    ("start from a huge link", "start_class", ["http://a/" + "x" * 600, None], "address"),
    ("start with a forged class", "start_class", ["http://a/", {"code": "ZZZZZZ", "key": "k"}], OK),  # a new one
    ("class view forged", "class_view", [{"code": "ZZZZZZ", "key": "k"}, -1, False, "audio", "Triplet", None], OK),
    ("class view a string", "class_view", ["teacher", "x", 3, "audio", "Triplet", None], OK),
    ("clear a forged class", "clear_class", [{"code": "ZZZZZZ"}, False, "audio", "Triplet", None], "no class"),
    ("end a forged class", "end_class", [{"code": ["ZZZZZZ"], "key": 1}, None], OK),
    ("share a string", "share", ["happy", "Ana", None, "", "audio", "Triplet", None], OK),
]


@pytest.mark.parametrize("name, handler, data, expected", RAW_CASES, ids=[c[0] for c in RAW_CASES])
def test_raw_values_get_clear_messages_from_every_handler(client, name, handler, data, expected):
    """No value reaches the code unchecked: each gets its own message (never a blank "Error", a Python message or a
    server path), and the same session still searches afterwards."""
    import uuid

    session = uuid.uuid4().hex[:12]
    answer = _raw(client, handler, data, session)
    if expected is OK:
        assert answer == "OK"
    else:
        assert re.search(expected, answer), answer
    assert "Traceback" not in answer and "blank error" not in answer and "/tmp" not in answer and "/work" not in answer
    assert _raw(client, "search", _query(), session) == "OK"  # the session is not broken (remember's x "A" broke it)


def test_a_class_is_seen_cleared_and_ended_only_with_its_teachers_key(client):
    """A stranger who knows a class's code (it is shown to the room) but not the teacher's key, calling the
    handlers directly, can neither see, clear nor end the class."""
    import app

    code, key = app.CLASSES.start()
    app.CLASSES.add(code, app.ClassPoint("Ana", "happy", 0.8, 0.7, 0.0, 0.0, "audio/triplet"))
    forged = {"code": code, "key": "guess"}
    assert _raw(client, "class_redraw", [forged, False, "audio", "Triplet", None]) == "OK"  # says so, shows nothing
    assert "Only the teacher" in _raw(client, "clear_class", [forged, False, "audio", "Triplet", None])
    assert "Only the teacher" in _raw(client, "end_class", [forged, None])
    assert [p.name for p in app.CLASSES.points(code, key)] == ["Ana"]
    plane, _, roster, _ = app.class_redraw(forged, False, "audio", "Triplet", None)
    assert plane == app.gr.skip() and "Only the teacher" in roster  # no picture of the class for a forged key
    assert _raw(client, "end_class", [{"code": code, "key": key}, None]) == "OK"
    assert "no class" in _raw(client, "join_class", [code, None])


# --- Decode budgets: memory measured on the server process (in-process here), peak above what it held before --------


def _peak_growth_mb(action) -> float:
    """MB by which this process's peak resident memory rose above its resident memory while ``action`` ran."""

    def status(key):
        line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(key))
        return int(line.split()[1]) / 1024

    Path("/proc/self/clear_refs").write_text("5")  # the peak starts again from what is resident now
    before = status("VmRSS:")
    action()
    return status("VmHWM:") - before


@pytest.fixture(scope="module")
def bombs(tmp_path_factory):
    """A few KB that decode to gigabytes (the benchmark's hostile inputs): 64 channels at 192 kHz (Ogg), and 6 minutes
    of 8 channels at 192 kHz (FLAC, 572 KB: 2.2 GB as float32 if decoded whole)."""
    from s2m.bench import hostile_inputs

    folder = tmp_path_factory.mktemp("bombs")
    hostile_inputs(folder)
    return folder


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc peak-memory reset")
@pytest.mark.parametrize("name", ["many.ogg", "long.flac"])
def test_a_many_channel_query_is_refused_from_its_header_within_bounded_memory(client, bombs, name):
    from gradio_client.exceptions import ValidationError

    from .test_app import _search

    def send():
        with pytest.raises(ValidationError, match="channels at 192000 Hz: more than this server decodes"):
            _search(client, bombs / name)

    assert _peak_growth_mb(send) < 300


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc peak-memory reset")
def test_parallel_bombs_cost_at_most_the_limit(client, bombs):
    from gradio_client import Client
    from gradio_client.exceptions import ValidationError

    from .test_app import _search

    def one(_):
        try:
            _search(Client(client.src, verbose=False), bombs / "long.flac")
        except ValidationError as exc:
            return "more than this server decodes" in str(exc)
        return False

    def burst():
        with ThreadPoolExecutor(6) as pool:
            assert all(pool.map(one, range(6)))

    assert _peak_growth_mb(burst) < 300


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc peak-memory reset")
def test_an_uploaded_library_bomb_is_never_decoded_whole(client, bombs):
    import httpx

    with (bombs / "long.flac").open("rb") as f:
        stored = httpx.post(f"{client.src.rstrip('/')}/gradio_api/upload", files={"files": f}).json()[0]
    files = [{"path": stored, "meta": {"_type": "gradio.FileData"}}]
    answers = []
    assert _peak_growth_mb(lambda: answers.append(_raw(client, "use_uploads", [files, None]))) < 300
    assert "could be read" in answers[0] and "/" not in answers[0]


def test_a_long_song_window_is_chosen_streaming(tmp_path):
    """A 5-minute 48-kHz stereo song (110 MB as float32) is scanned block by block: memory stays near one block."""
    from s2m.audio import song_window

    rate, path = 48_000, tmp_path / "song.flac"
    loud = (np.random.default_rng(0).normal(size=(rate * 10, 2)) * 3000).astype(np.int16)
    with sf.SoundFile(path, "w", rate, 2, format="FLAC") as f:
        for k in range(30):
            f.write(loud if k == 17 else loud // 30)
    found = []
    assert _peak_growth_mb(lambda: found.append(song_window(path))) < 40
    assert found == [(170.0, 300.0)]


# --- The instance's own temp folder, damaged files at start-up, folder trees ---------------------------------------


def test_a_second_instance_with_damaged_files_starts_serves_and_stops_without_touching_ours(client, tmp_path):
    """Another app on the same machine, started with a damaged checkpoint, a cut-short config and a 0-byte example:
    it names them, serves with what is intact, and when it stops it removes only its own temp folder: our example
    voices still play and still search."""
    import os
    import shutil
    import signal
    import socket
    import subprocess
    import sys
    import time

    import httpx

    import app

    root = Path(app.__file__).parent
    ckpt = tmp_path / "checkpoints"
    shutil.copytree(root / "checkpoints", ckpt)
    (ckpt / "text-triplet" / "model.safetensors").write_bytes(b"not weights" * 100)
    config = ckpt / "audio-triplet" / "config.json"
    config.write_text(config.read_text()[:200])
    examples = tmp_path / "examples"
    shutil.copytree(root / "assets" / "examples", examples)
    (examples / "angry.wav").write_bytes(b"")
    ours = set(Path(app.INSTANCE_DIR).parent.glob("s2m-app-*"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = (
        "import sys, app; from pathlib import Path; app.EXAMPLE_DIR = Path(sys.argv[1]); "
        "sys.argv = ['app.py', '--checkpoints', sys.argv[2], '--port', sys.argv[3]]; app.main()"
    )
    other = subprocess.Popen(
        [sys.executable, "-c", code, str(examples), str(ckpt), str(port)],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url, deadline = f"http://127.0.0.1:{port}/", time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                page = httpx.get(url, timeout=5).text
                break
            except httpx.HTTPError:
                assert other.poll() is None, other.stdout.read()
                time.sleep(0.5)
        assert "text-triplet" in page and "audio-triplet" in page and "example voice angry" in page
        from gradio_client import Client

        from .test_app import _search

        assert _search(Client(url, verbose=False), EXAMPLES / "sad.wav", framework="Triplet + SP")[6]["hits"]
    finally:
        other.send_signal(signal.SIGTERM)
        log = other.communicate(timeout=60)[0]
    assert "Traceback" not in log and "left out" in log
    assert set(Path(app.INSTANCE_DIR).parent.glob("s2m-app-*")) <= ours  # it removed its own folder, only its own
    assert os.path.isdir(app.INSTANCE_DIR)
    out = _search(client, EXAMPLES / "sad.wav")
    players = [o for o in out[7:17] if isinstance(o, dict) and o.get("visible")]
    assert out[6]["hits"] and len(players) == 5 and all(Path(p["value"]).is_file() for p in players)  # served


def test_files_of_another_gradio_process_are_not_ours_to_read(client):
    """A file in the shared default Gradio folder (another process's upload) cannot be sent back as a query."""
    import shutil
    import tempfile

    shared = Path(tempfile.gettempdir()) / "gradio" / "someone-else"
    shared.mkdir(parents=True, exist_ok=True)
    shutil.copy(EXAMPLES / "sad.wav", shared / "theirs.wav")
    answer = _raw(
        client,
        "search",
        _query(audio={"path": str(shared / "theirs.wav"), "meta": {"_type": "gradio.FileData"}}, modality="audio"),
    )
    assert "not uploaded" in answer


def test_links_inside_an_allowed_folder_tree_are_not_indexed(client, tmp_path, monkeypatch):
    import os

    import app

    private = tmp_path / "private.wav"
    sf.write(private, tone(3.0, 22_050, freq=330), 22_050)
    root = tmp_path / "music"
    (root / "happy").mkdir(parents=True)
    (root / "sad").mkdir()
    for i in range(3):
        sf.write(root / "happy" / f"h{i}.wav", tone(3.0, 22_050, freq=440 + 40 * i), 22_050)
    (root / "sad" / "link.wav").symlink_to(private)
    (root / "sad" / "up.wav").symlink_to(Path("..") / ".." / "private.wav")
    os.link(private, root / "sad" / "hard.wav")
    monkeypatch.setattr(app, "FOLDERS", app.FolderPolicy(True, root))
    session = "links-session"
    assert _raw(client, "use_folder", ["", None], session) == "Type the path of a folder of music."
    assert _raw(client, "use_folder", [".", None], session) == "OK"
    hits, slots = [], app._result_slots
    monkeypatch.setattr(app, "_result_slots", lambda found: hits.extend(h.path for h in found) or slots([]))
    assert _raw(client, "search", _query(top_k=10), session) == "OK"
    assert len(hits) == 3 and all(Path(h).parent.name == "happy" for h in hits)


def test_a_damaged_example_voice_is_left_out(tmp_path):
    import shutil

    import app

    shutil.copy(EXAMPLES / "sad.wav", tmp_path / "sad.wav")
    (tmp_path / "angry.wav").write_bytes(b"")
    (tmp_path / "calm.wav").write_bytes(b"RIFF....WAVEfmt " + bytes(100))
    good, bad = app._usable_examples(tmp_path)
    assert [p.name for p in good] == ["sad.wav"] and bad == ["angry", "calm"]


def test_engine_leaves_out_damaged_checkpoints_and_refuses_when_none_is_intact(tmp_path):
    import shutil

    from s2m.heads import CheckpointError
    from s2m.search import CHECKPOINTS, INDEX_DIR, Engine

    for name in ("audio-triplet", "text-triplet"):
        shutil.copytree(CHECKPOINTS / name, tmp_path / name)
    (tmp_path / "text-triplet" / "config.json").write_text('{"modality": "te')
    shutil.copytree(INDEX_DIR / "features", tmp_path / "index" / "features")  # the library's features, not its maps
    engine = Engine(tmp_path, index_dir=tmp_path / "index")  # its map differs from the committed ones: kept apart
    assert engine.unavailable == ["text-triplet"] and list(engine.models) == [("audio", "triplet")]
    (tmp_path / "audio-triplet" / "model.safetensors").write_bytes(bytes(64))
    with pytest.raises(CheckpointError, match="Every checkpoint"):
        Engine(tmp_path, index_dir=tmp_path / "index")


def test_messages_name_no_server_folder():
    import app

    message = app.public("None of the 2 audio files under /tmp/s2m-app-x1/uploads/ab/music could be read.")
    assert message == "None of the 2 audio files under music could be read."
    assert app.public("supported: wav, flac, ogg/opus, mp3") == "supported: wav, flac, ogg/opus, mp3"
