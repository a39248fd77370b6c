"""Simulated rooms: named rooms are reproducible, each part does what it says, copies become new speakers, and the
feature cache keeps a take heard in a room apart from the take as recorded."""

from dataclasses import replace

import numpy as np
import soundfile as sf

from s2m.data.records import Record
from s2m.features import embed_items, record_features
from s2m.rooms import Room, coloured_noise, impulse_response, in_room, in_rooms

from .conftest import tone

RATE = 16_000
QUIET = Room("quiet", rt60=None, direct=1.0, band=None, noise=None, snr_db=30.0, peak_db=-6.0)


def test_a_room_is_drawn_from_its_name_alone():
    assert Room.named("actor01~room1") == Room.named("actor01~room1")
    rooms = [Room.named(f"actor{i:02d}~room1") for i in range(1, 41)]
    assert len({(r.rt60, r.snr_db) for r in rooms}) == 40
    reverberant = [r.rt60 for r in rooms if r.rt60 is not None]
    assert 0.5 < len(reverberant) / 40 < 0.9 and all(0.2 <= t <= 0.8 for t in reverberant)
    assert all(5 <= r.snr_db <= 30 and -20 <= r.peak_db <= 0 for r in rooms)


def test_noise_is_added_at_the_rooms_signal_to_noise_ratio_and_the_peak_is_set():
    x = tone(2.0, RATE, freq=220, amp=0.3).astype(np.float64)
    room = replace(QUIET, noise="pink", snr_db=10.0)
    y = in_room(x, RATE, room, take="a.wav")
    assert np.max(np.abs(y)) == np.float32(10 ** (-6 / 20))
    scale = np.dot(y, x) / np.dot(x, x)  # the speech part of y, at y's level
    noise = y - scale * x
    assert abs(10 * np.log10(np.mean((scale * x) ** 2) / np.mean(noise**2)) - 10.0) < 0.5
    np.testing.assert_array_equal(y, in_room(x, RATE, room, take="a.wav"))  # the same take: the same noise
    assert not np.array_equal(y, in_room(x, RATE, room, take="b.wav"))


def test_pink_and_brown_noise_fall_with_frequency():
    rng = np.random.default_rng(0)
    for colour, slope in (("white", 0.0), ("pink", -1.0), ("brown", -2.0)):
        power = np.abs(np.fft.rfft(coloured_noise(2**16, colour, rng))) ** 2
        f = np.arange(len(power))
        low, high = power[(f > 100) & (f < 200)].mean(), power[(f > 10_000) & (f < 20_000)].mean()
        measured = np.log10(high / low) / np.log10(15_000 / 150)
        assert abs(measured - slope) < 0.25, (colour, measured)


def test_reverberation_decays_by_60_db_at_rt60_and_lengthens_the_take():
    room = replace(QUIET, rt60=0.5, direct=2.0)
    ir = impulse_response(room, RATE)
    assert len(ir) == RATE // 2 and np.isclose(np.sum(ir**2), 1.0)
    first, last = np.mean(ir[1:800] ** 2), np.mean(ir[-800:] ** 2)
    assert 50 < 10 * np.log10(first / last) < 70
    x = tone(1.0, RATE, amp=0.3)
    assert len(in_room(x, RATE, room)) == RATE + RATE // 4
    assert impulse_response(QUIET, RATE) is None


def test_a_narrow_band_removes_low_and_high_frequencies():
    t = np.arange(RATE) / RATE
    low, mid, high = (np.sin(2 * np.pi * f * t) for f in (60, 1000, 7000))
    y = in_room(low + mid + high, RATE, replace(QUIET, band=(300.0, 3400.0)))
    spectrum = np.abs(np.fft.rfft(y[:RATE]))
    assert spectrum[1000] > 30 * spectrum[60] and spectrum[1000] > 30 * spectrum[7000]


def test_copies_in_rooms_are_new_speakers_one_room_each():
    records = [Record(f"/x/{s}_{i}.wav", "sad", s, "train", "hi") for s in ("a", "b") for i in range(3)]
    copies = in_rooms(records, copies=2)
    assert len(copies) == 12
    assert {r.group for r in copies} == {"a~room1", "b~room1", "a~room2", "b~room2"}
    assert all(r.room == r.group and r.label == "sad" and r.split == "train" and r.transcript == "hi" for r in copies)


def test_a_take_in_a_room_has_its_own_features_and_cache_entry(tmp_path):
    path = tmp_path / "take.wav"
    sf.write(path, tone(1.5, RATE, freq=180, amp=0.3), RATE)
    clean = Record(str(path), "happy", "a", "test")
    roomed = in_rooms([clean])[0]
    as_recorded = record_features([clean], "prosody", tmp_path / "cache")
    in_a_room = record_features([roomed], "prosody", tmp_path / "cache")
    assert as_recorded.shape == in_a_room.shape and not np.allclose(as_recorded, in_a_room)
    assert len(list((tmp_path / "cache" / "prosody").glob("*.npz"))) == 2
    again = embed_items("prosody", [str(path)], tmp_path / "cache", rooms=[roomed.room])
    np.testing.assert_array_equal(again, in_a_room)
    both = record_features([roomed, clean], "prosody", tmp_path / "cache")  # from the two entries, in order
    np.testing.assert_array_equal(both, np.concatenate([in_a_room, as_recorded]))
    assert len(list((tmp_path / "cache" / "prosody").glob("*.npz"))) == 2
    said = replace(clean, transcript="I am so happy")  # the words are the same in any room: looked up apart, the
    words = record_features([said, in_rooms([said])[0]], "minilm", tmp_path / "cache")  # copy's are one entry
    np.testing.assert_array_equal(words[0], words[1])
    assert len(list((tmp_path / "cache" / "minilm").glob("*.npz"))) == 1


def test_training_data_gets_room_copies_of_the_training_speakers_only(tmp_path):
    from s2m.calibration import speaker_means
    from s2m.config import TrainConfig
    from s2m.featuresets import load_data

    speech, music = [], []
    for speaker, split in (("ana", "train"), ("ben", "test")):
        for i, label in enumerate(["neutral", "neutral", "happy", "sad"]):
            path = tmp_path / f"{speaker}{i}.wav"
            sf.write(path, tone(1.5, RATE, freq=150 + 20 * i, amp=0.3), RATE)
            speech.append(Record(str(path), label, speaker, split))
    for i, mood in enumerate(["happy", "sad"]):
        path = tmp_path / f"m{i}.wav"
        sf.write(path, tone(3.0, 22_050, freq=300 + 100 * i), 22_050)
        music.append(Record(str(path), mood, f"piece{i}", "train"))
    config = TrainConfig(audio_encoder="prosody", augment_rooms=1)
    data = load_data(speech, music, config, tmp_path / "cache")
    assert data.speech.groups == ["ana"] * 4 + ["ben"] * 4 + ["ana~room1"] * 4
    assert data.speech.splits[8:] == ["train"] * 4 and data.reference.tolist()[8:] == [True, False, False, False]
    assert not np.allclose(data.speech.features[:4], data.speech.features[8:])
    # calibrated with the studio twin's neutral voice: training removes the speaker, not the room
    np.testing.assert_array_equal(data.speech.speaker_means[8:], data.speech.speaker_means[:4])
    own = speaker_means(data.speech.features[8:], data.speech.groups[8:], data.reference[8:])
    assert not np.allclose(own, data.speech.speaker_means[8:])  # their own neutral takes, heard in the room
    plain = load_data(speech, music, replace(config, augment_rooms=0), tmp_path / "cache")
    np.testing.assert_array_equal(plain.speech.features, data.speech.features[:8])
