"""The error users see for bad input: one message naming the file and what to do."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger("ecg_lightning")


class InputError(ValueError):
    """Bad input (record, checkpoint, data folder); entry points print the message, not a traceback."""


class ConfigError(InputError):
    """A configuration value out of its allowed range; the message names the key (e.g. data.window_s)."""


def instantiate_checked(node, **kwargs):
    """``hydra.utils.instantiate`` that lets a bad-input error of the object's constructor through unwrapped
    (Hydra wraps it in InstantiationException, which the entry points would show as a traceback)."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        if isinstance(err.__cause__, InputError):
            raise err.__cause__ from None
        raise


def exit_on_input_error(task: Callable[[], T]) -> T:
    """Run an entry point's task; on bad input log the one-line message and exit with status 1."""
    from omegaconf.errors import MissingMandatoryValue

    try:
        return task()
    except InputError as err:
        log.error("%s", err)
        sys.exit(1)
    except MissingMandatoryValue as err:
        key = getattr(err, "full_key", None) or "a required setting"
        log.error("%s is required: give %s=<value> on the command line (--help lists the settings)", key, key)
        sys.exit(1)


def refuse_file_as_run_dir(argv: list[str]) -> None:
    """Before Hydra starts: a run folder given as an existing file is one line, not Hydra's mkdir traceback."""
    for arg in argv:
        key, _, value = arg.partition("=")
        if key.lstrip("+~") in ("hydra.run.dir", "hydra.sweep.dir") and value and Path(value).is_file():
            # logging is not set up before Hydra starts: the one line goes straight to stderr
            print(f"{key}={value} is a file; give a folder (created if missing), or leave it out", file=sys.stderr)
            sys.exit(1)
