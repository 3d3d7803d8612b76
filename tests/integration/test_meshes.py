"""adapters.meshes against real files (../shared/fixtures) and hostile ones made on the fly.

The figures asserted for the real files are the ones in ``shared/fixtures/README.md``,
measured there by an independent reader (trimesh 4.x and the files' own metadata).
"""

from __future__ import annotations

import io
import random
import struct
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.meshes import (
    ArchiveLimits,
    ModelInfo,
    check_zip,
    inspect_model,
    model_extension,
    read_slice_estimate,
    sliced_extension,
)
from adapters.meshes.sliced import SCAN_BYTES, parse_duration
from printcore.errors import UnsupportedFileError
from printcore.slicing import SliceEstimate

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures"
MODELS = FIXTURES / "models"
SLICED = FIXTURES / "sliced"

MODEL_ADVICE = "export it again from your CAD program as STL, OBJ or 3MF"
SLICED_ADVICE = "slice the model again"
INCH = 25.4

# The README table gives extents rounded to 2 decimals (1.375 shows as 1.38), so the
# honest tolerance is half a unit of the last digit, not a relative 1e-3.
TABLE_ROUNDING = 0.005 + 1e-9

# README "models/" table: file, format, faces, extents (file units), watertight.
MODEL_TABLE = [
    ("rear_case.stl", "stl-binary", 18_808, (88.01, 22.30, 100.97), True),
    ("Moon.stl", "stl-binary", 116, (1.63, 0.35, 3.00), True),
    ("HalfDonut_ascii.stl", "stl-ascii", 288, (3.00, 0.50, 3.00), True),
    ("fandisk.obj", "obj", 5_750, (1.69, 0.86, 1.56), True),
    ("featuretype.3mf", "3mf", 2_208, (5.00, 2.50, 1.38), False),
    ("Original3DBenchy.3mf", "3mf", 225_154, (60.0, 31.0, 48.0), False),
]

# A unit cube: 8 vertices, 12 triangles, closed.
CUBE_VERTICES = [
    (0, 0, 0),
    (1, 0, 0),
    (1, 1, 0),
    (0, 1, 0),
    (0, 0, 1),
    (1, 0, 1),
    (1, 1, 1),
    (0, 1, 1),
]
CUBE_TRIANGLES = [
    (0, 2, 1), (0, 3, 2), (4, 5, 6), (4, 6, 7), (0, 1, 5), (0, 5, 4),
    (1, 2, 6), (1, 6, 5), (2, 3, 7), (2, 7, 6), (3, 0, 4), (3, 4, 7),
]  # fmt: skip
CORE_NS = "http://schemas.microsoft.com/3dmanufacturing/core/2015/02"
PROD_NS = "http://schemas.microsoft.com/3dmanufacturing/production/2015/06"
ELF = b"\x7fELF\x02\x01\x01\x00" + bytes(56) + b"\x00" * 4000
MZ = (
    b"MZ\x90\x00\x03\x00\x00\x00\x04\x00"
    + bytes(50)
    + b"This program cannot be run in DOS mode.\r\n"
)


# --- helpers ----------------------------------------------------------------------------


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def make_zip(
    path: Path, entries: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED
) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in entries.items():
            archive.writestr(zipfile.ZipInfo(name), data, compress_type=compression)
    return path


def mesh_object(object_id: int, vertices=CUBE_VERTICES, triangles=CUBE_TRIANGLES) -> str:
    points = "".join(f'<vertex x="{x}" y="{y}" z="{z}"/>' for x, y, z in vertices)
    faces = "".join(f'<triangle v1="{a}" v2="{b}" v3="{c}"/>' for a, b, c in triangles)
    return (
        f'<object id="{object_id}" type="model"><mesh><vertices>{points}</vertices>'
        f"<triangles>{faces}</triangles></mesh></object>"
    )


def model_xml(resources: str, build: str, unit: str = "millimeter", prolog: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{prolog}'
        f'<model unit="{unit}" xml:lang="en-US" xmlns="{CORE_NS}" xmlns:p="{PROD_NS}">'
        f"<resources>{resources}</resources><build>{build}</build></model>"
    ).encode()


def refusal(call, *args, **kwargs) -> str:
    """Run ``call``, require an UnsupportedFileError, return its message."""
    with pytest.raises(UnsupportedFileError) as caught:
        call(*args, **kwargs)
    message = str(caught.value)
    assert caught.value.fields == {"file": message}
    return message


def refused_model(path: Path, extension: str, *, limits: ArchiveLimits | None = None) -> str:
    kwargs = {} if limits is None else {"limits": limits}
    message = refusal(inspect_model, path, extension, **kwargs)
    assert MODEL_ADVICE in message
    return message


def refused_sliced(path: Path, extension: str, *, limits: ArchiveLimits | None = None) -> str:
    kwargs = {} if limits is None else {"limits": limits}
    message = refusal(read_slice_estimate, path, extension, **kwargs)
    assert SLICED_ADVICE in message
    return message


@pytest.fixture
def forbid_expansion(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Call it once the test's archive is written: then opening any ZIP entry fails the test."""

    def forbidden(*_: object, **__: object) -> None:
        raise AssertionError("an entry was opened for reading before the archive was refused")

    def forbid() -> None:
        monkeypatch.setattr(zipfile.ZipFile, "open", forbidden)

    return forbid


# --- extensions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Part.STL", ".stl"),
        ("bracket v2.obj", ".obj"),
        ("C:\\fakepath\\gear.3Mf", ".3mf"),
        ("plate.gcode.3mf", ".3mf"),
        ("virus.stl.exe", None),
        ("model.step", None),
        (".stl", None),
        ("stl", None),
        ("", None),
    ],
)
def test_model_extension(name: str, expected: str | None) -> None:
    assert model_extension(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("wormdrive - wormdrive.GCODE.3MF", ".gcode.3mf"),
        ("project.3mf", ".3mf"),
        ("plate_1.gcode", ".gcode"),
        ("plate_1.gcode.txt", None),
        ("part.stl", None),
        (".gcode", None),
    ],
)
def test_sliced_extension(name: str, expected: str | None) -> None:
    assert sliced_extension(name) == expected


# --- real models (README table) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "format_", "faces", "extents", "watertight"),
    MODEL_TABLE,
    ids=[row[0] for row in MODEL_TABLE],
)
def test_every_fixture_model_is_accepted_with_the_readme_figures(
    name: str,
    format_: str,
    faces: int,
    extents: tuple[float, float, float],
    watertight: bool,
) -> None:
    path = MODELS / name
    extension = model_extension(name)
    assert extension is not None

    info = inspect_model(path, extension)

    assert isinstance(info, ModelInfo)
    assert info.format == format_
    assert info.faces == faces
    assert info.watertight is watertight
    measured = info.extents
    if name == "featuretype.3mf":
        # Its 3D/3dmodel.model says unit="inch"; the README gives file units, we give mm.
        measured = tuple(value / INCH for value in info.extents)
    assert measured == pytest.approx(extents, rel=1e-3, abs=TABLE_ROUNDING)


def test_every_file_in_models_is_covered_by_the_table() -> None:
    on_disk = {path.name for path in MODELS.iterdir() if model_extension(path.name)}
    assert on_disk == {row[0] for row in MODEL_TABLE}


# --- real sliced files (README table) ---------------------------------------------------


def test_wormdrive_gcode_3mf_slice_info() -> None:
    estimate = read_slice_estimate(SLICED / "wormdrive.gcode.3mf", ".gcode.3mf")
    assert estimate.seconds == 3256
    assert estimate.grams == pytest.approx(10.48)
    assert estimate.slicer is not None and "01.09.07.52" in estimate.slicer
    assert estimate.source == "Metadata/slice_info.config"


def test_bambu_gcode_with_zero_weight_has_unknown_grams() -> None:
    estimate = read_slice_estimate(SLICED / "square_ring_plate_1.gcode", ".gcode")
    assert estimate.seconds == 34
    assert estimate.grams is None  # "total filament weight [g] : 0.00": no density
    assert estimate.slicer == "BambuStudio 01.09.07.52"
    assert estimate.source == "G-code header"


def test_unsliced_bambu_project_gives_an_empty_estimate() -> None:
    estimate = read_slice_estimate(MODELS / "Original3DBenchy.3mf", ".3mf")
    assert (estimate.seconds, estimate.grams) == (None, None)
    assert not estimate.known
    assert estimate.slicer == "BambuStudio 02.00.01.50"


def test_plain_3mf_without_slicer_data_gives_an_empty_estimate() -> None:
    estimate = read_slice_estimate(MODELS / "featuretype.3mf", ".3mf")
    assert estimate == SliceEstimate(seconds=None, grams=None, slicer=None, source=estimate.source)


def test_gcode_3mf_without_slice_info_falls_back_to_the_plate_gcode(tmp_path: Path) -> None:
    stripped = tmp_path / "wormdrive.gcode.3mf"
    with (
        zipfile.ZipFile(SLICED / "wormdrive.gcode.3mf") as source,
        zipfile.ZipFile(stripped, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            if info.filename != "Metadata/slice_info.config":
                target.writestr(info, source.read(info))

    estimate = read_slice_estimate(stripped, ".gcode.3mf")

    # Header: "total estimated time: 54m 16s" = 3256 s, "total filament weight [g] : 10.48".
    assert estimate.seconds == 3256
    assert estimate.grams == pytest.approx(10.48)
    assert estimate.slicer == "BambuStudio 01.09.07.52"
    assert estimate.source == "Metadata/plate_1.gcode header"


def test_slice_info_sums_plates_and_ignores_zero(tmp_path: Path) -> None:
    slice_info = b"""<?xml version="1.0" encoding="UTF-8"?>
<config>
  <header><header_item key="X-BBL-Client-Version" value="02.01.00.59"/></header>
  <plate><metadata key="index" value="1"/><metadata key="prediction" value="600"/>
         <metadata key="weight" value="1.25"/></plate>
  <plate><metadata key="index" value="2"/><metadata key="prediction" value="3000"/>
         <metadata key="weight" value="0.00"/></plate>
  <plate><metadata key="index" value="3"/><metadata key="prediction" value=""/>
         <metadata key="weight" value="2.5"/></plate>
</config>"""
    path = make_zip(tmp_path / "three.gcode.3mf", {"Metadata/slice_info.config": slice_info})

    estimate = read_slice_estimate(path, ".gcode.3mf")

    assert estimate.seconds == 3600
    assert estimate.grams == pytest.approx(3.75)
    assert estimate.slicer is not None and "02.01.00.59" in estimate.slicer


# --- synthetic G-code in each slicer's comment style ------------------------------------


def gcode_body(lines: int) -> str:
    return "".join(f"G1 X{i % 200}.125 Y{i % 150}.5 E0.01234\n" for i in range(lines))


def test_prusaslicer_footer_is_read_from_the_end_of_a_large_file(tmp_path: Path) -> None:
    text = (
        "; generated by PrusaSlicer 2.7.1+win64 on 2024-01-05 at 10:11:12 UTC\n"
        ";\n; external perimeters extrusion width = 0.45mm\n\n"
        "M73 P0 R1563\nG28 ; home all axes\n"
        + gcode_body(20_000)
        + "M73 P100 R0\n; objects_info = {}\n"
        "; filament used [mm] = 1234.56, 678.90\n"
        "; filament used [cm3] = 2.97, 1.63\n"
        "; filament used [g] = 3.68, 2.02\n"
        "; filament cost = 0.07, 0.04\n"
        "; total filament used [g] = 5.70\n"
        "; total filament cost = 0.11\n"
        "; estimated printing time (normal mode) = 1d 2h 3m 4s\n"
        "; estimated printing time (silent mode) = 1d 3h 0m 0s\n"
        "; estimated first layer printing time (normal mode) = 2m 9s\n\n"
        "; prusaslicer_config = begin\n; avoid_crossing_perimeters = 0\n"
        "; bed_temperature = 60\n; prusaslicer_config = end\n"
    )
    path = write(tmp_path / "benchy_0.2mm_PLA.gcode", text.encode())
    assert path.stat().st_size > 4 * SCAN_BYTES

    estimate = read_slice_estimate(path, ".gcode")

    assert estimate.seconds == 93_784
    assert estimate.grams == pytest.approx(5.70)
    assert estimate.slicer == "PrusaSlicer 2.7.1+win64"
    assert estimate.source == "G-code footer"


def test_prusaslicer_per_extruder_grams_are_summed(tmp_path: Path) -> None:
    text = (
        "; generated by PrusaSlicer 2.6.0 on 2023-09-01 at 08:00:00 UTC\nG28\n"
        + gcode_body(100)
        + "; filament used [g] = 1.2, 3.4\n"
        "; estimated printing time (normal mode) = 2h 0m\n"
    )
    estimate = read_slice_estimate(write(tmp_path / "two.gcode", text.encode()), ".gcode")
    assert estimate.seconds == 7200
    assert estimate.grams == pytest.approx(4.6)


def test_cura_header(tmp_path: Path) -> None:
    text = (
        ";FLAVOR:Marlin\n;TIME:6234\n;Filament used: 1.23456m\n;Layer height: 0.2\n"
        ";MINX:90.1\n;MINY:95.2\n;MINZ:0.2\n;MAXX:140.3\n;MAXY:130.4\n;MAXZ:48\n"
        ";TARGET_MACHINE.NAME:Creality Ender-3\n"
        ";Generated with Cura_SteamEngine 5.6.0\nM140 S60\nM105\nM190 S60\n"
        ";LAYER_COUNT:240\n;LAYER:0\n"
        + gcode_body(200)
        + ";TIME_ELAPSED:6233.9\nM140 S0\nM84\n;End of Gcode\n"
    )
    estimate = read_slice_estimate(write(tmp_path / "CE3_part.gcode", text.encode()), ".gcode")
    assert estimate.seconds == 6234
    assert estimate.grams is None  # Cura gives metres of filament, not grams
    assert estimate.slicer == "Cura_SteamEngine 5.6.0"
    assert estimate.source == "G-code header"


def test_orcaslicer_style_header_with_model_and_total_time(tmp_path: Path) -> None:
    text = (
        "; HEADER_BLOCK_START\n; generated by OrcaSlicer 2.1.1 on 2024-06-01 at 12:00:00\n"
        "; model printing time: 1h 2m 3s; total estimated time: 1h 10m 0s\n"
        "; total filament weight [g] : 42.00\n; HEADER_BLOCK_END\nG28\n" + gcode_body(50)
    )
    estimate = read_slice_estimate(write(tmp_path / "orca.gcode", text.encode()), ".gcode")
    assert estimate.seconds == 4200  # the total, not the model-only time
    assert estimate.grams == pytest.approx(42.0)
    assert estimate.slicer == "OrcaSlicer 2.1.1"


def test_gcode_without_estimate_gives_both_none(tmp_path: Path) -> None:
    path = write(tmp_path / "hand.gcode", b"; written by hand\nG28\nG1 X10 Y10 F3000\nM84\n")
    estimate = read_slice_estimate(path, ".gcode")
    assert (estimate.seconds, estimate.grams, estimate.slicer) == (None, None, None)
    assert "no estimate" in estimate.source


def test_only_the_ends_of_a_gcode_are_read(tmp_path: Path) -> None:
    middle = "; estimated printing time (normal mode) = 5m\n; total filament used [g] = 9\n"
    text = "G28\n" + gcode_body(20_000) + middle + gcode_body(20_000)
    estimate = read_slice_estimate(write(tmp_path / "long.gcode", text.encode()), ".gcode")
    assert (estimate.seconds, estimate.grams) == (None, None)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1d 2h 3m 4s", 93_784),
        ("54m 16s", 3256),
        ("34s", 34),
        ("2h 0m", 7200),
        (" 1h 5s ", 3605),
        ("6234", 6234),
        ("6233.6", 6234),
        ("", None),
        ("0s", None),
        ("0", None),
        ("0d 0h 0m 0s", None),
        ("soon", None),
        ("5 minutes", None),
    ],
)
def test_parse_duration(text: str, seconds: int | None) -> None:
    assert parse_duration(text) == seconds


# --- refused models -------------------------------------------------------------------


@pytest.mark.parametrize("extension", [".stl", ".obj", ".3mf"])
def test_empty_file_is_refused(tmp_path: Path, extension: str) -> None:
    message = refused_model(write(tmp_path / f"empty{extension}", b""), extension)
    assert "empty" in message


@pytest.mark.parametrize("extension", [".stl", ".obj", ".3mf"])
def test_random_bytes_are_refused(tmp_path: Path, extension: str) -> None:
    noise = random.Random(20240601).randbytes(10_000)
    refused_model(write(tmp_path / f"noise{extension}", noise), extension)


@pytest.mark.parametrize("extension", [".stl", ".obj", ".3mf"])
@pytest.mark.parametrize(
    ("program", "described"), [(ELF, "Linux program"), (MZ, "Windows program")]
)
def test_renamed_executable_is_refused(
    tmp_path: Path, extension: str, program: bytes, described: str
) -> None:
    message = refused_model(write(tmp_path / f"setup{extension}", program), extension)
    assert f"it is a {described}, not a 3D model" in message


def test_truncated_binary_stl_is_refused(tmp_path: Path) -> None:
    data = (MODELS / "Moon.stl").read_bytes()
    message = refused_model(write(tmp_path / "moon.stl", data[:-30]), ".stl")
    assert "announces 116 triangles" in message and "truncated" in message


def test_binary_stl_whose_count_lies_is_refused(tmp_path: Path) -> None:
    data = bytearray((MODELS / "Moon.stl").read_bytes())
    data[80:84] = struct.pack("<I", 10_000_000)
    message = refused_model(write(tmp_path / "moon.stl", bytes(data)), ".stl")
    assert "10,000,000 triangles" in message


def test_binary_stl_with_solid_header_is_binary(tmp_path: Path) -> None:
    header = b"solid exported by a CAD program that writes 'solid' in binary headers".ljust(80)
    triangle = struct.pack("<12fH", 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0)
    path = write(tmp_path / "solid.stl", header + struct.pack("<I", 1) + triangle)

    info = inspect_model(path, ".stl")

    assert (info.format, info.faces, info.watertight) == ("stl-binary", 1, False)
    assert info.extents == pytest.approx((1.0, 1.0, 0.0))


def test_binary_stl_with_no_triangles_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "none.stl", bytes(80) + struct.pack("<I", 0))
    assert "no triangles" in refused_model(path, ".stl")


def test_ascii_solid_without_facets_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "hollow.stl", b"solid nothing\nendsolid nothing\n")
    assert "without any triangles" in refused_model(path, ".stl")


def test_ascii_stl_with_garbage_numbers_is_refused(tmp_path: Path) -> None:
    text = b"solid a\nfacet normal 0 0 0\nouter loop\nvertex a b c\nvertex 1 2\nendloop\nendfacet\n"
    message = refused_model(write(tmp_path / "bad.stl", text), ".stl")
    assert "could not be read" in message or "no triangles" in message


def test_obj_without_vertices_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "notes.obj", b"# my notes\nhello world\n")
    assert "no vertex lines" in refused_model(path, ".obj")


def test_obj_without_faces_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "points.obj", b"v 0 0 0\nv 1 0 0\nv 0 1 0\n")
    assert "no triangles" in refused_model(path, ".obj")


def test_obj_with_a_face_on_a_missing_vertex_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "broken.obj", b"v 0 0 0\nf 1 2 9\n")
    refused_model(path, ".obj")


# --- 3MF read here (components, transforms, units) ---------------------------------------


def test_3mf_components_transforms_and_units(tmp_path: Path) -> None:
    resources = (
        mesh_object(1)
        + '<object id="2" type="model"><components>'
        + '<component objectid="1" transform="1 0 0 0 2 0 0 0 3 0 0 0"/>'
        + "</components></object>"
    )
    # Item: 90 degrees about z, then moved; the 1x2x3 box becomes 2x1x3 (cm).
    build = '<item objectid="2" transform="0 1 0 -1 0 0 0 0 1 100 100 0"/>'
    path = make_zip(
        tmp_path / "box.3mf", {"3D/3dmodel.model": model_xml(resources, build, "centimeter")}
    )

    info = inspect_model(path, ".3mf")

    assert info == ModelInfo(format="3mf", faces=12, extents=info.extents, watertight=True)
    assert info.extents == pytest.approx((20.0, 10.0, 30.0))


def test_3mf_component_in_another_model_part(tmp_path: Path) -> None:
    part = model_xml(mesh_object(7), "")
    root = model_xml(
        '<object id="1" type="model"><components>'
        '<component p:path="/3D/Objects/object_7.model" objectid="7"/>'
        "</components></object>",
        '<item objectid="1"/><item objectid="1" transform="1 0 0 0 1 0 0 0 1 5 0 0"/>',
    )
    path = make_zip(
        tmp_path / "parts.3mf",
        {"3D/3dmodel.model": root, "3D/Objects/object_7.model": part},
    )
    info = inspect_model(path, ".3mf")
    assert info.faces == 24
    assert info.extents == pytest.approx((6.0, 1.0, 1.0))


def test_3mf_without_3dmodel_is_refused(tmp_path: Path) -> None:
    path = make_zip(
        tmp_path / "docs.3mf", {"word/document.xml": b"<w/>", "[Content_Types].xml": b"<T/>"}
    )
    assert "3D/3dmodel.model" in refused_model(path, ".3mf")


def test_3mf_with_an_empty_build_is_refused(tmp_path: Path) -> None:
    # A Bambu .gcode.3mf uploaded as a model: its 3dmodel.model holds no mesh.
    assert "no triangles" in refused_model(SLICED / "wormdrive.gcode.3mf", ".3mf")


def test_3mf_with_a_triangle_on_a_missing_vertex_is_refused(tmp_path: Path) -> None:
    broken = mesh_object(1, triangles=[*CUBE_TRIANGLES, (0, 1, 99)])
    path = make_zip(
        tmp_path / "bad.3mf", {"3D/3dmodel.model": model_xml(broken, '<item objectid="1"/>')}
    )
    assert "vertex that does not exist" in refused_model(path, ".3mf")


def test_3mf_with_an_entity_declaration_is_refused(tmp_path: Path) -> None:
    laughs = '<!DOCTYPE model [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
    xml = model_xml(mesh_object(1), '<item objectid="1"/>', prolog=laughs)
    path = make_zip(tmp_path / "laughs.3mf", {"3D/3dmodel.model": xml})
    assert "DTD" in refused_model(path, ".3mf")


def test_3mf_that_refers_to_itself_is_refused(tmp_path: Path) -> None:
    loop = '<object id="1" type="model"><components><component objectid="1"/></components></object>'
    path = make_zip(
        tmp_path / "loop.3mf", {"3D/3dmodel.model": model_xml(loop, '<item objectid="1"/>')}
    )
    assert "too deeply" in refused_model(path, ".3mf")


def test_3mf_with_broken_xml_is_refused(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "cut.3mf", {"3D/3dmodel.model": model_xml(mesh_object(1), "")[:300]})
    assert "damaged" in refused_model(path, ".3mf")


# --- hostile archives -------------------------------------------------------------------


def zip_bomb(path: Path, entry: str, megabytes: int = 64) -> Path:
    """One entry of ``megabytes`` MB of zeros, streamed: the archive stays ~65 KB."""
    chunk = bytes(1 << 20)
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive,
        archive.open(entry, "w") as stream,
    ):
        for _ in range(megabytes):
            stream.write(chunk)
    return path


def test_zip_bomb_model_is_refused_before_expansion(
    tmp_path: Path, forbid_expansion: Callable[[], None]
) -> None:
    path = zip_bomb(tmp_path / "bomb.3mf", "3D/3dmodel.model")
    assert path.stat().st_size < 200_000
    forbid_expansion()

    started = time.perf_counter()
    message = refused_model(path, ".3mf")

    assert time.perf_counter() - started < 1.0
    assert "ZIP bomb" in message and "67,108,864 bytes" in message


def test_zip_bomb_sliced_file_is_refused_before_expansion(
    tmp_path: Path, forbid_expansion: Callable[[], None]
) -> None:
    path = zip_bomb(tmp_path / "bomb.gcode.3mf", "Metadata/plate_1.gcode")
    forbid_expansion()
    assert "ZIP bomb" in refused_sliced(path, ".gcode.3mf")


def test_total_declared_size_over_the_limit_is_refused(
    tmp_path: Path, forbid_expansion: Callable[[], None]
) -> None:
    noise = random.Random(7).randbytes(300_000)  # incompressible: ratio ~1
    path = make_zip(tmp_path / "big.3mf", {"3D/3dmodel.model": noise, "3D/other.model": noise})
    limits = ArchiveLimits(max_uncompressed_bytes=500_000)
    forbid_expansion()
    assert "would expand to 600,000 bytes" in refused_model(path, ".3mf", limits=limits)


def test_ratio_check_uses_the_limits(tmp_path: Path, forbid_expansion: Callable[[], None]) -> None:
    path = make_zip(tmp_path / "zeros.3mf", {"3D/3dmodel.model": bytes(50_000)})
    limits = ArchiveLimits(max_ratio=10, ratio_min_bytes=10_000)
    forbid_expansion()
    assert "ZIP bomb" in refused_model(path, ".3mf", limits=limits)


def test_too_many_entries_are_refused_before_zipfile_reads_the_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = {f"Auxiliaries/{i}.txt": b"" for i in range(10_001)}
    path = make_zip(tmp_path / "many.3mf", entries, compression=zipfile.ZIP_STORED)

    def forbidden(*_: object, **__: object) -> None:
        raise AssertionError("zipfile parsed the directory of a refused archive")

    monkeypatch.setattr(zipfile, "ZipFile", forbidden)
    assert "10,001 files, more than the 10,000 allowed" in refused_model(path, ".3mf")


@pytest.mark.parametrize("name", ["../evil.model", "3D/../../evil", "/etc/cron.d/evil", "C:/evil"])
def test_entry_names_outside_the_archive_are_refused(
    tmp_path: Path, name: str, forbid_expansion: Callable[[], None]
) -> None:
    xml = model_xml(mesh_object(1), '<item objectid="1"/>')
    path = make_zip(tmp_path / "escape.3mf", {"3D/3dmodel.model": xml, name: b"x"})
    forbid_expansion()
    for message in (refused_model(path, ".3mf"), refused_sliced(path, ".3mf")):
        assert repr(name) in message
        assert "'..'" in message or "absolute path" in message


def patch_declared_size(path: Path, entry: str, size: int) -> None:
    """Rewrite the uncompressed size in the entry's local and central headers."""
    data = bytearray(path.read_bytes())
    name = entry.encode()
    local = data.find(b"PK\x03\x04")
    while data[local + 30 : local + 30 + len(name)] != name:
        local = data.find(b"PK\x03\x04", local + 4)
    data[local + 22 : local + 26] = struct.pack("<I", size)
    central = data.find(b"PK\x01\x02")
    while data[central + 46 : central + 46 + len(name)] != name:
        central = data.find(b"PK\x01\x02", central + 4)
    data[central + 24 : central + 28] = struct.pack("<I", size)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_entry_larger_than_its_header_says_is_refused(tmp_path: Path, compression: int) -> None:
    xml = model_xml(mesh_object(1), '<item objectid="1"/>')
    path = make_zip(tmp_path / "liar.3mf", {"3D/3dmodel.model": xml}, compression)
    patch_declared_size(path, "3D/3dmodel.model", 100)

    message = refused_model(path, ".3mf")

    assert "3D/3dmodel.model" in message


def test_safe_reader_counts_the_bytes_it_gets(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "a.zip", {"data.bin": b"1234567890"})
    with check_zip(path, ArchiveLimits()) as archive:
        info = archive.find("DATA.BIN")
        assert info is not None and archive.read(info) == b"1234567890"
        # A reader that produces more than declared (what a lying header amounts to).
        archive.zipfile.open = lambda *_, **__: io.BytesIO(b"x" * 50)  # type: ignore[method-assign]
        with pytest.raises(UnsupportedFileError, match="more data than its header declares"):
            archive.read(info)


# --- refused sliced files -------------------------------------------------------------


def test_png_renamed_gcode_is_refused(tmp_path: Path) -> None:
    with zipfile.ZipFile(SLICED / "wormdrive.gcode.3mf") as archive:
        png = archive.read("Metadata/plate_1.png")
    assert "PNG image" in refused_sliced(write(tmp_path / "plate_1.gcode", png), ".gcode")
    message = refused_sliced(write(tmp_path / "plate_1.gcode.3mf", png), ".gcode.3mf")
    assert "PNG image" in message


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty"),
        (b"\n\n  \n", "empty"),
        (random.Random(3).randbytes(5000), "binary"),
        (ELF, "Linux program"),
        (b"GCDE\x01\x00\x00\x00binary gcode", "binary G-code"),
        (b"Dear lab, please print my file at 0.2 mm.\n", "not G-code"),
    ],
)
def test_non_gcode_is_refused(tmp_path: Path, content: bytes, reason: str) -> None:
    assert reason in refused_sliced(write(tmp_path / "x.gcode", content), ".gcode")


def test_3mf_with_no_slice_data_and_no_model_is_refused(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "empty.gcode.3mf", {"readme.txt": b"hello"})
    assert "no slicer results" in refused_sliced(path, ".gcode.3mf")


def test_3mf_whose_plate_gcode_is_an_image_is_refused(tmp_path: Path) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(100)
    path = make_zip(tmp_path / "odd.gcode.3mf", {"Metadata/plate_1.gcode": png})
    assert "'Metadata/plate_1.gcode' is a PNG image" in refused_sliced(path, ".gcode.3mf")


# --- nothing foreign escapes --------------------------------------------------------------

_SEEDS = {
    ".stl": (MODELS / "HalfDonut_ascii.stl").read_bytes()[:4000],
    ".obj": (MODELS / "fandisk.obj").read_bytes()[:4000],
    ".3mf": (MODELS / "featuretype.3mf").read_bytes(),
    ".gcode": (SLICED / "square_ring_plate_1.gcode").read_bytes()[:4000],
    "moon.stl": (MODELS / "Moon.stl").read_bytes(),
}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # trimesh merging NaN vertices
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(sorted(_SEEDS)),
    cut=st.one_of(st.none(), st.integers(min_value=0, max_value=4000)),
    patch_at=st.integers(min_value=0, max_value=30_000),
    patch=st.binary(max_size=16),
)
def test_damaged_real_files_give_a_result_or_an_unsupported_file_error(
    seed: str, cut: int | None, patch_at: int, patch: bytes
) -> None:
    extension = "." + seed.rsplit(".", 1)[1]
    data = bytearray(_SEEDS[seed][:cut])
    if data:
        at = patch_at % len(data)
        data[at : at + len(patch)] = patch
    with tempfile.TemporaryDirectory() as folder:
        path = write(Path(folder) / f"fuzz{extension}", bytes(data))
        try:
            if extension == ".gcode":
                assert isinstance(read_slice_estimate(path, extension), SliceEstimate)
            else:
                assert isinstance(inspect_model(path, extension), ModelInfo)
        except UnsupportedFileError as error:
            assert error.message.endswith(".")


def test_a_large_binary_stl_is_measured_without_the_watertight_test(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Above WATERTIGHT_MAX_FACES the fast path (trimesh's binary STL reader + numpy)
    must give the same faces and extents as the README table."""
    from adapters.meshes import models

    monkeypatch.setattr(models, "WATERTIGHT_MAX_FACES", 100)
    info = models.inspect_model(FIXTURES / "models" / "rear_case.stl", ".stl")
    assert (info.format, info.faces, info.watertight) == ("stl-binary", 18_808, None)
    assert info.extents == pytest.approx((88.01, 22.30, 100.97), abs=0.005)
