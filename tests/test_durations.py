"""``--expires-in`` durations and the time left shown for temporary grants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from teamaccess.store import validate
from teamaccess.store.errors import Invalid

NOW = datetime(2030, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(("text", "seconds"), [
    ("45s", 45), ("30m", 1800), ("8h", 28800), ("7d", 604800), ("90d", 90 * 86400), (" 2h ", 7200),
])
def test_a_whole_number_and_a_unit_is_a_duration(text, seconds):
    assert validate.expires_in(text) == timedelta(seconds=seconds)


def test_no_flag_means_a_grant_that_never_ends():
    assert validate.expires_in(None) is None


@pytest.mark.parametrize(("text", "says"), [
    ("0h", "more than zero"), ("91d", "longest is 90d"), ("2161h", "longest is 90d"),
    ("8", "whole number and a unit"), ("8 h", "whole number and a unit"), ("1.5h", "whole number"),
    ("-1h", "whole number"), ("8H", "whole number"), ("", "whole number"), ("99999999d", "whole number"),
    ("\x1b[31m8h", "?[31m8h"),
])
def test_a_bad_duration_is_one_line_naming_it_and_what_to_do(text, says):
    with pytest.raises(Invalid) as caught:
        validate.expires_in(text)
    message = str(caught.value)
    assert says in message and "\n" not in message and "\x1b" not in message
    assert "e.g." in message or "90d" in message


@pytest.mark.parametrize(("span", "text"), [
    (timedelta(hours=8), "8h"), (timedelta(minutes=90), "90m"), (timedelta(days=7), "7d"),
    (timedelta(seconds=61), "61s"),
])
def test_a_duration_is_written_back_the_way_the_flag_spells_it(span, text):
    assert validate.duration_text(span) == text
    assert validate.expires_in(text) == span


@pytest.mark.parametrize(("left", "text"), [
    (timedelta(hours=7, minutes=59, seconds=30), "7h 59m"),
    (timedelta(days=2, minutes=5), "2d 5m"),
    (timedelta(minutes=4, seconds=10), "4m 10s"),
    (timedelta(seconds=45), "45s"),
    (timedelta(0), "expired"),
    (timedelta(seconds=-5), "expired"),
])
def test_time_left_shows_the_two_largest_units_rounded_down(left, text):
    assert validate.time_left(NOW + left, NOW) == text


def test_a_grant_without_an_end_has_never_as_its_time_left():
    assert validate.time_left(None, NOW) == "never"
