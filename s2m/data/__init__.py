"""Datasets: readers for the paper's corpora and any folder, the bundled library, the synthetic speech corpus."""

from .library import LIBRARY_DIR, library_records, read_metadata
from .readers import (
    LANGUAGES,
    SENTENCES_CSV,
    read_audioset_csv,
    read_folder,
    read_hikia,
    read_iemocap,
    read_ravdess,
    read_sentences,
    read_speech_csv,
)
from .records import SPLITS, DatasetError, Record

__all__ = [
    "LANGUAGES",
    "LIBRARY_DIR",
    "SENTENCES_CSV",
    "SPLITS",
    "DatasetError",
    "Record",
    "library_records",
    "read_audioset_csv",
    "read_folder",
    "read_hikia",
    "read_iemocap",
    "read_metadata",
    "read_ravdess",
    "read_sentences",
    "read_speech_csv",
]
