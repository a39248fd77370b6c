"""The retrieval behind the UI, the `search` API through gradio_client, and bad inputs; the app keeps serving."""

import re
import shutil

import numpy as np
import pytest
import soundfile as sf

from s2m.__main__ import ravdess_dir
from s2m.audio import AudioError
from s2m.data import LIBRARY_DIR, DatasetError, read_metadata
from s2m.emotions import words
from s2m.search import Engine

from .conftest import tone

RAVDESS = ravdess_dir()

EXAMPLES = LIBRARY_DIR.parents[0] / "examples"
LIBRARY_IDS = {r.clip_id for r in read_metadata(LIBRARY_DIR)}


@pytest.fixture(scope="module")
def engine():
    return Engine()


@pytest.mark.parametrize("modality", ["audio", "text", "fusion"])
def test_engine_returns_documented_structure(engine, modality):
    result = engine.search(audio=str(EXAMPLES / "sad.wav"), modality=modality, framework="triplet", top_k=4)
    d = result.to_dict()
    assert {"modality", "framework", "transcript", "emotions", "valence", "arousal", "x", "y", "hits"} <= set(d)
    assert len(d["hits"]) == 4 and {h["clip_id"] for h in d["hits"]} <= LIBRARY_IDS
    scores = [h["score"] for h in d["hits"]]
    assert scores == sorted(scores, reverse=True)
    assert abs(sum(d["emotions"].values()) - 1) < 1e-4 and 0 <= d["valence"] <= 1 and 0 <= d["arousal"] <= 1
    assert all(
        h["detail"].startswith(f"#{k} of ") and f"({h['score']:.2f})" in h["detail"] and h["file"].endswith(".mp3")
        for k, h in enumerate(d["hits"], start=1)
    )
    for h in d["hits"]:  # the "why" in plain words: the song, what its listeners felt, no numbers but percentages
        assert h["why"].startswith(f"“{h['title']}” by {h['artist']}.") and " listeners: " in h["why"]
        assert "CC BY-NC-SA" in h["license"] and "cos" not in h["why"] and "V 0." not in h["why"]
    assert len({h["why"] for h in d["hits"]}) == len(d["hits"])  # each line says something about its own clip
    assert (d["transcript"] is None) == (modality == "audio") and (d["language"] is None) == (modality == "audio")
    if modality != "audio":
        assert "talking by the door" in d["transcript"].lower() and d["language"] == "en"


def test_a_results_place_is_where_the_plane_draws_it(engine):
    """A result's valence and arousal are its listeners' point, the one the valence–arousal plane draws (not its
    mood word's point): the ringed songs and their numbers agree."""
    from s2m.emotions import va

    result = engine.search(audio=str(EXAMPLES / "calm.wav"), framework="triplet_emosim", top_k=10)
    index = engine.indexes[("audio", "triplet_emosim")]
    for h in result.hits:
        i = index.clip_ids.index(h.clip_id)
        assert (h.valence, h.arousal) == pytest.approx(tuple(float(c) for c in index.va_points[i]))
        assert f"(V {h.valence:.2f}, A {h.arousal:.2f})" in h.detail
    assert any(abs(h.valence - va(h.mood)[0]) > 0.01 for h in result.hits)  # listeners' points, not the mood's


def test_star_placement_is_stable_and_fast(engine):
    import time

    a = engine.search(audio=str(EXAMPLES / "angry.wav"), framework="triplet_emosim")
    b = engine.search(audio=str(EXAMPLES / "angry.wav"), framework="triplet_emosim")
    assert (a.x, a.y) == (b.x, b.y)
    index = engine.indexes[("audio", "triplet_emosim")]
    query = index.embeddings[0]
    start = time.perf_counter()
    for _ in range(100):
        index.place(query)
    assert (time.perf_counter() - start) / 100 < 0.1


def test_align_recovers_a_turned_mirrored_scaled_shifted_map():
    from s2m.index import align

    reference = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    turn = np.array([[0.6, -0.8], [0.8, 0.6]]) @ np.diag([1, -1])  # rotation and a mirror
    moved = (3.0 * reference @ turn + [5.0, -2.0]).astype(np.float32)
    np.testing.assert_allclose(align(moved, reference), reference, atol=1e-4)


def test_steady_holds_a_map_near_the_reference_and_keeps_each_move_direction():
    from s2m.index import steady

    rng = np.random.default_rng(1)
    reference = rng.uniform(0, 10, size=(80, 2)).astype(np.float32)  # extent 10
    far = reference + rng.normal(0, 3, size=(80, 2)).astype(np.float32)
    held = steady(far, reference, limit=0.05)
    assert np.median(np.linalg.norm(held - reference, axis=1)) == pytest.approx(0.05 * np.ptp(reference, 0).max())
    cos = np.sum((held - reference) * (far - reference), axis=1)
    assert (cos > 0).all()  # every clip moves the same way as in its own map, only less far
    near = reference + 0.01
    np.testing.assert_array_equal(steady(near, reference, limit=0.05), near)  # a map already close stays as it is


def test_maps_tell_moods_apart_without_colour_and_name_the_quadrants(engine):
    from s2m.plots import library_map, va_plane

    index = engine.indexes[engine.reference_key]
    for fig in (library_map(index), va_plane(index)):
        moods = [t for t in fig.data if t.name in {words(m) for m in index.moods}]
        assert len(moods) == len(set(index.moods))
        assert len({t.marker.symbol for t in moods}) == len(moods)  # a shape per mood, not only a colour
    quadrants = " ".join(a.text for a in va_plane(index).layout.annotations)
    assert all(w in quadrants for w in ("excited", "angry", "sad", "calm"))


def test_speech_and_music_share_the_picture(engine):
    """The speech side is on the map too: where a voice heard as each speech emotion goes, inside the music's area,
    and on the valence-arousal plane at that emotion's VA point."""
    from s2m.emotions import va
    from s2m.plots import library_map, va_plane

    points = engine.speech_points(*engine.reference_key)
    assert sorted(p.label for p in points) == sorted(engine.model(*engine.reference_key).config.speech_labels)
    coords = engine.indexes[engine.reference_key].coords
    for p in points:
        assert coords[:, 0].min() <= p.x <= coords[:, 0].max() and coords[:, 1].min() <= p.y <= coords[:, 1].max()
        assert (p.valence, p.arousal) == va(p.label)
    index = engine.indexes[engine.reference_key]
    for fig in (library_map(index, speech=points), va_plane(index, speech=points)):
        speech = [t for t in fig.data if t.name == "voices (×)"]
        shown = [label for text in speech[0].text for label in text.split(" · ")]  # coinciding points share a label
        assert len(speech) == 1 and sorted(shown) == sorted(p.label for p in points)


def test_neighbouring_labels_go_to_free_sides_of_their_markers():
    """Two × a little apart (farther than `near`, so not merged) print their labels on different sides; a lone
    point and points far apart keep the default side (above; below for earlier queries); an earlier query's label
    also avoids the sides the ×'s labels took around it."""
    import plotly.graph_objects as go

    from s2m.plots import SPEECH, _points

    fig = go.Figure()
    points = [("calm · neutral", 0.064, 0.247), ("surprised", 0.029, 0.238), ("happy", 0.5, 0.2), ("sad", 0.5, -0.3)]
    crosses = _points(fig, points, "speech", SPEECH, "x", near=0.03)
    _points(fig, points[:1] + points[2:], "earlier", SPEECH, "x", near=0.03, below=True)
    assert list(fig.data[0].text) == [p[0] for p in points]
    assert list(fig.data[0].textposition) == ["top center", "bottom center", "top center", "top center"]
    assert set(fig.data[1].textposition) == {"bottom center"}
    _points(fig, points[:1] + points[2:], "earlier", SPEECH, "x", near=0.03, below=True, occupied=crosses)
    # beside "calm · neutral" both sides are taken by the ×'s labels (its own above, "surprised" below): right
    assert list(fig.data[2].textposition) == ["middle right", "bottom center", "bottom center"]


def test_class_map_keeps_each_named_query_until_cleared(engine):
    import app

    history = []
    for name, example in (("Ana", "happy"), ("<b>Ben</b>", "sad"), ("", "angry")):
        result = engine.search(audio=str(EXAMPLES / f"{example}.wav"), framework="triplet_sp")
        history = app.remember(result.to_dict(), name, history)
    assert [h["label"].split(" — ")[0] for h in history] == ["Ana", "bBen/b", "query 3"]  # no markup gets through
    top = max(result.emotions, key=result.emotions.get)
    assert history[-1]["label"] == f"query 3 — {top}" and (history[-1]["x"], history[-1]["y"]) == (result.x, result.y)
    for fig in app._maps(engine, "audio", "Triplet + SP", result, history):
        earlier = [t for t in fig.data if t.name.startswith("earlier")]
        shown = [label for text in earlier[0].text for label in text.split(" · ")]  # coinciding points share a label
        assert len(earlier) == 1 and sorted(shown) == sorted(h["label"] for h in history)  # points may coincide
    many = history
    for _ in range(app.MAX_HISTORY):
        many = app.remember(result.to_dict(), "x", many)
    assert len(many) == app.MAX_HISTORY and many[-1]["label"].startswith("x — ")
    cleared, last, notices, heard, emotions, where, map_fig, va_fig, raw, *slots = app.clear_history(
        "audio", "Triplet + SP", engine
    )
    assert cleared == [] and last == "" and raw is None and not (notices or heard or where or emotions.value)
    assert all(not [t for t in f.data if t.name.startswith(("earlier", "your", "top"))] for f in (map_fig, va_fig))
    assert len(slots) == 2 * app.MAX_K and not any(s.visible for s in slots)  # no result player or "why" left


def test_side_by_side_triplet_and_emosim_and_the_about_panel(engine):
    import app

    *figures, note = app.compare(str(EXAMPLES / "angry.wav"), None, "audio", 5, None, engine)
    assert [f.layout.title.text.split(":")[0] for f in figures] == ["Triplet", "Triplet + EmoSim"]
    assert all("results: " in f.layout.title.text and any(t.name == "your query" for t in f.data) for f in figures)
    assert all(f.layout.showlegend is not False for f in figures)  # a legend says what the shapes are
    rings = [{c for t in f.data if t.name.startswith("top") for c in t.customdata} for f in figures]
    shared = len(rings[0] & rings[1])
    assert re.search(rf"they share \*\*{shared} of 5\*\* songs", note) and "apart on the valence" in note, note
    text = app.about(engine)
    mapping = engine.model(*engine.reference_key).config.readout.mapping
    assert all(f"| {s} | {words(m)} |" in text for s, m in mapping.items()) and "| disgust | tension |" in text
    assert all(f"**{m}**" in text for m in engine.modalities) and "EmoSim" in text


def test_every_model_shows_one_picture(engine):
    """Each model's map is aligned to the default model's: a mood stays where it was when the class switches."""
    ref = engine.indexes[engine.reference_key].coords
    extent = np.ptp(ref, axis=0).max()
    for key, index in engine.indexes.items():
        assert np.median(np.linalg.norm(index.coords - ref, axis=1)) / extent <= 0.12, key


@pytest.mark.skipif(not RAVDESS.is_dir(), reason=f"RAVDESS not found at {RAVDESS} (set S2M_RAVDESS)")
@pytest.mark.parametrize(
    "emotion, matching, opposite", [("angry", "tension", "calmness"), ("calm", "calmness", "tension")]
)
def test_real_unseen_voices_rank_matching_music_above_opposite(engine, emotion, matching, opposite):
    """Strong takes of both test actors (never seen in training), uncalibrated: on average the matching mood's songs
    (what most of their listeners felt) score above the opposite mood's, for most takes."""
    from s2m.emotions import RAVDESS_LABELS

    code = f"{RAVDESS_LABELS.index(emotion) + 1:02d}"
    takes = sorted(RAVDESS.glob(f"Actor_2[34]/03-01-{code}-02-*"))
    assert len(takes) == 8
    margins = []
    for path in takes:
        hits = engine.search(audio=str(path), framework=engine.best_framework("audio"), top_k=len(LIBRARY_IDS)).hits
        score = {m: np.mean([h.score for h in hits if h.mood == m]) for m in (matching, opposite)}
        margins.append(score[matching] - score[opposite])
    assert np.mean(margins) > 0.02 and np.mean(np.asarray(margins) > 0) >= 0.75, margins


def test_engine_rejects_bad_queries_with_messages(engine):
    with pytest.raises(AudioError, match="Nothing to search"):
        engine.search()
    with pytest.raises(AudioError, match="needs a recording"):
        engine.search(text="hello there", modality="audio", framework="triplet")
    with pytest.raises(ValueError, match="No model"):
        engine.search(text="hello", modality="text", framework="nope")
    long_text = "I am so happy today. " * 400
    assert engine.search(text=long_text, modality="text", framework="triplet").notices


def test_own_folder_labelled_and_unlabelled(tmp_path):
    for i, mood in enumerate(["sad", "sad", "happy", "happy"]):
        _mk(tmp_path / "lab" / mood / f"clip{i}.wav", i)
    labelled = Engine(library=tmp_path / "lab", index_dir=tmp_path / "index")
    assert labelled.indexes[("audio", "triplet")].moods == ["happy", "happy", "sad", "sad"]
    for i in range(4):
        _mk(tmp_path / "flat" / f"song{i}.wav", i)
    (tmp_path / "flat" / "broken.mp3").write_bytes(b"not really an mp3" * 10)
    engine = Engine(library=tmp_path / "flat", index_dir=tmp_path / "index")
    assert engine.skipped == ["broken.mp3"]
    index = engine.indexes[("audio", "triplet")]
    assert all(index.moods) and index.coords.shape == (4, 2)  # moods predicted by the music head
    result = engine.search(audio=str(EXAMPLES / "happy.wav"), framework="triplet", top_k=2)
    assert {h.clip_id for h in result.hits} <= {f"song{i}" for i in range(4)}


def _mk(path, i):
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = 22_050
    t = np.arange(rate * 3) / rate
    beat = (np.sin(2 * np.pi * (2 + i) * t) > 0.9).astype(np.float32)
    noise = np.random.default_rng(i).normal(size=len(t))
    sf.write(
        path, (tone(3.0, rate, freq=150 + 60 * i, amp=0.1 + 0.1 * i) + 0.3 * beat * noise).astype(np.float32), rate
    )
    return path


# --- the Gradio app, launched in-process -----------------------------------------------------------------------


def _search(client, audio=None, text="", modality="audio", framework="Triplet + EmoSim", k=5):
    from gradio_client import handle_file

    return client.predict(handle_file(str(audio)) if audio else None, text, modality, framework, k, api_name="/search")


def test_api_search_returns_library_clips(client):
    out = _search(client, EXAMPLES / "happy.wav")
    result = out[6]
    assert [h["clip_id"] for h in result["hits"]] and {h["clip_id"] for h in result["hits"]} <= LIBRARY_IDS
    players = [o for o in out[7:17] if isinstance(o, dict) and o.get("visible")]
    assert len(players) == 5 and all(p["value"] for p in players)
    assert "calibrated" not in out[0]  # an example voice is read as it comes, like any voice
    text = _search(client, text="We lost everything in the fire.", modality="text", framework="Triplet")
    assert text[6]["transcript"] == "We lost everything in the fire." and len(text[6]["hits"]) == 5


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: sf.write(p, np.zeros(16_000, np.float32), 16_000), "silent"),
        (lambda p: sf.write(p, tone(0.05, 16_000), 16_000), "too short"),
        (lambda p: sf.write(p, np.full(16_000, np.nan, np.float32), 16_000, subtype="FLOAT"), "NaN"),
        (lambda p: p.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 50), "not an audio file"),
        (lambda p: p.write_text("just some text, not audio"), "not an audio file"),
    ],
)
def test_bad_audio_gives_message_and_app_keeps_serving(client, tmp_path, make, message):
    from gradio_client.exceptions import ValidationError

    bad = tmp_path / "bad.wav"
    make(bad)
    with pytest.raises(ValidationError, match=f"audio: .*{message}"):
        _search(client, bad)
    assert _search(client, EXAMPLES / "sad.wav")[6]["hits"]  # still serving


def test_uploads_over_the_limit_are_refused(client, tmp_path):
    big = tmp_path / "big.wav"
    sf.write(big, np.zeros((16_000 * 60 * 14, 1), np.float32) + 0.01, 16_000, subtype="FLOAT")  # ~54 MB
    with pytest.raises(Exception, match="(?i)maximum|too large|exceed"):
        _search(client, big)
    assert _search(client, EXAMPLES / "sad.wav")[6]["hits"]


def test_long_and_any_rate_uploads_are_accepted(client, tmp_path):
    long = tmp_path / "long.flac"
    sf.write(long, np.tile(tone(1.0, 8_000), 600), 8_000)  # 10 minutes at 8 kHz
    out = _search(client, long)
    assert "only the first 30.0 s" in out[0] and out[6]["hits"]
    odd = tmp_path / "odd.wav"
    sf.write(odd, np.stack([tone(2.0, 96_000)] * 2, axis=1), 96_000)
    assert _search(client, odd)[6]["hits"]


def test_the_spoken_language_reaches_the_recogniser_and_an_unknown_one_is_refused(client):
    from gradio_client import handle_file
    from gradio_client.exceptions import ValidationError

    def search(language):
        return client.predict(
            handle_file(str(EXAMPLES / "happy.wav")), "", "fusion", "Triplet", 5, language, api_name="/search"
        )

    assert search("en")[6]["language"] == "en" and search("auto")[6]["hits"]
    with pytest.raises(ValidationError, match="Unknown language"):
        search("<|transcribe|>")
    assert _search(client, EXAMPLES / "sad.wav")[6]["hits"]  # still serving


def test_empty_query_is_refused(client):
    from gradio_client.exceptions import ValidationError

    with pytest.raises(ValidationError, match="Nothing to search"):
        _search(client, None, text="   ")
    with pytest.raises(ValidationError, match="needs a recording"):
        _search(client, None, text="I am happy", modality="fusion")


# --- who may index a server-side folder -----------------------------------------------------------------------


def test_folder_indexing_is_off_for_remote_and_shared_servers(monkeypatch):
    import gradio as gr

    from app import FolderPolicy

    assert not FolderPolicy.for_launch("0.0.0.0", False, None).enabled
    assert not FolderPolicy.for_launch(None, True, None).enabled  # --share
    monkeypatch.setattr("app.ON_SPACE", True)
    assert not FolderPolicy.for_launch(None, False, None).enabled
    monkeypatch.setattr("app.ON_SPACE", False)
    local = FolderPolicy.for_launch("127.0.0.1", False, None)
    assert local.enabled and local.root is None
    with pytest.raises(gr.Error, match="turned off"):
        FolderPolicy().check(str(LIBRARY_DIR), "127.0.0.1")
    with pytest.raises(gr.Error, match="server itself"):  # a remote client calling the hidden handler directly
        local.check(str(LIBRARY_DIR), "203.0.113.7")
    with pytest.raises(gr.Error, match="Type the path"):  # never the app's own folder by default
        local.check("  ", "127.0.0.1")
    assert local.check(str(LIBRARY_DIR), "127.0.0.1") == LIBRARY_DIR.resolve()


def test_allowed_folder_tree_is_enforced(tmp_path):
    import gradio as gr

    from app import FolderPolicy

    (tmp_path / "music" / "class").mkdir(parents=True)
    (tmp_path / "private").mkdir()
    (tmp_path / "music" / "escape").symlink_to(tmp_path / "private")
    policy = FolderPolicy.for_launch("0.0.0.0", True, str(tmp_path / "music"))
    assert policy.check("class", "203.0.113.7") == (tmp_path / "music" / "class").resolve()
    for outside in (str(tmp_path / "private"), "../private", "escape", "/etc"):
        with pytest.raises(gr.Error, match="Only folders inside"):
            policy.check(outside, "203.0.113.7")


def test_metadata_rows_cannot_point_outside_the_library(tmp_path):
    shutil.copy(LIBRARY_DIR / "metadata.csv", tmp_path / "metadata.csv")
    text = (tmp_path / "metadata.csv").read_text().splitlines()
    first = text[1].split(",")
    first[1] = "../../etc/passwd"
    (tmp_path / "metadata.csv").write_text("\n".join([text[0], ",".join(first), *text[2:]]) + "\n")
    with pytest.raises(DatasetError, match="line 2, column path: '../../etc/passwd' points outside"):
        Engine(library=tmp_path, index_dir=tmp_path / "index")


def test_damaged_caches_are_rebuilt_with_a_log_line(tmp_path, caplog):
    for i, mood in enumerate(["sad", "sad", "happy", "happy"]):
        _mk(tmp_path / "lib" / mood / f"clip{i}.wav", i)
    index = tmp_path / "index"
    first = Engine(library=tmp_path / "lib", index_dir=index)
    caches = sorted(index.rglob("*.npz"))
    assert any(p.name.startswith("map-") for p in caches) and any(p.parent.name == "mood-dsp" for p in caches)
    for p in caches:
        p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])  # a write cut short
    with caplog.at_level("WARNING"):
        again = Engine(library=tmp_path / "lib", index_dir=index)
    assert sum("damaged" in r.getMessage() for r in caplog.records) == len(caches)
    key = ("audio", "triplet")
    np.testing.assert_allclose(again.indexes[key].embeddings, first.indexes[key].embeddings, atol=1e-6)
    assert again.indexes[key].coords.shape == (4, 2)


def test_damaged_library_data_is_named_or_skipped(tmp_path):
    for i, mood in enumerate(["sad", "sad", "happy", "happy"]):
        _mk(tmp_path / "lib" / mood / f"clip{i}.wav", i)
    rows = ["clip_id,path,mood,valence,arousal,group,split,start_s,end_s,license,source"]
    rows += [
        f"c{i},{m}/clip{i}.wav,{m},0.5,0.5,g{i},test,0,3,CC0,me" for i, m in enumerate(["sad", "sad", "happy", "happy"])
    ]
    (tmp_path / "lib" / "metadata.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "lib" / "sad" / "clip1.wav").write_bytes(b"garbage" * 100)  # a damaged clip
    engine = Engine(library=tmp_path / "lib", index_dir=tmp_path / "index")
    assert engine.skipped == ["clip1.wav"] and len(engine.indexes[("audio", "triplet")].records) == 3
    (tmp_path / "lib" / "metadata.csv").write_text("\n".join([rows[0], rows[1].replace("0.5,0.5", "0.5,high")]))
    with pytest.raises(DatasetError, match="metadata.csv, line 2, column arousal: 'high' is not a number"):
        Engine(library=tmp_path / "lib", index_dir=tmp_path / "index")
    _mk(tmp_path / "folders" / "rock" / "a.wav", 0)
    _mk(tmp_path / "folders" / "peaceful" / "b.wav", 1)  # a word the VA table knows is fine
    with pytest.raises(DatasetError, match="Unknown mood folder\\(s\\) rock in .*amazement, calmness"):
        Engine(library=tmp_path / "folders", index_dir=tmp_path / "index")


def test_hidden_folder_handler_refuses_a_direct_call_over_http(client):
    """A hostile client joins the queue with the folder handler's index (it is not in the API page)."""
    import json

    import httpx

    import app

    fn = next(i for i, f in app.DEMO.fns.items() if getattr(getattr(f, "fn", None), "__name__", "") == "use_folder")
    url = client.src.rstrip("/") + "/"
    request = {"data": [str(LIBRARY_DIR.parent), None], "fn_index": fn, "session_hash": "hostile1", "event_data": None}
    joined = httpx.post(url + "gradio_api/queue/join", json=request)
    assert joined.status_code == 200
    with httpx.stream("GET", url + "gradio_api/queue/data", params={"session_hash": "hostile1"}, timeout=60) as s:
        done = next(
            json.loads(line[5:])
            for line in s.iter_lines()
            if line.startswith("data:") and json.loads(line[5:]).get("msg") == "process_completed"
        )
    assert not done["success"] and "turned off" in done["output"]["error"]
    assert _search(client, EXAMPLES / "sad.wav")[6]["hits"]  # still serving


def test_shutdown_lets_running_searches_finish_and_refuses_new_ones():
    import threading
    import time

    from app import Shutdown

    shutdown = Shutdown(grace=5.0)
    finished = []

    def running_search():
        with shutdown.job():
            time.sleep(0.4)
            finished.append(True)

    worker = threading.Thread(target=running_search)
    worker.start()
    time.sleep(0.05)
    assert shutdown.drain() == 0 and finished == [True]  # drained only after the search completed
    assert shutdown.stopping.is_set()
    slow = Shutdown(grace=0.1)
    with slow.job():
        assert slow.drain() == 1  # a search that outlives the grace period is reported, not waited for forever


def test_uploaded_library_is_bounded_session_only_and_deleted(tmp_path):
    import zipfile

    import app
    from s2m.data.uploads import unpack_uploads

    for i, mood in enumerate(["sad", "sad", "happy", "happy"]):
        _mk(tmp_path / "src" / mood / f"clip {i}.wav", i)
    archive = tmp_path / "mine.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in sorted((tmp_path / "src").rglob("*.wav")):
            z.write(p, f"{p.parent.name}/{p.name}")
        z.writestr("../../happy/escape.mp3", b"not audio")  # a path that tries to leave the folder
    engine, message = app.use_uploads([str(archive)], None)
    folder = engine.library.parent
    assert folder.is_relative_to(app.UPLOAD_ROOT) and "Using your 4 clips" in message  # escape.mp3 unreadable
    assert "escape.mp3" in message and not (tmp_path / "escape.mp3").exists()
    assert sorted(p.relative_to(engine.library).as_posix() for p in engine.library.rglob("*.wav")) == [
        "happy/clip_2.wav",
        "happy/clip_3.wav",
        "sad/clip_0.wav",
        "sad/clip_1.wav",
    ]
    assert set(engine.indexes[("audio", "triplet")].moods) == {"happy", "sad"}
    again, _ = app.use_uploads([str(p) for p in (tmp_path / "src").rglob("*.wav")], engine)  # flat: predicted moods
    assert not folder.exists()  # the replaced library is gone
    app.forget_library(again)  # what the session's delete callback does when it ends
    assert not again.library.parent.exists()
    with pytest.raises(DatasetError, match="at most 3 make one library"):
        unpack_uploads([str(archive)], tmp_path / "x", max_files=3)
    with pytest.raises(DatasetError, match="more than 0 MB"):
        unpack_uploads([str(archive)], tmp_path / "y", max_bytes=1000)
    with pytest.raises(DatasetError, match="No audio files"):
        unpack_uploads([str(tmp_path / "mine.zip.txt")], tmp_path / "z")


def test_a_sessions_own_library_is_served_by_the_servers_checkpoints(tmp_path, monkeypatch):
    """`python app.py --checkpoints DIR`: a visitor's uploaded library is ranked by DIR's models too, not by the
    bundled ones."""
    import app
    from s2m.search import CHECKPOINTS

    mine = tmp_path / "checkpoints"
    for folder in sorted(CHECKPOINTS.glob("audio-*")):  # only the audio models
        shutil.copytree(folder, mine / folder.name)
    monkeypatch.setattr(app, "ENGINE", Engine(mine))
    for i, mood in enumerate(["sad", "sad", "happy", "happy"]):
        _mk(tmp_path / "src" / mood / f"clip {i}.wav", i)
    engine, _ = app.use_uploads([str(p) for p in sorted((tmp_path / "src").rglob("*.wav"))], None)
    try:
        assert engine.checkpoints == mine and set(engine.models) == set(app.ENGINE.models)
        assert {m for m, _ in engine.models} == {"audio"}
    finally:
        app.forget_library(engine)


def test_a_long_song_stands_and_plays_by_its_loudest_ten_seconds(tmp_path):
    """A user's 40-s song, quiet but for 0:20–0:30: that window is what the library embeds, what the result plays and
    what its "why" names; a 3-s file is used whole. The window choice is cached with the index."""
    import app
    from s2m.audio import loudest_window

    rate = 22_050
    quiet, loud = tone(10.0, rate, amp=0.02), tone(10.0, rate, freq=440.0, amp=0.5)
    song = np.concatenate([quiet, quiet, loud, quiet])
    assert loudest_window(song, rate) == 20.0 and loudest_window(song[: 5 * rate], rate) == 0.0
    (tmp_path / "lib" / "happy").mkdir(parents=True)
    sf.write(tmp_path / "lib" / "happy" / "song.flac", song.astype(np.float32), rate)
    _mk(tmp_path / "lib" / "sad" / "short.wav", 1)
    engine = Engine(library=tmp_path / "lib", index_dir=tmp_path / "index")
    assert {r.path.split("/")[-1]: r.start for r in engine.indexes[("audio", "triplet")].records} == {
        "song.flac": 20.0,
        "short.wav": 0.0,
    }
    assert list((tmp_path / "index" / "features" / "windows").glob("*.npz"))
    hits = engine.search(audio=str(EXAMPLES / "happy.wav"), framework="triplet", top_k=2).hits
    song_hit = next(h for h in hits if h.clip_id.endswith("song"))
    short_hit = next(h for h in hits if h.clip_id.endswith("short"))
    assert song_hit.window and song_hit.start == 20.0 and "0:20–0:30 of the 0:40 song" in song_hit.why
    assert not short_hit.window and "song" not in short_hit.why
    players, _ = app._result_slots([song_hit])
    played_rate, played = players[0].value if isinstance(players[0].value, tuple) else (None, None)
    if played is None:  # Gradio stored the array as a file: read it back
        played, played_rate = sf.read(players[0].value["path"], dtype="float32")
    assert len(played) == pytest.approx(10 * played_rate, rel=0.01)
    assert np.sqrt(np.mean(np.square(played.astype(np.float32)))) > 0.3  # the loud part (RMS 0.35; elsewhere 0.014)


def test_the_default_audio_model_hears_a_query_and_its_reference_through_the_noise_reducer(engine):
    """The shipped audio model was trained on denoised speech, so a query (and a neutral reference) must reach it
    the same way: the untrimmed recording denoised, then trimmed and level-normalised."""
    from s2m.audio import load_audio
    from s2m.encoders import load
    from s2m.features import prepare_speech

    model = engine.model("audio", engine.best_framework("audio"))
    assert model.config.training["config"]["denoise"] and model.config.training["config"]["level_norm"]
    rng = np.random.default_rng(0)
    noisy = np.concatenate([np.zeros(16_000), tone(1.5, 16_000, freq=170), np.zeros(16_000)])
    clip = load_audio((16_000, (noisy + rng.normal(0, 0.01, noisy.shape)).astype(np.float32)))
    reference = load_audio((16_000, (noisy + rng.normal(0, 0.01, noisy.shape)).astype(np.float32)))
    features, _, _ = engine._query_features(model, clip, None, None)
    encoder = load(model.config.encoders["audio"])
    np.testing.assert_allclose(features, encoder.embed([prepare_speech(clip, 16_000, True, True)]), atol=1e-5)
    assert not np.allclose(features, encoder.embed([prepare_speech(clip, 16_000, True, False)]), atol=1e-3)
    calibrated, _, _ = engine._query_features(model, clip, None, reference)
    assert not np.allclose(calibrated, features)
    np.testing.assert_allclose(
        engine._reference_features(encoder.name, (True, True), reference),
        encoder.embed([prepare_speech(reference, 16_000, True, True)]),
        atol=1e-5,
    )


def test_about_names_the_speech_the_voice_models_learned_from(engine):
    import app

    model = engine.model("audio", engine.best_framework("audio"))
    corpora = model.config.training["corpora"]
    assert {"ravdess", "korean-emotion", "polish-emotion", "turkish-emotion"} <= set(corpora)
    speakers = sum(c["speakers"] for c in corpora.values())
    assert f"learned from {speakers} actors in {len(corpora)} collections" in app._learned_from(model)


def test_https_needs_both_files_and_they_must_exist(monkeypatch, tmp_path):
    import app

    monkeypatch.setattr("sys.argv", ["app.py", "--ssl-certfile", str(tmp_path / "cert.pem")])
    with pytest.raises(SystemExit, match="needs both --ssl-certfile and --ssl-keyfile"):
        app.main()
    monkeypatch.setattr("sys.argv", ["app.py", "--ssl-certfile", "nope.pem", "--ssl-keyfile", "nope.key"])
    with pytest.raises(SystemExit, match="no file nope.pem"):
        app.main()
    assert app.https_options(None, None) == {}
    assert app.https_options("c.pem", "k.pem") == {"ssl_certfile": "c.pem", "ssl_keyfile": "k.pem", "ssl_verify": False}


def test_switching_model_moves_the_recordings_star_instead_of_adding_one(engine):
    import app

    voice, other = str(EXAMPLES / "happy.wav"), str(EXAMPLES / "sad.wav")
    first = engine.search(audio=voice, framework="triplet").to_dict()
    history = app.remember(first, "Ana", app.remember(engine.search(audio=other).to_dict(), "Ben", []))
    last = app.query_id(voice, None)
    out = app.rerun(voice, None, "audio", "Triplet + EmoSim", 5, None, engine, history, "auto", last)
    for fig in out[4:6]:  # the class maps drawn by the re-run: Ben's earlier query, not Ana's old reading
        earlier = [t for t in fig.data if t.name.startswith("earlier")]
        assert [label for t in earlier for text in t.text for label in text.split(" · ")] == [history[0]["label"]]
    second = out[6]
    moved = app.relocate(second, history, last, voice, None)
    top = max(second["emotions"], key=second["emotions"].get)
    assert len(moved) == 2 and moved[0] == history[0] and moved[1]["label"] == f"Ana — {top}"
    assert (moved[1]["x"], moved[1]["y"]) == (second["x"], second["y"])
    assert app.relocate(second, history, last, other, None) == history  # another recording: nothing moves
    assert app.relocate(second, history, "", voice, None) == history  # never searched: nothing moves


def test_every_search_handler_returns_one_value_per_named_output(engine):
    """search, a re-run with nothing to re-run, and clear all fill the same SEARCH_OUTPUTS slots (no hand count)."""
    import app

    n = len(app.SEARCH_OUTPUTS)
    assert len(app._search(str(EXAMPLES / "sad.wav"), None, "audio", "Triplet", 3, None, engine)) == n
    assert app.rerun(None, "", "audio", "Triplet", 3, None, engine) == [app.gr.skip()] * n
    assert len(app.clear_history("audio", "Triplet", engine)) == 2 + n  # and the history and last query
