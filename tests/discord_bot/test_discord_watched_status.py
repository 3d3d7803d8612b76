"""Watched printers (issue 15) as Discord members see them: ``/status`` with the printer's
own words, and the notices sent when a printer reports a member's print started,
finished, failed or was cancelled — read back from the committed outbox and delivered by
the real DiscordSender (channel post with the mention, and the DM), on the in-memory
queue and on SQLite.

Reports are made as ``adapters.bambu`` makes them (``PrinterReport`` with the printer's
``PrinterLiveState``; tests/unit/test_queue_printer_reports.py covers the rules).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from _discord_fakes import FakeAttachment, FakeChannel, FakeClient, FakeUser, Lab

from adapters.discord.replies import notice_body
from adapters.discord.sender import DiscordSender
from printcore.queue.printer_status import PrinterLiveState, PrinterReport

CHANNEL = 555
STATE = {"started": "RUNNING", "progress": "RUNNING", "paused": "PAUSE", "finished": "FINISH",
         "failed": "FAILED", "cancelled": "IDLE", "idle": "IDLE", "offline": "OFFLINE",
         "online": "IDLE"}


def report(lab: Lab, printer: str, kind: str, key: str | None = None,
           **live: object) -> str:
    """``printer`` reports ``kind`` now (the lab's clock); printer_reported's outcome."""
    now = lab.clock.now()
    state = PrinterLiveState(state=STATE[kind], reported_at=now, **live)  # type: ignore[arg-type]
    return lab.service.printer_reported(PrinterReport(printer, kind, now, state,  # type: ignore[arg-type]
                                                      print_key=key))


def stamp(moment: datetime) -> str:
    """Discord's ``<t:…:t> (<t:…:R>)`` for ``moment``, as replies.when writes it."""
    seconds = int(moment.timestamp())
    return f"<t:{seconds}:t> (<t:{seconds}:R>)"


def line(text: str, printer: str) -> str:
    """The /status line of ``printer``."""
    found = [row for row in text.splitlines() if row.startswith(f"**{printer}**")]
    assert len(found) == 1, text
    return found[0]


@pytest.fixture
def bot_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """The bot's event loop, running in its own thread (as under ``discord.Client``)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="bot-loop", daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def test_status_carries_what_each_printer_says(
        lab: Lab, alice: FakeUser, bob: FakeUser, carol: FakeUser) -> None:
    lab.ask(alice, "join", job="bracket", est_time="1h")
    lab.ask(alice, "claim", printer="X1C-1")
    lab.clock.advance(minutes=4)
    assert report(lab, "X1C-1", "started", key="a-1", percent=45, layer=120, total_layers=300,
                  remaining_minutes=32, file="bracket.gcode.3mf") == "started"
    # A walk-up print on the free X1C-2: nobody claimed it, so it is not offered.
    assert report(lab, "X1C-2", "started", key="walk-up", percent=3, layer=4,
                  total_layers=410, remaining_minutes=185) == "unclaimed"
    lab.ask(bob, "join", job="gear", est_time="30m")
    assert lab.tickets(bob)[0].status == "queued"

    status = lab.ask(carol, "status")
    assert status.answer.ephemeral
    end = lab.clock.now() + timedelta(minutes=32)
    assert line(status.text, "X1C-1") == (
        f"**X1C-1** (Bambu X1C, bench 1): printing; print predicted to end {stamp(end)} "
        "— the printer says: printing, 45 %, layer 120/300, 32m left")
    walkup = line(status.text, "X1C-2")
    assert walkup.startswith("**X1C-2** (Bambu X1C, bench 2): ")
    assert f"busy with a print nobody claimed (since {stamp(lab.clock.now())})" in walkup
    assert walkup.endswith("— the printer says: printing, 3 %, layer 4/410, 3h 5m left")
    assert "claim" not in walkup.split("nobody claimed")[0]  # no /claim is suggested
    assert "__Queue__ (1 waiting)" in status.text
    assert "1. Bob: *gear* (30m), ETA <t:" in status.text
    # File names stay off /status: they are the members' own, shown to staff only.
    assert "bracket.gcode.3mf" not in status.text

    # Progress moves the predicted end and the words; a pause says so.
    lab.clock.advance(minutes=10)
    report(lab, "X1C-1", "progress", key="a-1", percent=78, layer=234, total_layers=300,
           remaining_minutes=9)
    end = lab.clock.now() + timedelta(minutes=9)
    assert line(lab.ask(carol, "status").text, "X1C-1") == (
        f"**X1C-1** (Bambu X1C, bench 1): printing; print predicted to end {stamp(end)} "
        "— the printer says: printing, 78 %, layer 234/300, 9m left")
    report(lab, "X1C-1", "paused", key="a-1", percent=78, layer=234, total_layers=300,
           remaining_minutes=9)
    assert line(lab.ask(carol, "status").text, "X1C-1").endswith(
        "— the printer says: paused, 78 %, layer 234/300, 9m left")

    # It fails: the print is closed; the printer's word is "failed" with no percentage,
    # and the printer goes to Bob.
    report(lab, "X1C-1", "failed", key="a-1", percent=78, layer=234, total_layers=300,
           remaining_minutes=9, error_code="0300-4000")
    after = line(lab.ask(carol, "status").text, "X1C-1")
    assert after.startswith("**X1C-1** (Bambu X1C, bench 1): offered to Bob until <t:")
    assert after.endswith("— the printer says: failed")
    assert "predicted to end" not in after and "%" not in after

    # The watcher loses X1C-2: /status says so.
    report(lab, "X1C-2", "offline")
    assert line(lab.ask(carol, "status").text, "X1C-2").endswith("— the printer says: offline")


def test_a_printer_without_a_watcher_adds_nothing(lab: Lab, alice: FakeUser) -> None:
    lab.ask(alice, "join", job="bracket", est_time="1h")
    lab.ask(alice, "claim", printer="X1C-1")
    lab.ask(alice, "report started")
    status = lab.ask(alice, "status").text
    assert "the printer says" not in status
    assert line(status, "X1C-1").startswith("**X1C-1** (Bambu X1C, bench 1): printing; ")


def _deliver(lab: Lab, loop: asyncio.AbstractEventLoop, users: list[FakeUser],
             kinds: tuple[str, ...]) -> tuple[FakeChannel, list[str]]:
    """Deliver the committed notices of ``kinds`` with the real DiscordSender; the channel
    and each notice's body."""
    channel = FakeChannel(CHANNEL)
    sender = DiscordSender(FakeClient(channel, {u.id: u for u in users}),  # type: ignore[arg-type]
                           CHANNEL, loop, timeout=5.0)
    bodies = []
    for message, notice in zip(lab.notices.messages(), lab.notices.sent, strict=True):
        if notice.kind in kinds:
            sender.send(message)
            bodies.append(notice_body(notice))
    return channel, bodies


def test_notices_after_the_printer_reports_read_well(
        lab: Lab, alice: FakeUser, bob: FakeUser, carol: FakeUser,
        bot_loop: asyncio.AbstractEventLoop) -> None:
    # Alice's print starts and finishes on the printer's word alone.
    lab.ask(alice, "join", job="bracket", est_time="1h")
    lab.ask(alice, "claim", printer="X1C-1")
    lab.clock.advance(minutes=3)
    assert report(lab, "X1C-1", "started", key="a-1", percent=0,
                  remaining_minutes=62) == "started"
    end = lab.clock.now() + timedelta(minutes=62)
    lab.clock.advance(minutes=61)
    assert report(lab, "X1C-1", "finished", key="a-1", percent=100) == "closed"
    # Bob's fails, Carol's is cancelled at the printer.
    lab.ask(bob, "join", job="gear", est_time="30m")
    lab.ask(bob, "claim", printer="X1C-1")
    assert report(lab, "X1C-1", "started", key="b-1", remaining_minutes=30) == "started"
    lab.clock.advance(minutes=12)
    assert report(lab, "X1C-1", "failed", key="b-1", error_code="0300-4000") == "closed"
    lab.ask(carol, "join", job="hinge", est_time="20m")
    lab.ask(carol, "claim", printer="X1C-1")
    assert report(lab, "X1C-1", "started", key="c-1", remaining_minutes=20) == "started"
    lab.clock.advance(minutes=2)
    assert report(lab, "X1C-1", "cancelled", key="c-1") == "closed"

    a, b, c = (lab.tickets(u)[0].id for u in (alice, bob, carol))
    channel, bodies = _deliver(lab, bot_loop, [alice, bob, carol],
                               ("print_started", "print_finished", "print_failed",
                                "print_cancelled"))
    assert bodies == [
        f"**X1C-1** reports your print (ticket #{a}) started; predicted end {stamp(end)}.",
        f"**X1C-1** reports your print (ticket #{a}) finished: take it off the bed. Thank you!",
        f"**X1C-1** reports your print (ticket #{b}) started; predicted end "
        f"{stamp(lab.clock.now() - timedelta(minutes=14) + timedelta(minutes=30))}.",
        f"**X1C-1** reports your print (ticket #{b}) failed. Please add a photo of it: "
        "`/close X1C-1 failed photo:` with the picture.",
        f"**X1C-1** reports your print (ticket #{c}) started; predicted end "
        f"{stamp(lab.clock.now() - timedelta(minutes=2) + timedelta(minutes=20))}.",
        f"**X1C-1** reports your print (ticket #{c}) was cancelled. `/join` again when you "
        "want to print it; if you did not cancel it, tell staff.",
    ]
    # In the channel each is addressed to its member; the DM is the same sentence.
    assert [text for text, _ in channel.posts] == [
        f"<@{u.id}>, {body}" for u, body in zip((alice, alice, bob, bob, carol, carol), bodies,
                                                strict=True)]
    assert all(mentions.everyone is False for _, mentions in channel.posts)
    assert alice.dms == bodies[:2] and bob.dms == bodies[2:4] and carol.dms == bodies[4:]
    # A member is never told a printer's error code or a staff-only detail.
    assert not any("0300-4000" in text for text, _ in channel.posts)
    # The failed print's photo can be added with the command the notice names.
    photo = lab.ask(bob, "close", printer="X1C-1", outcome="failed",
                    photo=_image("failed.jpg"))
    assert photo.text.startswith(f"Closed #{b} *gear* on **X1C-1** as failed after 12m."), photo.text


def _image(name: str) -> FakeAttachment:
    """A JPEG attachment, as a member adds a photo of a failed print."""
    return FakeAttachment(name, b"\xff\xd8\xff\xe0" + b"0" * 64, content_type="image/jpeg",
                          url=f"https://cdn.discordapp.com/attachments/1/2/{name}")


def test_the_eta_waits_for_a_print_nobody_claimed(
        lab: Lab, alice: FakeUser, bob: FakeUser) -> None:
    lab.ask(alice, "join", job="bracket", est_time="1h")
    lab.ask(alice, "claim", printer="X1C-1")
    report(lab, "X1C-1", "started", key="a-1", remaining_minutes=32)
    report(lab, "X1C-2", "started", key="walk-up", remaining_minutes=185)
    lab.ask(bob, "join", job="gear", est_time="30m")
    eta = stamp(lab.clock.now() + timedelta(minutes=32))
    assert f"1. Bob: *gear* (30m), ETA {eta}" in lab.ask(bob, "status").text
