"""`iso` writes one timestamp format everywhere (UTC, microseconds, trailing Z)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from durable_graph.clock import ManualClock, SystemClock, iso, parse_iso


@pytest.mark.parametrize(
    "ts",
    [
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 11, 30, 18, 5, 7, 42, tzinfo=UTC),
        datetime(2026, 11, 30, 20, 5, 7, 42, tzinfo=timezone(timedelta(hours=2))),
        datetime(2026, 3, 29, 1, 0, 0, 500000, tzinfo=timezone(timedelta(hours=-7, minutes=-30))),
    ],
)
def test_iso_is_utc_with_microseconds_and_z(ts: datetime) -> None:
    """Given a UTC or other aware time, then its text is the UTC time's isoformat with
    microseconds and a trailing Z, and reads back as the same instant."""
    text = iso(ts)
    utc = ts.astimezone(UTC).replace(tzinfo=None)
    assert text == utc.isoformat(timespec="microseconds") + "Z"
    assert parse_iso(text) == ts


def test_the_clocks_times_are_written_the_same_way() -> None:
    for clock in (SystemClock(), ManualClock()):
        now = clock.now()
        assert iso(now) == now.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
