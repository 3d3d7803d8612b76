"""Every fixture model from submission to pickup over HTTP, against a real server,
on SQLite and on PostgreSQL: files move between folders, metadata.json follows, and the
event log holds one event per step with the staff member's name."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from _live import PASSWORD, STAFF, LiveServer, confirm_token, login, submit, upload_sliced

MODELS = [
    "rear_case.stl",
    "Moon.stl",
    "HalfDonut_ascii.stl",
    "fandisk.obj",
    "featuretype.3mf",
    "Original3DBenchy.3mf",
]


def _folder_of(server: LiveServer, job_id: int) -> list[str]:
    return sorted(p.parent.parent.name for p in server.storage.glob(f"*/*_{job_id}/metadata.json"))


@pytest.mark.parametrize("model", MODELS)
def test_model_from_submission_to_pickup(
    live_server: LiveServer, fixtures_dir: Path, model: str
) -> None:
    server = live_server
    with server.api() as api:
        job_id = submit(api, fixtures_dir / "models" / model)
        assert _folder_of(server, job_id) == ["Uploaded"]
        headers = login(api)

        r = upload_sliced(api, headers, job_id, fixtures_dir / "sliced" / "wormdrive.gcode.3mf")
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["estimate"]["seconds"] == 3256
        assert body["estimate"]["grams"] == pytest.approx(10.48)
        assert body["prefill"] == {"weight_g": 10.48, "time_hours": 1.0, "cost_cents": 300}
        authoritative = body["file"]["stored_name"]

        r = api.post(
            f"/jobs/{job_id}/approve",
            headers=headers,
            json={
                "staff_name": STAFF,
                "weight_g": 10.48,
                "time_hours": 0.9,
                "authoritative_file": authoritative,
            },
        )
        assert r.status_code == 200, r.text
        assert r.json()["cost_cents"] == 300 and r.json()["time_hours"] == 1.0
        assert _folder_of(server, job_id) == ["Pending"]

        token = confirm_token(server, job_id)
        r = api.post("/confirm", json={"token": token})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "ready_to_print"
        assert _folder_of(server, job_id) == ["ReadyToPrint"]

        steps = [
            ("mark-printing", {"printer": "X1C-1"}, "printing", "Printing"),
            ("mark-complete", {}, "completed", "Completed"),
            (
                "payment",
                {"grams": 11.2, "txn_no": "TX-1001", "picked_up_by": "Jane Doe"},
                "paid_picked_up",
                "PaidPickedUp",
            ),
        ]
        for path, extra, status, folder in steps:
            r = api.post(
                f"/jobs/{job_id}/{path}", headers=headers, json={"staff_name": STAFF, **extra}
            )
            assert r.status_code == 200, (path, r.text)
            assert r.json()["status"] == status
            assert _folder_of(server, job_id) == [folder]
            meta = json.loads(
                next(server.storage.glob(f"{folder}/*_{job_id}/metadata.json")).read_text()
            )
            assert meta["status"] == status and meta["job_id"] == job_id

        job_folder = next(server.storage.glob(f"PaidPickedUp/*_{job_id}"))
        names = sorted(p.name for p in job_folder.iterdir())
        assert authoritative in names and "metadata.json" in names
        assert any(n.endswith(Path(model).suffix.lower()) and "_sliced" not in n for n in names)
        meta = json.loads((job_folder / "metadata.json").read_text())
        assert meta["original_file"] == model
        assert meta["authoritative_file"] == authoritative
        assert {f["sha256"] for f in meta["files"]} and len(meta["files"]) == 2

        r = api.get(f"/jobs/{job_id}", headers=headers)
        events = r.json()["events"]
        kinds = [e["kind"] for e in events]
        assert kinds == [
            "submit",
            "add_sliced_file",
            "approve",
            "confirm",
            "start_print",
            "complete",
            "pick_up",
        ]
        staff_events = [e for e in events if e["kind"] not in ("submit", "confirm")]
        assert all(
            e["actor"]["name"] == STAFF and e["actor"]["kind"] == "staff" for e in staff_events
        )
        assert all(e["actor"]["workstation"] == "E2E desk" for e in staff_events)
        payment = r.json()["payments"][0]
        assert payment["amount_cents"] == 300 and payment["txn_no"] == "TX-1001"
        assert r.json()["status"] == "paid_picked_up"
        assert PASSWORD not in server.log.read_text()


def test_health_names_the_database(live_server: LiveServer) -> None:
    r = httpx.get(live_server.url + "/api/v1/health")
    assert r.json() == {"status": "ok", "database": live_server.kind}
