"""A class session: students on their own phones and laptops, one class map on the teacher's screen.

The teacher starts a class and gets a short code (and a secret key that stays in the teacher's browser); students
join with the code, and each reading of a student's voice becomes one point of that class: the name the student
typed, the emotion read, the point on the valence–arousal plane and on the map of the model that read it. Only the
teacher's key shows a class's points; a code only lets a device *add* points. Nothing of a voice is kept — no audio,
no transcript — and everything lives in this process's memory only: a class ends when the teacher ends it,
:data:`IDLE_SECONDS` after its last activity, or when the server stops.

Limits that keep a public server safe: at most :data:`MAX_CLASSES` classes at once, :data:`MAX_POINTS` points per
class (the newest kept), names of :data:`MAX_NAME` characters.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from dataclasses import dataclass, replace

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: a code read off a projector is typed right
CODE_LENGTH = 6  # 32^6 ≈ 1.1 billion codes
MAX_CLASSES = 50
MAX_POINTS = 200
MAX_NAME = 30
IDLE_SECONDS = 3 * 3600


class ClassError(Exception):
    """A class-session request that cannot be done; the message is for the person who made it."""


@dataclass(frozen=True)
class ClassPoint:
    """One reading of one student's recording: ``valence``/``arousal`` in [0, 1], (``x``, ``y``) on the map of
    ``model`` ("modality/framework"). ``member`` is the device's anonymous id and ``recording`` which recording it
    was, so that re-reading the same recording with another model moves its point instead of adding one."""

    name: str
    reading: str
    valence: float
    arousal: float
    x: float
    y: float
    model: str
    member: str = ""
    recording: str = ""

    def problem(self) -> str | None:
        """Why this point cannot join a class (a sentence), or None."""
        if not all(
            isinstance(v, int | float) and math.isfinite(v) for v in (self.valence, self.arousal, self.x, self.y)
        ):
            return "the reading has no position."
        if not isinstance(self.reading, str) or not self.reading or len(self.reading) > 40:
            return "the reading has no emotion."
        return None


@dataclass
class _Class:
    key: str
    points: list[ClassPoint]
    touched: float
    version: int = 0


def normalise_code(code: str | None) -> str:
    """A code as typed ("k7p 2qx", "K7P-2QX") in its canonical form ("K7P2QX"); ClassError when it cannot be one."""
    cleaned = "".join(c for c in str(code or "").upper() if c.isalnum())
    if len(cleaned) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in cleaned):
        raise ClassError(f"A class code has {CODE_LENGTH} letters and digits, like K7P2QX: ask your teacher for it.")
    return cleaned


def _new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def clean_name(name: str | None) -> str:
    """A student's name as shown on the class map: markup characters dropped, at most :data:`MAX_NAME`."""
    return "".join(c for c in str(name or "") if c not in "<>&" and c.isprintable()).strip()[:MAX_NAME]


class Classroom:
    """Every live class of this server (thread-safe). ``clock`` is injectable for tests (seconds)."""

    def __init__(
        self,
        max_classes: int = MAX_CLASSES,
        max_points: int = MAX_POINTS,
        idle_seconds: float = IDLE_SECONDS,
        clock=time.monotonic,
    ):
        self.max_classes, self.max_points, self.idle_seconds, self.clock = max_classes, max_points, idle_seconds, clock
        self._classes: dict[str, _Class] = {}
        self._lock = threading.Lock()

    def _prune(self) -> None:
        now = self.clock()
        for code in [c for c, k in self._classes.items() if now - k.touched > self.idle_seconds]:
            del self._classes[code]

    def __len__(self) -> int:
        with self._lock:
            self._prune()
            return len(self._classes)

    def start(self) -> tuple[str, str]:
        """A new class: (code for the students, key for the teacher)."""
        with self._lock:
            self._prune()
            if len(self._classes) >= self.max_classes:
                raise ClassError("This server already runs as many classes as it can; try again later.")
            code = _new_code()
            while code in self._classes:
                code = _new_code()
            self._classes[code] = _Class(key=secrets.token_urlsafe(16), points=[], touched=self.clock())
            return code, self._classes[code].key

    def _live(self, code: str) -> _Class:
        self._prune()
        found = self._classes.get(code)
        if found is None:
            raise ClassError(f"There is no class {code} (it may have ended): check the code with your teacher.")
        return found

    def _teacher(self, code: str, key: str) -> _Class:
        found = self._live(code)
        if not isinstance(key, str) or not secrets.compare_digest(found.key, key):
            raise ClassError("Only the teacher who started this class can do that.")
        return found

    def join(self, code: str | None) -> str:
        """The canonical code of a live class (ClassError if the code is malformed or no class has it)."""
        code = normalise_code(code)
        with self._lock:
            self._live(code)
        return code

    def add(self, code: str, point: ClassPoint) -> int:
        """Put ``point`` on the class map, replacing the same member's point for the same recording; returns how
        many points the class has."""
        problem = point.problem()
        if problem:
            raise ClassError(f"Nothing to put on the class map: {problem}")
        point = replace(point, name=clean_name(point.name))
        with self._lock:
            found = self._live(code)
            kept = [
                p
                for p in found.points
                if not (point.recording and p.member == point.member and p.recording == point.recording)
            ]
            found.points = [*kept, point][-self.max_points :]
            found.touched, found.version = self.clock(), found.version + 1
            return len(found.points)

    def version(self, code: str, key: str) -> int:
        """A number that changes whenever the class's points change (the teacher's screen redraws only then)."""
        with self._lock:
            return self._teacher(code, key).version

    def points(self, code: str, key: str) -> list[ClassPoint]:
        """The class's points, oldest first (teacher only)."""
        with self._lock:
            found = self._teacher(code, key)
            found.touched = self.clock()
            return list(found.points)

    def clear(self, code: str, key: str) -> None:
        """Remove every point; the class goes on (teacher only)."""
        with self._lock:
            found = self._teacher(code, key)
            found.points, found.touched, found.version = [], self.clock(), found.version + 1

    def end(self, code: str, key: str) -> None:
        """End the class and forget its points (teacher only); its code stops working."""
        with self._lock:
            self._teacher(code, key)
            del self._classes[code]
