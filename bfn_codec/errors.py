"""The user-facing error of input data, apart so that every layer can raise it without
importing another (data.py re-exports it as bfn_codec.data.DataError)."""


class DataError(Exception):
    """Input data could not be read (message is user-facing)."""


class NotCodedAsImage(DataError):
    """A readable image file that bfn-codec cannot code as pixels and write back exactly (a lossy
    or animated format, an unsupported pixel type): a single such file is coded as bytes."""
