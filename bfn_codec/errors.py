"""The user-facing error of input data, apart so that every layer can raise it without
importing another (data.py re-exports it as bfn_codec.data.DataError)."""


class DataError(Exception):
    """Input data could not be read (message is user-facing)."""
