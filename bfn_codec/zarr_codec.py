"""bfn-codec as a Zarr v3 serializer (array -> bytes codec ``bfn``), built on the numcodecs codec.

    import zarr
    from bfn_codec.zarr_codec import BFNZarrCodec
    z = zarr.create_array("images.zarr", shape=(10000, 28, 28), chunks=(500, 28, 28),
                          dtype="uint8", serializer=BFNZarrCodec(model="fmnist"), compressors=None)

A serializer, not a compressor: Zarr hands it the chunk as an array, so the item shape is known
and checked, and each stored chunk is one .bfn file. Zarr stores edge chunks at the full chunk
shape (the part past the array's end holds the fill value), so a partial edge chunk codes like
any other. ``pip install bfn-codec`` registers the name ``bfn`` through the ``zarr.codecs``
entry point, so a store written with it opens with plain ``zarr.open_array``.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np
from zarr.abc.codec import ArrayBytesCodec
from zarr.core.common import parse_named_configuration
from zarr.dtype import UInt8

from .numcodecs import BFNCodec

NAME = "bfn"


@dataclass(frozen=True)
class BFNZarrCodec(ArrayBytesCodec):
    """Zarr v3 array -> bytes codec; the keyword arguments are BFNCodec's (numcodecs.py)."""

    is_fixed_size = False
    configuration: dict

    def __init__(self, **configuration) -> None:
        configuration.pop("id", None)
        BFNCodec(**configuration)  # validate now, not at the first chunk
        object.__setattr__(self, "configuration", dict(configuration))

    @classmethod
    def from_dict(cls, data: dict) -> "BFNZarrCodec":
        _, configuration = parse_named_configuration(data, NAME, require_configuration=False)
        return cls(**(configuration or {}))

    def to_dict(self) -> dict:
        return {"name": NAME, "configuration": dict(self.configuration)}

    def __hash__(self) -> int:
        return hash(tuple(sorted((k, repr(v)) for k, v in self.configuration.items())))

    @property
    def codec(self) -> BFNCodec:
        return BFNCodec(**self.configuration)

    def validate(self, *, shape, dtype, chunk_grid) -> None:
        if not isinstance(dtype, UInt8):
            raise ValueError(f"the bfn codec codes uint8 arrays, not {dtype}")

    def compute_encoded_size(self, input_byte_length: int, chunk_spec) -> int:
        raise NotImplementedError("bfn chunks have data-dependent sizes")

    async def _encode_single(self, chunk_array, chunk_spec):
        data = chunk_array.as_numpy_array()
        blob = await asyncio.to_thread(self.codec.encode, data)
        return chunk_spec.prototype.buffer.from_bytes(blob)

    async def _decode_single(self, chunk_bytes, chunk_spec):
        blob = chunk_bytes.to_bytes()
        items = await asyncio.to_thread(self.codec.decode, blob)
        array = np.asarray(items).reshape(chunk_spec.shape)
        return chunk_spec.prototype.nd_buffer.from_numpy_array(array)
