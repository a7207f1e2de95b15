"""regfs.duration: durations as admins write them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regfs.duration import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("0s", 0.0),
        ("0m", 0.0),
        ("90s", 90.0),
        ("30m", 1800.0),
        ("1h", 3600.0),
        ("168h", 604800.0),
        ("7d", 604800.0),
        ("2w", 1209600.0),
        ("1h30m", 5400.0),
        ("1d2h3m4s", 93784.0),
        ("1.5h", 5400.0),
        (" 2H ", 7200.0),
        ("1W", 604800.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    ["", " ", "10", "h", "1x", "-1h", "1h-", "1 h", "1h 30m", "1.h", ".5h", "one hour", "1e3s"],
)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_duration(text)
    assert repr(text) in str(exc.value)
    assert "90s" in str(exc.value)  # the message shows how to write one


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0"),
        (-5, "0"),
        (1, "1s"),
        (59, "59s"),
        (60, "1m"),
        (90, "90s"),
        (3600, "1h"),
        (5400, "90m"),
        (86400, "1d"),
        (604800, "1w"),
        (1209600, "2w"),
        (0.5, "0.5s"),
        (1234567, "1234567s"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@given(st.integers(min_value=0, max_value=10**10))
def test_format_then_parse_roundtrips_whole_seconds(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


@given(
    st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from("smhdw")), min_size=1, max_size=5)
)
def test_combined_units_add_up(parts: list[tuple[int, str]]) -> None:
    unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    text = "".join(f"{n}{u}" for n, u in parts)
    assert parse_duration(text) == sum(n * unit[u] for n, u in parts)


def test_zero_is_no_limit_for_every_age_option() -> None:
    """The one rule (--min-age, --older-than, --uploads-older-than): 0 means no limit."""
    from regfs.duration import cutoff, is_older

    assert is_older(0.0, 0) and is_older(1e9, 0) and is_older(-5.0, 0)
    assert is_older(3601, 3600) and not is_older(3600, 3600)
    assert cutoff(1000.0, 0) == float("inf")
    assert cutoff(1000.0, 10) == 990.0
