"""s2m: speech-to-music retrieval by emotion similarity."""

__version__ = "0.1.0"
