"""What a slicer says about a sliced file: estimated print time and material weight."""

from __future__ import annotations

import attrs

__all__ = ["SliceEstimate"]


@attrs.frozen
class SliceEstimate:
    """A slicer's estimate for one sliced file.

    ``seconds``: estimated print time in seconds, or ``None`` when the slicer left it
    empty or zero (unknown, not zero).
    ``grams``: filament/resin weight in grams, or ``None`` when unknown (a slicer with no
    material density writes 0.00 g: that is unknown, not free).
    ``slicer``: the slicer that wrote the file, e.g. ``"BambuStudio 01.09.07.52"``, if known.
    ``source``: where the figures were read, e.g. ``"Metadata/slice_info.config"`` or
    ``"G-code header"``.
    """

    seconds: int | None = None
    grams: float | None = None
    slicer: str | None = None
    source: str = ""

    @property
    def hours(self) -> float | None:
        """Estimated time in hours (not rounded), or None when unknown."""
        return None if self.seconds is None else self.seconds / 3600

    @property
    def known(self) -> bool:
        return self.seconds is not None or self.grams is not None
