"""Thumbnails of students' models: the 3MF's own picture, or one drawn here from the mesh.

Sources, in order (:func:`make_thumbnail`):

1. A 3MF (or sliced ``.gcode.3mf``) that carries its own picture (:func:`plate_image`):

   * Bambu Studio / OrcaSlicer write ``Metadata/plate_1.png`` (the first plate as the
     slicer shows it, 512×512 px) in project and sliced files alike, and sometimes
     ``Metadata/thumbnail.png``;
   * the 3MF core specification (3MF Consortium, part 2, OPC package) names the
     package thumbnail by a relationship in ``_rels/.rels`` of type
     ``http://schemas.openxmlformats.org/package/2006/relationships/metadata/thumbnail``
     whose ``Target`` is the part (PNG or JPEG; only PNG is used here).

2. Otherwise the mesh itself (STL, OBJ, 3MF), drawn by :func:`render_triangles`, a small
   software rasteriser in numpy (no GPU, no display, no OpenGL: trimesh's
   ``save_image`` needs pyglet and a GL context, which a server does not have), encoded
   as PNG by Pillow.

Meshes are read as in :mod:`adapters.meshes.models` (which checked them at upload):
binary STL straight into numpy (80-byte header, uint32 count, 50-byte records of normal,
three vertices as little-endian float32 and a uint16), ASCII STL and OBJ by trimesh, 3MF
by printcore's own streamed XML reader, in millimetres. STL and OBJ have no units: their
coordinates are taken as millimetres, which is what slicers assume too.

Limits: a mesh of more than :data:`MAX_FACES` triangles is refused; above ``max_faces``
(default :data:`MAX_RENDER_FACES`) a fixed random sample of that many triangles is drawn,
each as a slightly larger dot where it is smaller than a pixel, so the picture has no
holes. :func:`make_thumbnail` also stops itself after ``time_limit`` seconds (a
``SIGALRM`` timer when it runs in a process's main thread, as in the inspector's worker
process, and checks between steps everywhere). Every refusal is a
:class:`ThumbnailError` (or the readers' :class:`~printcore.errors.UnsupportedFileError`).
"""

from __future__ import annotations

import io
import math
import signal
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from xml.parsers import expat

import attrs
import numpy as np

from adapters.meshes.archives import DEFAULT_LIMITS, ArchiveLimits, SafeZip, check_zip
from adapters.meshes.models import MAX_FACES, _load_with_trimesh, _read_3mf_mesh
from printcore.errors import UnsupportedFileError

__all__ = [
    "MAX_FACES",
    "MAX_RENDER_FACES",
    "THUMBNAIL_SIZE",
    "TIME_LIMIT",
    "Thumbnail",
    "ThumbnailError",
    "load_triangles",
    "make_thumbnail",
    "model_size_mm",
    "plate_image",
    "render_thumbnail",
    "render_triangles",
    "stop_after",
]

#: Width and height of a drawn thumbnail, in pixels.
THUMBNAIL_SIZE = 256
#: Above this many triangles a sample of this many is drawn (see module docstring).
MAX_RENDER_FACES = 400_000
#: Seconds :func:`make_thumbnail` may take before it gives up.
TIME_LIMIT = 20.0
#: Largest embedded picture used, in bytes (Bambu's plate_1.png is 20-60 KB).
MAX_IMAGE_BYTES = 8 * 1024 * 1024
#: Largest ``_rels/.rels`` read, in bytes.
_MAX_RELS_BYTES = 256 * 1024

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_THUMBNAIL_RELATIONSHIP = (
    "http://schemas.openxmlformats.org/package/2006/relationships/metadata/thumbnail"
)
_PICTURE_NAMES = ("Metadata/plate_1.png", "Metadata/thumbnail.png")

#: Drawing: model colour (sRGB), light direction in view space (x right, y up, z toward
#: the viewer), ambient share of the light, supersampling factor, margin (share of the
#: side left empty on each edge).
_COLOUR = np.array([64.0, 128.0, 200.0])
_LIGHT = np.array([-0.35, 0.55, 0.76])
_AMBIENT = 0.28
_SUPERSAMPLE = 2
_MARGIN = 0.06
#: The view: the camera looks at the model from the front right, above (z is up, the
#: front of a print bed is -y), as slicers show a plate; orthographic projection.
_CAMERA = np.array([0.62, -1.0, 0.72])
#: Most (pixel, triangle) candidates tested at once (bounds memory to ~100 MB).
_CHUNK_CANDIDATES = 3_000_000


class ThumbnailError(Exception):
    """No thumbnail could be made; the message says why, for staff."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@attrs.frozen
class Thumbnail:
    """What :func:`make_thumbnail` made.

    ``png``: the PNG file's bytes. ``source``: where the picture comes from, the 3MF
    entry's name (``"Metadata/plate_1.png"``) or ``"rendered"``. ``size_mm``: the
    model's bounding box along x, y, z in millimetres (see module docstring for units),
    or None when the mesh could not be measured. ``faces``: triangles in the model;
    ``faces_drawn``: triangles drawn (fewer when sampled; None for an embedded picture).
    ``seconds``: how long it took.
    """

    png: bytes
    source: str
    size_mm: tuple[float, float, float] | None
    faces: int | None
    faces_drawn: int | None
    seconds: float


# --- time limit -----------------------------------------------------------------------


class _Deadline:
    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.end = None if seconds is None else time.monotonic() + seconds

    def check(self) -> None:
        if self.end is not None and time.monotonic() > self.end:
            raise _too_slow(self.seconds)


def _too_slow(seconds: float | None) -> ThumbnailError:
    return ThumbnailError(f"making the preview took longer than {seconds:g} s, so it was stopped")


@contextmanager
def stop_after(seconds: float | None) -> Iterator[_Deadline]:
    """Raise :class:`ThumbnailError` in the block after ``seconds`` (None: no limit).

    A ``SIGALRM`` timer interrupts the block when it runs in a main thread on POSIX (the
    inspector's worker process); everywhere, ``deadline.check()`` between steps raises
    once the time is up.
    """
    deadline = _Deadline(seconds)
    use_alarm = (
        seconds is not None
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not use_alarm:
        yield deadline
        return

    def expired(signum: int, frame: FrameType | None) -> None:
        raise _too_slow(seconds)

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, float(seconds or 0))
    try:
        yield deadline
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- embedded pictures ----------------------------------------------------------------


def plate_image(path: Path, limits: ArchiveLimits = DEFAULT_LIMITS) -> bytes | None:
    """The PNG picture a 3MF or ``.gcode.3mf`` at ``path`` carries, or None.

    Looks for ``Metadata/plate_1.png``, then ``Metadata/thumbnail.png`` (Bambu Studio,
    OrcaSlicer), then the package thumbnail named in ``_rels/.rels`` (3MF core spec).
    Only entries that really are PNG files (their first 8 bytes) of at most
    :data:`MAX_IMAGE_BYTES` are returned. Raises :class:`UnsupportedFileError` when the
    file is not a usable ZIP archive (see :func:`adapters.meshes.archives.check_zip`).
    """
    found = _picture(path, limits)
    return found[1] if found else None


def _picture(path: Path, limits: ArchiveLimits) -> tuple[str, bytes] | None:
    """(entry name, PNG bytes) of the first usable picture, as :func:`plate_image`."""
    with check_zip(path, limits, kind="3MF") as archive:
        for name in (*_PICTURE_NAMES, *_relationship_thumbnails(archive)):
            picture = _png_entry(archive, name)
            if picture is not None:
                return name, picture
    return None


def _png_entry(archive: SafeZip, name: str) -> bytes | None:
    info = archive.find(name)
    if info is None or info.file_size > MAX_IMAGE_BYTES or info.file_size < len(PNG_SIGNATURE):
        return None
    try:
        data = archive.read(info, max_bytes=MAX_IMAGE_BYTES)
    except UnsupportedFileError:
        return None  # a damaged picture: draw the mesh instead
    return data if data.startswith(PNG_SIGNATURE) else None


def _relationship_thumbnails(archive: SafeZip) -> list[str]:
    """Targets of the package's thumbnail relationships in ``_rels/.rels``, in order."""
    info = archive.find("_rels/.rels")
    if info is None or info.file_size > _MAX_RELS_BYTES:
        return []
    targets: list[str] = []

    def start(name: str, attributes: dict[str, str]) -> None:
        if name.rsplit(" ", 1)[-1] == "Relationship" and (
            attributes.get("Type", "").strip() == _THUMBNAIL_RELATIONSHIP
        ):
            target = attributes.get("Target", "").strip()
            if target:
                targets.append(target.lstrip("/"))

    def no_dtd(*_: object) -> None:
        raise ValueError("a DTD is not allowed in _rels/.rels")

    parser = expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = no_dtd
    parser.EntityDeclHandler = no_dtd
    parser.StartElementHandler = start
    try:
        parser.Parse(archive.read(info), True)
    except (expat.ExpatError, ValueError, UnsupportedFileError):
        return []
    return targets


# --- meshes ---------------------------------------------------------------------------

_STL_RECORD = np.dtype([("normal", "<f4", (3,)), ("vertices", "<f4", (3, 3)), ("attr", "<u2")])


def load_triangles(
    path: Path, extension: str, limits: ArchiveLimits = DEFAULT_LIMITS
) -> np.ndarray:
    """The model's triangles as a float32 array of shape (faces, 3 corners, xyz), in mm.

    ``extension`` is ``".stl"``, ``".obj"`` or ``".3mf"``. Triangles with a coordinate
    that is not a finite number are dropped. Raises :class:`UnsupportedFileError` when
    the file is not a readable model, :class:`ThumbnailError` when it has no triangles
    or more than :data:`MAX_FACES`.
    """
    extension = extension.lower()
    if extension == ".stl":
        triangles = _stl_triangles(path)
    elif extension == ".obj":
        mesh = _load_with_trimesh(path.read_bytes(), "obj", "OBJ")
        triangles = _indexed(np.asarray(mesh.vertices), np.asarray(mesh.faces))
    elif extension == ".3mf":
        with check_zip(path, limits, kind="3MF") as archive:
            root = archive.find("3D/3dmodel.model")
            if root is None:
                raise ThumbnailError("the 3MF file holds no 3D model (3D/3dmodel.model)")
            vertices, faces = _read_3mf_mesh(archive, root.filename)
        triangles = _indexed(vertices, faces)
    else:
        raise ThumbnailError(f"files ending in {extension!r} have no preview")
    if len(triangles) > MAX_FACES:
        raise ThumbnailError(
            f"the model has {len(triangles):,} triangles, more than the {MAX_FACES:,} drawn"
        )
    finite = np.isfinite(triangles).all(axis=(1, 2))
    if not finite.all():
        triangles = triangles[finite]
    if len(triangles) == 0:
        raise ThumbnailError("the model has no triangles to draw")
    return triangles


def _indexed(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    if len(faces) == 0:
        return np.empty((0, 3, 3), np.float32)
    faces = np.asarray(faces, dtype=np.int64)
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise ThumbnailError("the model's triangles refer to corners it does not have")
    return np.asarray(vertices, dtype=np.float32)[faces]


def _stl_triangles(path: Path) -> np.ndarray:
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(84)
    if len(head) == 84:
        count = struct.unpack_from("<I", head, 80)[0]
        if size == 84 + 50 * count:
            if count > MAX_FACES:
                raise ThumbnailError(
                    f"the model has {count:,} triangles, more than the {MAX_FACES:,} drawn"
                )
            records = np.fromfile(path, dtype=_STL_RECORD, count=count, offset=84)
            return np.ascontiguousarray(records["vertices"])
    data = path.read_bytes()
    if data.lstrip()[:5].lower() != b"solid" or b"\x00" in data[:65536]:
        raise UnsupportedFileError(
            "The file is not a valid STL file: it is neither a binary STL (its size does "
            "not match its triangle count) nor ASCII STL text; export it again from the "
            "CAD program."
        )
    mesh = _load_with_trimesh(data, "stl", "STL")
    return _indexed(np.asarray(mesh.vertices), np.asarray(mesh.faces))


def _extents(triangles: np.ndarray) -> tuple[float, float, float]:
    points = triangles.reshape(-1, 3)
    size = points.max(axis=0).astype(np.float64) - points.min(axis=0)
    return (round(float(size[0]), 3), round(float(size[1]), 3), round(float(size[2]), 3))


def model_size_mm(
    path: Path, extension: str, limits: ArchiveLimits = DEFAULT_LIMITS
) -> tuple[float, float, float]:
    """The model's bounding box along x, y, z in mm (rounded to 0.001 mm).

    Same reading and errors as :func:`load_triangles`.
    """
    return _extents(load_triangles(path, extension, limits))


# --- drawing --------------------------------------------------------------------------


def render_thumbnail(
    path: Path,
    extension: str,
    size: int = THUMBNAIL_SIZE,
    max_faces: int = MAX_RENDER_FACES,
    limits: ArchiveLimits = DEFAULT_LIMITS,
) -> bytes:
    """A ``size``×``size`` PNG of the model at ``path`` drawn from its mesh.

    Ignores any picture the file carries (see :func:`make_thumbnail` for that). Errors
    as :func:`load_triangles`.
    """
    png, _ = render_triangles(load_triangles(path, extension, limits), size, max_faces)
    return png


def render_triangles(
    triangles: np.ndarray,
    size: int = THUMBNAIL_SIZE,
    max_faces: int = MAX_RENDER_FACES,
    deadline: _Deadline | None = None,
) -> tuple[bytes, int]:
    """Draw ``triangles`` (shape (faces, 3, 3), any unit) and return (PNG bytes, faces drawn).

    The PNG is ``size``×``size`` RGBA: the model flat-shaded (one shade per triangle,
    lit from the upper left, both sides lit) on a transparent background, seen from
    the front right and above in orthographic projection, scaled to fill the picture
    with a small margin. Drawn at twice the size with a depth buffer, then averaged
    down 2×2 (smooth edges). Above ``max_faces`` triangles a fixed random sample of
    ``max_faces`` is drawn.
    """
    from PIL import Image

    if size < 16 or size > 2048:
        raise ValueError("size must be between 16 and 2048 pixels")
    triangles = np.asarray(triangles, dtype=np.float32)
    total = len(triangles)
    splat = 1
    if total > max_faces:
        chosen = np.random.default_rng(0).choice(total, size=max_faces, replace=False)
        triangles = triangles[np.sort(chosen)]
        splat = max(1, math.ceil(math.sqrt(total / max_faces)))
    side = size * _SUPERSAMPLE
    depth, shade = _rasterise(triangles, side, splat, deadline or _Deadline(None))
    covered = np.isfinite(depth)
    rgba = np.zeros((side, side, 4), np.float32)
    rgba[..., :3] = shade[..., None] * _COLOUR
    rgba[..., 3] = covered * 255.0
    # Average 2×2 blocks with premultiplied alpha, so edges do not darken.
    blocks = rgba.reshape(size, _SUPERSAMPLE, size, _SUPERSAMPLE, 4)
    alpha = blocks[..., 3].mean(axis=(1, 3))
    weighted = (blocks[..., :3] * blocks[..., 3:4]).sum(axis=(1, 3))
    weight = blocks[..., 3].sum(axis=(1, 3))
    colour = np.divide(weighted, weight[..., None], out=np.zeros_like(weighted),
                       where=weight[..., None] > 0)
    out = np.concatenate([colour, alpha[..., None]], axis=2)
    image = Image.fromarray(np.clip(np.rint(out), 0, 255).astype(np.uint8), "RGBA")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=6)
    return buffer.getvalue(), len(triangles)


def _view_basis() -> np.ndarray:
    """Rows: screen right, screen up, toward the viewer (world z is up)."""
    toward = _CAMERA / np.linalg.norm(_CAMERA)
    right = np.cross(np.array([0.0, 0.0, 1.0]), toward)
    right /= np.linalg.norm(right)
    up = np.cross(toward, right)
    return np.stack([right, up, toward]).astype(np.float32)


def _rasterise(
    triangles: np.ndarray, side: int, splat: int, deadline: _Deadline
) -> tuple[np.ndarray, np.ndarray]:
    """Depth (toward the viewer; -inf where empty) and shade (0..1) buffers of shape
    (side, side), rows from the top.

    A pixel belongs to a triangle when its centre is inside (barycentric weights, as
    linear functions of the pixel position computed once per triangle). A triangle that
    covers no pixel centre (smaller than a pixel) is drawn as a dot of splat×splat
    pixels at its centroid, so dense meshes leave no holes.
    """
    basis = _view_basis()
    view = triangles @ basis.T  # (F, 3, 3): x right, y up, z toward the viewer
    normals = np.cross(view[:, 1] - view[:, 0], view[:, 2] - view[:, 0])
    length = np.linalg.norm(normals, axis=1)
    keep = length > 0
    view, normals, length = view[keep], normals[keep], length[keep]
    normals /= length[:, None]
    normals[normals[:, 2] < 0] *= -1  # light the side that faces the viewer
    light = (_LIGHT / np.linalg.norm(_LIGHT)).astype(np.float32)
    shade = (_AMBIENT + (1 - _AMBIENT) * np.clip(normals @ light, 0, 1)).astype(np.float32)
    depth = np.full(side * side, -np.inf, np.float32)
    colour = np.zeros(side * side, np.float32)
    if len(view) == 0:
        return depth.reshape(side, side), colour.reshape(side, side)

    flat = view[:, :, :2].reshape(-1, 2)
    low, high = flat.min(axis=0), flat.max(axis=0)
    span = float(max(high[0] - low[0], high[1] - low[1])) or 1.0
    scale = np.float32(side * (1 - 2 * _MARGIN) / span)
    centre = (low + high) / 2
    xs = (view[:, :, 0] - centre[0]) * scale + np.float32(side / 2)
    ys = np.float32(side / 2) - (view[:, :, 1] - centre[1]) * scale
    zs = view[:, :, 2]
    deadline.check()

    # Pixels whose centre (p + 0.5) can lie inside: ceil(min - 0.5) .. floor(max - 0.5).
    x0 = np.maximum(np.ceil(xs.min(axis=1) - 0.5), 0).astype(np.int64)
    x1 = np.minimum(np.floor(xs.max(axis=1) - 0.5), side - 1).astype(np.int64)
    y0 = np.maximum(np.ceil(ys.min(axis=1) - 0.5), 0).astype(np.int64)
    y1 = np.minimum(np.floor(ys.max(axis=1) - 0.5), side - 1).astype(np.int64)
    widths = np.maximum(x1 - x0 + 1, 0)
    counts = widths * np.maximum(y1 - y0 + 1, 0)

    # Barycentric weights l0, l1 and depth as a*x + b*y + c of the pixel centre.
    ax, bx, cx = xs[:, 0], xs[:, 1], xs[:, 2]
    ay, by, cy = ys[:, 0], ys[:, 1], ys[:, 2]
    area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
    counts[area == 0] = 0
    inverse = np.divide(1, area, out=np.zeros_like(area), where=area != 0)
    l0 = ((by - cy) * inverse, (cx - bx) * inverse, (bx * cy - cx * by) * inverse)
    l1 = ((cy - ay) * inverse, (ax - cx) * inverse, (cx * ay - ax * cy) * inverse)
    # z = l0 z0 + l1 z1 + (1 - l0 - l1) z2
    dz0, dz1, z2 = zs[:, 0] - zs[:, 2], zs[:, 1] - zs[:, 2], zs[:, 2]
    zp = (dz0 * l0[0] + dz1 * l1[0], dz0 * l0[1] + dz1 * l1[1], dz0 * l0[2] + dz1 * l1[2] + z2)
    covered = np.zeros(len(view), bool)

    # Triangles in chunks of about _CHUNK_CANDIDATES (pixel, triangle) pairs.
    drawn = np.flatnonzero(counts)
    cumulative = np.cumsum(counts[drawn])
    start = 0
    while start < len(drawn):
        before = int(cumulative[start - 1]) if start else 0
        end = int(np.searchsorted(cumulative, before + _CHUNK_CANDIDATES, side="right"))
        end = max(end, start + 1)
        chunk = drawn[start:end]
        start = end
        deadline.check()
        repeat = counts[chunk]
        owner = np.repeat(chunk, repeat)
        offsets = np.arange(len(owner)) - np.repeat(np.cumsum(repeat) - repeat, repeat)
        width = np.repeat(widths[chunk], repeat)
        px = np.repeat(x0[chunk], repeat) + offsets % width
        py = np.repeat(y0[chunk], repeat) + offsets // width
        fx = px.astype(np.float32) + np.float32(0.5)
        fy = py.astype(np.float32) + np.float32(0.5)
        w0 = _plane(l0, chunk, repeat, fx, fy)
        w1 = _plane(l1, chunk, repeat, fx, fy)
        inside = (w0 >= -1e-5) & (w1 >= -1e-5) & (w0 + w1 <= 1 + 1e-5)
        z = _plane(zp, chunk, repeat, fx, fy)[inside]
        owner, index = owner[inside], (py * side + px)[inside]
        covered[owner] = True
        _keep_nearest(depth, colour, index, z, shade[owner])

    # Triangles smaller than a pixel that hit no pixel centre: one dot (splat×splat).
    dots = np.flatnonzero(~covered)
    if len(dots):
        deadline.check()
        mx = xs[dots].mean(axis=1)
        my = ys[dots].mean(axis=1)
        mz = zs[dots].mean(axis=1).astype(np.float32)
        steps = np.arange(splat) - (splat - 1) / 2
        for dy in steps:
            for dx in steps:
                px = np.clip(np.floor(mx + dx), 0, side - 1).astype(np.int64)
                py = np.clip(np.floor(my + dy), 0, side - 1).astype(np.int64)
                _keep_nearest(depth, colour, py * side + px, mz, shade[dots])
    return depth.reshape(side, side), colour.reshape(side, side)


def _plane(
    coefficients: tuple[np.ndarray, np.ndarray, np.ndarray],
    chunk: np.ndarray, repeat: np.ndarray, fx: np.ndarray, fy: np.ndarray,
) -> np.ndarray:
    """a*x + b*y + c at each candidate pixel centre, a, b, c taken from its triangle."""
    a, b, c = (np.repeat(k[chunk], repeat) for k in coefficients)
    result: np.ndarray = a * fx + b * fy + c
    return result


def _keep_nearest(
    depth: np.ndarray, colour: np.ndarray, index: np.ndarray, z: np.ndarray, shade: np.ndarray
) -> None:
    """Depth test: for each pixel keep the fragment nearest the viewer (largest z)."""
    if len(index) == 0:
        return
    order = np.lexsort((z, index))
    index, z, shade = index[order], z[order], shade[order]
    last = np.ones(len(index), bool)
    last[:-1] = index[1:] != index[:-1]
    index, z, shade = index[last], z[last], shade[last]
    nearer = z > depth[index]
    depth[index[nearer]] = z[nearer]
    colour[index[nearer]] = shade[nearer]


# --- the whole job --------------------------------------------------------------------


def make_thumbnail(
    path: Path,
    extension: str,
    size: int = THUMBNAIL_SIZE,
    max_faces: int = MAX_RENDER_FACES,
    limits: ArchiveLimits = DEFAULT_LIMITS,
    time_limit: float | None = TIME_LIMIT,
) -> Thumbnail:
    """The thumbnail of the model at ``path`` and its size.

    A ``.3mf`` with its own PNG picture (:func:`plate_image`) gives that picture as it
    is; anything else is drawn (:func:`render_triangles`). The mesh is read either way
    for ``size_mm``; when only that fails for a 3MF with a picture, ``size_mm`` is None.
    Raises :class:`ThumbnailError` when it takes more than ``time_limit`` seconds, when
    the mesh has no triangles or too many, and :class:`UnsupportedFileError` when the
    file cannot be read.
    """
    started = time.monotonic()
    extension = extension.lower()
    with stop_after(time_limit) as deadline:
        picture: bytes | None = None
        source = "rendered"
        if extension == ".3mf":
            found = _picture(path, limits)
            if found is not None:
                source, picture = found
        deadline.check()
        try:
            triangles = load_triangles(path, extension, limits)
        except (UnsupportedFileError, ThumbnailError):
            if picture is None:
                raise
            return Thumbnail(picture, source, None, None, None,
                             round(time.monotonic() - started, 3))
        deadline.check()
        if picture is not None:
            return Thumbnail(picture, source, _extents(triangles), len(triangles), None,
                             round(time.monotonic() - started, 3))
        png, drawn = render_triangles(triangles, size, max_faces, deadline)
        return Thumbnail(png, "rendered", _extents(triangles), len(triangles), drawn,
                         round(time.monotonic() - started, 3))

