"""print3d:// links as properties: a link made by the server verifies; any change to
it (a field, a character anywhere, the secret, the clock) is refused or reads back the
very same link."""

from __future__ import annotations

import time
from urllib.parse import quote, urlencode

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from entrypoints.opener.token import (
    MAX_URL_CHARS,
    OpenLink,
    Refused,
    check_secret,
    make_link,
    parse_link,
    sign,
    verify,
)

SECRET = "property-secret-0123456789"
NOW = 1_800_000_000

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1,
                max_size=80)
links = st.builds(
    lambda job, file, ttl, ws: (job, file, NOW + ttl, ws),
    st.integers(1, 10**12), names, st.integers(1, 10**6),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")),
            max_size=60).filter(str.isprintable),
)


def _query(fields: dict[str, str]) -> str:
    return "print3d://open?" + urlencode(fields, quote_via=quote, safe="")


def _fields(link: OpenLink) -> dict[str, str]:
    return {"v": "1", "job": str(link.job_id), "file": link.file, "exp": str(link.expires),
            "n": link.nonce, "ws": link.workstation, "sig": link.signature}


def _accepted(url: str, secret: str = SECRET, now: float = NOW) -> OpenLink | None:
    try:
        parsed = parse_link(url)
        verify(parsed, secret, now)
    except Refused:
        return None
    return parsed


@given(links)
def test_a_link_made_by_the_server_verifies(case: tuple[int, str, int, str]) -> None:
    job, file, exp, ws = case
    url = make_link(SECRET, job, file, exp, ws)
    parsed = _accepted(url)
    assert parsed is not None
    assert (parsed.job_id, parsed.file, parsed.expires, parsed.workstation) == (job, file, exp, ws)


@given(links, st.sampled_from(["job", "file", "exp", "n", "ws", "sig"]), st.data())
def test_changing_any_field_is_refused(case: tuple[int, str, int, str], field: str,
                                       data: st.DataObject) -> None:
    job, file, exp, ws = case
    original = parse_link(make_link(SECRET, job, file, exp, ws))
    fields = _fields(original)
    new = {
        "job": st.integers(1, 10**12).map(str),
        "file": names,
        "exp": st.integers(NOW + 1, NOW + 10**7).map(str),
        "n": st.from_regex(r"[A-Za-z0-9_-]{8,64}", fullmatch=True),
        "ws": st.text(max_size=60),
        "sig": st.from_regex(r"[A-Za-z0-9_-]{43}", fullmatch=True),
    }[field]
    value = data.draw(new.filter(lambda v: v != fields[field]))
    fields[field] = value
    with pytest.raises(Refused) as refused:
        verify(parse_link(_query(fields)), SECRET, NOW)
    assert refused.value.code in ("bad_signature", "malformed")


@given(links, st.data())
def test_any_character_edit_is_refused_or_reads_the_same(
    case: tuple[int, str, int, str], data: st.DataObject
) -> None:
    """Insert, delete or replace one character anywhere in the URL: the result is refused,
    or (an equivalent spelling, such as ``%2f`` for ``%2F``) means exactly the same link."""
    job, file, exp, ws = case
    url = make_link(SECRET, job, file, exp, ws)
    original = parse_link(url)
    at = data.draw(st.integers(0, len(url) - 1))
    char = data.draw(st.characters(codec="utf-8", exclude_categories=("Cs",)))
    edit = data.draw(st.sampled_from(["insert", "delete", "replace"]))
    mutated = {
        "insert": url[:at] + char + url[at:],
        "delete": url[:at] + url[at + 1:],
        "replace": url[:at] + char + url[at + 1:],
    }[edit]
    assume(mutated != url)
    parsed = _accepted(mutated)
    assert parsed is None or parsed == original


@given(links)
def test_another_secret_refuses_it(case: tuple[int, str, int, str]) -> None:
    job, file, exp, ws = case
    url = make_link(SECRET, job, file, exp, ws)
    with pytest.raises(Refused) as refused:
        verify(parse_link(url), SECRET + "x", NOW)
    assert refused.value.code == "bad_signature"


@given(links, st.integers(1, 10**6))
def test_after_its_expiry_it_is_refused(case: tuple[int, str, int, str], late: int) -> None:
    job, file, exp, ws = case
    parsed = parse_link(make_link(SECRET, job, file, exp, ws))
    verify(parsed, SECRET, exp)  # valid up to and including its expiry second
    with pytest.raises(Refused) as refused:
        verify(parsed, SECRET, exp + late)
    assert refused.value.code == "expired"
    verify(parsed, SECRET, exp + late, grace_seconds=late)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "print3d:",
        "https://open?v=1",
        "3dprint://open?v=1&job=1&file=a&exp=1&n=abcdefgh&ws=&sig=" + "a" * 43,
        "print3d://evil.example/open?job=1",
        "print3d://open/other?v=1",
        "print3d://open?v=1&job=1&file=a&exp=1&n=abcdefgh&ws=&sig=" + "a" * 43 + "#frag",
        # a field missing, doubled, unknown, or badly formed
        "print3d://open?v=1&job=1&file=a&exp=1&n=abcdefgh&sig=" + "a" * 43,
        "print3d://open?v=1&job=1&job=2&file=a&exp=1&n=abcdefgh&ws=&sig=" + "a" * 43,
        "print3d://open?v=1&job=1&file=a&exp=1&n=abcdefgh&ws=&sig=" + "a" * 43 + "&x=1",
        "print3d://open?v=2&job=1&file=a&exp=1&n=abcdefgh&ws=&sig=" + "a" * 43,
        "print3d://open?v=1&job=0&file=a&exp=1&n=abcdefgh&ws=&sig=" + "a" * 43,
        "print3d://open?v=1&job=-1&file=a&exp=1&n=abcdefgh&ws=&sig=" + "a" * 43,
        "print3d://open?v=1&job=1&file=a&exp=1e9&n=abcdefgh&ws=&sig=" + "a" * 43,
        "print3d://open?v=1&job=1&file=a&exp=1&n=short&ws=&sig=" + "a" * 43,
        "print3d://open?v=1&job=1&file=a&exp=1&n=abcdefgh&ws=&sig=" + "a" * 42,
        "print3d://open?v=1&job=1&file=a&exp=1&n=abcdefgh&ws=%0a&sig=" + "a" * 43,
        # raw spaces, control characters, invalid UTF-8 percent-escapes
        "print3d://open?v=1&job=1&file=a b&exp=1&n=abcdefgh&ws=&sig=" + "a" * 43,
        "print3d://open?v=1&job=1&file=a\x00&exp=1&n=abcdefgh&ws=&sig=" + "a" * 43,
        "print3d://open?v=1&job=1&file=%ff&exp=1&n=abcdefgh&ws=&sig=" + "a" * 43,
        "print3d://open?" + "a" * MAX_URL_CHARS,
    ],
)
def test_malformed_links_are_refused(url: str) -> None:
    with pytest.raises(Refused) as refused:
        parse_link(url)
    assert refused.value.code == "malformed"
    assert refused.value.message


def test_a_non_text_link_is_refused() -> None:
    with pytest.raises(Refused):
        parse_link(None)


def test_trailing_slash_and_scheme_case_are_the_same_link() -> None:
    url = make_link(SECRET, 3, "Uploaded/A_3/A_3.stl", NOW + 60, "desk")
    same = url.replace("print3d://open?", "PRINT3D://open/?")
    assert parse_link(same) == parse_link(url)


def test_the_signature_is_hmac_sha256_over_the_canonical_fields() -> None:
    import base64
    import hashlib
    import hmac
    import json

    message = json.dumps(["print3d-open/1", 5, "a/b_5/c.stl", 99, "nonce123", "ws"],
                         separators=(",", ":")).encode()
    expected = base64.urlsafe_b64encode(
        hmac.new(SECRET.encode(), message, hashlib.sha256).digest()).rstrip(b"=").decode()
    assert sign(SECRET, 5, "a/b_5/c.stl", 99, "nonce123", "ws") == expected


def test_links_differ_each_time_by_their_nonce() -> None:
    first = parse_link(make_link(SECRET, 1, "f", int(time.time()) + 9))
    second = parse_link(make_link(SECRET, 1, "f", int(time.time()) + 9))
    assert first.nonce != second.nonce


@pytest.mark.parametrize("secret", [None, "", "   ", "fifteen-chars!!"])
def test_short_secrets_are_refused(secret: str | None) -> None:
    with pytest.raises(ValueError, match="at least 16"):
        check_secret(secret, "PRINTCORE_OPENER_SECRET")


def test_a_good_secret_is_kept_stripped() -> None:
    assert check_secret("  sixteen-chars!!!  ", "x") == "sixteen-chars!!!"


@settings(max_examples=50)
@given(st.text(max_size=300))
def test_arbitrary_text_never_verifies(text: str) -> None:
    assert _accepted(text) is None
