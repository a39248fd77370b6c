import dataclasses
import json

import numpy as np
import pytest

from s2m import heads
from s2m.emotions import nearest_label
from s2m.readout import Readout, upgrade
from tests.test_heads import _model


def _query():
    query = np.zeros((2, 64), np.float32)
    query[0, :3] = [0.9, 0.3, 0.3]  # nearer angry
    query[1, :3] = [0.5, 0.5, 0.7]  # halfway
    return query / np.linalg.norm(query, axis=1, keepdims=True)


def test_placement_mixes_speech_prototypes():
    protos = {"angry": [1.0] + [0.0] * 63, "sad": [0.0, 1.0] + [0.0] * 62}
    query = _query()
    np.testing.assert_array_equal(Readout(speech_prototypes=protos).place(query), query)  # no τ: the projection
    placed = Readout(speech_prototypes=protos, placement=0.02).place(query)
    np.testing.assert_allclose(placed[0], protos["angry"], atol=1e-4)
    np.testing.assert_allclose(placed[1, :2], [2**-0.5, 2**-0.5], atol=1e-4)  # a tie stays between the two
    np.testing.assert_allclose(np.linalg.norm(placed, axis=1), 1, atol=1e-6)


def test_placement_at_music_goes_to_the_training_music_of_the_nearest_mood():
    unit = np.eye(64, dtype=np.float32)
    speech = {"angry": unit[0], "fearful": unit[1], "neutral": unit[2]}
    music = {"angry": unit[10], "calm": unit[11], "nostalgic": unit[12], "sad": unit[13]}
    readout = Readout(
        speech_prototypes={k: v.tolist() for k, v in speech.items()},
        music_prototypes={k: v.tolist() for k, v in music.items()},
        placement=0.02,
        mapping={k: nearest_label(k, sorted(music)) for k in speech},
    )
    query = np.stack([unit[0], unit[1], unit[2]])  # read as angry, fearful, neutral
    np.testing.assert_allclose(readout.place(query), query, atol=1e-6)  # place_at "speech" (the default)
    placed = dataclasses.replace(readout, place_at="music").place(query)
    # VA-nearest moods: angry -> angry, fearful -> sad, neutral -> nostalgic (never calm, far off in valence)
    np.testing.assert_allclose(placed, np.stack([music["angry"], music["sad"], music["nostalgic"]]), atol=1e-6)
    protos = np.asarray(list(speech.values()))
    np.testing.assert_array_equal(
        dataclasses.replace(readout, place_at="music").targets(list(speech), protos)[1], music["sad"]
    )


def test_readout_is_frozen_and_checked():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Readout().placement = 0.1
    with pytest.raises(ValueError, match="place_at"):
        Readout(place_at="nowhere")
    with pytest.raises(ValueError, match="read_temperature"):
        Readout(read_temperature=0.0)


def test_a_checkpoint_saves_its_readout_typed_apart_from_the_training_record(tmp_path):
    model = _model()
    model.config.readout = Readout(speech_prototypes={"angry": [1.0] + [0.0] * 63}, placement=0.05)
    model.config.training = {"best_epoch": 3}
    saved = json.loads((model.save(tmp_path) / heads.CONFIG_FILE).read_text())
    assert saved["readout"]["placement"] == 0.05 and saved["training"] == {"best_epoch": 3}
    again = heads.load(tmp_path)
    assert isinstance(again.config.readout, Readout) and again.config == model.config


def test_an_old_checkpoint_with_its_readout_in_the_training_record_reads_the_same(tmp_path):
    unit = np.eye(64, dtype=np.float32)
    model = _model()
    model.config.readout = Readout(
        speech_prototypes={"angry": unit[0].tolist(), "sad": unit[1].tolist()},
        placement=0.02,
        reference_mean=[0.5] * 12,
    )
    model.save(tmp_path / "new")
    config = json.loads((tmp_path / "new" / heads.CONFIG_FILE).read_text())
    old = {
        **{k: v for k, v in config.items() if k != "readout"},
        "training": {"best_epoch": 3, **{k: v for k, v in config["readout"].items() if v is not None}},
    }
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / heads.CONFIG_FILE).write_text(json.dumps(old))
    (tmp_path / "old" / heads.WEIGHTS_FILE).write_bytes((tmp_path / "new" / heads.WEIGHTS_FILE).read_bytes())
    upgraded = heads.load(tmp_path / "old")
    assert upgraded.config.readout == model.config.readout and upgraded.config.training == {"best_epoch": 3}
    features = np.random.default_rng(0).normal(size=(5, 12)).astype(np.float32)
    np.testing.assert_array_equal(upgraded.query(features), heads.load(tmp_path / "new").query(features))
    assert upgrade(config) is config  # a current config passes unchanged


def test_a_readout_that_cannot_be_read_is_a_checkpoint_error(tmp_path):
    model = _model()
    model.save(tmp_path)
    config = json.loads((tmp_path / heads.CONFIG_FILE).read_text())
    for bad in ({"place_at": "moon"}, {"unknown": 1}, [1, 2]):
        (tmp_path / heads.CONFIG_FILE).write_text(json.dumps({**config, "readout": bad}))
        with pytest.raises(heads.CheckpointError, match="Invalid"):
            heads.load(tmp_path)
