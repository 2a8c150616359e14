"""bfn-codec: lossless compression with Bayesian Flow Networks and bits-back ANS coding.

    import bfn_codec
    blob = bfn_codec.compress(images)            # uint8 (N, H, W); bundled model picked by values
    images2 = bfn_codec.decompress(blob)         # model found from the header
    bfn_codec.estimate_loss(images)              # the model's own L^n + L^r on the same items
    files = [bfn_codec.read_image(open("a.png", "rb").read(), "a.png")]
    blob = bfn_codec.compress_images(files)[0]   # image files; decompress_images gives them back

The names below are imported on first use (PEP 562), so ``import bfn_codec`` and the command
line's ``--help`` do not load torch.
"""
import importlib

from .version import __version__

_EXPORTS = {"compress": "api", "decompress": "api", "estimate_loss": "api", "read_header": "api",
            "compress_images": "api", "decompress_images": "api", "read_image": "images", "write_image": "images",
            "FormatError": "container", "DataError": "data", "ModelError": "zoo", "OracleModel": "models",
            "available_models": "models", "load_model": "models"}
__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
