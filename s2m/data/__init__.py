"""Datasets: readers for the paper's corpora and any folder, the bundled library, the synthetic speech corpus."""

from .library import LIBRARY_DIR, library_records, read_metadata
from .readers import read_audioset_csv, read_folder, read_hikia, read_iemocap, read_ravdess, read_speech_csv
from .records import SPLITS, DatasetError, Record

__all__ = ["LIBRARY_DIR", "SPLITS", "DatasetError", "Record", "library_records", "read_audioset_csv",
           "read_folder", "read_hikia", "read_iemocap", "read_metadata", "read_ravdess", "read_speech_csv"]  # fmt: skip
