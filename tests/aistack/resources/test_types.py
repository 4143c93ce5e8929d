from datetime import timedelta
from decimal import Decimal

import pytest
from pydantic import TypeAdapter, ValidationError

from aistack.resources.types import Duration, Quantity, ResourceName, Version, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5m", timedelta(minutes=5)),
        ("90s", timedelta(seconds=90)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("250ms", timedelta(milliseconds=250)),
        ("1.5h", timedelta(minutes=90)),
    ],
)
def test_durations_parse_go_style(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["5", "5 m", "5min", "-5m", "", "m5"])
def test_bad_durations_are_rejected_with_an_example(text):
    with pytest.raises(ValidationError, match='such as "30s"'):
        TypeAdapter(Duration).validate_python(text)


@pytest.mark.parametrize("text", ["5m", "45s", "1h30m", "250ms", "2h"])
def test_durations_serialize_back_as_written(text):
    adapter = TypeAdapter(Duration)
    assert adapter.dump_python(adapter.validate_python(text)) == text
    assert format_duration(timedelta(seconds=90)) == "1m30s"


@pytest.mark.parametrize(
    ("raw", "value"),
    [("8Gi", 8 * 2**30), ("500m", Decimal("0.5")), (2, 2), ("2", 2), ("1k", 1000), ("1e3", 1000), ("1.5Gi", 3 * 2**29)],
)
def test_quantities_have_their_kubernetes_value(raw, value):
    quantity = Quantity.parse(raw)
    assert quantity.value == Decimal(value)
    assert TypeAdapter(Quantity).dump_python(quantity) == str(raw)


def test_quantities_compare_by_value():
    assert Quantity.parse("1024Mi") == Quantity.parse("1Gi")
    assert Quantity.parse("1000m") == Quantity.parse(1)


@pytest.mark.parametrize("raw", ["8GB", "-1", "lots", "1.5.5", True, 1.5])
def test_bad_quantities_are_rejected(raw):
    with pytest.raises(ValidationError, match="invalid quantity"):
        TypeAdapter(Quantity).validate_python(raw)


@pytest.mark.parametrize("name", ["a", "summarizer-model", "a.b-c", "x" * 253])
def test_valid_resource_names(name):
    assert TypeAdapter(ResourceName).validate_python(name) == name


@pytest.mark.parametrize("name", ["Summarizer", "under_score", "-lead", "trail-", "x" * 254, ""])
def test_invalid_resource_names(name):
    with pytest.raises(ValidationError):
        TypeAdapter(ResourceName).validate_python(name)


@pytest.mark.parametrize("version", ["1.0.0", "v2", "1.2", "1.0.0-rc.1", "1.0.0+build.5"])
def test_versions(version):
    assert TypeAdapter(Version).validate_python(version) == version


def test_numeric_version_asks_for_quotes():
    with pytest.raises(ValidationError, match="quote the version"):
        TypeAdapter(Version).validate_python(1.0)
