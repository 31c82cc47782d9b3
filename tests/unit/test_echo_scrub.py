from __future__ import annotations

import httpx

from shared.adapters.echo_scrub import MASK, scrub, scrub_echo

KEY = "sk-FAKE-0123456789abcdef"


def test_a_whole_or_partial_echo_of_a_sent_key_is_masked() -> None:
    request = httpx.Request(
        "POST", "https://x.example/v1?api_key=CG-QUERYKEY99", headers={"Authorization": f"Bearer {KEY}"}
    )
    body = f"bad key {KEY}; masked sk-FAKE-0123****cdef; query CG-QUERYKEY99; fine text"
    response = httpx.Response(401, text=body, request=request)

    scrubbed = scrub_echo(body, response)

    assert KEY not in scrubbed
    assert "sk-FAKE-0123" not in scrubbed
    assert "CG-QUERYKEY99" not in scrubbed
    assert scrubbed.endswith("fine text")
    assert MASK in scrubbed


def test_short_values_and_unsent_responses_are_left_alone() -> None:
    assert scrub("abc Bearer def", ["abc"]) == "abc Bearer def"
    assert scrub_echo(f"echo {KEY}", httpx.Response(401)) == f"echo {KEY}"
