"""bfn-codec: lossless compression with Bayesian Flow Networks and bits-back ANS coding.

    import bfn_codec
    blob = bfn_codec.compress(images)            # uint8 (N, H, W); bundled model picked by values
    images2 = bfn_codec.decompress(blob)         # model found from the header
    bfn_codec.estimate_loss(images)              # the model's own L^n + L^r on the same items
"""
__version__ = "0.1.0"

from .api import compress, decompress, estimate_loss, read_header  # noqa: E402
from .container import FormatError  # noqa: E402
from .models import ModelError, OracleModel, available_models, load_model  # noqa: E402

__all__ = ["compress", "decompress", "estimate_loss", "read_header", "load_model",
           "available_models", "OracleModel", "FormatError", "ModelError", "__version__"]
