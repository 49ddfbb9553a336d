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


def check_threshold(value: float, key: str = "threshold") -> float:
    """A decision threshold is a probability: 0 calls every beat abnormal, 1 none."""
    if not 0 <= value <= 1:
        raise ConfigError(f"{key}={value}: a probability, must be between 0 and 1")
    return value


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


def check_command_line(argv: list[str], trainer: bool = False) -> None:
    """Before Hydra starts, catch what it would answer with a traceback or bad advice, in one line each: a run
    folder that is an existing file, a path with spaces left unquoted (the shell split it), and, for training
    (``trainer``), a ``trainer.<key>`` that Lightning's Trainer does not take (Hydra's "use +trainer.<key>" advice
    only moves the failure to after the data has loaded)."""
    for i, arg in enumerate(argv):
        key, _, value = arg.partition("=")
        if key.lstrip("+~") in ("hydra.run.dir", "hydra.sweep.dir") and value and Path(value).is_file():
            _refuse(f"{key}={value} is a file; give a folder (created if missing), or leave it out")
        if not value.isascii() and not value.startswith(("'", '"')):  # Hydra's lexer stops at such characters
            _refuse(f"{arg!r}: a value with non-ASCII characters must be quoted for Hydra: \"{key}='{value}'\"")
        previous = argv[i - 1] if i else ""
        if "=" not in arg and not arg.startswith(("-", "~")) and "=" in previous and not previous.startswith("-"):
            _refuse(
                f"{arg!r} is not a setting (key=value): if it belongs to {previous!r} (a path with spaces), quote "
                f'the whole setting for the shell: "{previous} {arg}"'
            )
    if trainer:
        unknown = unknown_trainer_args(
            a.partition("=")[0].lstrip("+").removeprefix("trainer.")
            for a in argv
            if a.lstrip("+").startswith("trainer.") and "=" in a
        )
        if unknown:
            _refuse(unknown)


def unknown_trainer_args(keys) -> str | None:
    """A one-line message naming the ``trainer.*`` keys that ``lightning.Trainer`` does not take (with the nearest
    real argument), or None when all are known (nested keys such as ``trainer.plugins.x`` are not checked)."""
    import difflib
    import inspect

    from lightning import Trainer

    known = set(inspect.signature(Trainer.__init__).parameters) - {"self"}
    wrong = [k for k in dict.fromkeys(keys) if "." not in k and k not in known and k != "_target_"]
    if not wrong:
        return None
    hints = [
        f"trainer.{k}" + (f" (did you mean trainer.{m[0]}?)" if (m := difflib.get_close_matches(k, known, 1)) else "")
        for k in wrong
    ]
    return f"{', '.join(hints)}: not an argument of lightning.Trainer; see python -m ecg_lightning.train --cfg job"


def _refuse(message: str) -> None:
    # logging is not set up before Hydra starts: the one line goes straight to stderr
    print(message, file=sys.stderr)
    sys.exit(1)
