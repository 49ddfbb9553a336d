"""The error users see for bad input: one message naming the file and what to do."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger("ecg_lightning")


class InputError(ValueError):
    """Bad input (record, checkpoint, data folder); entry points print the message, not a traceback."""


def exit_on_input_error(task: Callable[[], T]) -> T:
    """Run an entry point's task; on bad input log the one-line message and exit with status 1."""
    try:
        return task()
    except InputError as err:
        log.error("%s", err)
        sys.exit(1)
