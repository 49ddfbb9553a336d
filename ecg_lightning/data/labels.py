"""Beat labelling: annotation symbols -> class index (in the configured class order) or not a beat (dropped).

A label set is an ordered mapping ``class name -> annotation symbols`` (``data.label_sets`` in the config);
the first class is the normal one. Two classes are the binary normal/abnormal task, more are multi-class.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

NORMAL = 0
ABNORMAL = 1
DROPPED = -1


def check_classes(classes: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """The label set as a plain dict, after checking it has 2+ classes and no symbol in two of them."""
    classes = {str(name): [str(s) for s in symbols] for name, symbols in dict(classes).items()}
    if len(classes) < 2:
        raise ValueError(f"a label set needs at least two classes, got {list(classes)}")
    seen: dict[str, str] = {}
    for name, symbols in classes.items():
        for symbol in symbols:
            if symbol in seen:
                raise ValueError(f"Beat symbol {symbol!r} is listed in both class {seen[symbol]!r} and {name!r}")
            seen[symbol] = name
    return classes


def label_beats(symbols: np.ndarray, classes: Mapping[str, Sequence[str]]) -> np.ndarray:
    """Map annotation symbols to int8 class indices (DROPPED for symbols that are not beats), vectorized."""
    classes = check_classes(classes)
    symbols = np.asarray(symbols)
    labels = np.full(symbols.shape, DROPPED, dtype=np.int8)
    for index, members in enumerate(classes.values()):
        labels[np.isin(symbols, members)] = index
    return labels
