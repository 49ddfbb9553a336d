"""The error users see for bad input: one message naming the file and what to do."""


class InputError(ValueError):
    """Bad input (record, checkpoint, data folder); entry points print the message, not a traceback."""
