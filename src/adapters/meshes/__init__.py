"""Reading students' 3D models and staff's sliced files, safely.

* :mod:`adapters.meshes.models`: STL, OBJ and 3MF uploads (:func:`inspect_model`).
* :mod:`adapters.meshes.sliced`: slicer estimates from .gcode and .gcode.3mf files
  (:func:`read_slice_estimate`).
* :mod:`adapters.meshes.archives`: ZIP bomb and path checks shared by both.

Every refusal is a :class:`printcore.errors.UnsupportedFileError`.
"""

from __future__ import annotations

from adapters.meshes.archives import ArchiveLimits, SafeZip, check_zip
from adapters.meshes.models import (
    MODEL_EXTENSIONS,
    ModelInfo,
    inspect_model,
    model_extension,
)
from adapters.meshes.sliced import SLICED_EXTENSIONS, read_slice_estimate, sliced_extension

__all__ = [
    "MODEL_EXTENSIONS",
    "SLICED_EXTENSIONS",
    "ArchiveLimits",
    "ModelInfo",
    "SafeZip",
    "check_zip",
    "inspect_model",
    "model_extension",
    "read_slice_estimate",
    "sliced_extension",
]
