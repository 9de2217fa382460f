"""
One reading of a request's JSON body: what JSON allows but the hub cannot
use is a L{BodyError} that names it, never another exception.
"""

from __future__ import annotations

import pytest

from statushub.web.jsonbody import MAX_DEPTH, BodyError, parseBody


@pytest.mark.parametrize(
    "body, words",
    [
        (b"[" * 200_000, f"nested more than {MAX_DEPTH} levels"),
        (b"[" * (MAX_DEPTH + 2) + b"]" * (MAX_DEPTH + 2), "nested more than"),
        (b'{"a": ' * 40 + b"1" + b"}" * 40, "nested more than"),
        (b'{"interval": NaN}', "interval is NaN, not a number JSON allows"),
        (b"[Infinity]", "[0] is Infinity, not a number"),
        (b"[-Infinity]", "[0] is -Infinity, not a number"),
        (b"[1e400]", "1e400 is too large"),
        (b"9" * 5000, "not valid JSON"),
        (b'{"name": "a\\u0000"}', "a NUL character in name"),
        (b'{"nodes": [{"command": ["x", "\\u0000"]}]}', "NUL character in nodes[0].command[1]"),
        (b'{"a\\u0000": 1}', "NUL character in a key of body"),
        (b'{"env": {"A": "\\ud800"}}', "lone surrogate (not a character) in env.A"),
        (b"\xff", "not UTF-8"),
        (b"", "not valid JSON"),
        (b"{", "not valid JSON"),
    ],
)
def test_refused_with_a_reason(body: bytes, words: str) -> None:
    with pytest.raises(BodyError) as e:
        parseBody(body)
    assert words in str(e.value)
    assert str(e.value).startswith("body: ")


def test_a_long_key_in_a_message_is_cut() -> None:
    with pytest.raises(BodyError) as e:
        parseBody(b'{"' + b"x" * 1000 + b'": ["\\u0000"]}')
    assert len(str(e.value)) < 100
    assert e.value.field == "x" * 32 + "...[0]"


@pytest.mark.parametrize(
    "body, field",
    [
        (b'{"nodes": [{"healthcheck": {"interval": NaN}}]}', "nodes[0].healthcheck.interval"),
        (b'{"nodes": [{"env": {"A": "x\\u0000"}}]}', "nodes[0].env.A"),
        (b'{"name": "\\ud800"}', "name"),
        (b"[" * 100, "body"),
        (b"[1e999]", "body"),
    ],
)
def test_the_field_is_where_the_value_is(body: bytes, field: str) -> None:
    with pytest.raises(BodyError) as e:
        parseBody(body)
    assert e.value.field == field


@pytest.mark.parametrize(
    "body, value",
    [
        (b'{"name": "demo", "nodes": []}', {"name": "demo", "nodes": []}),
        (b"[" * MAX_DEPTH + b"]" * MAX_DEPTH, eval("[" * MAX_DEPTH + "]" * MAX_DEPTH)),
        (b'{"interval": 0.5, "big": 1e300}', {"interval": 0.5, "big": 1e300}),
        ('{"name": "ünïcödé ✓"}'.encode(), {"name": "ünïcödé ✓"}),
    ],
)
def test_what_the_hub_can_use_is_read(body: bytes, value: object) -> None:
    assert parseBody(body) == value
