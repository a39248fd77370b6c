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

    args = parser.parse_args(argv)
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
