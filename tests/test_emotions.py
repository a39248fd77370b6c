import math

import pytest

from s2m.emotions import (
    AUDIOSET_MOODS,
    LEXICON,
    colour,
    label_similarity,
    nearest_label,
    similarity_matrix,
    va,
)


def test_tables():
    assert va("neutral") == (0.469, 0.184)
    assert va("neutral", table="paper") == (0.5, 0.5)
    assert va("calm", table="paper") == (0.442, 0.302)
    assert va("Happy") == (1.0, 0.735)


def test_similarity_is_one_minus_distance():
    assert label_similarity("happy", "happy") == 1.0
    assert label_similarity("angry", "sad") == pytest.approx(1 - math.hypot(0.122 - 0.225, 0.830 - 0.333))
    m = similarity_matrix(["angry", "sad"], ["sad", "angry", "sad"])
    assert m.shape == (2, 3) and m[0, 1] == 1.0 and m[1, 0] == m[1, 2]


def test_nearest_label_matches_paper_mapping():
    moods = list(AUDIOSET_MOODS) + ["noise"]
    # method.md §3.3 max_mapper
    expected = {
        "angry": "angry",
        "happy": "happy",
        "neutral": "noise",
        "sad": "sad",
        "excitement": "funny",
        "frustration": "angry",
        "calm": "noise",
        "disgust": "angry",
        "fearful": "sad",
        "surprised": "exciting",
    }
    for speech, music in expected.items():
        assert nearest_label(speech, moods, table="paper") == music
    assert nearest_label("fearful", AUDIOSET_MOODS, table="paper") == "sad"


def test_nearest_label_ties_go_to_first():
    assert nearest_label("noise", ["neutral", "noise"], table="paper") == "neutral"
    assert nearest_label("noise", ["noise", "neutral"], table="paper") == "noise"


def test_unknown_label_names_known_ones():
    with pytest.raises(KeyError, match="known labels: .*angry"):
        va("grumpy-ish")
    with pytest.raises(KeyError, match="Unknown VA table"):
        va("happy", table="nope")


def test_every_label_has_a_colour():
    for label in LEXICON:
        assert colour(label).startswith("#") and len(colour(label)) == 7
    assert colour("angry") != colour("sad")
