"""Command line: ``python -m s2m COMMAND --help``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT / "data"  # rebuilt data (speech corpus, feature cache); not committed
SPEECH_DIR = DATA_DIR / "speech"


def _build_library(args) -> None:
    from .data.library import build_immich

    rows = build_immich(Path(args.library), seed=args.seed)
    print(f"{len(rows)} immich clips written to {args.library}")


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
    from .data import read_ravdess
    from .emotions import AUDIOSET_MOODS

    library = Path(args.library)
    print("## Music library\n\n" + report.library_report(library))
    print("\n## Music descriptors per mood\n\n" + report.descriptor_report(library))
    print("\n## Linear probe, all moods\n\n" + report.probe_report(library, args.music_encoder))
    print(
        "\n## Linear probe, composed AudioSet moods\n\n"
        + report.probe_report(library, args.music_encoder, list(AUDIOSET_MOODS))
    )
    if SPEECH_DIR.exists():
        print("\n## Speech corpus\n\n" + report.corpus_report(read_ravdess(SPEECH_DIR)))


def _bench(args) -> None:
    from .bench import run

    print(run(args.repeats))


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

    readers = {"ravdess": data.read_ravdess, "iemocap": data.read_iemocap, "hikia": data.read_hikia}
    root = Path(args.speech_root)
    if args.speech_format == "ravdess" and root == SPEECH_DIR and not root.exists():
        sys.exit("The speech corpus is not built yet: run `python -m s2m build-speech` (about 3 minutes).")
    return readers[args.speech_format](root)


def _music_records(args):
    from . import data

    return data.read_audioset_csv(args.music_csv) if args.music_csv else data.library_records(Path(args.library))


def _base_config(args):
    from .train import TrainConfig

    return TrainConfig(audio_encoder=args.audio_encoder, text_encoder=args.text_encoder,
                       music_encoder=args.music_encoder, calibrate=not args.no_calibration, va_table=args.va_table,
                       lam=args.lam, ranksim=args.ranksim, epochs=args.epochs)  # fmt: skip


def _test_sets(args):
    """The corpus is tested per held-out voice; any other dataset on its whole test split."""
    from .evaluate import CORPUS_TEST_SETS

    return CORPUS_TEST_SETS if Path(args.speech_root) == SPEECH_DIR else None


def _train(args) -> None:
    from dataclasses import replace

    from .evaluate import evaluate_model, framework_label, load_data, markdown, summarise, train_on
    from .train import for_inference

    config = replace(_base_config(args), modality=args.modality, framework=args.framework, seed=args.seed)
    data = load_data(_speech_records(args), _music_records(args), config)
    model = train_on(config, data, progress=True)
    rows = evaluate_model(model, data, _test_sets(args), framework=framework_label(config), modality=config.modality,
                          seed=config.seed)  # fmt: skip
    model.config.training["test"] = rows
    print(markdown(summarise(rows)))
    out = for_inference(model).save(args.out or ROOT / "checkpoints" / f"{args.modality}-{args.framework}")
    print(f"saved {out}")


def _evaluate(args) -> None:
    import json

    from .evaluate import evaluate_model, load_data, markdown, per_label_precision, run_protocol, summarise
    from .train import for_inference

    speech, music = _speech_records(args), _music_records(args)
    test_sets = _test_sets(args)
    if args.checkpoints:
        from dataclasses import replace

        from .heads import load

        rows, loaded = [], {}
        for folder in sorted(p for p in Path(args.checkpoints).iterdir() if (p / "config.json").exists()):
            model = load(folder)
            trained = model.config.training["config"]
            config = replace(
                _base_config(args),
                **{
                    k: trained[k]
                    for k in (
                        "modality",
                        "framework",
                        "audio_encoder",
                        "text_encoder",
                        "music_encoder",
                        "calibrate",
                        "va_table",
                    )
                },
            )
            key = (
                config.modality,
                config.audio_encoder,
                config.text_encoder,
                config.music_encoder,
                config.calibrate,
            )  # checkpoints of one modality share their features
            data = loaded[key] = loaded.get(key) or load_data(speech, music, config)
            rows += evaluate_model(model, data, test_sets, framework=config.framework, modality=config.modality,
                                   seed=trained["seed"])  # fmt: skip
            if args.per_emotion:
                for name, groups in (test_sets or {"test": {r.group for r in speech if r.split == "test"}}).items():
                    print(f"\n{folder.name}, {name}: per-emotion P@5 and the moods of the top-5 clips")
                    for label, info in per_label_precision(model, data, groups).items():
                        moods = ", ".join(f"{m} {n}" for m, n in info["top5_moods"].items())
                        print(f"  {label:10s} P@5 {info['precision_at_5']:.2f}   top-5: {moods}")
        summary = summarise(rows)
    else:
        summary, models = run_protocol(speech, music, _base_config(args), args.frameworks, args.modalities,
                                       args.seeds, test_sets)  # fmt: skip
        if args.save_checkpoints:
            for (framework, modality), model in models.items():
                for_inference(model).save(Path(args.save_checkpoints) / f"{modality}-{framework}")
    print(markdown(summary))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
        print(f"wrote {args.json}")


def _add_data_options(p) -> None:
    from .train import TrainConfig

    d = TrainConfig()
    p.add_argument("--speech-root", default=str(SPEECH_DIR), help="speech dataset folder (default: the s2m corpus)")
    p.add_argument("--speech-format", default="ravdess", choices=["ravdess", "iemocap", "hikia"])
    p.add_argument("--library", default=str(ROOT / "assets" / "library"), help="music library with metadata.csv")
    p.add_argument("--music-csv", default=None, help="instead of --library: a CSV of file,label,group[,split]")
    p.add_argument("--audio-encoder", default=d.audio_encoder)
    p.add_argument("--text-encoder", default=d.text_encoder)
    p.add_argument("--music-encoder", default=d.music_encoder)
    p.add_argument("--no-calibration", action="store_true", help="do not normalise features per speaker")
    p.add_argument("--va-table", default=d.va_table, choices=["lexicon", "paper"])
    p.add_argument("--lam", type=float, default=d.lam, help="weight of the EmoSim/RankSim term")
    p.add_argument("--ranksim", action="store_true", help="use the RankSim form of the regulariser")
    p.add_argument("--epochs", type=int, default=d.epochs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m s2m", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build-library", help="cut the bundled immich-memories-music tracks into library clips")
    p.add_argument("--library", default=str(ROOT / "assets" / "library"))
    p.add_argument("--seed", type=int, default=0)
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

    from .train import FRAMEWORKS

    p = sub.add_parser("bench", help="cold start, warm query latency per modality, memory")
    p.add_argument("--repeats", type=int, default=20)
    p.set_defaults(func=_bench)

    p = sub.add_parser("index", help="(re)build the bundled library's index for the committed checkpoints")
    p.set_defaults(func=_index)

    p = sub.add_parser("report", help="sanity report on the library, the composed music and the speech corpus")
    p.add_argument("--library", default=str(ROOT / "assets" / "library"))
    p.add_argument("--music-encoder", default="mood-dsp")
    p.set_defaults(func=_report)

    p = sub.add_parser("train", help="train one model on cached features and save it as a checkpoint folder")
    _add_data_options(p)
    p.add_argument("--modality", default="audio", choices=["audio", "text", "fusion"])
    p.add_argument("--framework", default="triplet_emosim", choices=FRAMEWORKS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="checkpoint folder (default checkpoints/MODALITY-FRAMEWORK)")
    p.set_defaults(func=_train)

    p = sub.add_parser("evaluate", help="the paper's protocol: train each framework x modality x seed, evaluate")
    _add_data_options(p)
    p.add_argument("--frameworks", nargs="+", default=list(FRAMEWORKS), choices=FRAMEWORKS)
    p.add_argument("--modalities", nargs="+", default=["audio", "text", "fusion"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--json", default=None, help="also write the rows as JSON to this file")
    p.add_argument("--save-checkpoints", default=None, help="save each seed-0 model under this folder")
    p.add_argument("--checkpoints", default=None, help="evaluate these saved checkpoints instead of training")
    p.add_argument("--per-emotion", action="store_true", help="with --checkpoints: P@5 per speech emotion")
    p.set_defaults(func=_evaluate)

    args = parser.parse_args(argv)
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
