"""Training the projection heads on frozen, cached features (method.md §2), with the reference's defects fixed.

Batches are formed as in the reference (§2.3): a speech label drawn uniformly, a speech item of that label, and a
music item of the label's VA-nearest library mood, so row i of the speech batch and row i of the music batch are a
positive pair. Differences, on purpose:

* the negative mask uses the mapped music mood (§7.6), rows without a negative are skipped;
* model selection and early stopping use a deterministic validation metric (mean of P@5 and nDCG@5 on the
  validation speakers against the validation music) on splits disjoint from test (§7.10, §7.13), and the
  patience counter resets on improvement;
* the learning rate warms up from ``lr / warmup_steps``, not from 0 (§7.14); everything is seeded (§7.16);
* speakers: models are trained on raw features (what an uncalibrated voice gives); optionally each training
  speaker is moved into the population's frame (calibrated training), or items borrow another training speaker's
  neutral offset (speaker-shift augmentation). A user's neutral reference moves their voice into the same frame.
"""

from __future__ import annotations

import math
from dataclasses import asdict, replace
from typing import Any

import numpy as np
import torch

from .config import TrainConfig
from .emotions import GEMS_LABELS, nearest_label, similarity_matrix
from .featuresets import FeatureSet
from .heads import HeadsConfig, JointModel, ProjectionHead
from .losses import (
    cosine_matrix,
    emosim_loss,
    ranksim_loss,
    sampled_triplet_loss,
    structure_preserving_loss,
    total_loss,
)
from .metrics import felt, ranking_metrics, retrieval_targets
from .readout import DEFAULT_TEMPERATURE, Readout

MEMBER_SEED_STEP = 1000  # an ensemble's member i trains from seed + MEMBER_SEED_STEP × i
MIN_TARGET_TRACKS = 5  # a music refit places queries only at moods of at least this many training tracks


def _lr_at(step: int, config: TrainConfig, steps_per_epoch: int) -> float:
    warm, total = config.warmup_epochs * steps_per_epoch, config.epochs * steps_per_epoch
    if step < warm:
        return config.lr * (step + 1) / warm
    progress = (step - warm) / max(1, total - warm)
    return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * progress))


def validation_score(model: JointModel, speech: FeatureSet, music: FeatureSet, table: str) -> dict[str, float]:
    """Retrieval metrics of every speech item against the music set, in eval mode, with queries placed as the
    model places them (:meth:`JointModel.query`; during training there are no prototypes yet, so the projection)."""
    s = model.query(speech.features)
    m = model.project("music", music.features)
    relevant, gains = retrieval_targets(speech.labels, music.labels, table, music.shares)
    return ranking_metrics(s @ m.T, relevant, gains, k=5)


def train(
    config: TrainConfig,
    speech: FeatureSet,
    music: FeatureSet,
    tag_features: dict[str, np.ndarray] | None = None,
    progress: bool = False,
    text_examples: tuple[np.ndarray, list[str]] | None = None,
    widen_reader: bool = True,
    reader_from: JointModel | None = None,
) -> tuple[JointModel, dict[str, Any]]:
    """Train heads on ``speech``/``music`` train splits, select on their valid splits; returns (model, history).

    tag_features: ``{label: (tag_dim,)}`` text-encoder embeddings of the label words, needed by the "sp"
    frameworks. text_examples: late fusion: more labelled sentences for the text reader (text features float32
    ``(M, text_dim)``, M labels) besides the training speech's transcripts. The returned model is in eval mode;
    history has per-epoch losses and validation scores (an ensemble's: ``{"members": [history, ...]}``).
    widen_reader: with ``config.reader_valid``, the voice reader learns from the validation speakers too, last
    (:func:`widen_voice_reader`; an ensemble's members leave it to the ensemble). reader_from: a model trained on
    the same speech whose voice reader (and its temperature) this one takes instead of fitting its own: the reader
    does not depend on the heads or the seed, so an ensemble fits it once.
    """
    if config.members > 1:
        return _train_ensemble(config, speech, music, tag_features, progress, text_examples)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    reference_mean = speech.subset("train").neutral_mean()
    raw = speech  # what an uncalibrated voice gives: what the voice reader learns from
    if config.calibrate:
        speech = speech.calibrated(reference_mean)
    s_train, s_valid = speech.subset("train"), speech.subset("valid")
    m_train, m_valid = music.subset("train"), music.subset("valid")
    music_moods = sorted(set(m_train.labels))
    speech_labels = sorted(set(s_train.labels))
    mapping = {lab: nearest_label(lab, music_moods, config.va_table) for lab in speech_labels}
    sp = "sp" in config.framework
    if sp and not tag_features:
        raise ValueError(f"{config.framework} needs tag_features (text embeddings of the label words)")
    tag_dim = len(next(iter(tag_features.values()))) if sp else None
    late = config.modality == "fusion" and config.fusion == "late" and speech.text_columns > 0
    speech_dim = speech.features.shape[1] - (speech.text_columns if late else 0)
    speech_hidden = min(config.speech_hidden, speech_dim) if config.speech_hidden else None
    heads = HeadsConfig(
        modality=config.modality,
        speech_dim=speech_dim,
        music_dim=music.features.shape[1],
        dropout=config.dropout,
        tag_dim=tag_dim,
        speech_hidden=speech_hidden,
        text_dim=speech.text_columns if late else None,
        voice_reader=config.voice_reader == "linear" and config.modality != "text",
        framework=config.label,
        va_table=config.va_table,
        speech_labels=speech_labels,
        music_labels=music_moods,
        encoders={
            "audio": config.audio_encoder,
            "text": config.reader_encoder if late else config.text_encoder,
            "music": config.music_encoder,
        },
    )
    model = JointModel(heads)
    model.speech.set_standardisation(s_train.features[:, :speech_dim])
    model.music.set_standardisation(m_train.features)
    all_labels = sorted(set(speech_labels) | set(music_moods))
    if sp:
        model.tag.set_standardisation(np.stack([tag_features[lab] for lab in all_labels]))
    optim = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)

    s_by_label = {lab: np.flatnonzero(np.asarray(s_train.labels) == lab) for lab in speech_labels}
    mood_id = mood_ids(music_moods)
    corpus_labels = s_train.corpus_labels()
    batches = _CorpusBatches(s_train, corpus_labels, mapping, mood_id) if corpus_labels else None
    m_by_label = {lab: np.flatnonzero(np.asarray(m_train.labels) == lab) for lab in music_moods}
    s_feat, m_feat = torch.from_numpy(s_train.features), torch.from_numpy(m_train.features)
    voices = _voice_offsets(s_train) if config.speaker_shift > 0 else None
    # VA similarity by label-pair lookup: equal labels give bit-identical values (method.md §7.4)
    va_sim = torch.tensor(similarity_matrix(speech_labels, music_moods, config.va_table), dtype=torch.float32)
    label_id = {lab: i for i, lab in enumerate(all_labels)}
    tags = torch.from_numpy(np.stack([tag_features[lab] for lab in all_labels])) if sp else None

    steps_per_epoch = max(1, len(s_train.labels) // config.batch_size)
    stopper, history, step = _EarlyStop(config.patience), [], 0
    for epoch in range(config.epochs):
        model.train()
        losses = []
        for _ in range(steps_per_epoch):
            if batches is None:
                s_lab = rng.choice(speech_labels, size=config.batch_size)
                s_idx = np.array([rng.choice(s_by_label[lab]) for lab in s_lab])
                allowed = None
            else:
                s_lab, s_idx, allowed = batches.draw(rng, config.batch_size)
            m_lab = [mapping[lab] for lab in s_lab]
            m_idx = np.array([rng.choice(m_by_label[lab]) for lab in m_lab])
            s_in = s_feat[s_idx]
            if voices is not None:  # another training speaker's voice: x - own neutral + other's neutral
                own, other = voices[s_idx], voices[rng.integers(len(voices), size=len(s_idx))]
                moved = torch.from_numpy(rng.random(len(s_idx)) < config.speaker_shift)[:, None]
                s_in = s_in.clone()
                s_in[:, : own.shape[1]] += torch.where(moved, other - own, torch.zeros_like(own))
            s_emb, m_emb = model.embed_speech(s_in), model.embed_music(m_feat[m_idx])
            m_ids = torch.tensor([mood_id[m] for m in m_lab])
            stm = sampled_triplet_loss(
                s_emb,
                m_emb,
                m_ids,
                config.margin,
                generator=gen,
                allowed=None if allowed is None else allowed[:, m_ids],
            )
            if sp:
                s_tag = model.embed_tags(tags[[label_id[lab] for lab in s_lab]])
                m_tag = model.embed_tags(tags[[label_id[m] for m in m_lab]])
                s_ids = torch.tensor([speech_labels.index(lab) for lab in s_lab])
                tts = sampled_triplet_loss(s_tag, s_emb, s_ids, config.margin, generator=gen)
                ttm = sampled_triplet_loss(m_tag, m_emb, m_ids, config.margin, generator=gen)
                main = structure_preserving_loss(stm, tts, ttm)
            else:
                main = stm
            reg = None
            if "emosim" in config.framework:
                label_sim = va_sim[[speech_labels.index(lab) for lab in s_lab]][:, m_ids]
                reg_fn = ranksim_loss if config.ranksim else emosim_loss
                reg = reg_fn(cosine_matrix(s_emb, m_emb), label_sim)
            loss = total_loss(main, reg, config.lam)
            if config.music_triplet > 0:
                music = _music_triplet(model, m_feat, m_by_label, mood_id, config, rng, gen)
                loss = loss + config.music_triplet * music
            for group in optim.param_groups:
                group["lr"] = _lr_at(step, config, steps_per_epoch)
            optim.zero_grad()
            loss.backward()
            optim.step()
            losses.append(loss.item())
            step += 1
        scores = validation_score(model, s_valid, m_valid, config.va_table)
        score = (scores["precision_at_k"] + scores["ndcg_at_k"]) / 2
        history.append({"epoch": epoch, "loss": float(np.mean(losses)), **scores})
        if progress:
            print(
                f"epoch {epoch:3d} loss {np.mean(losses):.4f} valid P@5 {scores['precision_at_k']:.3f} "
                f"nDCG@5 {scores['ndcg_at_k']:.3f}"
            )
        if stopper.stop(score, model):
            break
    stopper.restore(model)
    model.eval()
    if history:
        best_epoch = max(history, key=lambda h: (h["precision_at_k"] + h["ndcg_at_k"]) / 2)
    else:  # epochs=0: the untrained baseline
        best_epoch = {"epoch": -1, **validation_score(model, s_valid, m_valid, config.va_table)}
    model.config.training = {
        "config": asdict(config),
        "best_epoch": best_epoch["epoch"],
        "valid_projection": {k: best_epoch[k] for k in ("precision_at_k", "mrr", "ndcg_at_k")},
        "epochs_run": len(history),
        "corpora": corpora_seen(speech),
    }
    model.config.readout = Readout(
        speech_prototypes=prototypes(model, "speech", s_train),
        music_prototypes=prototypes(model, "music", m_train),
        mapping=mapping,
        placement=config.placement,
        place_at=config.place_at,
    )
    if model.voice_reader is not None and reader_from is None:
        fit_voice_reader(model, raw.subset("train"), raw.subset("valid"))
    elif model.voice_reader is not None:  # the same speech, so the same reader
        model.voice_reader.load_state_dict(reader_from.voice_reader.state_dict())
        model.config.training["voice_reader"] = dict(reader_from.config.training["voice_reader"])
    if late:  # the audio reading's temperature is fitted on the speakers as the reader sees them
        fit_late_fusion(model, s_train, raw_valid(model, raw, s_valid), text_examples, config.text_weight)
    # what the app's framework choice reads: the validation score of queries placed as the model places them
    final = validation_score(model, s_valid, m_valid, config.va_table)
    model.config.training["valid"] = {k: final[k] for k in ("precision_at_k", "mrr", "ndcg_at_k")}
    if reference_mean is not None:
        # the mean training item (every emotion) in the same frame: where a speaker's mean utterance is moved
        feature_mean = s_train.features[:, : len(reference_mean)].mean(0)
        rounded = lambda x: [round(float(v), 6) for v in x]  # noqa: E731
        model.config.readout = replace(
            model.config.readout, reference_mean=rounded(reference_mean), feature_mean=rounded(feature_mean)
        )
    if widen_reader:
        _widen(model, config, raw)
    return model, {"history": history, "mapping": mapping}


def _widen(model: JointModel, config: TrainConfig, raw: FeatureSet) -> None:
    """:func:`widen_voice_reader` on the training and validation speakers of ``raw`` when the model has a voice
    reader and ``config.reader_valid``."""
    if model.voice_reader is not None and config.reader_valid:
        widen_voice_reader(model, raw.where(np.isin(raw.splits, ["train", "valid"])))


class _EarlyStop:
    """Early stopping on a validation score (higher is better): keeps the best module state; ``stop`` says when
    ``patience`` epochs in a row brought no improvement (the counter resets on improvement). ``patience`` 0: no
    early stopping and no selection: every epoch runs and the last one is kept (its score recorded)."""

    def __init__(self, patience: int):
        self.patience, self.best, self.bad, self.state = patience, -1.0, 0, None
        self.record: dict = {"epoch": -1}  # the best epoch and its score

    def stop(self, score: float, module: torch.nn.Module, epoch: int = -1) -> bool:
        if self.patience == 0 or score > self.best:
            self.best, self.bad, self.record = score, 0, {"epoch": epoch, "score": score}
            self.state = {k: v.detach().clone() for k, v in module.state_dict().items()}
            return False
        self.bad += 1
        return self.bad >= self.patience

    def restore(self, module: torch.nn.Module) -> None:
        """Load the best state seen (nothing when no epoch ran)."""
        if self.state is not None:
            module.load_state_dict(self.state)


def mood_ids(moods: list[str]) -> dict[str, int]:
    """Each training music mood's id, in sorted order, as the losses use them."""
    return {m: i for i, m in enumerate(moods)}


class _CorpusBatches:
    """Batches balanced over corpora with their own label sets: per row a corpus drawn uniformly, one of *its*
    labels uniformly, an item of that corpus and label. ``allowed`` (bool ``(B, moods)``) marks, per row, the
    music moods that its corpus's labels map to: a clip is never pushed away from music of a mood its corpus has no
    word for (Korean speech has no "fearful", so no Korean item learns to be far from "fearful" music)."""

    def __init__(
        self, speech: FeatureSet, corpus_labels: dict[str, list[str]], mapping: dict[str, str], mood_id: dict[str, int]
    ) -> None:
        corpora, labels = np.asarray(speech.corpora), np.asarray(speech.labels)
        self.names = list(corpus_labels)
        self.labels = corpus_labels
        self.items = {
            (c, lab): np.flatnonzero((corpora == c) & (labels == lab))
            for c, labs in corpus_labels.items()
            for lab in labs
        }
        self.allowed = {c: np.isin(list(mood_id), [mapping[lab] for lab in labs]) for c, labs in corpus_labels.items()}

    def draw(self, rng: np.random.Generator, size: int) -> tuple[list[str], np.ndarray, torch.Tensor]:
        """(labels, item indices int ``(size,)``, allowed moods bool ``(size, moods)``)."""
        names = rng.choice(self.names, size=size)
        labels = [str(rng.choice(self.labels[c])) for c in names]
        idx = np.array([rng.choice(self.items[(c, lab)]) for c, lab in zip(names, labels, strict=True)])
        return labels, idx, torch.from_numpy(np.stack([self.allowed[c] for c in names]))


def corpora_seen(speech: FeatureSet) -> dict[str, dict[str, object]]:
    """What a checkpoint was trained and validated on, per corpus: speakers, items and labels of its train and
    valid splits (``{}`` for a single unnamed data set)."""
    if speech.corpora is None or not any(speech.corpora):
        return {}
    out: dict[str, dict[str, object]] = {}
    for c, g, lab, split in zip(speech.corpora, speech.groups, speech.labels, speech.splits, strict=True):
        if split in ("train", "valid"):
            seen = out.setdefault(c, {"speakers": set(), "items": 0, "labels": set()})
            seen["speakers"].add(g)
            seen["items"] += 1
            seen["labels"].add(lab)
    return {
        c: {"speakers": len(v["speakers"]), "items": v["items"], "labels": sorted(v["labels"])}
        for c, v in sorted(out.items())
    }


def _music_triplet(
    model: JointModel,
    features: torch.Tensor,
    by_label: dict[str, np.ndarray],
    mood_id: dict[str, int],
    config: TrainConfig,
    rng: np.random.Generator,
    gen: torch.Generator,
) -> torch.Tensor:
    """The music-side triplet term: a batch of training clips, moods drawn uniformly (so moods no speech emotion maps
    to are pushed apart too), each with a second clip of its mood drawn independently (now and then the same clip) as
    the positive and a clip of another mood as the negative (:func:`s2m.losses.sampled_triplet_loss`). ``features``:
    the training music float32 ``(M, music_dim)``; ``by_label``: row indices per mood; ``mood_id``: each mood's id,
    in sorted order, as the speech→music term uses them. Returns a scalar."""
    labels = rng.choice(list(mood_id), size=config.batch_size)
    anchor = np.array([rng.choice(by_label[lab]) for lab in labels])
    positive = np.array([rng.choice(by_label[lab]) for lab in labels])
    ids = torch.tensor([mood_id[lab] for lab in labels])
    return sampled_triplet_loss(
        model.embed_music(features[anchor]), model.embed_music(features[positive]), ids, config.margin, generator=gen
    )


def _train_ensemble(
    config: TrainConfig,
    speech: FeatureSet,
    music: FeatureSet,
    tag_features: dict[str, np.ndarray] | None,
    progress: bool,
    text_examples: tuple[np.ndarray, list[str]] | None,
) -> tuple[JointModel, dict]:
    """:func:`train` ``config.members`` single models (seeds ``seed + MEMBER_SEED_STEP × i``; the first one's
    voice reader serves them all) and combine them (:func:`ensemble`); a late-fusion ensemble's temperatures are
    fitted again on the validation speakers."""
    members, histories = [], []
    for i in range(config.members):
        member = replace(config, members=1, seed=config.seed + MEMBER_SEED_STEP * i)
        first = members[0] if members else None
        model, history = train(member, speech, music, tag_features, progress, text_examples, False, first)
        members.append(for_inference(model))
        histories.append(history)
    model = ensemble(members)
    raw = speech
    if config.calibrate:
        speech = speech.calibrated(speech.subset("train").neutral_mean())
    s_valid, m_valid = speech.subset("valid"), music.subset("valid")
    if model.text_reader is not None:
        calibrate_late_fusion(model, raw_valid(model, raw, s_valid))
    final = validation_score(model, s_valid, m_valid, config.va_table)
    model.config.training["valid"] = {k: final[k] for k in ("precision_at_k", "mrr", "ndcg_at_k")}
    _widen(model, config, raw)
    return model, {"members": histories}


def ensemble(models: list[JointModel]) -> JointModel:
    """One checkpoint from single models of the same configuration (different seeds): their speech and music heads
    side by side (:class:`s2m.heads.Members`), the first model's text reader (every member fits the same one),
    each label's prototype the members' prototypes side by side / √members, so a query's cosine to it is the mean
    of the members' cosines. Weights are stored as float16. ``training["members"]`` keeps each member's seed,
    best epoch and validation scores."""
    first, k = models[0], len(models)
    training = {**first.config.training, "config": {**first.config.training.get("config", {}), "members": k}}
    training["members"] = [
        {
            "seed": m.config.training["config"]["seed"],
            "best_epoch": m.config.training["best_epoch"],
            "valid": m.config.training.get("valid"),
        }
        for m in models
    ]
    side_by_side = {}
    for key in ("speech_prototypes", "music_prototypes"):
        protos = [getattr(m.config.readout, key) for m in models]
        side_by_side[key] = {lab: [round(v / k**0.5, 6) for p in protos for v in p[lab]] for lab in protos[0]}
    readout = replace(first.config.readout, **side_by_side)
    model = JointModel(
        replace(first.config, members=k, tag_dim=None, weights_dtype="float16", training=training, readout=readout)
    )
    for side in ("speech", "music"):
        for head, member in zip(getattr(model, side).members, models, strict=True):
            head.load_state_dict(getattr(member, side).state_dict())
    for reader in ("text_reader", "voice_reader"):
        if getattr(first, reader) is not None:
            getattr(model, reader).load_state_dict(getattr(first, reader).state_dict())
    return model.eval()


def reader_fit(x: np.ndarray, labels: list[str], c: float = 1.0, sample_weight: np.ndarray | None = None):
    """A reader's classifier: multinomial logistic regression (scikit-learn, L2, inverse strength ``c``) from
    features float ``(N, d)`` to N labels (optionally weighted, float ``(N,)``); the fitted scikit-learn model."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=3000).fit(x, labels, sample_weight=sample_weight)


def reader_rows(fit, labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """A fitted :func:`reader_fit` 's logit weights float ``(C, d)`` and biases ``(C,)`` in ``labels`` order (every
    label one it was fitted on)."""
    rows = [list(fit.classes_).index(lab) for lab in labels]
    coef, intercept = fit.coef_, fit.intercept_
    if len(fit.classes_) == 2:  # scikit-learn keeps one row (the second class's logit against the first's)
        coef, intercept = np.concatenate([-coef / 2, coef / 2]), np.concatenate([-intercept / 2, intercept / 2])
    return coef[rows], intercept[rows]


def balanced_weights(labels: list[str], corpora: list[str] | None = None) -> np.ndarray:
    """float ``(N,)`` sample weights, mean 1, under which every corpus weighs the same and, within it, every one of
    its labels (one corpus when ``corpora`` is None): Polish's 4,481 clips do not drown Korean's 200."""
    labels_a = np.asarray(labels)
    corpora_a = np.asarray(corpora if corpora is not None else [""] * len(labels))
    w = np.zeros(len(labels))
    for c in np.unique(corpora_a):
        own = corpora_a == c
        kinds = np.unique(labels_a[own])
        for lab in kinds:
            rows = own & (labels_a == lab)
            w[rows] = 1.0 / (rows.sum() * len(kinds))
    return w / w.mean()


def fit_voice_reader(model: JointModel, train: FeatureSet, valid: FeatureSet) -> None:
    """Fit a model's linear voice reader (:class:`s2m.heads.VoiceReader`) on raw (uncalibrated) speech features:
    multinomial logistic regression (L2, C = :data:`s2m.config.VOICE_READER_C`) on the standardised training audio
    features ``train`` (float32 ``(N, speech_dim [+ text_dim])``; the text columns are not read), balanced over
    corpora and their emotions (:func:`balanced_weights`). Its logits are temperature-scaled on ``valid``
    (:func:`best_temperature`, log grid 0.05-20) and stored on the scale of prototype cosines: softmax(scores /
    the placement temperature) are the calibrated probabilities, so placement and late fusion read them as they
    read cosines."""
    from .config import VOICE_READER_C

    coef, intercept = _reader_weights(model, train)
    logits = _reader_input(model, valid.features) @ coef.T + intercept
    temperature = logit_temperature(logits, valid.labels, model.config.speech_labels)
    _set_reader(model, coef, intercept, temperature)
    model.config.training["voice_reader"] = {"c": VOICE_READER_C, "logit_temperature": temperature}


def widen_voice_reader(model: JointModel, speech: FeatureSet) -> None:
    """Fit a model's voice reader again, as :func:`fit_voice_reader` does, on ``speech`` (raw; the training and
    validation speakers together), keeping the temperature fitted on the validation speakers: a reader that learned
    from more voices reads voices it never heard better (leave-one-corpus-out, model card). Called once everything
    that is selected or calibrated on the validation speakers has been."""
    coef, intercept = _reader_weights(model, speech)
    _set_reader(model, coef, intercept, model.config.training["voice_reader"]["logit_temperature"])
    model.config.training["voice_reader"]["speakers"] = "train+valid"


def _reader_weights(model: JointModel, speech: FeatureSet) -> tuple[np.ndarray, np.ndarray]:
    """The voice reader standardised on ``speech``'s audio columns and the logistic regression's weights float
    ``(C, speech_dim)`` and biases ``(C,)`` fitted there (speech labels order)."""
    from .config import VOICE_READER_C

    model.voice_reader.set_standardisation(speech.features[:, : model.config.speech_dim])
    x = _reader_input(model, speech.features)
    fit = reader_fit(x, speech.labels, VOICE_READER_C, balanced_weights(speech.labels, speech.corpora))
    return reader_rows(fit, model.config.speech_labels)


def _reader_input(model: JointModel, features: np.ndarray) -> np.ndarray:
    """Raw speech-side features float ``(N, speech_dim [+ text_dim])`` as the voice reader reads them: the audio
    columns, standardised by its stored mean and std; float32 ``(N, speech_dim)``."""
    x = torch.from_numpy(np.asarray(features[:, : model.config.speech_dim], np.float32))
    return model.voice_reader.standardise(x).numpy()


def _set_reader(model: JointModel, coef: np.ndarray, intercept: np.ndarray, temperature: float) -> None:
    """Store logit weights and biases at ``temperature``, on the prototype-cosine scale (placement temperature)."""
    scale = (model.config.readout.placement or DEFAULT_TEMPERATURE) / temperature
    with torch.no_grad():
        model.voice_reader.linear.weight.copy_(torch.from_numpy((coef * scale).astype(np.float32)))
        model.voice_reader.linear.bias.copy_(torch.from_numpy((intercept * scale).astype(np.float32)))


def logit_temperature(logits: np.ndarray, labels: list[str], known: list[str]) -> float:
    """:func:`best_temperature` of logits float ``(N, C)`` (columns: ``known``) for the N items' ``labels`` (items
    of unknown labels left out; 1 without any), over the log grid 0.05-20."""
    rows = [i for i, lab in enumerate(labels) if lab in known]
    if not rows:
        return 1.0
    truth = np.asarray([known.index(labels[i]) for i in rows])
    return best_temperature(logits[rows], truth, np.geomspace(0.05, 20, 60))


def raw_valid(model: JointModel, raw: FeatureSet, calibrated: FeatureSet) -> FeatureSet:
    """The validation speakers as a model's audio reading sees them: raw with a voice reader (fitted on raw
    features), else ``calibrated`` (as its heads were trained)."""
    return raw.subset("valid") if model.voice_reader is not None else calibrated


def fit_text_reader(
    model: JointModel,
    text: np.ndarray,
    labels: list[str],
    examples: tuple[np.ndarray, list[str]] | None = None,
    weight: float = 1.0,
) -> None:
    """Fit a late-fusion model's text reader: multinomial logistic regression (scikit-learn, L2, C = 1) from text
    features float32 ``(N, text_dim)`` to the model's speech labels, on the training transcripts plus ``examples``
    (rows whose label the model does not know are dropped). Stores the label frequencies it saw as
    ``readout.text_prior``: a sentence read in every emotion alike (RAVDESS's two statements) then gives
    evidence ≈ 1 for every label and leaves the audio reading unchanged. ``weight``: the power of that evidence in
    :meth:`s2m.heads.JointModel.read` (``readout.text_weight``; :class:`s2m.config.TrainConfig`)."""
    known = model.config.speech_labels
    x, y = np.asarray(text, np.float32), list(labels)
    if examples is not None:
        keep = [i for i, lab in enumerate(examples[1]) if lab in known]
        x, y = np.concatenate([x, np.asarray(examples[0], np.float32)[keep]]), y + [examples[1][i] for i in keep]
    fit = reader_fit(x, y)
    coef, intercept = reader_rows(fit, known)
    with torch.no_grad():
        model.text_reader.weight.copy_(torch.from_numpy(coef.astype(np.float32)))
        model.text_reader.bias.copy_(torch.from_numpy(intercept.astype(np.float32)))
    model.config.readout = replace(
        model.config.readout, text_prior=[round(y.count(lab) / len(y), 6) for lab in known], text_weight=float(weight)
    )
    model.config.training["text_examples"] = 0 if examples is None else len(keep)


def fit_late_fusion(
    model: JointModel,
    train: FeatureSet,
    valid: FeatureSet,
    examples: tuple[np.ndarray, list[str]] | None,
    weight: float,
) -> None:
    """A late-fusion model's text reader (:func:`fit_text_reader`) and both temperatures (:func:`calibrate_late_fusion`,
    on ``valid``). The reader learns from the training speech's transcripts only when it comes from one data set:
    across corpora the words tell *which corpus* (and so which of its emotions) more than which emotion — Korean
    words would never be read as "calm", RAVDESS's two statements always as the emotions only RAVDESS has — so a
    model trained on several corpora reads words with what ``examples`` (the emotion sentences) taught it alone."""
    d = model.config.speech_dim
    own = not train.corpus_labels() or examples is None
    text = train.features[:, d:] if own else train.features[:0, d:]
    fit_text_reader(model, text, train.labels if own else [], examples, weight)
    calibrate_late_fusion(model, valid)


def best_temperature(scores: np.ndarray, truth: np.ndarray, grid: np.ndarray) -> float:
    """Temperature scaling: the τ in ``grid`` at which softmax(float ``(N, C)`` scores / τ) gives the true classes
    int ``(N,)`` the least mean negative log-likelihood."""
    from scipy.special import logsumexp

    rows = np.arange(len(truth))
    nll = [float(np.mean(logsumexp(scores / t, axis=1) - scores[rows, truth] / t)) for t in grid]
    return round(float(grid[int(np.argmin(nll))]), 6)


def calibrate_late_fusion(model: JointModel, valid: FeatureSet) -> None:
    """Temperature-scale both readings of a late-fusion model on validation speakers, so that their product is a
    fair vote: ``readout.read_temperature`` for the audio head's prototype cosines (log grid 0.005–1) and
    ``readout.text_temperature`` for the text reader's logits (log grid 0.25–20; large = the words told little
    about these speakers' emotions)."""
    protos = model.config.readout.speech_prototypes
    labels = list(protos)
    known = [i for i, lab in enumerate(valid.labels) if lab in protos]
    if not known:
        model.config.readout = replace(model.config.readout, read_temperature=DEFAULT_TEMPERATURE, text_temperature=1.0)
        return
    features = valid.features[known]
    truth = np.asarray([labels.index(valid.labels[i]) for i in known])
    cos = model.scores(features)[2]
    with torch.no_grad():
        logits = model.text_reader(torch.from_numpy(features[:, model.config.speech_dim :])).numpy()
    order = [model.config.speech_labels.index(lab) for lab in labels]
    read_temperature = best_temperature(cos, truth, np.geomspace(0.005, 1.0, 40))
    text_temperature = best_temperature(logits[:, order], truth, np.geomspace(0.25, 20, 40))
    model.config.readout = replace(
        model.config.readout, read_temperature=read_temperature, text_temperature=text_temperature
    )


def _voice_offsets(speech: FeatureSet) -> torch.Tensor | None:
    """float32 ``(N, d_audio)`` speaker neutral means of the training items (their population's mean where
    unknown), or None without any: the voices the speaker-shift augmentation swaps between."""
    if speech.speaker_means is None:
        return None
    means = speech.speaker_means.copy()
    unknown = np.isnan(means).any(axis=1)
    if unknown.all():
        return None
    means[unknown] = np.nanmean(means[~unknown], axis=0)
    return torch.from_numpy(means.astype(np.float32))


def label_means(
    embeddings: np.ndarray, labels: list[str], corpora: list[str] | None = None
) -> tuple[list[str], np.ndarray]:
    """(sorted labels, ``(C, D)`` L2-normalised mean embedding per label): the nearest-prototype classifier. With
    ``corpora`` (N names), a label's mean is the mean of its corpora's means, so the largest corpus does not decide
    where a label lies."""
    classes = sorted(set(labels))
    labels_a = np.asarray(labels)
    corpora_a = np.asarray(corpora if corpora is not None else [""] * len(labels))
    means = np.stack(
        [
            np.mean(
                [embeddings[(labels_a == c) & (corpora_a == k)].mean(0) for k in np.unique(corpora_a[labels_a == c])],
                axis=0,
            )
            for c in classes
        ]
    )
    return classes, means / (np.linalg.norm(means, axis=1, keepdims=True) + 1e-12)


def prototypes(model: JointModel, side: str, data: FeatureSet) -> dict[str, list[float]]:
    """:func:`label_means` of a side's embeddings as JSON lists (the app's emotion read-out and mood predictor)."""
    classes, means = label_means(model.project(side, data.features), data.labels, data.corpora)
    return {c: [round(float(v), 6) for v in m] for c, m in zip(classes, means, strict=True)}


def for_inference(model: JointModel) -> JointModel:
    """A copy without the tag head (only training uses it), so shipped checkpoints stay small."""
    if model.tag is None:
        return model
    slim = JointModel(replace(model.config, tag_dim=None))
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("tag.")}
    slim.load_state_dict(state)
    slim.config.training = {**model.config.training, "tag_dim": model.config.tag_dim}
    return slim.eval()


def placed_score(model: JointModel, music: FeatureSet, speech_labels: list[str], table: str) -> dict[str, float]:
    """Retrieval metrics of a query read exactly as each of ``speech_labels`` (placed where the model puts that
    emotion, :meth:`s2m.readout.Readout.targets`) against ``music``: how well the music side serves a perfect
    reader, with no speech at all (the ceiling of the placement; the score a music-side refit is selected on)."""
    readout = model.config.readout
    protos = readout.speech_prototypes
    queries = readout.targets(speech_labels, np.asarray([protos[lab] for lab in speech_labels], np.float32))
    relevant, gains = retrieval_targets(speech_labels, music.labels, table, music.shares)
    return ranking_metrics(queries @ model.project("music", music.features).T, relevant, gains, k=5)


def _fit_music(module: torch.nn.Module, batch_loss, score, config: TrainConfig, steps: int) -> dict:
    """The music-side refit's training loop: AdamW on ``module``'s parameters with :func:`train`'s learning-rate
    schedule, ``steps`` batches an epoch (``batch_loss(step)`` gives each batch's loss), early stopping on
    ``score()`` (higher is better; the best state is restored). Returns the best epoch's record."""
    optim = torch.optim.AdamW(module.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    stopper = _EarlyStop(config.patience)
    for epoch in range(config.epochs):
        module.train()
        for step in range(steps):
            for group in optim.param_groups:
                group["lr"] = _lr_at(epoch * steps + step, config, steps)
            loss = batch_loss(step)
            optim.zero_grad()
            loss.backward()
            optim.step()
        module.eval()
        if stopper.stop(score(), module, epoch):
            break
    stopper.restore(module)
    module.eval()
    return stopper.record


def _music_member(config: TrainConfig, music: FeatureSet, out_dim: int, score) -> tuple[ProjectionHead, dict]:
    """One music head trained with the music-side triplet term alone (:func:`_music_triplet`) plus, for EmoSim
    frameworks, EmoSim between the clips' cosines and their moods' VA similarity; early-stopped on ``score(head)``
    (higher is better). Returns (head in eval mode, its best epoch's record)."""
    torch.manual_seed(config.seed)
    rng, gen = np.random.default_rng(config.seed), torch.Generator().manual_seed(config.seed)
    m_train = music.subset("train")
    moods = sorted(set(m_train.labels))
    head = ProjectionHead(music.features.shape[1], out_dim, dropout=config.dropout)
    head.set_standardisation(m_train.features)
    holder = _MusicOnly(head)
    by_label = {lab: np.flatnonzero(np.asarray(m_train.labels) == lab) for lab in moods}
    feats, mood_id = torch.from_numpy(m_train.features), mood_ids(moods)
    va_sim = torch.tensor(similarity_matrix(moods, moods, config.va_table), dtype=torch.float32)

    def batch_loss(step: int) -> torch.Tensor:
        loss = _music_triplet(holder, feats, by_label, mood_id, config, rng, gen)
        if "emosim" in config.framework:
            labels = rng.choice(moods, size=config.batch_size)
            idx = np.array([rng.choice(by_label[lab]) for lab in labels])
            emb = head(feats[idx])
            ids = [mood_id[lab] for lab in labels]
            loss = total_loss(loss, emosim_loss(cosine_matrix(emb, emb), va_sim[ids][:, ids]), config.lam)
        return loss

    steps = max(1, len(m_train.labels) // config.batch_size)
    record = _fit_music(head, batch_loss, lambda: score(head), config, steps)
    return head, record


def _placed_music_score(mapping: dict[str, str], train: FeatureSet, valid: FeatureSet, table: str):
    """A function of a lone music head: the mean of P@5 and nDCG@5 of queries placed, as a perfect reader of each
    speech label in ``mapping`` would be, at its mood's mean training embedding, against the ``valid`` music."""
    labels = list(mapping)
    relevant, gains = retrieval_targets(labels, valid.labels, table, valid.shares)

    @torch.no_grad()
    def score(head: ProjectionHead) -> float:
        embed = lambda x: torch.nn.functional.normalize(head(torch.from_numpy(x)), dim=-1).numpy()  # noqa: E731
        classes, means = label_means(embed(train.features), train.labels)
        queries = means[[classes.index(mapping[lab]) for lab in labels]]
        m = ranking_metrics(queries @ embed(valid.features).T, relevant, gains, k=5)
        return (m["precision_at_k"] + m["ndcg_at_k"]) / 2

    return score


class _MusicOnly:
    """A stand-in with only ``embed_music``, so :func:`_music_triplet` can train a lone music head."""

    def __init__(self, head: ProjectionHead):
        self.embed_music = head


SHARE_TEMPERATURE = 0.1  # the listener-share objective's softmax temperature over cosines to the mood anchors


class _Anchored(torch.nn.Module):
    """A music head and a learnable anchor per mood, trained and restored together (the listener-share objective)."""

    def __init__(self, head: ProjectionHead, moods: int, out_dim: int):
        super().__init__()
        self.head = head
        self.anchors = torch.nn.Parameter(torch.randn(moods, out_dim))

    def unit_anchors(self) -> torch.Tensor:
        return torch.nn.functional.normalize(self.anchors, dim=-1)


def _share_member(
    config: TrainConfig,
    music: FeatureSet,
    shares: np.ndarray,
    moods: list[str],
    out_dim: int,
    mapping: dict[str, str],
    table: str,
) -> tuple[ProjectionHead, np.ndarray, dict]:
    """One music head trained to say what the listeners felt: a learnable anchor per mood (``moods``: the columns
    of ``shares``), and per training clip the cross-entropy between its track's listener shares (normalised to sum
    1) and the softmax over its cosines to the anchors at ``SHARE_TEMPERATURE``. Early stopping on the validation
    music: queries read as each speech label of ``mapping`` placed at its mood's anchor, mean of P@5 and nDCG@5.
    Returns (head in eval mode, L2-normalised anchors float32 ``(len(moods), out_dim)``, its best epoch's record)."""
    torch.manual_seed(config.seed)
    train_rows = np.asarray(music.splits) == "train"
    x = torch.from_numpy(music.features[train_rows])
    target = shares[train_rows] / np.clip(shares[train_rows].sum(1, keepdims=True), 1e-9, None)
    target = torch.from_numpy(target.astype(np.float32))
    head = ProjectionHead(music.features.shape[1], out_dim, dropout=config.dropout)
    head.set_standardisation(music.features[train_rows])
    anchored = _Anchored(head, len(moods), out_dim)
    valid = music.subset("valid")
    labels = list(mapping)
    relevant, gains = retrieval_targets(labels, valid.labels, table, valid.shares)
    columns = [moods.index(mapping[lab]) for lab in labels]
    normalize = torch.nn.functional.normalize
    gen = torch.Generator().manual_seed(config.seed)
    order = torch.empty(0, dtype=torch.long)

    def batch_loss(step: int) -> torch.Tensor:
        nonlocal order
        if step == 0:  # a new epoch: a new order of the training clips
            order = torch.randperm(len(x), generator=gen)
        rows = order[step * config.batch_size : (step + 1) * config.batch_size]
        logits = normalize(head(x[rows]), dim=-1) @ anchored.unit_anchors().T / SHARE_TEMPERATURE
        return -(target[rows] * torch.log_softmax(logits, dim=-1)).sum(1).mean()

    @torch.no_grad()
    def score() -> float:
        placed = anchored.unit_anchors().numpy()[columns]
        m = ranking_metrics(
            placed @ normalize(head(torch.from_numpy(valid.features)), dim=-1).numpy().T, relevant, gains, k=5
        )
        return (m["precision_at_k"] + m["ndcg_at_k"]) / 2

    record = _fit_music(anchored, batch_loss, score, config, max(1, len(x) // config.batch_size))
    return head, anchored.unit_anchors().detach().numpy().astype(np.float32), record


def refit_music(
    model: JointModel,
    music: FeatureSet,
    config: TrainConfig,
    source: str = "",
    listener_shares: bool = False,
) -> JointModel:
    """``model`` with a new music side trained on ``music`` (its train split; early stopping on its valid split):
    one music head per ensemble member (seeds as :func:`train`'s members), trained on music alone
    (:func:`_music_member`), new music prototypes and a new speech-label → mood mapping (each speech label's
    VA-nearest training mood among those of at least ``MIN_TARGET_TRACKS`` training tracks relevant to it: by the
    relevance rule of :func:`s2m.metrics.retrieval_targets`, with listeners' shares a third of them marked it, else
    its label; Emotify has two tracks most of whose listeners felt amazement, too few to stand for surprise). The
    speech side, the text reader and the temperatures are kept: a model that places queries at music prototypes
    (``place_at="music"``) reads the emotion with its speech head and puts the query among the music of that
    emotion, so its music side can be trained on new music without any speech. Selection: the mean of P@5 and nDCG@5
    of queries read as each speech label (:func:`placed_score`) on the valid music. ``listener_shares``: the heads
    learn what the listeners felt (``music.shares``, :func:`_share_member`) and each GEMS emotion's prototype is its
    learned anchor; else the music-side triplet term on the dominant moods (:func:`_music_member`).
    ``source`` names the music in ``training["music_refit"]``."""
    if model.config.readout.place_at != "music":
        raise ValueError(
            "only a model that places queries at music prototypes (place_at='music') can have its "
            "music side refitted without speech"
        )
    if listener_shares and music.shares is None:
        raise ValueError("the listener-share objective needs music with listeners' shares")
    m_train, m_valid = music.subset("train"), music.subset("valid")
    moods = list(GEMS_LABELS) if listener_shares else sorted(set(m_train.labels))
    c = model.config
    speech_labels = list(c.readout.speech_prototypes)
    if m_train.shares is None:
        marked = np.asarray(m_train.labels)[:, None] == np.asarray(moods)[None, :]
    else:
        marked = felt(m_train.shares[:, [GEMS_LABELS.index(m) for m in moods]])
    tracks = {m: len(set(np.asarray(m_train.groups)[marked[:, j]])) for j, m in enumerate(moods)}
    targets = [m for m in moods if tracks[m] >= MIN_TARGET_TRACKS] or moods
    mapping = {lab: nearest_label(lab, targets, c.va_table) for lab in speech_labels}
    config = replace(
        config, framework=c.training.get("config", {}).get("framework", config.framework), va_table=c.va_table
    )
    new = JointModel(
        replace(
            c,
            music_dim=music.features.shape[1],
            music_labels=moods,
            training=dict(c.training),
            encoders={**c.encoders, "music": config.music_encoder},
        )
    )
    new.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("music.")}, strict=False)
    new.config.readout = replace(new.config.readout, mapping=mapping)
    new.config.training["config"] = {**c.training.get("config", {}), "music_encoder": config.music_encoder}
    heads_out, records, anchors = [], [], []
    for i in range(c.members):
        member_config = replace(config, seed=config.seed + MEMBER_SEED_STEP * i)
        if listener_shares:
            head, member_anchors, record = _share_member(
                member_config, music, music.shares, moods, c.out_dim, mapping, c.va_table
            )
            anchors.append(member_anchors)
        else:
            head, record = _music_member(
                member_config, music, c.out_dim, _placed_music_score(mapping, m_train, m_valid, c.va_table)
            )
        heads_out.append(head)
        records.append({"seed": member_config.seed, **record})
    if c.members == 1:
        new.music = heads_out[0]
    else:
        for target, head in zip(new.music.members, heads_out, strict=True):
            target.load_state_dict(head.state_dict())
    new.eval()
    if anchors:  # each mood's prototype: its anchors side by side, scaled as an ensemble's prototypes are
        scale = len(anchors) ** 0.5 if len(anchors) > 1 else 1.0
        music_prototypes = {
            mood: [round(float(v) / scale, 6) for a in anchors for v in a[j]] for j, mood in enumerate(moods)
        }
    else:
        music_prototypes = prototypes(new, "music", m_train)
    new.config.readout = replace(new.config.readout, music_prototypes=music_prototypes)
    valid = placed_score(new, m_valid, speech_labels, c.va_table)
    new.config.training["music_refit"] = {
        "objective": "listener shares" if anchors else "music triplet on the dominant moods",
        "source": source,
        "encoder": config.music_encoder,
        "framework": config.framework,
        "lr": config.lr,
        "epochs": config.epochs,
        "patience": config.patience,
        "members": records,
        "train": {"clips": len(m_train.labels), "tracks": len(set(m_train.groups))},
        "valid": {"clips": len(m_valid.labels), **{k: round(v, 4) for k, v in valid.items()}},
    }
    return new
