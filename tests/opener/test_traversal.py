"""The traversal corpus: links correctly signed (as if the secret had leaked, or the
server had a bug) whose file tries to leave the storage root or name something a slicer
should not open. Each is refused, for the stated reason, and nothing is started."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from _opener_kit import FOLDER, JOB_ID, MODEL, SECRET, SLICED, link, make_storage

from entrypoints.opener.cli import open_link
from entrypoints.opener.config import OpenerConfig, Slicer
from entrypoints.opener.paths import STATUS_FOLDERS, resolve_job_file
from entrypoints.opener.token import Refused, sign

NOT_STARTED: list[list[str]] = []


def _must_not_launch(command: list[str]) -> int:
    NOT_STARTED.append(command)
    raise AssertionError(f"nothing may be started, but {command} was")


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    return make_storage(tmp_path / "storage")


@pytest.fixture()
def config(root: Path, tmp_path: Path) -> OpenerConfig:
    return OpenerConfig(tmp_path / "opener.ini", root, SECRET, None, "bench",
                        {".stl": "/bin/true", ".gcode.3mf": "/bin/true"})


def _signed_raw(file_query: str, decoded: str, job_id: int = JOB_ID) -> str:
    """A link whose ``file`` parameter is written raw (``file_query``, e.g. with
    ``%2e%2e``) and signed over what it decodes to (``decoded``)."""
    exp = int(time.time()) + 600
    sig = sign(SECRET, job_id, decoded, exp, "nonce1234", "ws")
    return (f"print3d://open?v=1&job={job_id}&file={file_query}&exp={exp}&n=nonce1234&ws="
            f"ws&sig={sig}")


LONG = "A" * 201

CORPUS: list[tuple[str, str, str]] = [
    # (what, file, expected refusal)
    ("dot-dot segments", f"{FOLDER}/../../../../etc/passwd", "bad_name"),
    ("dot-dot to a sibling job", f"{FOLDER}/../Jane_Filament_Red_8/x.stl", "bad_name"),
    ("dot-dot inside a name", "ReadyToPrint/../x_7.stl", "bad_name"),
    ("a lone dot-dot", "..", "bad_name"),
    ("absolute POSIX path", "/etc/passwd", "bad_name"),
    ("absolute path to a model", f"/{MODEL}", "bad_name"),
    ("Windows drive letter", "C:/Windows/System32/calc_7.stl", "bad_name"),
    ("Windows drive-relative", f"ReadyToPrint/C:Jane_Filament_Red_{JOB_ID}/x.stl", "bad_name"),
    ("Windows backslashes", "ReadyToPrint\\..\\..\\x_7.stl", "bad_name"),
    ("UNC path", "//fileserver/share/Jane_7/x.stl", "bad_name"),
    ("UNC with backslashes", "\\\\fileserver\\share\\x_7.stl", "bad_name"),
    ("extended-length Windows path", "\\\\?\\C:\\x_7.stl", "bad_name"),
    ("NUL byte", f"{MODEL}\x00.txt", "bad_name"),
    ("NUL byte before the extension", f"{FOLDER}/evil\x00.stl", "bad_name"),
    ("over-long file name", f"{FOLDER}/{LONG}.stl", "bad_name"),
    ("over-long path", "ReadyToPrint/" + "/".join(["B" * 199] * 3) + ".stl", "bad_name"),
    ("too deep", f"{FOLDER}/sub/Jane_Filament_Red_{JOB_ID}.stl", "bad_name"),
    ("too shallow", f"Jane_Filament_Red_{JOB_ID}.stl", "bad_name"),
    ("not a status folder", f"Secrets/Jane_Filament_Red_{JOB_ID}/x.stl", "bad_name"),
    ("hidden staging folder", f".staging/Jane_Filament_Red_{JOB_ID}/x.stl", "bad_name"),
    ("empty segment", f"ReadyToPrint//Jane_Filament_Red_{JOB_ID}.stl", "bad_name"),
    ("home shortcut", "~/Jane_7/x.stl", "bad_name"),
    ("a space", f"{FOLDER}/Jane Filament.stl", "bad_name"),
    ("a literal percent (double encoding)", f"{FOLDER}/%2e%2e.stl", "bad_name"),
    ("a trailing space", f"{MODEL} ", "bad_name"),
    ("a trailing dot (Windows drops it)", f"{MODEL}.", "extension"),
    ("another job's folder", "ReadyToPrint/Jane_Filament_Red_8/Jane_Filament_Red_8.stl",
     "wrong_job"),
    ("a job id that only ends the same", "ReadyToPrint/Jane_Filament_Red_17/x_17.stl",
     "wrong_job"),
    ("an executable", f"{FOLDER}/Jane_Filament_Red_{JOB_ID}.exe", "extension"),
    ("a shell script", f"{FOLDER}/run.sh", "extension"),
    ("a desktop file", f"{FOLDER}/evil.desktop", "extension"),
    ("model extension then another", f"{FOLDER}/x.stl.exe", "extension"),
    ("the metadata", f"{FOLDER}/metadata.json", "extension"),
    ("no extension", f"{FOLDER}/Jane_Filament_Red_{JOB_ID}", "extension"),
    ("only an extension", f"{FOLDER}/.stl", "bad_name"),
    ("a file that does not exist", f"{FOLDER}/Jane_Filament_Red_{JOB_ID}_sliced2.3mf", "missing"),
    ("a folder named like a model", f"{FOLDER}/folder.stl", "missing"),
]


@pytest.mark.parametrize(("what", "file", "code"), CORPUS, ids=[c[0] for c in CORPUS])
def test_signed_but_unsafe_files_are_refused(
    config: OpenerConfig, root: Path, what: str, file: str, code: str
) -> None:
    (root / FOLDER / "folder.stl").mkdir()
    with pytest.raises(Refused) as refused:
        open_link(link(file), config, launcher=_must_not_launch)
    assert refused.value.code == code, refused.value.message
    assert refused.value.message
    assert not NOT_STARTED


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("ReadyToPrint%2F%2e%2e%2F%2e%2e%2Fetc%2Fpasswd", "ReadyToPrint/../../etc/passwd"),
        (f"ReadyToPrint%2FJane_Filament_Red_{JOB_ID}%2F%2E%2E%2F%2E%2E%2Fx.stl",
         f"ReadyToPrint/Jane_Filament_Red_{JOB_ID}/../../x.stl"),
        ("%2Fetc%2Fpasswd", "/etc/passwd"),
        ("ReadyToPrint%5C..%5Cx_7.stl", "ReadyToPrint\\..\\x_7.stl"),
        (f"ReadyToPrint%2FJane_Filament_Red_{JOB_ID}%2Fx%00.stl",
         f"ReadyToPrint/Jane_Filament_Red_{JOB_ID}/x\x00.stl"),
        ("ReadyToPrint%2F%252e%252e%2Fx.stl", "ReadyToPrint/%2e%2e/x.stl"),
        ("C%3A%2FWindows%2Fx_7.stl", "C:/Windows/x_7.stl"),
    ],
)
def test_percent_encoded_traversal_is_refused(config: OpenerConfig, raw: str,
                                              decoded: str) -> None:
    with pytest.raises(Refused) as refused:
        open_link(_signed_raw(raw, decoded), config, launcher=_must_not_launch)
    assert refused.value.code == "bad_name", refused.value.message


def test_a_symlink_inside_the_root_pointing_outside_is_refused(
    config: OpenerConfig, root: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.stl").write_text("solid private")
    (root / FOLDER / "leak.stl").symlink_to(outside / "secret.stl")
    with pytest.raises(Refused) as refused:
        open_link(link(f"{FOLDER}/leak.stl"), config, launcher=_must_not_launch)
    assert refused.value.code == "outside_root"


def test_a_symlinked_job_folder_pointing_outside_is_refused(
    config: OpenerConfig, root: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "x_9.stl").write_text("solid")
    (root / "Printing" / "Evil_Filament_Red_9").parent.mkdir(parents=True, exist_ok=True)
    (root / "Printing" / "Evil_Filament_Red_9").symlink_to(outside, target_is_directory=True)
    with pytest.raises(Refused) as refused:
        open_link(link("Printing/Evil_Filament_Red_9/x_9.stl", job_id=9), config,
                  launcher=_must_not_launch)
    assert refused.value.code == "outside_root"


def test_a_dangling_symlink_is_missing_not_followed(config: OpenerConfig, root: Path) -> None:
    (root / FOLDER / "gone.stl").symlink_to(root / FOLDER / "nothing-here.stl")
    with pytest.raises(Refused) as refused:
        open_link(link(f"{FOLDER}/gone.stl"), config, launcher=_must_not_launch)
    assert refused.value.code == "missing"


def test_a_symlink_staying_inside_the_root_is_followed(config: OpenerConfig, root: Path) -> None:
    (root / FOLDER / "alias.stl").symlink_to(root / MODEL)
    started: list[list[str]] = []
    opened = open_link(link(f"{FOLDER}/alias.stl"), config,
                       launcher=lambda cmd: started.append(cmd) or 1)
    assert opened.path == (root / MODEL).resolve()
    assert started == [["/bin/true", str((root / MODEL).resolve())]]


def test_a_storage_root_behind_a_symlink_works(tmp_path: Path, root: Path) -> None:
    """Like a mapped drive or a mount point reached through a link."""
    alias = tmp_path / "mapped-drive"
    alias.symlink_to(root, target_is_directory=True)
    config = OpenerConfig(tmp_path / "x.ini", alias, SECRET, None, "h", {".stl": "/bin/true"})
    opened = open_link(link(), config, launcher=lambda cmd: 4242)
    assert opened.path == (root / MODEL).resolve() and opened.pid == 4242


def test_a_file_that_moved_to_another_status_folder_is_found(
    config: OpenerConfig, root: Path
) -> None:
    """The job moved on after the page was shown: same job folder, another status."""
    moved = root / "Printing" / f"Jane_Filament_Red_{JOB_ID}"
    moved.parent.mkdir(exist_ok=True)
    os.rename(root / FOLDER, moved)
    opened = open_link(link(SLICED), config, launcher=lambda cmd: 1)
    assert opened.path == (moved / Path(SLICED).name).resolve()


def test_a_missing_storage_root_is_a_configuration_problem(tmp_path: Path) -> None:
    config = OpenerConfig(tmp_path / "x.ini", tmp_path / "not-mounted", SECRET, None, "h", {})
    with pytest.raises(Refused) as refused:
        open_link(link(), config, launcher=_must_not_launch)
    assert refused.value.code == "config"
    assert "mounted" in refused.value.message


def test_the_signature_is_checked_before_the_file_system(config: OpenerConfig) -> None:
    with pytest.raises(Refused) as refused:
        open_link(link("/etc/passwd", secret="another-secret-0123456789"), config,
                  launcher=_must_not_launch)
    assert refused.value.code == "bad_signature"


def test_an_expired_link_is_refused(config: OpenerConfig) -> None:
    with pytest.raises(Refused) as refused:
        open_link(link(ttl=-1), config, launcher=_must_not_launch)
    assert refused.value.code == "expired"


def test_no_slicer_for_the_extension_is_refused(config: OpenerConfig, root: Path) -> None:
    bare = OpenerConfig(config.path, root, SECRET, None, "h", {})
    only_prusa = [Slicer("PrusaSlicer", "/bin/true", (".stl", ".3mf", ".obj", ".gcode"))]
    with pytest.raises(Refused) as refused:
        open_link(link(SLICED), bare, launcher=_must_not_launch, detect=lambda: only_prusa)
    assert refused.value.code == "no_slicer"
    assert str(config.path) in refused.value.message
    opened = open_link(link(MODEL), bare, launcher=lambda cmd: 1, detect=lambda: only_prusa)
    assert opened.slicer.name == "PrusaSlicer"


def test_status_folders_match_printcore() -> None:
    from printcore.requests.job import JobStatus

    assert set(STATUS_FOLDERS) == {s.folder for s in JobStatus if s is not JobStatus.DELETED}


def test_extensions_match_what_printcore_stores() -> None:
    from adapters.meshes.models import MODEL_EXTENSIONS
    from adapters.meshes.sliced import SLICED_EXTENSIONS
    from entrypoints.opener.paths import DEFAULT_EXTENSIONS

    assert set(DEFAULT_EXTENSIONS) == set(MODEL_EXTENSIONS) | set(SLICED_EXTENSIONS)


def test_resolve_returns_a_real_path_inside_the_root(root: Path) -> None:
    path = resolve_job_file(root, JOB_ID, MODEL)
    assert path.is_file() and path.is_relative_to(root.resolve())
