"""A tiny model trains for a few epochs on generated features: the loss falls and evaluation has its keys."""

import json
from dataclasses import replace

import numpy as np
import pytest

from s2m import heads
from s2m.calibration import calibration_references, speaker_means
from s2m.config import TrainConfig
from s2m.evaluate import evaluate_model, markdown, summarise, train_on
from s2m.featuresets import Data, FeatureSet
from s2m.train import for_inference, train

SPEECH = ["angry", "happy", "sad", "neutral"]
MUSIC = ["angry", "happy", "sad", "nostalgic"]


def _set(labels_pool, n_per, dim, rng, shift, groups_per_split=2):
    centres = {lab: rng.normal(0, 1, dim) * 2 for lab in labels_pool}
    feats, labels, groups, splits = [], [], [], []
    for split in ("train", "valid", "test"):
        for g in range(groups_per_split):
            for lab in labels_pool:
                for _ in range(n_per):
                    feats.append(centres[lab] + rng.normal(0, 1, dim) + shift)
                    labels.append(lab)
                    groups.append(f"{split}{g}")
                    splits.append(split)
    return FeatureSet(np.asarray(feats, np.float32), labels, groups, splits)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    speech = _set(SPEECH, 12, 10, rng, shift=3.0)
    music = _set(MUSIC, 6, 7, rng, shift=-1.0, groups_per_split=1)
    tags = {lab: rng.normal(size=5).astype(np.float32) for lab in set(SPEECH) | set(MUSIC)}
    return Data(speech, music, np.zeros(len(speech.labels), bool), tags)


@pytest.mark.parametrize("framework", ["triplet", "triplet_sp_emosim"])
def test_tiny_training_loss_falls_and_retrieval_beats_chance(data, framework):
    config = TrainConfig(framework=framework, epochs=8, warmup_epochs=1, batch_size=32, lr=3e-3, patience=50, members=1)
    model, history = train(config, data.speech, data.music, data.tags)
    losses = [h["loss"] for h in history["history"]]
    assert losses[-1] < losses[0]
    assert history["mapping"] == {"angry": "angry", "happy": "happy", "neutral": "nostalgic", "sad": "sad"}
    rows = evaluate_model(model, data)
    chance = evaluate_model(None, data)
    assert rows[0]["precision_at_k"] > chance[0]["precision_at_k"] + 0.2
    assert set(rows[0]) >= {"test_set", "queries", "precision_at_k", "mrr", "ndcg_at_k", "speech_accuracy"}


def test_the_chance_row_scores_with_the_protocols_va_table(data):
    """The chance baseline's graded relevance comes from the VA table the protocol uses (--va-table), not always
    the lexicon's: the two tables place "neutral" differently, so its nDCG moves."""
    lexicon = evaluate_model(None, data)[0]
    paper = evaluate_model(None, data, table="paper")[0]
    assert paper["precision_at_k"] == lexicon["precision_at_k"] and paper["ndcg_at_k"] != lexicon["ndcg_at_k"]


def test_ranksim_names_only_the_runs_it_changes(data):
    """RankSim replaces the EmoSim regulariser, so only an EmoSim run is named "+ranksim" — in its checkpoint and in
    result tables alike (one name for both)."""
    for framework, name in (("triplet", "triplet"), ("triplet_emosim", "triplet_emosim+ranksim")):
        config = TrainConfig(framework=framework, ranksim=True, epochs=1, warmup_epochs=1, batch_size=32, members=1)
        model, _ = train(config, data.speech, data.music, data.tags)
        assert config.label == name and model.config.framework == name


def test_training_is_seeded(data):
    config = TrainConfig(epochs=2, warmup_epochs=1, batch_size=32, seed=3, members=1)
    a, _ = train(config, data.speech, data.music, data.tags)
    b, _ = train(config, data.speech, data.music, data.tags)
    x = data.speech.features[:5]
    np.testing.assert_array_equal(a.project("speech", x), b.project("speech", x))


def test_summary_has_documented_keys_and_checkpoint_roundtrip(data, tmp_path):
    config = TrainConfig(framework="triplet_sp", epochs=2, warmup_epochs=1, batch_size=32, members=1)
    rows = []
    for seed in (0, 1):
        model, _ = train(TrainConfig(**{**config.__dict__, "seed": seed}), data.speech, data.music, data.tags)
        rows += [{"framework": "triplet_sp", "modality": "audio", **r} for r in evaluate_model(model, data)]
    summary = summarise(rows)
    keys = {
        "framework",
        "modality",
        "test_set",
        "precision_at_k",
        "mrr",
        "ndcg_at_k",
        "precision_at_k_std",
        "mrr_std",
        "ndcg_at_k_std",
    }
    assert keys <= set(summary[0]) and summary[0]["seeds"] == 2
    json.dumps(summary)  # serialisable as written by `evaluate --json`
    assert "| triplet_sp | audio |" in markdown(summary)
    slim = for_inference(model)
    assert slim.tag is None and slim.config.training["tag_dim"] == 5
    slim.save(tmp_path / "ckpt")
    again = heads.load(tmp_path / "ckpt")
    x = data.speech.features[:4]
    np.testing.assert_array_equal(again.project("speech", x), model.project("speech", x))


def test_an_ensemble_averages_its_members_scores_and_reloads_from_float16(data, tmp_path):
    """members=3 trains seeds s, s + 1000, s + 2000 exactly as three single models and scores a query against a
    clip by the mean of their cosines; the checkpoint stores float16 weights and reloads to the same scores."""
    from dataclasses import replace

    config = TrainConfig(
        framework="triplet_sp", epochs=3, warmup_epochs=1, batch_size=32, seed=2, members=3, voice_reader="prototypes"
    )
    model, history = train(config, data.speech, data.music, data.tags)
    seeds = (2, 1002, 2002)
    singles = [train(replace(config, members=1, seed=s), data.speech, data.music, data.tags)[0] for s in seeds]
    assert len(history["members"]) == 3 and model.tag is None
    assert [m["seed"] for m in model.config.training["members"]] == [2, 1002, 2002]
    speech, music = data.speech.features[:6], data.music.features[:5]
    scores = model.project("speech", speech) @ model.project("music", music).T
    mean = np.mean([s.project("speech", speech) @ s.project("music", music).T for s in singles], axis=0)
    np.testing.assert_allclose(scores, mean, atol=1e-5)
    assert model.project("speech", speech).shape == (6, 3 * model.config.out_dim)
    labels, _, reading = model.read(speech)  # the reading: softmax of the mean prototype cosine
    cos = np.mean(
        [
            s.project("speech", speech) @ np.asarray(list(s.config.readout.speech_prototypes.values())).T
            for s in singles
        ],
        axis=0,
    )
    np.testing.assert_array_equal(reading.argmax(1), cos.argmax(1))
    model.save(tmp_path / "ens")
    with open(tmp_path / "ens" / heads.WEIGHTS_FILE, "rb") as f:
        assert b'"F16"' in f.read(2000)
    again = heads.load(tmp_path / "ens")
    np.testing.assert_allclose(again.query(speech), model.query(speech), atol=2e-3)
    assert again.config.members == 3 and again.config.training["config"]["members"] == 3


def test_held_out_speakers_in_rooms_are_scored_but_never_choose_the_epoch(data):
    """Copies of the validation speakers (as if heard in a room) sit in the data to be scored; the model trained on
    it is the one trained without them."""
    valid = np.asarray(data.speech.splits) == "valid"
    copies = data.speech.where(valid)
    rng = np.random.default_rng(5)  # copies that mislead: scored as another emotion than they sound
    noisy = copies.features + rng.normal(0, 1, copies.features.shape).astype(np.float32)
    copies.labels = list(rng.permutation(copies.labels))
    speech = FeatureSet(
        np.concatenate([data.speech.features, noisy]),
        data.speech.labels + copies.labels,
        data.speech.groups + [f"{g}~room1" for g in copies.groups],
        data.speech.splits + copies.splits,
    )
    scoring_only = np.r_[np.zeros(len(data.speech.labels), bool), np.ones(len(copies.labels), bool)]
    with_rooms = Data(speech, data.music, np.zeros(len(speech.labels), bool), data.tags, scoring_only=scoring_only)
    config = TrainConfig(epochs=8, warmup_epochs=1, batch_size=32, lr=3e-3, patience=50, members=1)
    a, b = train_on(config, data), train_on(config, with_rooms)
    x = data.speech.features[:5]
    np.testing.assert_array_equal(a.project("speech", x), b.project("speech", x))
    for key in ("best_epoch", "valid"):  # the stored validation score is the one the app's model choice reads
        assert a.config.training[key] == b.config.training[key]
    rooms = {"valid in a room": {f"{g}~room1" for g in copies.groups}}
    assert evaluate_model(b, with_rooms, rooms, split="valid")[0]["queries"] == len(copies.labels)


def test_session_calibration_removes_a_speakers_offset_without_a_reference(data):
    """Test speakers heard with a large offset each (a voice or a room): reading each relative to the mean of all
    their utterances restores the ranking of the offset-free voices, with no neutral reference at all."""
    sp = data.speech
    reference = calibration_references(sp.labels, sp.groups)
    data = Data(
        replace(sp, speaker_means=speaker_means(sp.features, sp.groups, reference)), data.music, reference, data.tags
    )
    config = TrainConfig(framework="triplet", epochs=8, warmup_epochs=1, batch_size=32, lr=3e-3, patience=50, members=1)
    model = train_on(config, data)
    train_items = data.speech.subset("train")
    np.testing.assert_allclose(
        model.config.readout.feature_mean,
        train_items.calibrated(np.asarray(model.config.readout.reference_mean, np.float32)).features.mean(0),
        atol=1e-5,
    )
    offsets = {"test0": 4.0, "test1": -4.0}
    shifted = data.speech.features + np.asarray([offsets.get(g, 0.0) for g in data.speech.groups], np.float32)[:, None]
    moved = Data(replace(data.speech, features=shifted), data.music, data.reference, data.tags)
    as_heard = evaluate_model(model, moved)[0]["precision_at_k"]
    session = evaluate_model(model, moved, calibration="session")[0]["precision_at_k"]
    clean = evaluate_model(model, data, calibration="session")[0]["precision_at_k"]
    assert session > as_heard + 0.2 and abs(session - clean) < 1e-6, (as_heard, session, clean)


def test_calibration_references_and_population_frame():
    labels = ["neutral", "sad", "neutral", "neutral", "neutral", "sad"]
    groups = ["a", "a", "a", "b", "b", "c"]
    ref = calibration_references(labels, groups)
    assert ref.tolist() == [True, False, False, True, False, False]
    feats = np.array([[1.0], [5.0], [3.0], [10.0], [12.0], [7.0]], np.float32)
    means = speaker_means(feats, groups, ref)
    assert means[:5, 0].tolist() == [1.0, 1.0, 1.0, 10.0, 10.0] and np.isnan(means[5, 0])
    fs = FeatureSet(feats, labels, groups, ["train"] * 6, means)
    population = fs.neutral_mean()  # each speaker with references once: (1 + 10) / 2
    assert population.tolist() == [5.5]
    # calibration moves each speaker's neutral onto the population's; a speaker without references stays put
    assert fs.calibrated(population).features[:, 0].tolist() == [5.5, 9.5, 7.5, 5.5, 7.5, 7.0]


def test_trained_model_records_the_training_speakers_neutral_mean_only(data):
    means = np.where(np.asarray(data.speech.splits)[:, None] == "train", 1.0, 50.0) * np.ones((1, 10))
    speech = FeatureSet(
        data.speech.features, data.speech.labels, data.speech.groups, data.speech.splits, means.astype(np.float32)
    )
    config = TrainConfig(epochs=1, warmup_epochs=1, batch_size=32, speaker_shift=0.5, members=1)
    model, _ = train(config, speech, data.music, data.tags)
    assert model.config.readout.reference_mean == [1.0] * 10  # valid/test speakers (50) never leak in


def _with_text(speech: FeatureSet, text: np.ndarray) -> FeatureSet:
    from dataclasses import replace

    return replace(
        speech, features=np.concatenate([speech.features, text], axis=1).astype(np.float32), text_columns=text.shape[1]
    )


def test_late_fusion_words_without_emotion_leave_the_audio_reading(data, tmp_path):
    """Late fusion on a corpus whose words are the same for every emotion (RAVDESS's case): the text reader's
    evidence is ≈ 1 for every label, so the fused model ranks like the audio model; words that name the emotion
    (a one-hot text feature here) make the reading right even where the audio is noise."""
    rng = np.random.default_rng(3)
    n = len(data.speech.labels)
    config = TrainConfig(
        modality="fusion",
        framework="triplet",
        epochs=6,
        warmup_epochs=1,
        batch_size=32,
        lr=3e-3,
        patience=50,
        calibrate=False,
        members=1,
    )
    audio_config = TrainConfig(
        framework="triplet", epochs=6, warmup_epochs=1, batch_size=32, lr=3e-3, patience=50, calibrate=False, members=1
    )
    same_words = _with_text(data.speech, np.tile(rng.normal(size=(1, 6)), (n, 1)) + rng.normal(0, 1e-3, (n, 6)))
    fused, _ = train(config, same_words, data.music, data.tags)
    audio, _ = train(audio_config, data.speech, data.music, data.tags)
    assert fused.config.speech_dim == data.speech.features.shape[1] and fused.config.text_dim == 6
    evidence = fused.text_evidence(same_words.features[:, -6:])
    np.testing.assert_allclose(evidence, 1.0, atol=0.05)
    test = np.asarray(same_words.splits) == "test"
    np.testing.assert_allclose(
        fused.query(same_words.features[test]), audio.query(data.speech.features[test]), atol=0.05
    )
    fused.save(tmp_path / "fused")  # the reader travels with the checkpoint
    again = heads.load(tmp_path / "fused")
    np.testing.assert_array_equal(again.query(same_words.features[test]), fused.query(same_words.features[test]))

    noise = FeatureSet(
        rng.normal(size=data.speech.features.shape).astype(np.float32),
        *[getattr(data.speech, k) for k in ("labels", "groups", "splits")],
    )
    onehot = np.asarray([[lab == s for s in SPEECH] for lab in data.speech.labels], np.float32)
    telling = _with_text(noise, onehot * 3 + rng.normal(0, 0.1, onehot.shape))
    told, _ = train(config, telling, data.music, data.tags)
    deaf, _ = train(audio_config, noise, data.music, data.tags)
    told_row = evaluate_model(told, Data(telling, data.music, np.zeros(n, bool), data.tags))[0]
    deaf_row = evaluate_model(deaf, Data(noise, data.music, np.zeros(n, bool), data.tags))[0]
    assert told_row["speech_accuracy"] > 0.9 > 0.5 > deaf_row["speech_accuracy"]
    assert told_row["precision_at_k"] > deaf_row["precision_at_k"] + 0.2
    assert told.config.readout.text_weight == config.text_weight == 1.0  # the training setting travels
    told.config.readout = replace(told.config.readout, text_weight=0.0)  # words weigh nothing: the audio alone
    assert evaluate_model(told, Data(telling, data.music, np.zeros(n, bool), data.tags))[0]["speech_accuracy"] < 0.5
    heavy, _ = train(replace(config, text_weight=4.0), telling, data.music, data.tags)
    assert heavy.config.readout.text_weight == 4.0


def _tone_corpus(folder):
    """Six speakers (five train/valid, one test) reading four emotions in tones, and two moods of music in three
    pieces each (one of them test); records only, written as WAV files under ``folder``."""
    import soundfile as sf

    from s2m.data.records import Record
    from tests.conftest import tone

    speech, music = [], []
    for s, speaker in enumerate(["a1", "a2", "a3", "a4", "a5", "z9"]):
        for i, label in enumerate(["neutral", "neutral", "neutral", "happy", "sad", "happy", "sad"]):
            path = folder / f"{speaker}-{i}.wav"
            sf.write(path, tone(1.2, 16_000, freq=120 + 15 * s + (60 if label == "happy" else 0), amp=0.3), 16_000)
            split = "test" if speaker == "z9" else "train" if s < 3 else "valid"
            speech.append(Record(str(path), label, speaker, split))
    for mood, base in (("happy", 500), ("sad", 200)):
        for p, split in enumerate(["train", "valid", "test"]):
            for c in range(2):
                path = folder / f"{mood}{p}-{c}.wav"
                sf.write(path, tone(2.0, 22_050, freq=base + 20 * p + 5 * c), 22_050)
                music.append(Record(str(path), mood, f"{mood}-piece{p}", split))
    return speech, music


def test_folds_hold_out_every_train_and_valid_speaker_and_track_once_and_never_touch_test(tmp_path):
    from s2m.evaluate import fold_splits

    speech, music = _tone_corpus(tmp_path)
    held_speakers, held_pieces = [], []
    for fold in range(2):
        s, m = fold_splits(speech, music, 2, fold)
        assert [r.split for r in s if r.group == "z9"] == ["test"] * 7
        assert [r.path for r in s] == [r.path for r in speech]
        assert all(r.split == "test" for r in m if r.group.endswith("piece2"))
        held_speakers += sorted({r.group for r in s if r.split == "valid"})
        held_pieces += sorted({r.group for r in m if r.split == "valid"})
        assert {r.label for r in m if r.split == "valid"} == {"happy", "sad"}  # every mood has a gallery
    assert sorted(held_speakers) == ["a1", "a2", "a3", "a4", "a5"]  # pairs: (a1, a2) and a5 / (a3, a4)
    assert held_speakers[:3] == ["a1", "a2", "a5"]
    assert sorted(held_pieces) == sorted(f"{m}-piece{p}" for m in ("happy", "sad") for p in (0, 1))
    with pytest.raises(ValueError, match="2 or more folds"):
        fold_splits(speech, music, 2, 2)


def test_cross_validation_scores_every_fold_and_counts_each_query_once(tmp_path):
    from s2m.config import TrainConfig
    from s2m.evaluate import run_folds

    speech, music = _tone_corpus(tmp_path)
    config = TrainConfig(audio_encoder="prosody", epochs=2, warmup_epochs=1, members=1)
    run = (config, ["triplet"], ["audio"], [0, 1])
    rows = run_folds(speech, music, *run, folds=2, cache_dir=tmp_path / "cache", progress=False, calibrations=["none"])
    model = next(r for r in rows if r["framework"] == "triplet")
    assert model["test_set"] == "valid, 2 folds" and model["seeds"] == 4  # 2 folds x 2 seeds
    assert model["queries"] == 5 * 5  # every train/valid speaker once (7 takes less 2 neutral references); not z9
    assert model["gallery"] == 8  # each of the 4 train/valid pieces' 2 clips once
    assert 0.0 <= model["precision_at_k"] <= 1.0 and model["precision_at_k_std"] is not None


def test_music_triplet_term_gathers_held_out_music_of_a_mood(data):
    """With the music-side triplet term, held-out clips lie nearer their own mood's clips than other moods' (mean
    cosine within mood minus between moods, test music; 5 moods, one of which no speech emotion maps to) than with
    the paper's loss alone (mean over two seeds); a negative weight is refused."""
    music = _set(MUSIC + ["scary"], 6, 7, np.random.default_rng(1), shift=-1.0, groups_per_split=1)
    tags = {**data.tags, "scary": np.random.default_rng(2).normal(size=5).astype(np.float32)}
    test = music.subset("test")
    same = np.equal.outer(test.labels, test.labels)
    config = TrainConfig(framework="triplet", epochs=8, warmup_epochs=1, batch_size=32, lr=3e-3, patience=50, members=1)

    def gap(weight: float) -> float:
        out = []
        for seed in (0, 1):
            model, _ = train(replace(config, music_triplet=weight, seed=seed), data.speech, music, tags)
            cos = model.project("music", test.features) @ model.project("music", test.features).T
            out.append(cos[same & ~np.eye(len(cos), dtype=bool)].mean() - cos[~same].mean())
        return float(np.mean(out))

    assert gap(1.0) > gap(0.0) + 0.05
    with pytest.raises(ValueError, match="music_triplet"):
        TrainConfig(music_triplet=-1.0)


def _two_corpora(rng):
    """Corpus "big" (four emotions, 3× the items) and corpus "small" (two emotions), features of one population."""
    big = _set(SPEECH, 9, 10, rng, shift=3.0)
    small = _set(["happy", "sad"], 3, 10, rng, shift=3.0)
    merged = FeatureSet(
        np.concatenate([big.features, small.features]),
        big.labels + small.labels,
        [f"big/{g}" for g in big.groups] + [f"small/{g}" for g in small.groups],
        big.splits + small.splits,
        corpora=["big"] * len(big.labels) + ["small"] * len(small.labels),
    )
    return merged


def test_corpus_batches_balance_corpora_and_never_push_a_corpus_from_moods_it_has_no_word_for():
    from s2m.train import _CorpusBatches, mood_ids

    speech = _two_corpora(np.random.default_rng(1)).subset("train")
    labels = speech.corpus_labels()
    assert labels == {"big": sorted(SPEECH), "small": ["happy", "sad"]}
    mapping = {"angry": "angry", "happy": "happy", "neutral": "nostalgic", "sad": "sad"}
    batches = _CorpusBatches(speech, labels, mapping, mood_ids(sorted(MUSIC)))
    drawn, idx, allowed = batches.draw(np.random.default_rng(0), 4000)
    corpora = np.asarray(speech.corpora)[idx]
    assert abs((corpora == "small").mean() - 0.5) < 0.03  # a third of the items, half of every batch
    assert [speech.labels[i] for i in idx] == drawn
    small = allowed[torch_numpy(corpora == "small")]
    moods = sorted(MUSIC)  # angry, happy, nostalgic, sad
    assert small.any(0).tolist() == [m in ("happy", "sad") for m in moods]
    assert allowed[torch_numpy(corpora == "big")].all()


def torch_numpy(mask):
    import torch

    return torch.from_numpy(mask)


def test_a_model_trained_on_two_corpora_records_them_and_its_prototypes_weigh_corpora_equally():
    rng = np.random.default_rng(2)
    speech = _two_corpora(rng)
    music = _set(MUSIC, 6, 7, rng, shift=-1.0, groups_per_split=1)
    config = TrainConfig(epochs=3, warmup_epochs=1, batch_size=32, members=1, calibrate=False)
    model, _ = train(config, speech, music)
    seen = model.config.training["corpora"]
    assert seen == {
        "big": {"speakers": 4, "items": 4 * 4 * 9, "labels": sorted(SPEECH)},
        "small": {"speakers": 4, "items": 4 * 2 * 3, "labels": ["happy", "sad"]},
    }
    train_set = speech.subset("train")
    emb = model.project("speech", train_set.features)
    happy = np.asarray(train_set.labels) == "happy"
    corpora = np.asarray(train_set.corpora)
    expected = (emb[happy & (corpora == "big")].mean(0) + emb[happy & (corpora == "small")].mean(0)) / 2
    expected /= np.linalg.norm(expected)
    np.testing.assert_allclose(model.config.readout.speech_prototypes["happy"], expected, atol=1e-5)
    single, _ = train(config, replace(speech, corpora=None), music)
    assert single.config.training["corpora"] == {}


def _two_tone_corpora(tmp_path):
    """(music records, {"a": records, "b": records}): corpus a has three speakers in three emotions, b three in
    two; each speaker's first take is too short for a query and left out."""
    from s2m.data.corpora import read_corpora
    from s2m.features import playable
    from tests.test_data import _speech_csv

    _, music = _tone_corpus(tmp_path)
    _speech_csv(tmp_path / "a", ["a1", "a2", "a3"], ["neutral", "happy", "sad", "neutral", "happy", "sad"])
    _speech_csv(tmp_path / "b", ["b1", "b2", "b3"], ["happy", "sad", "happy", "sad"])
    corpora = {
        n: playable(r, tmp_path / "cache", progress=False)
        for n, r in read_corpora([str(tmp_path / "a"), str(tmp_path / "b")]).items()
    }
    return music, corpora


def test_leave_one_corpus_out_tests_each_corpus_on_models_that_never_heard_it(tmp_path):
    from s2m.evaluate import leave_one_corpus_out

    music, corpora = _two_tone_corpora(tmp_path)
    heard = []
    config = TrainConfig(audio_encoder="prosody", epochs=2, warmup_epochs=1, members=1, calibrate=False)
    rows = leave_one_corpus_out(
        corpora,
        music,
        config,
        ["triplet"],
        ["audio"],
        [0, 1],
        tmp_path / "cache",
        progress=False,
        hear=lambda r: heard.append(r) or r,
    )
    assert {r["test_set"] for r in rows} == {"a (held out)", "b (held out)"}
    a = {r["framework"]: r for r in rows if r["test_set"] == "a (held out)"}
    assert set(a) >= {"chance", "untrained heads", "triplet"} and any(f.startswith("best constant") for f in a)
    assert a["triplet"]["queries"] == 3 * 5 - 3  # a's 5 playable takes per speaker, less one neutral reference each
    assert a["triplet"]["seeds"] == 2 and a["triplet"]["calibration"] == "none"
    assert heard == []  # audio alone never runs speech recognition


def test_leave_one_corpus_out_scores_fusion_at_other_word_weights_without_retraining(tmp_path):
    """With the words weighing nothing (×0), a late-fusion model reads and ranks exactly like the audio model of its
    seed, whose speech head it shares; the held-out items are heard (here: words given) once."""
    from s2m.evaluate import leave_one_corpus_out

    music, corpora = _two_tone_corpora(tmp_path)
    heard = []
    config = TrainConfig(
        audio_encoder="prosody",
        reader_encoder="minilm",
        text_encoder="minilm",
        epochs=2,
        warmup_epochs=1,
        members=1,
        calibrate=False,
    )
    rows = leave_one_corpus_out(
        corpora,
        music,
        config,
        ["triplet"],
        ["audio", "fusion"],
        [0],
        tmp_path / "cache",
        progress=False,
        hear=lambda r: heard.append(sum(x.split == "test" for x in r)) or r,
        text_weights=(0, 5),
    )
    assert heard == [15, 9]  # each corpus's playable takes (5 and 3 per speaker), once
    keys = ("precision_at_k", "mrr", "ndcg_at_k", "speech_accuracy")
    for corpus in ("a", "b"):
        got = {(r["framework"], r["modality"]): r for r in rows if r["test_set"] == f"{corpus} (held out)"}
        assert {("triplet, words ×0", "fusion"), ("triplet, words ×5", "fusion"), ("triplet", "fusion")} <= set(got)
        assert [got["triplet, words ×0", "fusion"][k] for k in keys] == [got["triplet", "audio"][k] for k in keys]


def test_a_fusion_model_trained_on_several_corpora_reads_words_with_the_emotion_sentences_alone():
    """Across corpora the transcripts tell which corpus a clip is from (and so which of its emotions), not the emotion:
    the reader learns from the emotion sentences only, so its label frequencies are theirs."""
    rng = np.random.default_rng(3)
    speech = _two_corpora(rng)
    corpus_words = np.asarray([[1.0, 0.0] if c == "big" else [0.0, 1.0] for c in speech.corpora], np.float32)
    fused = replace(_with_text(speech, corpus_words), corpora=speech.corpora)
    music = _set(MUSIC, 6, 7, rng, shift=-1.0, groups_per_split=1)
    sentences = (rng.normal(size=(40, 2)).astype(np.float32), ["happy", "sad", "angry", "neutral"] * 10)
    config = TrainConfig(modality="fusion", epochs=2, warmup_epochs=1, batch_size=32, members=1, calibrate=False)
    model, _ = train(config, fused, music, text_examples=sentences)
    assert model.config.training["text_examples"] == 40
    assert model.config.readout.text_prior == [0.25, 0.25, 0.25, 0.25]  # the sentences' frequencies alone
    single, _ = train(config, replace(fused, corpora=None), music, text_examples=sentences)
    assert single.config.readout.text_prior != [0.25, 0.25, 0.25, 0.25]  # one data set: its transcripts count


def test_early_stopping_keeps_the_best_epoch_and_patience_zero_keeps_the_last():
    import torch

    from s2m.train import _EarlyStop

    def run(patience, scores):
        module, stopper, ran = torch.nn.Linear(1, 1, bias=False), _EarlyStop(patience), []
        for epoch, score in enumerate(scores):
            module.weight.data.fill_(float(epoch))
            ran.append(epoch)
            if stopper.stop(score, module, epoch):
                break
        stopper.restore(module)
        return module.weight.detach().item(), stopper.record["epoch"], ran

    assert run(2, [0.1, 0.5, 0.4, 0.3, 0.9]) == (1.0, 1, [0, 1, 2, 3])  # stopped after two epochs without gain
    assert run(0, [0.1, 0.5, 0.4, 0.3, 0.2]) == (4.0, 4, [0, 1, 2, 3, 4])  # no selection: every epoch, the last kept


def test_balanced_weights_give_every_corpus_and_each_of_its_emotions_the_same_weight():
    from s2m.train import balanced_weights

    labels = ["a"] * 6 + ["b"] * 2 + ["a"] * 1 + ["c"] * 3
    corpora = ["big"] * 8 + ["small"] * 4
    w = balanced_weights(labels, corpora)
    assert w.mean() == pytest.approx(1.0)
    big, small = w[:8], w[8:]
    assert big.sum() == pytest.approx(small.sum())
    assert big[:6].sum() == pytest.approx(big[6:].sum()) and small[:1].sum() == pytest.approx(small[1:].sum())
    np.testing.assert_allclose(balanced_weights(["a", "a", "b"]), [0.75, 0.75, 1.5])  # one corpus: labels alone


def test_the_voice_reader_learns_the_validation_speakers_too_once_its_temperature_is_fitted(data):
    """Training speakers show their emotion in two dimensions, validation and test speakers in two others (voices of
    another kind): fitted on the training speakers alone the reader cannot read the test speakers; widened to the
    validation speakers (the default) it can, at the temperature fitted before it saw them; an ensemble widens its
    one reader last."""
    rng = np.random.default_rng(5)
    speech = _set(SPEECH, 12, 30, rng, shift=0.0)
    centres = dict(zip(SPEECH, [(4, 0), (-4, 0), (0, 4), (0, -4)], strict=True))
    x = rng.normal(0, 1, speech.features.shape).astype(np.float32)
    for i, (lab, split) in enumerate(zip(speech.labels, speech.splits, strict=True)):
        start = 0 if split == "train" else 2
        x[i, start : start + 2] = centres[lab] + rng.normal(0, 0.3, 2)
    data = replace(data, speech=replace(speech, features=x), reference=np.zeros(len(speech.labels), bool))
    config = TrainConfig(epochs=0, members=1)
    wide, _ = train(config, data.speech, data.music, data.tags)
    narrow, _ = train(replace(config, reader_valid=False), data.speech, data.music, data.tags)
    pair, _ = train(replace(config, members=2), data.speech, data.music, data.tags)
    test = data.speech.subset("test")

    def accuracy(model):
        labels, _, reading = model.read(test.features)
        return (np.asarray(labels)[reading.argmax(1)] == np.asarray(test.labels)).mean()

    assert accuracy(wide) > 0.8 and accuracy(pair) > 0.8 and accuracy(narrow) < 0.5, (accuracy(wide), accuracy(narrow))
    fitted, kept = narrow.config.training["voice_reader"], wide.config.training["voice_reader"]
    assert kept["logit_temperature"] == fitted["logit_temperature"]
    assert kept["speakers"] == "train+valid" and "speakers" not in fitted


def test_the_linear_voice_reader_reads_raw_speech_where_the_prototypes_cannot_and_reloads(data, tmp_path):
    """Emotion in two of 30 dimensions, loud noise in the rest: with untrained heads (epochs 0) the prototype
    reading is poor; the voice reader, fitted on the raw training features, reads the test speakers, places
    queries by its calibrated reading and survives a reload; ``voice_reader="prototypes"`` and text models have
    none."""
    rng = np.random.default_rng(3)
    speech = _set(SPEECH, 12, 30, rng, shift=0.0)
    centres = dict(zip(SPEECH, [(4, 0), (-4, 0), (0, 4), (0, -4)], strict=True))
    noisy = rng.normal(0, 4, speech.features.shape).astype(np.float32)
    noisy[:, :2] = [centres[lab] + rng.normal(0, 0.3, 2) for lab in speech.labels]
    data = replace(data, speech=replace(speech, features=noisy), reference=np.zeros(len(speech.labels), bool))
    config = TrainConfig(epochs=0, members=1)
    model, _ = train(config, data.speech, data.music, data.tags)
    plain, _ = train(replace(config, voice_reader="prototypes"), data.speech, data.music, data.tags)
    assert model.voice_reader is not None and plain.voice_reader is None
    test = data.speech.subset("test")
    truth = np.asarray(test.labels)
    labels, _, reading = model.read(test.features)
    accuracy = (np.asarray(labels)[reading.argmax(1)] == truth).mean()
    plain_labels, _, plain_reading = plain.read(test.features)
    plain_accuracy = (np.asarray(plain_labels)[plain_reading.argmax(1)] == truth).mean()
    assert accuracy > max(0.8, plain_accuracy + 0.2), (accuracy, plain_accuracy)
    assert 0.5 < reading.max(1).mean() <= 1.0  # calibrated on the validation speakers, not one-hot
    assert model.config.training["voice_reader"]["c"] > 0
    rows = evaluate_model(model, data)
    assert rows[0]["speech_accuracy"] == pytest.approx(accuracy)
    model.save(tmp_path / "reader")
    again = heads.load(tmp_path / "reader")
    np.testing.assert_allclose(again.read(test.features)[2], reading, atol=1e-6)
    np.testing.assert_allclose(again.query(test.features), model.query(test.features), atol=1e-6)
    protos = np.asarray(list(model.config.readout.speech_prototypes.values()), np.float32)
    cosines = model.project("speech", test.features) @ protos.T
    reader = model.scores(test.features)[2]
    trained = model.config.readout
    for weight in (0.0, 0.3):  # the voice reader's share of the reading: 0 = the prototypes alone
        model.config.readout = replace(trained, voice_weight=weight)
        np.testing.assert_allclose(model.scores(test.features)[2], weight * reader + (1 - weight) * cosines, atol=1e-5)
    model.config.readout = trained
    text, _ = train(replace(config, modality="text"), data.speech, data.music, data.tags)
    assert text.voice_reader is None and not text.config.voice_reader


def test_an_ensemble_fits_its_voice_reader_once_and_every_member_reads_with_it(data, monkeypatch):
    """The voice reader depends on the speech alone, not on the heads or the seed: an ensemble of three fits it once
    (the first member) and the others take it, so the ensemble reads as a single model does."""
    import s2m.train as training

    calls = []
    fit = training.fit_voice_reader
    monkeypatch.setattr(training, "fit_voice_reader", lambda *a: calls.append(1) or fit(*a))
    config = TrainConfig(epochs=1, warmup_epochs=0, batch_size=32, reader_valid=False)
    trio, _ = train(replace(config, members=3), data.speech, data.music, data.tags)
    assert len(calls) == 1
    single, _ = train(config, data.speech, data.music, data.tags)
    assert len(calls) == 2
    test = data.speech.subset("test").features
    np.testing.assert_allclose(trio.read(test)[2], single.read(test)[2], atol=2e-2)
    assert trio.config.training["voice_reader"] == single.config.training["voice_reader"]
