"""Command line: ``python -m s2m COMMAND --help``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT / "data"  # rebuilt data (speech corpus, feature cache); not committed
SPEECH_DIR = DATA_DIR / "speech"  # the synthetic corpus (python -m s2m build-speech)
RUNS_DIR = ROOT / "runs"  # models written by `train` unless --out says otherwise; not committed
PER_RUN = ("modality", "framework", "seed")  # evaluate and crosscorpus take lists of these (--modalities ...)


def ravdess_dir() -> Path:
    """RAVDESS speech: ``S2M_RAVDESS``, else ``../shared/data/ravdess`` beside the repository."""
    import os

    return Path(os.environ.get("S2M_RAVDESS") or ROOT.parent / "shared" / "data" / "ravdess")


def _build_library(args) -> None:
    from .data.library import build_emotify, build_immich

    if args.immich:
        rows = build_immich(Path(args.library), seed=args.seed)
        print(f"{len(rows)} immich clips written to {args.library}")
        return

    rows = build_emotify(_tracks_csv(args), Path(args.library))
    print(f"{len(rows)} listener-labelled clips written to {args.library}")


def _build_music(args) -> None:
    from .data.compose import build_composed

    rows = build_composed(Path(args.library), seed=args.seed)
    print(f"{len(rows)} composed clips written to {args.library}")


def _build_speech(args) -> None:
    from .data.speech import build_corpus, build_examples

    out = build_corpus(args.out, seed=args.seed, actors=args.actors, jobs=args.jobs)
    print(f"corpus in {out}")
    if args.examples:
        paths = build_examples(args.examples, seed=args.seed)
        print(f"{len(paths)} example queries in {args.examples}")


def _report(args) -> None:
    from . import report
    from .data import library_records, read_ravdess
    from .emotions import AUDIOSET_MOODS

    library = Path(args.library)
    print("## Music library\n\n" + report.library_report(library))
    print("\n## Music descriptors per mood\n\n" + report.descriptor_report(library))
    print("\n## Linear probe, all moods\n\n" + report.probe_report(library, args.music_encoder))
    if any(r.label in AUDIOSET_MOODS for r in library_records(library)):  # the maker-labelled library only
        print(
            "\n## Linear probe, composed AudioSet moods\n\n"
            + report.probe_report(library, args.music_encoder, list(AUDIOSET_MOODS))
        )
    if args.compare_music_encoders:
        print(
            "\n## Music encoders compared (linear probe)\n\n"
            + report.music_encoder_report(library, args.compare_music_encoders)
        )
    if args.compare_readers:
        if not ravdess_dir().is_dir():
            sys.exit(f"--compare-readers needs RAVDESS at {ravdess_dir()} (or $S2M_RAVDESS)")
        print(
            "\n## Fusion's text reader: validation sentences per language\n\n"
            + report.reader_report(read_ravdess(ravdess_dir()), args.compare_readers)
        )
    if SPEECH_DIR.exists():
        print("\n## Speech corpus\n\n" + report.corpus_report(read_ravdess(SPEECH_DIR)))
    if library.resolve() == (ROOT / "assets" / "library").resolve():
        from .search import Engine

        examples = sorted((ROOT / "assets" / "examples").glob("*.wav"))
        print("\n## Library maps: one picture for every model\n\n" + report.map_report(Engine(), examples))


def _convert_musicnn(args) -> None:
    from .encoders.musicnn_convert import MODELS, convert, write_fixture

    for name in MODELS:
        print(f"wrote {convert(name, Path(args.out))}")
    if args.fixture:
        print(f"wrote {write_fixture(Path(args.fixture))}")


def _bench(args) -> None:
    from .bench import browser, load, run

    if args.browser:
        print(browser(Path(args.screenshot) if args.screenshot else None))
    else:
        print(load(tuple(zip(args.clients, args.queries, strict=False))) if args.load else run(args.repeats))


def _wer(args) -> None:
    """Word and character error rates of each recogniser on labelled speech with given transcripts (per corpus with
    ``--corpora``), and the languages the app's recogniser heard."""
    from collections import Counter

    from .features import asr_languages, asr_transcripts
    from .metrics import character_error_rate, word_error_rate

    speech = [r for r in _speech_records(args) if r.transcript and r.path]
    if args.split != "all":
        speech = [r for r in speech if r.split == args.split]
    if not speech:
        sys.exit("No items with a given transcript to score.")
    sets = {c: [r for r in speech if r.corpus == c] for c in sorted({r.corpus for r in speech})}
    print("| recogniser | speech | items | WER | CER | languages heard |\n|---|---|---|---|---|---|")
    for model in args.models:
        heard = dict(zip((r.path for r in speech), asr_transcripts(speech, model), strict=True))
        language = dict(zip((r.path for r in speech), asr_languages(speech, model), strict=True))  # the same cache
        for name, records in sets.items():
            said, got = [r.transcript for r in records], [heard[r.path].transcript for r in records]
            languages = Counter(language[r.path] for r in records)
            shown = ", ".join(f"{k} {v / len(records):.0%}" for k, v in languages.most_common(3)) or "–"
            print(
                f"| {model} | {name or 'the speech set'} | {len(records)} | {word_error_rate(said, got):.3f} | "
                f"{character_error_rate(said, got):.3f} | {shown} |"
            )


def _index(args) -> None:
    from .search import INDEX_DIR, Engine

    engine = Engine()
    used = {i.map_path.name for i in engine.indexes.values()}
    stale = [p for p in INDEX_DIR.glob("map-*.npz") if p.name not in used]
    for p in stale:
        p.unlink()
    print(f"{len(used)} library maps in {INDEX_DIR}; removed {len(stale)} stale")


def _speech_records(args):
    from . import data

    if getattr(args, "corpora", None) is not None:
        return _corpus_records(args, combine=True)
    if args.speech_csv:
        from .features import playable

        records = data.read_speech_csv(args.speech_csv, args.va_table)
        kept = playable(records)
        if len(kept) < len(records):
            print(
                f"{len(records) - len(kept)} of {len(records)} clips left out: a query would refuse them (too short "
                "or silent after trimming, or not decodable)"
            )
        return kept
    default = data.SENTENCES_CSV if args.speech_format == "sentences" else ravdess_dir()
    root = Path(args.speech_root) if args.speech_root else default
    if not root.exists():
        if root.resolve() == SPEECH_DIR:
            sys.exit("The synthetic speech corpus is not built yet: run `python -m s2m build-speech` (about 3 min).")
        sys.exit(
            f"No speech data at {root}. RAVDESS (speech, 24 actors; free for non-commercial use) is published "
            "on Zenodo (record 1188976): unpack Audio_Speech_Actors_01-24 and pass --speech-root FOLDER or set "
            "S2M_RAVDESS; or evaluate your own recordings with --speech-csv FILE (path,label,speaker[,text])."
        )
    readers = {
        "ravdess": data.read_ravdess,
        "iemocap": data.read_iemocap,
        "hikia": data.read_hikia,
        "sentences": lambda path: data.read_sentences(path, tuple(args.languages)),
    }
    records = readers[args.speech_format](root)
    if args.extra_train:  # more training speakers (their valid/test items are not used)
        from dataclasses import replace

        extra = Path(args.extra_train)
        records += [replace(r, group=f"{extra.name}-{r.group}") for r in data.read_ravdess(extra) if r.split == "train"]
    return records


def _corpus_records(args, combine: bool):
    """The named corpora of ``--corpora`` (all found under ../shared/data when none are named), each without the
    clips a query would refuse: ``{name: records}``, or with ``combine`` one list, each corpus with its splits."""
    from .data.corpora import combined, default_specs, read_corpora
    from .features import playable

    corpora = read_corpora(args.corpora or default_specs())
    corpora = {name: playable(records) for name, records in corpora.items()}
    for name, records in corpora.items():
        speakers, labels = len({r.group for r in records}), ", ".join(sorted({r.label for r in records}))
        print(f"{name}: {len(records)} clips, {speakers} speakers, labels {labels}")
    return combined(corpora) if combine else corpora


def _crosscorpus(args) -> None:
    import json

    from .evaluate import leave_one_corpus_out, markdown

    base = args.train_config
    corpora = _corpus_records(args, combine=False)
    if args.variance:
        from .report import variance_report

        print(variance_report(corpora, args.variance, args.level_norm, args.denoise))
        return
    if len(corpora) < 2:
        sys.exit("error: leave-one-corpus-out needs two or more corpora")
    hear = None if args.transcripts == "given" else lambda records: _with_transcripts(args, records)
    summary = leave_one_corpus_out(
        corpora,
        _music_records(args),
        base,
        args.frameworks,
        args.modalities,
        args.seeds,
        max_queries=args.max_queries,
        hear=hear,
        text_weights=args.text_weights,
        voice_weights=args.voice_weights,
        transcripts=args.transcripts,
    )
    print(markdown(summary))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
        print(f"wrote {args.json}")


def _with_transcripts(args, records):
    """The app's own ASR transcripts (default) or the ones the data set gives. With ``--corpora`` only the test items
    are heard: the corpora's training and validation speech keeps its given transcripts (thousands of clips in
    several languages; the test items are judged through the app's own path)."""
    if args.transcripts == "given":
        return records
    from .features import asr_transcripts

    if getattr(args, "corpora", None) is None:
        return asr_transcripts(records)
    test = [i for i, r in enumerate(records) if r.split == "test"]
    records = list(records)
    for i, r in zip(test, asr_transcripts([records[i] for i in test]), strict=True):
        records[i] = r
    return records


def _music_records(args):
    """The music side: ``--music-csv`` (a listener-labelled CSV with a ``path`` column, or the AudioSet layout
    ``file,label,group``) or the ``--library`` folder."""
    from . import data

    if not args.music_csv:
        return data.library_records(Path(args.library))
    if not Path(args.music_csv).is_file():
        raise data.DatasetError(f"Music CSV not found: {args.music_csv}")
    with open(args.music_csv, newline="", encoding="utf-8-sig") as f:
        header = f.readline()
    if "path" not in [c.strip() for c in header.split(",")]:
        return data.read_audioset_csv(args.music_csv)
    from .data.tracks import read_music_csv
    from .features import track_clips

    return track_clips(read_music_csv(args.music_csv, args.va_table))


def _tracks_csv(args) -> Path:
    """``--music-csv``, else Emotify's tracks under the shared data folder."""
    from .data.corpora import data_dir

    return Path(args.music_csv or data_dir() / "emotify" / "tracks.csv")


def _music_probe(args) -> None:
    from .data.tracks import read_listener_marks, read_music_csv
    from .emotions import RAVDESS_LABELS, table_for
    from .features import record_features, track_clips
    from .music_probe import genre_features, listener_agreement, probe, report, rule_report

    tracks_csv = _tracks_csv(args)
    tracks = read_music_csv(tracks_csv)
    emotions = args.speech_labels or RAVDESS_LABELS
    unknown = [e for e in emotions if e not in table_for("lexicon")]
    if unknown:
        sys.exit(f"error: --speech-labels: {', '.join(unknown)} not in the valence-arousal table")
    whose = "RAVDESS's emotions" if not args.speech_labels else ", ".join(emotions)
    print(f"## The relevance rule, {whose}\n\n{rule_report(tracks, emotions, args.split)}\n")
    marks_csv = Path(args.annotations) if args.annotations else tracks_csv.parent / "annotations.csv"
    if marks_csv.is_file() or args.annotations:
        try:
            agree = listener_agreement(tracks, read_listener_marks(marks_csv), emotions, args.split)
        except ValueError as exc:  # annotations of other tracks
            sys.exit(f"error: {marks_csv}: {exc}")
        print(
            f"Listeners themselves ({marks_csv.name}; each track's listeners split at random into halves, "
            f"200 times: one half ranks the {agree['tracks']} {args.split} tracks, the other judges them): P@5 "
            f"{agree['precision_at_k']:.3f} ± {agree['precision_at_k_std']:.3f}; the constant ranking the first half "
            f"picks, judged by the second: {agree['constant_precision_at_k']:.3f} (the best constant above is "
            "picked with the judges' own labels).\n"
        )
    clips = track_clips(tracks)
    results = {"genre (baseline)": probe(genre_features(clips, tracks), clips, tracks, args.split)}
    for encoder in args.encoders:
        results[encoder] = probe(record_features(clips, encoder), clips, tracks, args.split)
    print(f"## Music encoders\n\n{report(results, args.split)}")


def _checkpoint_folders(where: str) -> list[Path]:
    """The checkpoint folders (with a config.json) under ``where``; a missing or empty folder ends the command with a
    message."""
    root = Path(where)
    folders = sorted(p for p in root.iterdir() if (p / "config.json").exists()) if root.is_dir() else []
    if not folders:
        sys.exit(f"error: no checkpoints (folders with config.json) under {where}")
    return folders


def _refit_music(args) -> None:
    from .config import TrainConfig
    from .data.tracks import read_music_csv
    from .features import record_features, track_clips
    from .featuresets import music_set
    from .heads import load
    from .train import refit_music

    folders = _checkpoint_folders(args.checkpoints)
    csv_path = _tracks_csv(args)
    tracks = read_music_csv(csv_path)
    clips = track_clips(tracks)
    music = music_set(record_features(clips, args.music_encoder), clips)
    if args.objective == "shares" and music.shares is None:
        sys.exit("error: --objective shares needs the nine GEMS share columns in the music CSV")
    for folder in folders:
        model = load(folder)
        config = TrainConfig(
            music_encoder=args.music_encoder,
            epochs=args.epochs,
            seed=args.seed,
            lr=args.lr,
            warmup_epochs=args.warmup_epochs,
            patience=args.patience,
            dropout=args.dropout,
        )
        source = f"{csv_path.parent.name}/{csv_path.name}"
        new = refit_music(model, music, config, source=source, listener_shares=args.objective == "shares")
        out = Path(args.out) / folder.name if args.out else folder
        new.save(out)
        valid = new.config.training["music_refit"]["valid"]
        print(
            f"{folder.name}: valid P@5 {valid['precision_at_k']:.3f} nDCG@5 {valid['ndcg_at_k']:.3f} "
            f"(a perfect reader; {valid['clips']} valid tracks) -> {out}"
        )


def _read_options(args) -> None:
    """A training command's options: ``args.train_config`` and ``args.given`` (the fields given on the command line),
    and every field as an attribute of ``args``; an impossible value ends the command with its message."""
    from dataclasses import asdict

    from .config import given_options, options_from

    try:
        args.train_config = options_from(args)
    except ValueError as exc:
        sys.exit(f"error: {exc}")
    args.given = given_options(args)
    for name, value in asdict(args.train_config).items():
        setattr(args, name, value)


def _test_sets(args, speech):
    """The synthetic corpus is tested per held-out voice, the sentence set per language; any other dataset on its
    whole test split."""
    from .data import LANGUAGES
    from .evaluate import CORPUS_TEST_SETS

    if args.speech_format == "sentences":
        split = getattr(args, "split", "test")
        return {
            LANGUAGES[lang]: {r.group for r in speech if r.split == split and r.group.endswith(f"-{lang}")}
            for lang in args.languages
        }
    corpus = args.speech_root and Path(args.speech_root).resolve() == SPEECH_DIR
    return CORPUS_TEST_SETS if corpus and getattr(args, "split", "test") == "test" else None


def _calibrations(args) -> list[str]:
    return {"both": ["none", "speaker"], "all": ["none", "speaker", "session"]}.get(
        args.calibration, [args.calibration]
    )


def _train(args) -> None:

    from .evaluate import evaluate_both, markdown, summarise, train_on
    from .featuresets import load_data
    from .train import for_inference

    config = args.train_config
    speech = _speech_records(args)
    if config.modality != "audio":
        speech = _with_transcripts(args, speech)
    data = load_data(speech, _music_records(args), config)
    model = train_on(config, data, progress=True)
    rows = evaluate_both(
        model,
        data,
        _test_sets(args, speech),
        _calibrations(args),
        framework=config.label,
        modality=config.modality,
        seed=config.seed,
        transcripts=args.transcripts,
    )
    model.config.training["test"] = rows
    print(markdown(summarise(rows)))
    out = for_inference(model).save(args.out or RUNS_DIR / f"{config.modality}-{config.framework}-seed{config.seed}")
    print(f"saved {out}")


def _evaluate(args) -> None:
    import json

    from .evaluate import markdown, run_protocol

    base = args.train_config
    if args.rooms < 0:
        sys.exit(f"error: --rooms must be 0 or more, got {args.rooms}")
    if args.folds and (
        args.folds < 2 or args.split != "valid" or args.checkpoints or args.rooms or args.save_checkpoints
    ):
        sys.exit(
            "error: --folds K needs K >= 2 and --split valid, and trains its own models (no --checkpoints, "
            "--rooms or --save-checkpoints)"
        )
    if args.checkpoints:
        _checkpoint_folders(args.checkpoints)  # a wrong folder ends the command before any data is read
    speech, music = _speech_records(args), _music_records(args)
    test_sets = _test_sets(args, speech)
    if args.checkpoints:  # saved models need only the test speakers (their prototypes are in the checkpoints)
        speech = [r for r in speech if r.split == args.split]
    if set(args.modalities) - {"audio"}:
        speech = _with_transcripts(args, speech)
    if args.rooms:  # after the transcripts: a copy in a room keeps the words heard in the recording itself
        speech, test_sets = _with_rooms(args, speech, test_sets)
    runs = (speech, music, base, args.frameworks, args.modalities, args.seeds)  # what is trained, then scored
    scoring = {"calibrations": _calibrations(args), "transcripts": args.transcripts}
    if args.checkpoints:
        summary = _evaluate_checkpoints(args, speech, music, test_sets)
    elif args.folds:
        from .evaluate import run_folds

        if test_sets is not None:
            sys.exit(
                "error: --folds scores a data set's whole validation split; it does not combine with per-voice "
                "or per-language test sets (the synthetic corpus, --speech-format sentences)"
            )
        summary = run_folds(*runs, folds=args.folds, **scoring)
    else:
        summary, models = run_protocol(*runs, test_sets, split=args.split, **scoring)
        if args.save_checkpoints:
            from .train import for_inference

            for (framework, modality), model in models.items():
                for_inference(model).save(Path(args.save_checkpoints) / f"{modality}-{framework}")
    print(markdown(summary))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
        print(f"wrote {args.json}")


def _with_rooms(args, speech, test_sets):
    """``speech`` plus each held-out speaker again, heard through a simulated room of its own, and the test sets
    that score both: the split as recorded and "<split> in a room"."""
    from .rooms import in_rooms

    if test_sets is not None:
        sys.exit(
            "--rooms scores a data set's whole held-out split; it does not combine with per-voice or "
            "per-language test sets (the synthetic corpus, --speech-format sentences)"
        )
    held_out = [r for r in speech if r.split == args.split]
    rooms = in_rooms(held_out, copies=args.rooms, tag=f"{args.split}-room")
    sets = {args.split: {r.group for r in held_out}, f"{args.split} in a room": {r.group for r in rooms}}
    return speech + rooms, sets


def _evaluate_checkpoints(args, speech, music, test_sets) -> list[dict]:
    """Saved checkpoints on ``speech``'s test split, each with the encoders and settings it was trained with."""
    from dataclasses import replace

    from .config import TrainConfig, saved_config
    from .evaluate import ceiling_rows, constant_rows, evaluate_both, per_label_precision, summarise
    from .featuresets import load_data
    from .heads import load

    folders = _checkpoint_folders(args.checkpoints)
    if not speech:
        sys.exit(f"The speech set has no {args.split} items to evaluate.")
    rows, loaded = [], {}
    for folder in folders:
        model = load(folder)
        if model.config.modality not in args.modalities:
            continue
        if "text_weight" in args.given and model.text_reader is not None:  # given: replaces the model's own
            model.config.readout = replace(model.config.readout, text_weight=args.text_weight)
        if "place_at" in args.given:
            model.config.readout = replace(model.config.readout, place_at=args.place_at)
        trained = saved_config(model.config.training["config"])
        config = replace(args.train_config, **{k: trained[k] for k in TrainConfig.__dataclass_fields__ if k in trained})
        if model.config.text_dim:  # a late-fusion reader reads the features of the encoder it was fitted on
            config = replace(config, reader_encoder=model.config.encoders["text"])
        key = (
            config.modality,
            config.audio_encoder,
            config.text_encoder,
            config.reader_encoder,
            config.music_encoder,
            config.level_norm,
            config.denoise,
        )
        if key not in loaded:  # checkpoints of one modality and encoders share their features
            loaded[key] = load_data(speech, music, config)
            rows += constant_rows(
                loaded[key],
                test_sets,
                config.va_table,
                args.split,
                modality=config.modality,
                transcripts=args.transcripts,
            )
        data = loaded[key]
        rows += evaluate_both(
            model,
            data,
            test_sets,
            _calibrations(args),
            split=args.split,
            framework=config.framework,
            modality=config.modality,
            seed=trained["seed"],
            transcripts=args.transcripts,
        )
        if args.per_emotion:
            rows += ceiling_rows(
                model,
                data,
                test_sets,
                args.split,
                framework=config.framework,
                modality=config.modality,
                transcripts=args.transcripts,
            )
            for name, groups in (test_sets or {args.split: {r.group for r in speech}}).items():
                for calibration in _calibrations(args):
                    print(f"\n{folder.name}, {name}, calibration {calibration}: per-emotion P@5 and top-5 moods")
                    for label, info in per_label_precision(model, data, groups, calibration, args.split).items():
                        moods = ", ".join(f"{m} {n}" for m, n in info["top5_moods"].items())
                        print(f"  {label:10s} P@5 {info['precision_at_5']:.2f}   top-5: {moods}")
    return summarise(rows)


def _add_data_options(p, skip: tuple[str, ...] = ()) -> None:
    """The speech set (one data set, or several named corpora) and every training option but ``skip``."""
    p.add_argument(
        "--corpora",
        nargs="*",
        default=None,
        metavar="NAME=PATH",
        help="instead of one speech set: train on these corpora together (each a RAVDESS folder, a speech "
        "CSV or a folder with labels.csv; split by speaker; batches balanced over corpora); with no value, "
        "every corpus under ../shared/data (or $S2M_DATA)",
    )
    _add_model_options(p, skip)


def _add_model_options(p, skip: tuple[str, ...] = ()) -> None:
    from .config import add_options

    p.add_argument(
        "--speech-root",
        default=None,
        help="speech dataset folder (default: RAVDESS at $S2M_RAVDESS or "
        "../shared/data/ravdess; the synthetic corpus is data/speech)",
    )
    p.add_argument(
        "--speech-format",
        default="ravdess",
        choices=["ravdess", "iemocap", "hikia", "sentences"],
        help="sentences: the project's typed emotion sentences (assets/sentences; text models), tested per language",
    )
    p.add_argument(
        "--languages",
        nargs="+",
        default=["en"],
        choices=["en", "ko", "de", "es"],
        help="with --speech-format sentences: the languages of the validation and test sentences",
    )
    p.add_argument(
        "--extra-train",
        default=None,
        help="also train on the training speakers of this RAVDESS-named "
        "folder (e.g. data/speech, the synthetic corpus)",
    )
    p.add_argument(
        "--speech-csv",
        default=None,
        help="instead of --speech-root: a CSV of path,label,speaker[,text][,split] (rows without split are test items)",
    )
    p.add_argument(
        "--transcripts",
        default="asr",
        choices=["asr", "given"],
        help="text/fusion read the app's own ASR (default) or the data set's transcripts",
    )
    p.add_argument(
        "--calibration",
        default="both",
        choices=["none", "speaker", "session", "both", "all"],
        help="evaluate uncalibrated, with each speaker's neutral references, with each speaker's mean "
        "utterance (session: no reference, assumes the utterances cover the emotions evenly), both "
        "none and speaker (default), or all three",
    )
    p.add_argument("--library", default=str(ROOT / "assets" / "library"), help="music library with metadata.csv")
    p.add_argument(
        "--music-csv",
        default=None,
        help="instead of --library: music labelled by its listeners, a CSV with path and the nine GEMS "
        "share columns (Emotify's tracks.csv), or valence,arousal, or mood (s2m/data/tracks.py); or the "
        "AudioSet layout file,label,group[,split]",
    )
    add_options(p, skip=skip)
    p.set_defaults(training_options=True)


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Help lines end with the option's default, unless it has none or the line already names it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return super()._get_help_string(action) if text else "(default: %(default)s)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m s2m", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "build-library",
        help="the bundled library: one 10-s clip per track of a listener-labelled "
        "music CSV (default Emotify), or the optional AI-generated immich library",
    )
    p.add_argument("--library", default=str(ROOT / "assets" / "library"))
    p.add_argument("--music-csv", default=None, help="the tracks (default: ../shared/data/emotify/tracks.csv)")
    p.add_argument(
        "--immich",
        action="store_true",
        help="instead: cut the immich-memories-music tracks (an "
        "optional library of AI-generated music; write it to another --library folder)",
    )
    p.add_argument("--seed", type=int, default=0, help="--immich: the seed of its split")
    p.set_defaults(func=_build_library)

    p = sub.add_parser("build-music", help="compose and render mood-rule music for the AudioSet moods")
    p.add_argument("--library", default=str(ROOT / "assets" / "library"))
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_build_music)

    p = sub.add_parser("build-speech", help="synthesise the emotional speech corpus (RAVDESS naming)")
    p.add_argument("--out", default=str(SPEECH_DIR))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--actors", type=int, nargs="*", default=None, help="only these actor numbers (1-24)")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--examples", default=None, help="also write one example query per emotion to this folder")
    p.set_defaults(func=_build_speech)

    from .config import FRAMEWORKS, REFIT_EPOCHS

    p = sub.add_parser("bench", help="cold start, warm query latency per modality, memory")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--load", action="store_true", help="instead: serve the app on loopback and send it many clients")
    p.add_argument("--clients", type=int, nargs="+", default=[20, 50], help="with --load: rounds of this many clients")
    p.add_argument("--queries", type=int, nargs="+", default=[5, 2], help="with --load: queries per client, per round")
    p.add_argument(
        "--browser", action="store_true", help="instead: time page load and click-to-results in headless Chromium"
    )
    p.add_argument(
        "--screenshot",
        default=None,
        help="with --browser: also save the first screen with an example's "
        "results here (the README's is assets/screenshot.png)",
    )
    p.set_defaults(func=_bench)

    p = sub.add_parser(
        "convert-musicnn",
        help="convert musicnn's published TensorFlow checkpoints to safetensors "
        "(needs requirements-convert.txt once; the app never needs TensorFlow)",
    )
    p.add_argument("--out", default=str(ROOT / "assets" / "musicnn"))
    p.add_argument("--fixture", default=None, help="also write the original's outputs on a fixed clip (parity test)")
    p.set_defaults(func=_convert_musicnn)

    p = sub.add_parser("wer", help="word and character error rates of the speech recognisers on given transcripts")
    p.add_argument(
        "--corpora",
        nargs="*",
        default=None,
        metavar="NAME=PATH",
        help="score these corpora one by one (split by speaker: --split valid is their validation "
        "speakers); with no value, every corpus under ../shared/data",
    )
    p.add_argument("--speech-root", default=None, help="default: RAVDESS (its two statements)")
    p.add_argument("--speech-format", default="ravdess", choices=["ravdess"])
    p.add_argument("--speech-csv", default=None, help="a CSV of path,label,speaker,text")
    p.add_argument("--extra-train", default=None)
    p.add_argument("--va-table", default="lexicon")
    p.add_argument("--languages", nargs="+", default=["en"])
    p.add_argument("--split", default="all", choices=["train", "valid", "test", "all"])
    p.add_argument(
        "--models",
        nargs="+",
        default=["whisper-tiny", "auto"],
        help="whisper-tiny (English only), whisper-base (multilingual), auto (the app's: base detects the "
        "language, English goes to tiny.en)",
    )
    p.set_defaults(func=_wer)

    p = sub.add_parser("index", help="(re)build the bundled library's index for the committed checkpoints")
    p.set_defaults(func=_index)

    p = sub.add_parser("report", help="sanity report on the library, the composed music and the speech corpus")
    p.add_argument("--library", default=str(ROOT / "assets" / "library"))
    p.add_argument("--music-encoder", default="mood-dsp")
    p.add_argument(
        "--compare-music-encoders",
        nargs="+",
        default=[],
        metavar="ENCODER",
        help="also compare these music encoders (a+b concatenates) by linear probe per mood, on the whole "
        "library and on its real recordings alone",
    )
    p.add_argument(
        "--compare-readers",
        nargs="+",
        default=[],
        metavar="ENCODER",
        help="also compare late fusion's text reader with these text encoders on the validation sentences "
        "of each language (needs RAVDESS)",
    )
    p.set_defaults(func=_report)

    p = sub.add_parser("train", help="train one model on cached features and save it as a checkpoint folder")
    _add_data_options(p)
    p.add_argument(
        "--out",
        default=None,
        help="checkpoint folder (default runs/MODALITY-FRAMEWORK-seedN; the app's models are in checkpoints/)",
    )
    p.set_defaults(func=_train)

    p = sub.add_parser(
        "crosscorpus",
        help="leave-one-corpus-out: for each real speech corpus, train on the others and test on it, uncalibrated",
    )
    _add_data_options(p, skip=PER_RUN)
    p.add_argument("--frameworks", nargs="+", default=["triplet_emosim"], choices=FRAMEWORKS)
    p.add_argument("--modalities", nargs="+", default=["audio", "text", "fusion"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument(
        "--max-queries",
        type=int,
        default=0,
        metavar="N",
        help="at most N held-out clips per corpus (a seeded choice; 0: all)",
    )
    p.add_argument(
        "--variance",
        nargs="+",
        default=None,
        metavar="ENCODER",
        help="instead: how much of these speech encoders' feature variance is corpus, speaker, sentence and emotion",
    )
    p.add_argument(
        "--text-weights",
        type=float,
        nargs="*",
        default=[],
        metavar="W",
        help="fusion: also score each model with the words' evidence raised to these powers",
    )
    p.add_argument(
        "--voice-weights",
        type=float,
        nargs="*",
        default=[],
        metavar="V",
        help="audio and fusion: also score each model with its voice reader's share of the reading set to these "
        "(0: the head's prototypes alone)",
    )
    p.add_argument("--json", default=None, help="also write the rows as JSON to this file")
    p.set_defaults(func=_crosscorpus, corpora=[])

    p = sub.add_parser(
        "music-probe",
        help="which music encoder hears what listeners felt: linear read-outs on "
        "held-out tracks of a listener-labelled music CSV, beside a genre-only baseline",
    )
    p.add_argument("--music-csv", default=None, help="the tracks (default: ../shared/data/emotify/tracks.csv)")
    p.add_argument(
        "--encoders",
        nargs="+",
        default=["mood-dsp", "musicnn-msd", "musicnn-mtt"],
        metavar="ENCODER",
        help="music encoders to compare (a+b concatenates)",
    )
    p.add_argument(
        "--split",
        default="valid",
        choices=["valid", "test"],
        help="score the validation tracks (to choose) or the test tracks (to report, once)",
    )
    p.add_argument(
        "--speech-labels",
        nargs="+",
        default=None,
        metavar="EMOTION",
        help="the query emotions of the relevance rule's table (default RAVDESS's eight)",
    )
    p.add_argument(
        "--annotations",
        default=None,
        help="each listener's marks (Emotify's annotations.csv layout), to print what listeners themselves reach "
        "(default: annotations.csv beside the tracks CSV, when there is one)",
    )
    p.set_defaults(func=_music_probe)

    p = sub.add_parser(
        "refit-music",
        help="give saved checkpoints a music side trained on listener-labelled music "
        "(their speech side, which reads the emotion, is kept)",
    )
    p.add_argument("--checkpoints", default=str(ROOT / "checkpoints"), help="folder of checkpoint folders")
    p.add_argument("--music-csv", default=None, help="the tracks (default: ../shared/data/emotify/tracks.csv)")
    p.add_argument("--music-encoder", default="mood-dsp", help="music encoder of the new music side")
    p.add_argument(
        "--epochs",
        type=int,
        default=REFIT_EPOCHS,
        help=f"training length; the learning rate's cosine decay spans it (default {REFIT_EPOCHS})",
    )
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default 1e-3)")
    p.add_argument("--warmup-epochs", type=int, default=5)
    p.add_argument(
        "--patience",
        type=int,
        default=0,
        help="epochs without a better validation score before stopping; 0: no early stopping, the last epoch is "
        "kept (default 0: chosen by cross-validation, model card)",
    )
    p.add_argument("--dropout", type=float, default=0.1, help="dropout on the music head's input (default 0.1)")
    p.add_argument(
        "--objective",
        default="shares",
        choices=["shares", "triplet"],
        help="learn what the listeners felt (their shares of the nine GEMS emotions; default) or the "
        "music-side triplet term on each track's dominant mood",
    )
    p.add_argument("--seed", type=int, default=0, help="member i trains from seed + 1000 i")
    p.add_argument("--out", default=None, help="write the refitted checkpoints here (default: in place)")
    p.set_defaults(func=_refit_music)

    p = sub.add_parser("evaluate", help="the paper's protocol: train each framework x modality x seed, evaluate")
    _add_data_options(p, skip=PER_RUN)
    p.add_argument("--frameworks", nargs="+", default=list(FRAMEWORKS), choices=FRAMEWORKS)
    p.add_argument("--modalities", nargs="+", default=["audio", "text", "fusion"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--json", default=None, help="also write the rows as JSON to this file")
    p.add_argument("--save-checkpoints", default=None, help="save each seed-0 model under this folder")
    p.add_argument(
        "--checkpoints",
        default=None,
        help="evaluate these saved checkpoints instead of training (each "
        "with its own options; --text-weight and --place-at, when given, replace its own)",
    )
    p.add_argument("--per-emotion", action="store_true", help="with --checkpoints: P@5 per speech emotion")
    p.add_argument(
        "--split",
        default="test",
        choices=["valid", "test"],
        help="score validation speakers against validation music (to choose models) or the test split",
    )
    p.add_argument(
        "--rooms",
        type=int,
        nargs="?",
        const=1,
        default=0,
        metavar="N",
        help="also score the held-out speakers heard through simulated rooms (N rooms per speaker, "
        "default 1; rows with test_set '<split> in a room')",
    )
    p.add_argument(
        "--folds",
        type=int,
        default=0,
        metavar="K",
        help="with --split valid: cross-validate over K re-splits of the train + valid speakers and "
        "music tracks (test data untouched), mean and std over folds x seeds; less noisy for choosing",
    )
    p.set_defaults(func=_evaluate)

    for command in sub.choices.values():  # every option's default in its help line
        command.formatter_class = _Help
    args = parser.parse_args(argv)
    if getattr(args, "training_options", False):
        _read_options(args)
    try:
        args.func(args)
    except Exception as exc:  # a user's data, audio or checkpoint that cannot be used: its message, no traceback
        if isinstance(exc, _user_errors()):
            sys.exit(f"error: {exc}")
        raise
    return 0


def _user_errors() -> tuple[type[Exception], ...]:
    """The exception types that describe a user's input rather than a fault in s2m (the checkpoint error only when
    s2m.heads, and with it torch, is already loaded)."""
    from .audio import AudioError
    from .data.records import DatasetError

    heads = sys.modules.get(f"{__package__}.heads")
    return (DatasetError, AudioError) + ((heads.CheckpointError,) if heads else ())


if __name__ == "__main__":
    sys.exit(main())
