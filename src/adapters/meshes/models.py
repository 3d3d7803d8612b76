"""Student uploads: prove that a file really is the 3D model its extension claims.

Formats accepted (see :data:`MODEL_EXTENSIONS`):

* STL, binary (80-byte header, little-endian uint32 triangle count, 50 bytes per
  triangle) or ASCII (``solid`` … ``facet normal`` … ``vertex`` … ``endsolid``); no
  units, coordinates are in whatever unit the CAD program used (usually mm).
* Wavefront OBJ (text; ``v x y z`` vertex and ``f a b c`` face lines); no units.
* 3MF (3MF Consortium core specification 1.x: a ZIP holding ``3D/3dmodel.model``, XML
  in the namespace ``http://schemas.microsoft.com/3dmanufacturing/core/2015/02``, with
  the production extension's ``p:path`` components used by Bambu Studio, OrcaSlicer and
  PrusaSlicer projects); the ``unit`` attribute is honoured and results are in mm.

STL and OBJ are parsed by trimesh. 3MF meshes are read here with the standard library's
expat parser (streamed, DTDs refused) because trimesh 5.2's 3MF loader needs lxml and
networkx, which printcore does not depend on; trimesh then measures the mesh.
"""

from __future__ import annotations

import io
import re
import struct
from array import array
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from xml.parsers import expat

import attrs
import numpy as np
import trimesh

from adapters.meshes.archives import DEFAULT_LIMITS, ArchiveLimits, SafeZip, check_zip
from printcore.errors import UnsupportedFileError

__all__ = [
    "MAX_FACES",
    "MODEL_EXTENSIONS",
    "ModelInfo",
    "content_kind",
    "inspect_model",
    "model_extension",
]

MODEL_EXTENSIONS = (".stl", ".obj", ".3mf")

#: Most triangles accepted in one 3MF model once its components are expanded.
MAX_FACES = 10_000_000

#: Above this many faces the watertight test is skipped (see ModelInfo.watertight).
WATERTIGHT_MAX_FACES = 1_000_000

#: What every refusal tells the student to do instead.
ADVICE = "export it again from your CAD program as STL, OBJ or 3MF"

_LABELS = {".stl": "STL", ".obj": "OBJ", ".3mf": "3MF"}
_SNIFF_BYTES = 64 * 1024
_STL_HEADER = 84
_STL_TRIANGLE = 50

_SIGNATURES = (
    (b"\x7fELF", "a Linux program"),
    (b"MZ", "a Windows program"),
    (b"\xcf\xfa\xed\xfe", "a macOS program"),
    (b"\xca\xfe\xba\xbe", "a macOS program"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"GCDE", "binary G-code"),
)


@attrs.frozen
class ModelInfo:
    """What :func:`inspect_model` found in an upload.

    ``format``: ``"stl-binary"``, ``"stl-ascii"``, ``"obj"`` or ``"3mf"``.
    ``faces``: number of triangles.
    ``extents``: size of the bounding box along x, y, z, in file units for STL and OBJ
    (which have none; usually mm) and in millimetres for 3MF.
    ``watertight``: every edge is shared by exactly two triangles (trimesh's test), or
    None for meshes over :data:`WATERTIGHT_MAX_FACES` faces, where the test (a sort of
    every vertex) would cost tens of seconds; it is informational, never a reason to refuse.
    """

    format: str
    faces: int
    extents: tuple[float, float, float]
    watertight: bool | None


def model_extension(filename: str) -> str | None:
    """The normalised model extension of ``filename`` (``".stl"``), or None when not accepted.

    Case-insensitive; only the end of the name is looked at, and a bare ``".stl"`` with
    nothing before it is not a model name.
    """
    lowered = filename.lower()
    for extension in MODEL_EXTENSIONS:
        if lowered.endswith(extension) and len(lowered) > len(extension):
            return extension
    return None


def content_kind(head: bytes) -> str | None:
    """A human name for well-known non-model content (``"a Windows program"``), else None.

    ``head`` is the first bytes of the file. Only used to explain a refusal: a binary
    STL's free-form header may start with any bytes.
    """
    for signature, kind in _SIGNATURES:
        if head.startswith(signature):
            return kind
    return None


def inspect_model(path: Path, extension: str, limits: ArchiveLimits = DEFAULT_LIMITS) -> ModelInfo:
    """Check that the file at ``path`` really is a model of type ``extension`` and measure it.

    ``extension`` is one of :data:`MODEL_EXTENSIONS` (as returned by
    :func:`model_extension`); ``limits`` apply to 3MF archives. Raises
    :class:`UnsupportedFileError` with a message for the student when the content is
    not a readable model of that type or has no triangles; ``FileNotFoundError`` when
    ``path`` does not exist.
    """
    extension = extension.lower()
    if extension == ".stl":
        return _inspect_stl(path)
    if extension == ".obj":
        return _inspect_obj(path)
    if extension == ".3mf":
        return _inspect_3mf(path, limits)
    raise UnsupportedFileError(f"Files ending in {extension!r} are not accepted; {ADVICE}.")


def _refuse(label: str, reason: str) -> UnsupportedFileError:
    return UnsupportedFileError(f"The file is not a valid {label} file: {reason}; {ADVICE}.")


def _foreign_reason(head: bytes, fallback: str) -> str:
    kind = content_kind(head)
    return f"it is {kind}, not a 3D model" if kind else fallback


# --- STL ------------------------------------------------------------------------------


def _inspect_stl(path: Path) -> ModelInfo:
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    if size == 0:
        raise _refuse("STL", "the file is empty")
    count = struct.unpack_from("<I", head, 80)[0] if size >= _STL_HEADER else None
    if count is not None and size == _STL_HEADER + _STL_TRIANGLE * count:
        if count == 0:
            raise _refuse("STL", "it contains no triangles")
        if count > WATERTIGHT_MAX_FACES:
            return _measure_large_binary_stl(path, count)
        return _measure("stl-binary", _load_with_trimesh(path.read_bytes(), "stl", "STL"), "STL")
    if head.lstrip()[:5].lower() == b"solid" and b"\x00" not in head:
        if b"facet" not in head or b"vertex" not in head:
            raise _refuse("STL", "it is STL text without any triangles ('facet' and 'vertex')")
        return _measure("stl-ascii", _load_with_trimesh(path.read_bytes(), "stl", "STL"), "STL")
    if count is None:
        reason = "it is too short to be a binary STL and is not ASCII STL text"
    else:
        reason = (
            f"its header announces {count:,} triangles, which take "
            f"{_STL_HEADER + _STL_TRIANGLE * count:,} bytes, but the file has {size:,} bytes "
            "(it is truncated, damaged or not an STL at all)"
        )
    raise _refuse("STL", _foreign_reason(head, reason))


def _measure_large_binary_stl(path: Path, count: int) -> ModelInfo:
    """A binary STL too large for trimesh's cached ``Trimesh`` (whose array hashing and
    scene-to-mesh step take seconds per million faces): parsed by trimesh's own binary
    STL reader, measured with numpy. Watertightness is not tested (None)."""
    from trimesh.exchange.stl import load_stl_binary

    if count > MAX_FACES:
        raise _refuse("STL", f"it has {count:,} triangles, more than the {MAX_FACES:,} we accept")
    try:
        with path.open("rb") as handle:
            loaded = load_stl_binary(handle)
    except Exception as exc:
        raise _refuse("STL", f"it could not be read ({type(exc).__name__}: {exc})") from exc
    vertices = loaded.get("vertices")
    if vertices is None or len(vertices) == 0:
        raise _refuse("STL", "it contains no triangles")
    if not np.isfinite(vertices).all():
        raise _refuse("STL", "some of its coordinates are not numbers")
    extents = np.ptp(vertices, axis=0)
    return ModelInfo(
        format="stl-binary",
        faces=len(vertices) // 3,
        extents=(float(extents[0]), float(extents[1]), float(extents[2])),
        watertight=None,
    )


# --- OBJ ------------------------------------------------------------------------------


def _inspect_obj(path: Path) -> ModelInfo:
    data = path.read_bytes()
    if not data:
        raise _refuse("OBJ", "the file is empty")
    if b"\x00" in data[:_SNIFF_BYTES]:
        raise _refuse("OBJ", _foreign_reason(data, "it is binary data, not OBJ text"))
    if not re.search(rb"(?m)^[ \t]*v[ \t]", data):
        raise _refuse("OBJ", "it has no vertex lines ('v x y z')")
    # From memory, not a path: trimesh would otherwise follow `mtllib` to other files.
    return _measure("obj", _load_with_trimesh(data, "obj", "OBJ"), "OBJ")


# --- shared trimesh boundary ----------------------------------------------------------


def _load_with_trimesh(data: bytes, file_type: str, label: str) -> trimesh.Trimesh:
    try:
        # process=False: no vertex merge on load (the slow part for large meshes);
        # _measure merges only when it will test watertightness.
        loaded = trimesh.load(io.BytesIO(data), file_type=file_type, force="mesh", process=False)
    except Exception as exc:  # trimesh raises anything from ValueError to IndexError
        raise _refuse(label, f"it could not be read ({type(exc).__name__}: {exc})") from exc
    if not isinstance(loaded, trimesh.Trimesh):
        raise _refuse(label, "it contains no triangle mesh")
    return loaded


def _measure(format_: str, mesh: trimesh.Trimesh, label: str) -> ModelInfo:
    if len(mesh.faces) == 0:
        raise _refuse(label, "it contains no triangles")
    if not np.isfinite(mesh.vertices).all():
        raise _refuse(label, "some of its coordinates are not numbers")
    try:
        extents = tuple(float(value) for value in mesh.extents)
        watertight: bool | None = None
        if len(mesh.faces) <= WATERTIGHT_MAX_FACES:
            mesh.merge_vertices()
            watertight = bool(mesh.is_watertight)
    except Exception as exc:
        raise _refuse(label, f"it could not be measured ({type(exc).__name__})") from exc
    return ModelInfo(
        format=format_,
        faces=len(mesh.faces),
        extents=(extents[0], extents[1], extents[2]),
        watertight=watertight,
    )


# --- 3MF ------------------------------------------------------------------------------

_ROOT_MODEL = "3D/3dmodel.model"
_UNIT_MM = {
    "micron": 0.001,
    "millimeter": 1.0,
    "centimeter": 10.0,
    "inch": 25.4,
    "foot": 304.8,
    "meter": 1000.0,
}
_MAX_DEPTH = 32
_MAX_INSTANCES = 100_000
# AttributeError: a <vertex> or <triangle> outside any <mesh> (its buffer is None).
_XML_ERRORS = (expat.ExpatError, KeyError, ValueError, OverflowError, TypeError, AttributeError)

#: A reference to an object: (model part path or None for "this part", object id, 4×4).
_Ref = tuple[str | None, str, np.ndarray]


@attrs.define
class _Part:
    """One ``.model`` XML file of a 3MF package."""

    unit: str = "millimeter"
    meshes: dict[str, tuple[np.ndarray, np.ndarray]] = attrs.Factory(dict)
    components: dict[str, list[_Ref]] = attrs.Factory(dict)
    build: list[_Ref] = attrs.Factory(list)


def _inspect_3mf(path: Path, limits: ArchiveLimits) -> ModelInfo:
    with path.open("rb") as handle:
        head = handle.read(16)
    if not head:
        raise _refuse("3MF", "the file is empty")
    kind = content_kind(head)
    if kind is not None and not head.startswith(b"PK"):
        raise _refuse("3MF", f"it is {kind}, not a 3D model")
    with check_zip(path, limits, kind="3MF", advice=ADVICE) as archive:
        root = archive.find(_ROOT_MODEL)
        if root is None:
            raise _refuse("3MF", f"it has no {_ROOT_MODEL}, so it holds no 3D model")
        vertices, faces = _read_3mf_mesh(archive, root.filename)
    try:
        mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
    except Exception as exc:
        raise _refuse("3MF", f"its mesh could not be built ({type(exc).__name__})") from exc
    return _measure("3mf", mesh, "3MF")


def _read_3mf_mesh(archive: SafeZip, root_name: str) -> tuple[np.ndarray, np.ndarray]:
    """All build items of the package as one triangle soup, in millimetres."""
    parts: dict[str, _Part] = {}

    def part(name: str) -> _Part:
        key = name.lstrip("/").casefold()
        if key not in parts:
            info = archive.find(name)
            if info is None:
                raise _refuse("3MF", f"it refers to {name!r}, which is not in the archive")
            parts[key] = _parse_model_xml(archive.iter_chunks(info))
        return parts[key]

    root = part(root_name)
    scale = _UNIT_MM.get(root.unit)
    if scale is None:
        raise _refuse("3MF", f"its unit {root.unit!r} is not a 3MF unit")

    vertices: list[np.ndarray] = []
    faces: list[np.ndarray] = []
    counts = {"faces": 0, "vertices": 0, "instances": 0}

    def place(name: str, object_id: str, matrix: np.ndarray, depth: int) -> None:
        counts["instances"] += 1
        if depth > _MAX_DEPTH or counts["instances"] > _MAX_INSTANCES:
            raise _refuse("3MF", "its objects refer to each other too deeply or too often")
        model = part(name)
        if object_id in model.meshes:
            points, triangles = model.meshes[object_id]
            counts["faces"] += len(triangles)
            if counts["faces"] > MAX_FACES:
                raise _refuse("3MF", f"it has more than {MAX_FACES:,} triangles")
            vertices.append(points @ matrix[:3, :3] + matrix[3, :3])
            faces.append(triangles + counts["vertices"])
            counts["vertices"] += len(points)
        elif object_id in model.components:
            for child_name, child_id, child_matrix in model.components[object_id]:
                place(child_name or name, child_id, child_matrix @ matrix, depth + 1)
        else:
            raise _refuse("3MF", f"it refers to object {object_id!r}, which is not defined")

    for item_name, item_id, item_matrix in root.build:
        place(item_name or root_name, item_id, item_matrix, 0)
    if not faces:
        raise _refuse("3MF", "it contains no triangles")
    return np.concatenate(vertices) * scale, np.concatenate(faces)


def _parse_model_xml(chunks: Iterable[bytes]) -> _Part:
    """Stream one 3MF model XML into a :class:`_Part` (DTDs and entities refused).

    Only start tags are handled (half the callbacks of start+end, which matters for
    models of millions of triangles): ``<mesh>`` opens buffers for the current
    ``<object>``, ``<build>`` closes the resources section.
    """
    result = _Part()
    buffers: dict[str, tuple[array[float], array[int]]] = {}
    current: list[Any] = [None, None, None]  # object id, its vertex and triangle buffers

    def start(name: str, attributes: dict[str, str]) -> None:
        local = name[name.rfind(" ") + 1 :]
        if local == "vertex":
            current[1].extend(
                (float(attributes["x"]), float(attributes["y"]), float(attributes["z"]))
            )
        elif local == "triangle":
            triangles = current[2]
            triangles.extend((int(attributes["v1"]), int(attributes["v2"]), int(attributes["v3"])))
            if len(triangles) > 3 * MAX_FACES:
                raise _refuse("3MF", f"it has more than {MAX_FACES:,} triangles")
        elif local == "object":
            current[:] = [attributes["id"], None, None]
        elif local == "mesh":
            if current[0] is None:
                raise ValueError("a <mesh> outside an <object>")
            buffers[current[0]] = (array("d"), array("q"))
            current[1:] = buffers[current[0]]
        elif local == "component" and current[0] is not None:
            result.components.setdefault(current[0], []).append(_reference(attributes))
        elif local == "build":
            current[:] = [None, None, None]
        elif local == "item":
            result.build.append(_reference(attributes))
        elif local == "model":
            result.unit = attributes.get("unit", "millimeter")

    parser = expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _no_dtd
    parser.EntityDeclHandler = _no_dtd
    parser.StartElementHandler = start
    try:
        for chunk in chunks:
            parser.Parse(chunk, False)
        parser.Parse(b"", True)
        result.meshes = {key: _mesh_arrays(*buffer) for key, buffer in buffers.items()}
    except _XML_ERRORS as exc:
        raise _refuse("3MF", f"its model XML is damaged ({type(exc).__name__}: {exc})") from exc
    return result


def _no_dtd(*_: object) -> None:
    raise ValueError("a DTD or entity declaration is not allowed in 3MF")


def _attribute(attributes: dict[str, str], local: str) -> str | None:
    """An attribute by local name, whatever its namespace (``p:path`` → ``path``)."""
    if local in attributes:
        return attributes[local]
    suffix = " " + local
    for key, value in attributes.items():
        if key.endswith(suffix):
            return value
    return None


def _reference(attributes: dict[str, str]) -> _Ref:
    return (
        _attribute(attributes, "path"),
        attributes["objectid"],
        _transform(attributes.get("transform")),
    )


def _transform(text: str | None) -> np.ndarray:
    """3MF ``transform`` (12 numbers, row vectors: p' = [x y z 1] · M) as a 4×4 matrix."""
    matrix = np.eye(4)
    if text:
        values = [float(value) for value in text.split()]
        if len(values) != 12 or not all(np.isfinite(values)):
            raise ValueError(f"bad transform {text!r}")
        matrix[:, :3] = np.array(values).reshape(4, 3)
    return matrix


def _mesh_arrays(points: array[float], triangles: array[int]) -> tuple[np.ndarray, np.ndarray]:
    vertices = np.frombuffer(points, dtype=np.float64).reshape(-1, 3).copy()
    faces = np.frombuffer(triangles, dtype=np.int64).reshape(-1, 3).copy()
    if len(faces) and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ValueError("a triangle refers to a vertex that does not exist")
    return vertices, faces
