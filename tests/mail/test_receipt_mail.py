"""The payment receipt (issue 12): the confirmed quote and the amount charged, and the
override reason when more than the quote was charged; sent to a real SMTP server
(aiosmtpd, in process) as in ``test_mail.py``.

Bad inputs tried: an outbox row written before the receipt knew the quote (no
``quoted_cents``/``override_reason`` in its context: rendered without them, not failed);
markup in the override reason (escaped in the HTML part).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from test_mail import plain, renderer, row

from _smtp import SmtpServer
from adapters.mail import EmailSender


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


def receipt(smtp: SmtpServer, context: dict[str, object]) -> tuple[str, str]:
    EmailSender(renderer(), plain(smtp)).send(row("payment_receipt", context))
    [got] = smtp.wait_for(1)
    return got.text, got.html


def test_the_receipt_shows_the_quote_the_charge_and_the_reason(smtp: SmtpServer) -> None:
    text, html = receipt(smtp, {"amount_cents": 1300, "quoted_cents": 1000, "txn_no": "TX-13",
                                "override_reason": "Asked for a <b>thicker</b> wall."})
    assert "confirmed quote          $10.00" in text
    assert "amount charged           $13.00" in text
    assert "why more than the quote  Asked for a <b>thicker</b> wall." in text
    assert "<td>Confirmed quote</td><td>$10.00</td>" in html
    assert "<strong>$13.00</strong>" in html and "TX-13" in html
    assert "Asked for a &lt;b&gt;thicker&lt;/b&gt; wall." in html


def test_a_charge_below_the_quote_says_so_without_a_reason(smtp: SmtpServer) -> None:
    text, html = receipt(smtp, {"amount_cents": 800, "quoted_cents": 1000, "txn_no": "TX-8",
                                "override_reason": None})
    assert "$10.00" in text and "$8.00" in text and "why more" not in text
    assert "paid less than the quote" in text and "paid less than the quote" in html


def test_a_receipt_queued_before_the_quote_was_known_still_renders(smtp: SmtpServer) -> None:
    text, html = receipt(smtp, {"amount_cents": 350, "txn_no": "TX-881"})
    assert "amount charged           $3.50" in text and "confirmed quote" not in text
    assert "Confirmed quote" not in html
