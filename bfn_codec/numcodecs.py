"""bfn-codec as a numcodecs codec (codec id ``bfn``), for Zarr, Dask and any pipeline that
compresses chunks through numcodecs.

    import numcodecs
    codec = numcodecs.get_codec({"id": "bfn", "model": "fmnist"})
    blob = codec.encode(images)            # uint8 (N, 28, 28): one .bfn file per chunk
    codec.decode(blob)                     # the same array, checksum verified

``pip install bfn-codec`` registers the codec through the ``numcodecs.codecs`` entry point, so
``numcodecs.get_codec`` finds it without an import; Zarr v3 takes it as a serializer through
``bfn_codec.zarr_codec`` (docs/pipelines.md).

Each encoded chunk is a complete .bfn file (docs/format.md): it decodes with ``bfn-codec -d``,
carries its own checksum, and uses the portable arithmetic by default, so a chunk written on one
worker decodes bit-exactly on any other. The codec object holds only its configuration (it
pickles to a few hundred bytes for Dask); the model is loaded once per process and kept
(``_model``), never once per chunk.
"""
from __future__ import annotations

import functools
import threading

import numpy as np
from numcodecs.abc import Codec
from numcodecs.compat import ensure_contiguous_ndarray, ndarray_copy

CODEC_ID = "bfn"
ARITHMETIC = ("portable", "float")


@functools.lru_cache(maxsize=8)
def _model(spec: str, weights_sha256: str | None):
    """The model of ``spec`` for this process (loaded once; checked against the configured hash)."""
    from .models import load_model
    from .zoo import ModelError

    model = load_model(spec)
    if weights_sha256 and model.weights_sha256 != weights_sha256.lower():
        raise ModelError(f"model {spec!r} has weights {model.weights_sha256[:12]}…, but the codec "
                         f"configuration names {weights_sha256[:12]}…")
    return model


# numcodecs may call one codec from several threads (Zarr's async pipeline runs chunks in a
# thread pool): a model's caches and torch's thread pool are not for concurrent use.
_CODING = threading.Lock()


class BFNCodec(Codec):
    """Lossless compression of uint8 items with a Bayesian Flow Network (bits-back ANS).

    Parameters
    ----------
    model : str
        A bundled model name (``bfn-codec models``) or a checkpoint directory.
    weights_sha256 : str, optional
        The model's weights' SHA-256 (hex). Recommended with a directory: a chunk is then never
        coded with other weights than the configuration names.
    steps, r, grid_power : optional
        The codec settings (``bfn-codec compress --help``); None takes the model's defaults.
    mode : {"auto", "bfn", "fallback"}
        As ``bfn_codec.compress``: auto keeps the smaller of the BFN chain and LZMA2.
    arithmetic : {"portable", "float"}
        portable (default): chunks decode bit-exactly on every machine; float: faster, but a chunk
        decodes only in the environment that wrote it. Keep portable for data that moves.

    ``encode`` takes a chunk of items in the model's item shape: (N, H, W), (N, 1, H, W), one
    item (H, W), or any buffer of N * H * W bytes (Zarr v2 and byte-level pipelines); ``decode``
    returns (N, H, W) uint8, written into ``out`` when given.
    """

    codec_id = CODEC_ID

    def __init__(self, model: str = "fmnist", weights_sha256: str | None = None, steps: int | None = None,
                 r: float | None = None, grid_power: float | None = None, mode: str = "auto",
                 arithmetic: str = "portable"):
        if not isinstance(model, str) or not model:
            raise ValueError("model must be a bundled model name or a checkpoint directory")
        if mode not in ("auto", "bfn", "fallback"):
            raise ValueError(f"mode must be auto, bfn or fallback, not {mode!r}")
        if arithmetic not in ARITHMETIC:
            raise ValueError(f"arithmetic must be portable or float, not {arithmetic!r}")
        self.model, self.weights_sha256 = model, weights_sha256
        self.steps, self.r, self.grid_power = steps, r, grid_power
        self.mode, self.arithmetic = mode, arithmetic

    def get_config(self) -> dict:
        return {"id": self.codec_id, "model": self.model, "weights_sha256": self.weights_sha256,
                "steps": self.steps, "r": self.r, "grid_power": self.grid_power, "mode": self.mode,
                "arithmetic": self.arithmetic}

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "id" and v is not None)
        return f"BFNCodec({settings})"

    def loaded_model(self):
        return _model(self.model, self.weights_sha256)

    def _items(self, buf) -> np.ndarray:
        """A chunk as (N, H, W) uint8 items of the model's shape."""
        from .data import DataError

        model = self.loaded_model()
        if len(model.shape) != 3 or model.shape[0] != 1:
            raise DataError(f"the bfn codec codes single-channel image items; model {model.name} "
                            f"has items of shape {model.shape}")
        _, H, W = model.shape
        array = np.asarray(buf) if isinstance(buf, np.ndarray) else None
        if array is not None and array.dtype != np.uint8:
            raise DataError(f"the bfn codec codes uint8 data, got dtype {array.dtype}")
        if array is not None and array.ndim >= 2 and array.shape[-2:] == (H, W):
            lead = array.shape[:-2]
            if len(lead) <= 1 or (len(lead) == 2 and lead[1] == 1):
                return np.ascontiguousarray(array.reshape(-1, H, W))
        flat = ensure_contiguous_ndarray(buf).view(np.uint8).reshape(-1)
        if flat.size % (H * W):
            raise DataError(f"a chunk of {flat.size} bytes is not a whole number of {H}x{W} items "
                            f"(model {model.name}); chunk the array along its first axis only")
        return flat.reshape(-1, H, W)

    def encode(self, buf) -> bytes:
        from .api import compress

        items = self._items(buf)
        with _CODING:
            return compress(items, self.loaded_model(), steps=self.steps, r=self.r, grid_power=self.grid_power,
                            mode=self.mode, portable=self.arithmetic == "portable")

    def decode(self, buf, out=None):
        from .api import decompress

        blob = bytes(ensure_contiguous_ndarray(buf).view(np.uint8))
        with _CODING:
            items = decompress(blob, self._decoder_model(blob))
        items = items.reshape(-1, *items.shape[-2:]) if items.ndim != 3 else items
        if out is not None:
            out = ensure_contiguous_ndarray(out) if not isinstance(out, np.ndarray) else out
            if out.nbytes != items.nbytes:
                raise ValueError(f"out holds {out.nbytes} bytes, the chunk decodes to {items.nbytes}")
            return ndarray_copy(items, out)
        return items

    def _decoder_model(self, blob: bytes):
        """The configured model when the chunk was written with it (no lookup, no second load);
        None lets the file's header name it (a chunk written with another configuration)."""
        from .api import model_identity, read_header
        from .imageset import is_imageset

        if is_imageset(blob):
            return None  # a chunk kept as a PNG / WebP picture (mode auto) needs no model
        header = read_header(blob)
        if not header.batches:
            return None  # fallback chunks need no model
        model = self.loaded_model()
        ident = model_identity(model, header.coder_revision)
        return model if ident and ident.startswith(header.model_hash) else None

