import numpy as np
import pytest
from sklearn.metrics import ndcg_score

from s2m.metrics import classification_metrics, ranking_metrics, retrieval_targets


def test_agrees_with_sklearn_on_random_inputs():
    rng = np.random.default_rng(0)
    for k in (1, 5, 10):
        scores = rng.normal(size=(20, 30)).round(1)  # rounding creates ties
        gains = rng.random((20, 30))
        relevant = gains > 0.7
        out = ranking_metrics(scores, relevant, gains, k=k)
        assert out["ndcg_at_k"] == pytest.approx(ndcg_score(gains, scores, k=k))


def test_hand_computed_toy_ranking():
    scores = np.array([[0.9, 0.8, 0.7, 0.1], [0.1, 0.2, 0.3, 0.4]])
    relevant = np.array([[False, True, False, True], [False, False, False, True]])
    gains = np.array([[0.0, 1.0, 0.5, 1.0], [1.0, 0.0, 0.0, 1.0]])
    out = ranking_metrics(scores, relevant, gains, k=2)
    assert out["precision_at_k"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert out["mrr"] == pytest.approx((1 / 2 + 1) / 2)
    # query 0: top-2 gains (0, 1) -> 1/log2(3); ideal (1, 1) -> 1 + 1/log2(3)
    q0 = (1 / np.log2(3)) / (1 + 1 / np.log2(3))
    # query 1: top-2 (item 3, item 2) gains (1, 0) -> 1; ideal 1 + 1/log2(3)
    q1 = 1 / (1 + 1 / np.log2(3))
    assert out["ndcg_at_k"] == pytest.approx((q0 + q1) / 2)
    assert set(out) == {"precision_at_k", "mrr", "ndcg_at_k"}


def test_query_without_relevant_item_is_reported_not_crashed():
    scores = np.array([[0.3, 0.2], [0.1, 0.9]])
    relevant = np.array([[False, False], [False, True]])
    with pytest.warns(UserWarning, match="no relevant"):
        out = ranking_metrics(scores, relevant, np.ones((2, 2)), k=1)
    assert out["mrr"] == 1.0 and out["precision_at_k"] == 0.5


def test_retrieval_targets_paper_mapping():
    relevant, gains = retrieval_targets(["fearful", "happy"], ["sad", "happy", "scary", "sad"], table="paper")
    assert relevant.tolist() == [[True, False, False, True], [False, True, False, False]]
    assert gains[1, 1] == 1.0 and (gains >= 0).all()
    _, lexicon_gains = retrieval_targets(["calm"], ["scary"], table="lexicon")
    assert lexicon_gains[0, 0] == 0.0  # 1 - 1.18 clipped


def test_classification_metrics():
    out = classification_metrics(["a", "a", "b", "b"], ["a", "b", "b", "b"], labels=["a", "b"])
    assert out["accuracy"] == 0.75 and out["balanced_accuracy"] == 0.75
    assert out["confusion"] == [[1, 1], [0, 2]]


def test_word_error_rate_counts_edits_over_reference_words():
    from s2m.metrics import word_error_rate

    assert word_error_rate(["Kids are talking by the door."], ["kids are talking by the door"]) == 0
    # one substitution (tour), one deletion (the), one insertion (now): 3 errors over 6 + 3 reference words
    refs, hyps = ["Kids are talking by the door.", "I miss him"], ["Kids are talking by tour", "I miss him now"]
    assert word_error_rate(refs, hyps) == pytest.approx(3 / 9)


def test_character_error_rate_reads_languages_without_spaces_fairly():
    from s2m.metrics import character_error_rate, word_error_rate

    refs, hyps = ["심폐소생술 자격증 취득을 원하시면"], ["심폐소생술 자격증 추득을 원하시면"]  # 1 of 18 characters
    assert character_error_rate(refs, hyps) == pytest.approx(1 / 18)
    assert word_error_rate(refs, hyps) == pytest.approx(1 / 4)
    assert character_error_rate(["", "ab"], ["x", "ab"]) == 0  # an empty reference is not scored


def test_speech_balanced_accuracy_sees_through_a_reader_that_answers_one_emotion():
    from s2m.evaluate import speech_scores
    from s2m.readout import Readout
    from tests.test_heads import _model

    model = _model()
    same = [1.0] + [0.0] * 63  # both prototypes alike: every voice is read as the first, "happy"
    model.config.readout = Readout(speech_prototypes={"happy": same, "sad": same})
    features = np.random.default_rng(0).normal(size=(4, 12)).astype(np.float32)
    scores = speech_scores(model, features, ["happy", "happy", "happy", "sad"])
    assert scores == {"speech_accuracy": 0.75, "speech_balanced_accuracy": 0.5}
