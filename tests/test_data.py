"""Readers, the bundled library's metadata, and the reproducibility of the generated data."""

import shutil

import numpy as np
import pytest
import soundfile as sf

from s2m.data import (
    LIBRARY_DIR,
    DatasetError,
    compose,
    library_records,
    read_audioset_csv,
    read_folder,
    read_hikia,
    read_iemocap,
    read_metadata,
    read_ravdess,
    read_speech_csv,
    speech,
)
from s2m.data.library import build_immich
from s2m.emotions import GEMS_LABELS, va

from .conftest import tone


def _wav(path, seconds=0.6):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, tone(seconds, 16_000), 16_000)


def test_ravdess_reader_on_handmade_folder(tmp_path):
    names = [
        "03-01-05-02-01-01-12.wav",
        "03-01-01-01-02-02-21.wav",
        "03-01-04-01-01-01-24.wav",
        "03-02-03-01-01-01-01.wav",
    ]  # the last is a song: skipped
    for n in names:
        _wav(tmp_path / "Actor_x" / n)
    records = {r.path.rsplit("/", 1)[1]: r for r in read_ravdess(tmp_path)}
    assert len(records) == 3
    angry = records["03-01-05-02-01-01-12.wav"]
    assert (angry.label, angry.group, angry.split) == ("angry", "actor12", "train")
    assert angry.transcript == "Kids are talking by the door."
    assert records["03-01-01-01-02-02-21.wav"].split == "valid"
    assert records["03-01-04-01-01-01-24.wav"].label == "sad" and records["03-01-04-01-01-01-24.wav"].split == "test"


def test_ravdess_reader_takes_the_published_48k_wav_layout_and_flac(tmp_path):
    from s2m.audio import load_audio

    root = tmp_path / "Audio_Speech_Actors_01-24"
    for name, rate in [
        ("Actor_01/03-01-05-02-01-01-01.wav", 48_000),
        ("Actor_23/03-01-02-01-02-02-23.flac", 16_000),
        ("Actor_20/03-01-08-02-02-01-20.flac", 44_100),
    ]:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / name, tone(0.8, rate), rate, subtype="PCM_16")
    records = read_ravdess(root)
    assert [(r.label, r.split) for r in records] == [("angry", "train"), ("surprised", "valid"), ("calm", "test")]
    for r in records:
        clip = load_audio(r.path)
        assert clip.sample_rate == 16_000 and 0.7 < clip.seconds < 0.9


def test_speech_csv_reader(tmp_path):
    _wav(tmp_path / "a.wav")
    _wav(tmp_path / "sub" / "b.flac")
    (tmp_path / "ok.csv").write_text("path,label,speaker,text\na.wav,Bored,ana,so dull\nsub/b.flac,excited,ben,\n")
    records = read_speech_csv(tmp_path / "ok.csv")
    assert [(r.label, r.group, r.split, r.transcript) for r in records] == [
        ("bored", "ana", "test", "so dull"),
        ("excited", "ben", "test", None),
    ]
    (tmp_path / "bad.csv").write_text("path,label,speaker\na.wav,grumpy,ana\na.wav,zzz,ben\na.wav,sad,ben\n")
    with pytest.raises(DatasetError, match="grumpy, zzz are not in the lexicon"):
        read_speech_csv(tmp_path / "bad.csv")
    (tmp_path / "missing.csv").write_text("path,label,speaker\nnope.wav,sad,ana\n")
    with pytest.raises(DatasetError, match="line 2: audio file 'nope.wav' not found"):
        read_speech_csv(tmp_path / "missing.csv")
    (tmp_path / "cols.csv").write_text("file,label\na.wav,sad\n")
    with pytest.raises(DatasetError, match="missing column"):
        read_speech_csv(tmp_path / "cols.csv")


def test_bundled_library_is_one_listener_labelled_clip_per_emotify_track():
    rows = read_metadata(LIBRARY_DIR)
    assert len(rows) == 360 and len({r.group for r in rows}) == 360
    assert {s: sum(r.split == s for r in rows) for s in ("train", "valid", "test")} == {
        "train": 216,
        "valid": 72,
        "test": 72,
    }
    for genre in ("classical", "rock", "electronic", "pop"):  # split stratified by genre
        assert [
            sum(r.split == s and r.clip_id.startswith(genre) for r in rows) for s in ("train", "valid", "test")
        ] == [54, 18, 18]
    for r in rows:
        assert r.title and r.artist and "CC BY-NC-SA" in r.license and r.felt.split(" ")[1] == "listeners:"
        assert 0 <= r.valence <= 1 and 0 <= r.arousal <= 1 and r.mood in GEMS_LABELS
        shares = r.share_values()  # all nine, and the mood is the one most listeners felt
        assert len(shares) == 9 and r.mood == GEMS_LABELS[int(np.argmax(shares))]
    records = library_records()
    assert all(len(c.shares) == 9 for c in records)  # so the library's relevance is its listeners' (metrics)
    size = sum(p.stat().st_size for p in LIBRARY_DIR.rglob("*") if p.is_file())
    assert size < 80e6


@pytest.mark.parametrize("bad", ["hello.wav", "03-01-09-01-01-01-01.wav", "03-01-05-03-01-01-01.wav"])
def test_ravdess_reader_rejects_malformed_names(tmp_path, bad):
    _wav(tmp_path / bad)
    with pytest.raises(DatasetError, match=bad.replace(".", r"\.")):
        read_ravdess(tmp_path)


def test_generated_corpus_parses_like_ravdess(tmp_path):
    plan = speech.plan(actors=[3, 24])
    chosen = [u for u in plan if u.statement in (1, 9) and u.emotion in ("angry", "sad")][:6]
    speech._render_batch((chosen, 0, str(tmp_path / "gen")))
    (tmp_path / "gen" / "transcripts.csv").write_text(
        "statement,text\n" + "".join(f"{i + 1:02d},{s}\n" for i, s in enumerate(speech.STATEMENTS))
    )
    for u in chosen:  # the same names, hand-made
        _wav(tmp_path / "hand" / u.filename)
    shutil.copy(tmp_path / "gen" / "transcripts.csv", tmp_path / "hand")
    gen, hand = read_ravdess(tmp_path / "gen"), read_ravdess(tmp_path / "hand")
    strip = lambda rs: [(r.label, r.group, r.split, r.transcript) for r in rs]  # noqa: E731
    assert strip(gen) == strip(hand)
    by_name = {r.path.rsplit("/", 1)[1]: r for r in gen}
    for u in chosen:
        r = by_name[u.filename]
        assert r.label == u.emotion and r.transcript == u.text and r.group == f"actor{u.actor:02d}"


def test_speech_synthesis_is_deterministic_and_follows_the_rules():
    synth = speech.Synthesizer()
    pick = {(u.actor, u.emotion): u for u in speech.plan(actors=[5, 24]) if u.statement == 1 and u.intensity == 2}
    for actor in (5, 24):
        angry, sad = synth.render(pick[(actor, "angry")], 0), synth.render(pick[(actor, "sad")], 0)
        np.testing.assert_array_equal(angry, synth.render(pick[(actor, "angry")], 0))
        rms = lambda x: np.sqrt(np.mean(x**2))  # noqa: E731
        assert rms(angry) > 2 * rms(sad)  # +7 dB·1.7 vs -5 dB·1.7
        assert len(sad) > len(angry)  # sad is slower


def test_corpus_plan_follows_ravdess_layout():
    plan = speech.plan()
    assert len({u.filename for u in plan}) == len(plan) == 24 * 90
    assert {u.emotion for u in plan if u.intensity == 2} == set(speech.RULES) - {"neutral"}
    assert {u.actor for u in plan if u.engine == "piper"} == {speech.PIPER_ACTOR}


def test_library_metadata_is_consistent():
    rows = read_metadata(LIBRARY_DIR)
    assert len({r.clip_id for r in rows}) == len(rows)
    split_of_group = {}
    for r in rows:
        assert (LIBRARY_DIR / r.path).exists(), r.path
        assert split_of_group.setdefault(r.group, r.split) == r.split  # a track never straddles splits
        assert r.end_s - r.start_s == pytest.approx(10.0) and r.license


def test_immich_build_is_an_optional_library_with_every_mood_in_every_split(tmp_path):
    rebuilt = build_immich(tmp_path, seed=0)
    assert read_metadata(tmp_path) == sorted(rebuilt, key=lambda r: r.clip_id)
    for r in rebuilt:
        assert (tmp_path / r.path).exists() and (r.valence, r.arousal) == pytest.approx(va(r.mood))
    for mood in {r.mood for r in rebuilt}:
        assert {r.split for r in rebuilt if r.mood == mood} == {"train", "valid", "test"}
        for split in ("valid", "test"):
            assert sum(r.mood == mood and r.split == split for r in rebuilt) >= 5, (mood, split)


def test_composed_metadata_is_reproducible():
    planned = [r for r, _, _ in compose.plan_rows(seed=0)]
    assert planned == [r for r, _, _ in compose.plan_rows(seed=0)]
    for mood in compose.STYLES:
        assert sum(r.mood == mood for r in planned) >= 20
        assert len({r.group for r in planned if r.mood == mood}) >= 5


def test_iemocap_reader_keeps_session5_for_test(tmp_path):
    for s in (1, 5):
        ses = tmp_path / f"Session{s}"
        utt = f"Ses0{s}F_impro01_F000"
        _wav(ses / "sentences" / "wav" / f"Ses0{s}F_impro01" / f"{utt}.wav")
        (ses / "dialog" / "EmoEvaluation").mkdir(parents=True)
        (ses / "dialog" / "EmoEvaluation" / "a.txt").write_text(
            f"[6.2901 - 8.2357]\t{utt}\tneu\t[2.5000, 2.5000, 2.5000]\n"
            f"[9.0 - 10.0]\tSes0{s}F_impro01_F001\txxx\t[2.5000, 2.5000, 2.5000]\n"
        )
        (ses / "dialog" / "transcriptions").mkdir(parents=True)
        (ses / "dialog" / "transcriptions" / "a.txt").write_text(f"{utt} [006.2901-008.2357]: Excuse me.\n")
    records = read_iemocap(tmp_path)
    assert [(r.label, r.split, r.transcript) for r in records] == [
        ("neutral", records[0].split, "Excuse me."),
        ("neutral", "test", "Excuse me."),
    ]
    assert records[0].split in ("train", "valid")
    (tmp_path / "Session1" / "sentences" / "wav" / "Ses01F_impro01" / "Ses01F_impro01_F000.wav").unlink()
    with pytest.raises(DatasetError, match="Ses01F_impro01_F000"):
        read_iemocap(tmp_path)


def test_hikia_audioset_and_folder_readers(tmp_path):
    _wav(tmp_path / "hikia" / "F1_01.wav")
    (tmp_path / "hikia" / "split").mkdir()
    for split in ("train", "valid", "test"):
        (tmp_path / "hikia" / "split" / f"{split}.csv").write_text("fname,angry,sad,happy,neutral\nF1_01.wav,0,1,0,0\n")
    assert {(r.label, r.split) for r in read_hikia(tmp_path / "hikia")} == {
        ("sad", s) for s in ("train", "valid", "test")
    }

    for i in range(3):
        _wav(tmp_path / "as" / f"v{i}.wav")
    (tmp_path / "as" / "moods.csv").write_text("file,label,group\nv0.wav,sad,vid0\nv1.wav,sad,vid1\nv2.wav,sad,vid2\n")
    records = read_audioset_csv(tmp_path / "as" / "moods.csv")
    assert sorted(r.split for r in records) == ["test", "train", "valid"]
    (tmp_path / "as" / "bad.csv").write_text("file,label,group\nmissing.wav,sad,vid9\n")
    with pytest.raises(DatasetError, match="missing.wav"):
        read_audioset_csv(tmp_path / "as" / "bad.csv")

    _wav(tmp_path / "mine" / "Happy" / "a.wav")
    _wav(tmp_path / "mine" / "sad" / "b.wav")
    assert [r.label for r in read_folder(tmp_path / "mine")] == ["happy", "sad"]
    assert [r.label for r in read_folder(tmp_path / "mine", labelled=False)] == ["", ""]
    _wav(tmp_path / "flat" / "x.wav")
    with pytest.raises(DatasetError, match="one sub-folder per label"):
        read_folder(tmp_path / "flat")


@pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="fluidsynth not installed (apt-get install fluidsynth)")
def test_composed_moods_differ_in_the_intended_directions():
    sf2 = compose.soundfont()
    (angry_midi, angry_tempo, angry_key), (sad_midi, sad_tempo, sad_key) = (
        compose.compose(m, 0) for m in ("angry", "sad")
    )
    angry, rate = compose.render(angry_midi, sf2)
    sad, _ = compose.render(sad_midi, sf2)
    np.testing.assert_array_equal(angry, compose.render(compose.compose("angry", 0)[0], sf2)[0])  # reproducible
    db = lambda x: 20 * np.log10(np.sqrt(np.mean(x**2)))  # noqa: E731
    assert db(angry) > db(sad) + 10 and angry_tempo > 2 * sad_tempo
    assert angry_key.endswith("minor") and sad_key.endswith("minor")
    assert len(angry) / rate >= 40 and len(sad) / rate >= 40  # four 10-s clips per piece


def test_sentence_set_splits_by_sentence_and_carries_translations():
    import collections

    from s2m.data import read_sentences
    from s2m.data.speech import EMOTION_SENTENCES, NEUTRAL_SENTENCES
    from s2m.emotions import RAVDESS_LABELS

    english = read_sentences()
    assert len(english) == 480 and all(r.path == "" and r.transcript for r in english)
    counts = collections.Counter((r.split, r.label) for r in english)
    assert all(
        counts[("train", e)] >= 40 and counts[("valid", e)] >= 10 and counts[("test", e)] >= 10 for e in RAVDESS_LABELS
    )
    by_split = {s: {r.transcript.lower() for r in english if r.split == s} for s in ("train", "valid", "test")}
    assert not (by_split["train"] & by_split["valid"]) and not (by_split["train"] & by_split["test"])
    corpus = {s.lower() for s in NEUTRAL_SENTENCES} | {s.lower() for v in EMOTION_SENTENCES.values() for s in v}
    assert not corpus & set().union(*by_split.values())  # none of the speech corpus's sentences
    every = read_sentences(languages=("en", "ko", "de", "es"))
    korean = [r for r in every if r.group.endswith("-ko")]
    assert collections.Counter(r.split for r in korean) == {"train": 320, "valid": 80, "test": 80}
    assert all(any("\uac00" <= c <= "\ud7a3" for c in r.transcript) for r in korean)  # written in Hangul
    # training sentences come in English and in the translations that exist (Korean); German and Spanish are test-only
    assert {r.group.rsplit("-", 1)[1] for r in every if r.split == "train"} == {"en", "ko"}
    assert {r.group.rsplit("-", 1)[1] for r in english if r.split == "train"} == {"en"}


def _speech_csv(folder, speakers, labels, seconds=1.0):
    import soundfile as sf

    from tests.conftest import tone

    folder.mkdir(parents=True, exist_ok=True)
    rows = ["path,label,speaker,text"]
    for s in speakers:
        for i, lab in enumerate(labels):
            name = f"{s}-{i}.wav"
            sf.write(folder / name, tone(seconds if i else 0.2, 16_000, freq=150 + 10 * i, amp=0.3), 16_000)
            rows.append(f"{name},{lab},{s},words {i}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return folder


def test_corpora_are_named_split_by_speaker_held_out_one_at_a_time_and_cleaned_of_clips_a_query_refuses(tmp_path):
    from s2m.data import DatasetError
    from s2m.data.corpora import default_specs, held_out, read_corpora, sample_queries
    from s2m.features import playable

    _speech_csv(tmp_path / "kor", ["k1", "k2", "k3", "k4"], ["angry", "happy", "sad"])
    _speech_csv(tmp_path / "tur", ["1", "2", "3"], ["calm", "happy"])
    assert default_specs(tmp_path) == [f"{n}={tmp_path / n / 'labels.csv'}" for n in ("kor", "tur")]
    corpora = read_corpora([f"ko={tmp_path / 'kor'}", str(tmp_path / "tur" / "labels.csv")])
    assert list(corpora) == ["ko", "tur"]
    ko = corpora["ko"]
    assert {r.corpus for r in ko} == {"ko"} and {r.group for r in ko} == {"ko/k1", "ko/k2", "ko/k3", "ko/k4"}
    assert {r.group for r in ko if r.split == "valid"} == {"ko/k3"}  # every 3rd sorted speaker validates
    assert {r.split for r in corpora["tur"] if r.group == "tur/3"} == {"valid"}
    fold = held_out(corpora, "tur")
    assert [r.split for r in fold if r.corpus == "tur"] == ["test"] * 6
    assert [r.split for r in fold if r.corpus == "ko"] == [r.split for r in ko]
    few = sample_queries(fold, 2)
    assert sum(r.split == "test" for r in few) == 2 and sum(r.split == "unused" for r in few) == 4
    assert [r.path for r in few] == [r.path for r in fold]
    # the 0.2-s first take of every speaker is too short for a query: left out, and the answer is cached
    kept = playable(ko, tmp_path / "cache", progress=False)
    assert len(kept) == 8 and all(not r.path.endswith("-0.wav") for r in kept)
    assert playable(ko, tmp_path / "cache", progress=False) == kept
    with pytest.raises(DatasetError, match="two corpora are named"):
        read_corpora([str(tmp_path / "kor"), f"kor={tmp_path / 'tur'}"])
    with pytest.raises(DatasetError, match="No speech corpus"):
        read_corpora([str(tmp_path / "missing")])
