"""Thumbnails (issue 12): every real model gives a PNG, a 3MF's own picture is used, a
broken file fails clearly, a huge mesh is sampled down or stopped within the time limit,
and the routes serve a thumbnail made once and kept beside the job's files.

PNGs are checked with Pillow (an independent decoder): signature, decoded size and
pixels that are not background. Model sizes are checked against the figures in
``../shared/fixtures/README.md`` (measured there with trimesh from the files).
"""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import struct
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from adapters.meshes.thumbnails import (
    MAX_RENDER_FACES,
    PNG_SIGNATURE,
    THUMBNAIL_SIZE,
    TIME_LIMIT,
    ThumbnailError,
    load_triangles,
    make_thumbnail,
    model_size_mm,
    plate_image,
    render_thumbnail,
    render_triangles,
)
from adapters.web.inspection import THUMBNAIL_GRACE_SECONDS, Inspector
from printcore.errors import UnsupportedFileError

#: file → extents in mm from the fixtures README (featuretype.3mf is in inches there).
FIXTURE_SIZES: dict[str, tuple[float, float, float]] = {
    "rear_case.stl": (88.01, 22.30, 100.97),
    "Moon.stl": (1.63, 0.35, 3.00),
    "HalfDonut_ascii.stl": (3.00, 0.50, 3.00),
    "fandisk.obj": (1.69, 0.86, 1.56),
    "featuretype.3mf": (5.00 * 25.4, 2.50 * 25.4, 1.375 * 25.4),
    "Original3DBenchy.3mf": (60.0, 31.0, 48.0),
}


def decode(png: bytes) -> Image.Image:
    assert png.startswith(PNG_SIGNATURE), png[:16]
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    image.load()
    return image


def foreground_share(image: Image.Image) -> float:
    """Share of pixels that differ from the corner pixel (the background)."""
    pixels = np.asarray(image.convert("RGBA")).reshape(-1, 4).astype(int)
    background = pixels[0]
    return float((np.abs(pixels - background).sum(axis=1) > 8).mean())


# --- the maker, on real files -----------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FIXTURE_SIZES))
def test_every_fixture_model_gives_a_png_with_the_model_on_it(fixtures_dir: Path, name: str) -> None:
    path = fixtures_dir / "models" / name
    started = time.monotonic()
    made = make_thumbnail(path, path.suffix, time_limit=TIME_LIMIT)
    assert time.monotonic() - started < TIME_LIMIT
    image = decode(made.png)
    if made.source == "rendered":
        assert image.size == (THUMBNAIL_SIZE, THUMBNAIL_SIZE)
        assert image.mode == "RGBA"
        assert made.faces_drawn == made.faces
    share = foreground_share(image)
    assert 0.05 < share < 0.95, share
    assert made.size_mm is not None
    assert made.size_mm == pytest.approx(FIXTURE_SIZES[name], abs=0.02)
    assert model_size_mm(path, path.suffix) == made.size_mm


def test_a_3mf_with_its_own_plate_picture_uses_it(fixtures_dir: Path) -> None:
    path = fixtures_dir / "models" / "Original3DBenchy.3mf"
    with zipfile.ZipFile(path) as archive:
        expected = archive.read("Metadata/plate_1.png")
    made = make_thumbnail(path, ".3mf")
    assert made.source == "Metadata/plate_1.png"
    assert made.png == expected
    assert plate_image(path) == expected
    assert made.faces == 225_154  # the mesh was read all the same, for the size


def test_a_3mf_without_a_picture_is_drawn(fixtures_dir: Path) -> None:
    path = fixtures_dir / "models" / "featuretype.3mf"
    assert plate_image(path) is None
    assert make_thumbnail(path, ".3mf").source == "rendered"


def test_render_thumbnail_draws_the_mesh_even_when_the_3mf_has_a_picture(
    fixtures_dir: Path,
) -> None:
    path = fixtures_dir / "models" / "Original3DBenchy.3mf"
    image = decode(render_thumbnail(path, ".3mf", size=128))
    assert image.size == (128, 128)
    assert foreground_share(image) > 0.1


def _with_entries(source: Path, target: Path, extra: dict[str, bytes],
                  drop: tuple[str, ...] = ()) -> Path:
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            if info.filename not in drop and info.filename not in extra:
                new.writestr(info.filename, old.read(info))
        for name, data in extra.items():
            new.writestr(name, data)
    return target


def _png_bytes(colour: tuple[int, int, int], side: int = 32) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), colour).save(buffer, "PNG")
    return buffer.getvalue()


def test_the_package_thumbnail_named_in_rels_is_used(fixtures_dir: Path, tmp_path: Path) -> None:
    picture = _png_bytes((200, 30, 30))
    rels = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        b'<Relationship Target="/3D/3dmodel.model" Id="rel0" '
        b'Type="http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"/>'
        b'<Relationship Target="/Metadata/cover.png" Id="rel1" '
        b'Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/thumbnail"/>'
        b"</Relationships>"
    )
    path = _with_entries(fixtures_dir / "models" / "featuretype.3mf", tmp_path / "rels.3mf",
                         {"_rels/.rels": rels, "Metadata/cover.png": picture})
    made = make_thumbnail(path, ".3mf")
    assert (made.source, made.png) == ("Metadata/cover.png", picture)


def test_a_plate_picture_that_is_not_a_png_is_ignored(fixtures_dir: Path, tmp_path: Path) -> None:
    path = _with_entries(fixtures_dir / "models" / "featuretype.3mf", tmp_path / "fake.3mf",
                         {"Metadata/plate_1.png": b"GIF89a not a png at all"})
    made = make_thumbnail(path, ".3mf")
    assert made.source == "rendered"
    assert decode(made.png).size == (THUMBNAIL_SIZE, THUMBNAIL_SIZE)


def test_the_sliced_files_plate_preview(fixtures_dir: Path) -> None:
    path = fixtures_dir / "sliced" / "wormdrive.gcode.3mf"
    with zipfile.ZipFile(path) as archive:
        assert plate_image(path) == archive.read("Metadata/plate_1.png")


# --- broken input -----------------------------------------------------------------------


def _broken_files(fixtures_dir: Path, tmp_path: Path) -> dict[str, tuple[Path, str]]:
    garbage = tmp_path / "garbage.stl"
    garbage.write_bytes(bytes(range(256)) * 7 + b"\x00")
    truncated = tmp_path / "truncated.3mf"
    truncated.write_bytes((fixtures_dir / "models" / "featuretype.3mf").read_bytes()[:5000])
    no_faces = tmp_path / "points.obj"
    no_faces.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\n")
    flat = tmp_path / "flat.stl"  # one triangle with all three corners in one point
    flat.write_bytes(b"\0" * 80 + struct.pack("<I", 1) + struct.pack("<12fH", *[0.0] * 12, 0))
    return {"garbage": (garbage, ".stl"), "truncated": (truncated, ".3mf"),
            "no faces": (no_faces, ".obj"), "degenerate": (flat, ".stl")}


@pytest.mark.parametrize("kind", ["garbage", "truncated", "no faces", "degenerate"])
def test_a_broken_file_fails_with_a_clear_message(fixtures_dir: Path, tmp_path: Path,
                                                 kind: str) -> None:
    path, extension = _broken_files(fixtures_dir, tmp_path)[kind]
    if kind == "degenerate":
        # A single point has a size (0 × 0 × 0) and draws an empty picture, not a crash.
        made = make_thumbnail(path, extension)
        assert made.size_mm == (0.0, 0.0, 0.0)
        assert foreground_share(decode(made.png)) == 0.0
        return
    with pytest.raises((ThumbnailError, UnsupportedFileError)) as failure:
        make_thumbnail(path, extension)
    message = str(failure.value)
    assert len(message) > 15 and "Traceback" not in message, message


def test_a_broken_file_through_the_isolated_inspector(fixtures_dir: Path, tmp_path: Path) -> None:
    path, extension = _broken_files(fixtures_dir, tmp_path)["truncated"]
    inspector = Inspector(isolated=True)
    try:
        with pytest.raises(UnsupportedFileError, match="3MF"):
            asyncio.run(inspector.thumbnail(path, extension))
        moon = fixtures_dir / "models" / "Moon.stl"
        made = asyncio.run(inspector.thumbnail(moon, ".stl"))  # the worker is still there
        assert decode(made.png).size == (THUMBNAIL_SIZE, THUMBNAIL_SIZE)
    finally:
        inspector.close_thumbnails()
        inspector.close()


# --- huge meshes ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_million_faces(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A binary STL of 2,000,000 triangles: a wavy 1000 × 1000 grid, 100 × 100 mm."""
    n = 1000
    grid = np.linspace(0.0, 100.0, n + 1, dtype=np.float32)
    x, y = np.meshgrid(grid, grid)
    z = (5 * np.sin(x / 8) * np.cos(y / 11)).astype(np.float32)
    points = np.stack([x, y, z], axis=-1)
    a, b = points[:-1, :-1].reshape(-1, 3), points[:-1, 1:].reshape(-1, 3)
    c, d = points[1:, :-1].reshape(-1, 3), points[1:, 1:].reshape(-1, 3)
    triangles = np.concatenate([np.stack([a, b, d], 1), np.stack([a, d, c], 1)])
    record = np.dtype([("normal", "<f4", (3,)), ("vertices", "<f4", (3, 3)), ("attr", "<u2")])
    records = np.zeros(len(triangles), record)
    records["vertices"] = triangles
    path = tmp_path_factory.mktemp("huge") / "two_million.stl"
    with path.open("wb") as handle:
        handle.write(b"printcore test mesh".ljust(80, b" ") + struct.pack("<I", len(records)))
        records.tofile(handle)
    assert path.stat().st_size == 84 + 50 * 2_000_000
    yield path
    path.unlink()


@pytest.mark.slow
def test_two_million_faces_are_sampled_down_within_the_time_limit(two_million_faces: Path) -> None:
    inspector = Inspector(isolated=True)
    limit = 60.0
    try:
        started = time.monotonic()
        made = asyncio.run(inspector.thumbnail(two_million_faces, ".stl", time_limit=limit))
        assert time.monotonic() - started < limit + THUMBNAIL_GRACE_SECONDS
    finally:
        inspector.close_thumbnails()
        inspector.close()
    assert made.faces == 2_000_000
    assert made.faces_drawn == MAX_RENDER_FACES
    assert made.size_mm == pytest.approx((100.0, 100.0, 10.0), abs=0.1)
    image = decode(made.png)
    assert image.size == (THUMBNAIL_SIZE, THUMBNAIL_SIZE)
    # Sampled, but without holes: it covers (nearly) every pixel the whole mesh covers.
    full, drawn = render_triangles(load_triangles(two_million_faces, ".stl"),
                                   max_faces=3_000_000)
    assert drawn == 2_000_000
    sampled_alpha = np.asarray(image)[..., 3]
    full_alpha = np.asarray(decode(full))[..., 3]
    assert (sampled_alpha == 255).sum() >= 0.97 * (full_alpha == 255).sum()
    assert ((full_alpha == 255) & (sampled_alpha == 0)).sum() == 0


@pytest.mark.slow
def test_a_worker_that_runs_out_of_time_is_stopped_and_the_next_one_works(
    two_million_faces: Path, fixtures_dir: Path,
) -> None:
    inspector = Inspector(isolated=True)
    try:
        started = time.monotonic()
        with pytest.raises(ThumbnailError, match="longer than 0.2 s"):
            asyncio.run(inspector.thumbnail(two_million_faces, ".stl", time_limit=0.2))
        assert time.monotonic() - started < 0.2 + THUMBNAIL_GRACE_SECONDS
        made = asyncio.run(inspector.thumbnail(fixtures_dir / "models" / "Moon.stl", ".stl"))
        assert decode(made.png).size == (THUMBNAIL_SIZE, THUMBNAIL_SIZE)
    finally:
        inspector.close_thumbnails()
        inspector.close()


def test_the_time_limit_also_stops_the_maker_in_a_thread(two_million_faces: Path) -> None:
    """Without the process (``isolated=False``), the maker's own checks stop it."""
    inspector = Inspector(isolated=False)
    with pytest.raises(ThumbnailError, match="longer than"):
        asyncio.run(inspector.thumbnail(two_million_faces, ".stl", time_limit=0.05))


# --- the routes, in the real app built in-process ---------------------------------------

PASSWORD = "thumbnail test password"
STAFF = "Grace Hopper"


def _mount(app: Any) -> None:
    """Add the thumbnail routes unless the app already has them (the lead mounts them)."""
    from adapters.web.thumbnails import thumbnail_routes

    paths = {getattr(route, "path", None) for route in app.router.routes}
    if "/api/v1/jobs/{job_id:id}/thumbnail" not in paths:
        for route in reversed(thumbnail_routes(app.state.ctx)):
            app.router.routes.insert(0, route)


def _submission(model: bytes, filename: str) -> tuple[bytes, str]:
    boundary = "th" + uuid.uuid4().hex
    values = {"student_name": "Ada Byron", "email": "ada@example.edu", "discipline": "Art",
              "class_number": "ART 101", "print_method": "filament", "color": "Red"}
    out = bytearray()
    for name, value in values.items():
        out += (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                f"{value}\r\n").encode()
    out += (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{filename}"\r\n\r\n').encode() + model + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), boundary


@pytest.fixture()
def lab(tmp_path: Path) -> Iterator[Any]:
    from starlette.testclient import TestClient

    from entrypoints.bootstrap import bootstrap
    from entrypoints.settings import load_settings
    from entrypoints.web import app_from_container

    env = {"PRINTCORE_HOME": str(tmp_path / "home"),
           "PRINTCORE_SECRET_KEY": "thumbnail-test-secret",
           "PRINTCORE_STAFF_PASSWORD": PASSWORD}
    container = bootstrap(load_settings(env, env_file=None))
    container.staff.add(STAFF)
    app = app_from_container(container, isolated_inspection=True)
    _mount(app)
    client = TestClient(app, base_url="http://127.0.0.1")
    try:
        yield container, app, client
    finally:
        client.close()
        app.state.ctx.inspector.close_thumbnails()
        app.state.ctx.inspector.close()
        container.close()


def _submit(client: Any, model: bytes, filename: str) -> int:
    body, boundary = _submission(model, filename)
    r = client.post("/api/v1/submissions", content=body,
                    headers={"content-type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _login(client: Any) -> dict[str, str]:
    r = client.post("/api/v1/auth/login", json={"workstation": "Desk 1", "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_the_api_makes_the_thumbnail_once_and_serves_the_stored_file(
    lab: Any, fixtures_dir: Path,
) -> None:
    from adapters.files.audit import audit_storage
    from adapters.sql import SqlUnitOfWork

    container, _app, client = lab
    job_id = _submit(client, (fixtures_dir / "models" / "fandisk.obj").read_bytes(), "fandisk.obj")
    assert client.get(f"/api/v1/jobs/{job_id}/thumbnail").status_code == 401
    headers = _login(client)

    r = client.get(f"/api/v1/jobs/{job_id}/thumbnail", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert decode(r.content).size == (THUMBNAIL_SIZE, THUMBNAIL_SIZE)

    job = container.requests.get(job_id)
    folder = container.files.folder(job)
    stored = folder / "thumbnail.png"
    assert stored.read_bytes() == r.content
    record = json.loads((folder / "thumbnail.json").read_text())
    assert record["ok"] is True and record["source"] == "rendered"
    assert record["size_mm"] == pytest.approx(list(FIXTURE_SIZES["fandisk.obj"]), abs=0.02)

    marker = _png_bytes((10, 200, 10))
    stored.write_bytes(marker)  # served from the file from now on, not made again
    again = client.get(f"/api/v1/jobs/{job_id}/thumbnail", headers=headers)
    assert again.status_code == 200 and again.content == marker

    report = audit_storage(container.files, lambda: SqlUnitOfWork(container.engine))
    assert report.problems == [] and report.jobs_checked == 1

    missing = client.get("/api/v1/jobs/999999/thumbnail", headers=headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert "999999" in missing.json()["error"]["message"]


def test_the_staff_image_route_needs_a_login_and_uses_the_plate_picture(
    lab: Any, fixtures_dir: Path,
) -> None:
    _container, _app, client = lab
    benchy = (fixtures_dir / "models" / "Original3DBenchy.3mf").read_bytes()
    job_id = _submit(client, benchy, "Benchy.3mf")
    r = client.get(f"/staff/jobs/{job_id}/thumbnail.png", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/staff/login")
    _login(client)  # the API login also sets the session cookie
    r = client.get(f"/staff/jobs/{job_id}/thumbnail.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    with zipfile.ZipFile(io.BytesIO(benchy)) as archive:
        assert r.content == archive.read("Metadata/plate_1.png")
    assert client.get(f"/staff/jobs/{job_id}/sliced-preview.png").status_code == 404


def test_a_failed_thumbnail_is_remembered_and_the_job_still_works(
    lab: Any, fixtures_dir: Path,
) -> None:
    from adapters.web.render import Renderer
    from adapters.web.thumbnails import thumbnail_context

    container, app, client = lab
    moon = (fixtures_dir / "models" / "Moon.stl").read_bytes()
    job_id = _submit(client, moon, "Moon.stl")
    headers = _login(client)
    job = container.requests.get(job_id)
    ctx = app.state.ctx
    assert thumbnail_context(ctx, job)["thumbnail"]["state"] == "pending"

    model = container.files.path_of(job, job.original.stored_name)
    shutil.copy(model, model.with_suffix(".keep"))
    model.write_bytes(b"this is no longer a model")  # damaged on disk after the upload
    r = client.get(f"/api/v1/jobs/{job_id}/thumbnail", headers=headers)
    assert r.status_code == 404
    error = r.json()["error"]
    assert error["code"] == "no_thumbnail" and "STL" in error["message"]

    shutil.copy(model.with_suffix(".keep"), model)  # even repaired, it is not tried again
    model.with_suffix(".keep").unlink()
    assert client.get(f"/api/v1/jobs/{job_id}/thumbnail", headers=headers).status_code == 404
    assert client.get(f"/api/v1/jobs/{job_id}", headers=headers).status_code == 200

    context = thumbnail_context(ctx, job)
    assert context["thumbnail"]["state"] == "failed"
    env = Renderer(ctx.timezone, ctx.lab_name).templates.env
    page = env.get_template("staff/_thumbnail.html").render(job=job, **context)
    assert "No preview: " + context["thumbnail"]["reason"] in page
    assert "<img" not in page


def test_the_partial_shows_the_image_size_and_sliced_preview(lab: Any, fixtures_dir: Path) -> None:
    from adapters.web.render import Renderer
    from adapters.web.thumbnails import thumbnail_context

    container, app, client = lab
    job_id = _submit(client, (fixtures_dir / "models" / "rear_case.stl").read_bytes(),
                     "rear_case.stl")
    headers = _login(client)
    assert client.get(f"/api/v1/jobs/{job_id}/thumbnail", headers=headers).status_code == 200
    sliced = (fixtures_dir / "sliced" / "wormdrive.gcode.3mf").read_bytes()
    boundary = "sl" + uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="staff_name"\r\n\r\n{STAFF}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="wormdrive.gcode.3mf"\r\n\r\n').encode() + sliced + (
            f"\r\n--{boundary}--\r\n").encode()
    r = client.post(f"/api/v1/jobs/{job_id}/files", content=body,
                    headers={**headers, "content-type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code in (200, 201), r.text

    job = container.requests.get(job_id)
    ctx = app.state.ctx
    context = thumbnail_context(ctx, job)
    env = Renderer(ctx.timezone, ctx.lab_name).templates.env
    page = env.get_template("staff/_thumbnail.html").render(job=job, **context)
    assert f'src="/staff/jobs/{job_id}/thumbnail.png"' in page
    assert 'alt="Preview of the model rear_case.stl"' in page
    assert "Size 88.0 × 22.3 × 101.0 mm" in page
    assert f'src="/staff/jobs/{job_id}/sliced-preview.png"' in page
    r = client.get(f"/staff/jobs/{job_id}/sliced-preview.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    with zipfile.ZipFile(io.BytesIO(sliced)) as archive:
        assert r.content == archive.read("Metadata/plate_1.png")
    card = env.get_template("staff/_thumbnail.html").render(job=job, compact=True)
    assert f'src="/staff/jobs/{job_id}/thumbnail.png"' in card and "Size" not in card
