"""The error of bad user input, on its own so that the decoding runtime saved beside a checkpoint needs nothing
else from util/checks.py."""


class InputError(ValueError):
    """Bad user input (a file, a folder, a row); the message says which and what is wrong."""
