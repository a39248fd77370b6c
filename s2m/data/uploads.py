"""A visitor's own music, uploaded as audio files or zips: unpacked into a fresh folder, bounded in count and size.

On a shared server this is how a stranger brings a library (folders on the server are never theirs to read). Zip
members are read through a size-limited stream (a zip bomb stops at the limit), and their paths are never used as
paths: a member ``happy/My Song.mp3`` becomes ``happy/My_Song.mp3`` inside the destination, so ``../`` or absolute
names cannot escape it. When every file sits in a folder, the folder names are the moods; otherwise the moods are
predicted.
"""

from __future__ import annotations

import re
import shutil
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from .readers import AUDIO_SUFFIXES
from .records import DatasetError

MAX_UPLOAD_FILES = 30  # audio files in one uploaded library
MAX_UPLOAD_BYTES = 200 << 20  # bytes of audio in one uploaded library, after unzipping


def _safe(name: str) -> str:
    stem = re.sub(r"[^\w.-]+", "_", name).strip("._") or "file"
    return stem[:80]


def unpack_uploads(
    paths: Sequence[str | Path], dest: Path, max_files: int = MAX_UPLOAD_FILES, max_bytes: int = MAX_UPLOAD_BYTES
) -> Path:
    """Copy the audio files among ``paths`` and the audio members of zips among them into ``dest`` (created);
    returns ``dest``. Raises :class:`DatasetError` when there is no audio or a bound is exceeded."""
    dest.mkdir(parents=True, exist_ok=True)
    entries: list[tuple[str, str, object]] = []  # (mood folder or "", file name, source)
    for path in map(Path, paths):
        if path.suffix.lower() == ".zip":
            try:
                with zipfile.ZipFile(path) as z:
                    members = [m for m in z.infolist() if not m.is_dir()]
            except (zipfile.BadZipFile, OSError):
                raise DatasetError(f"{path.name} is not a readable zip file.") from None
            for m in members:
                parts = PurePosixPath(m.filename.replace("\\", "/")).parts
                if PurePosixPath(parts[-1]).suffix.lower() in AUDIO_SUFFIXES and not parts[-1].startswith("."):
                    entries.append((_safe(parts[-2].lower()) if len(parts) > 1 else "", _safe(parts[-1]), (path, m)))
        elif path.suffix.lower() in AUDIO_SUFFIXES:
            entries.append(("", _safe(path.name), path))
    if not entries:
        raise DatasetError(f"No audio files among the uploads (accepted: {', '.join(sorted(AUDIO_SUFFIXES))}, .zip).")
    if len(entries) > max_files:
        raise DatasetError(f"{len(entries)} audio files were uploaded; at most {max_files} make one library.")
    labelled = all(folder for folder, _, _ in entries)
    total, used = 0, set()
    for folder, name, source in entries:
        target = dest / (folder if labelled else "") / name
        while target in used:  # the same name twice: number it
            target = target.with_name(f"{target.stem}_1{target.suffix}")
        used.add(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, Path):
            total += source.stat().st_size
            if total > max_bytes:
                raise DatasetError(f"The uploads hold more than {max_bytes >> 20} MB of audio.")
            shutil.copyfile(source, target)
            continue
        archive, member = source
        with zipfile.ZipFile(archive) as z, z.open(member) as src, target.open("wb") as out:
            while chunk := src.read(1 << 20):
                total += len(chunk)
                if total > max_bytes:
                    raise DatasetError(f"The uploads hold more than {max_bytes >> 20} MB of audio once unzipped.")
                out.write(chunk)
    return dest
