"""What the benchmark scripts share: printing their figures and keeping them in results/."""

from __future__ import annotations

from pathlib import Path


def emit(lines: list[str], out: Path | None) -> None:
    """Print the figures and, with ``out``, write them there too (the file the README's numbers come from)."""
    text = "\n".join(lines)
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
