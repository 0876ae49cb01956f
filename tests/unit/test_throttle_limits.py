"""The guide's throttling table, the ``throttle_rates`` overrides, division across processes, the Throttle."""

from __future__ import annotations

from pathlib import Path

import pytest

from openhi.config import describe, load_settings
from openhi.errors import ThrottledError, ValidationError
from openhi.throttling.limits import DEFAULT_LIMITS, Limit, divided, effective_limits, parse_overrides
from openhi.throttling.throttle import LocalBuckets, Throttle, open_throttle

KNOWN = {*DEFAULT_LIMITS, "SearchDICOMStudies", "StoreDICOM"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_defaults_are_the_guide_table() -> None:
    """Guide 22787-22816: 22 operations, rate and burst each."""
    assert len(DEFAULT_LIMITS) == 22
    assert DEFAULT_LIMITS["CreateDatastore"] == Limit(0.085, 1)
    assert DEFAULT_LIMITS["DeleteDatastore"] == Limit(0.085, 1)
    assert DEFAULT_LIMITS["ListDatastores"] == Limit(5, 10)
    assert DEFAULT_LIMITS["StartDICOMImportJob"] == Limit(1, 2)
    assert DEFAULT_LIMITS["GetImageFrame"] == Limit(1000, 2000)
    assert DEFAULT_LIMITS["GetImageSetMetadata"] == Limit(50, 100)
    for write in ("UpdateImageSetMetadata", "CopyImageSet", "DeleteImageSet"):
        assert DEFAULT_LIMITS[write] == Limit(0.25, 1)
    for tagging in ("TagResource", "ListTagsForResource", "UntagResource"):
        assert DEFAULT_LIMITS[tagging] == Limit(10, 20)
    for dicomweb in (
        "GetDICOMInstance",
        "GetDICOMInstanceMetadata",
        "GetDICOMInstanceFrames",
        "GetDICOMSeriesMetadata",
    ):
        assert DEFAULT_LIMITS[dicomweb] == Limit(50, 100)
    assert "StoreDICOM" not in DEFAULT_LIMITS
    assert "SearchDICOMStudies" not in DEFAULT_LIMITS


def test_overrides_change_add_and_turn_off() -> None:
    limits = effective_limits(
        '{"GetImageFrame": [2000, 4000], "SearchDICOMStudies": [10, 20], "CopyImageSet": null, '
        '"DeleteImageSet": [0, 0]}',
        KNOWN,
    )
    assert limits["GetImageFrame"] == Limit(2000, 4000)
    assert limits["SearchDICOMStudies"] == Limit(10, 20)
    assert "CopyImageSet" not in limits
    assert "DeleteImageSet" not in limits
    assert limits["GetDatastore"] == DEFAULT_LIMITS["GetDatastore"]
    assert effective_limits("", KNOWN) == dict(DEFAULT_LIMITS)
    assert parse_overrides("  ") == {}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[1, 2]", "JSON object"),
        ("{nope", "not valid JSON"),
        ('{"GetImageFrme": [1, 1]}', "not an operation"),
        ('{"getImageFrame": [1, 1]}', "not an operation"),
        ('{"GetImageFrame": [1]}', "[rate, burst]"),
        ('{"GetImageFrame": {"rate": 1}}', "[rate, burst]"),
        ('{"GetImageFrame": [-1, 2]}', ">= 0"),
        ('{"GetImageFrame": [true, 2]}', ">= 0"),
        ('{"GetImageFrame": ["1", 2]}', ">= 0"),
        ('{"GetImageFrame": [0, 5]}', "rate > 0"),
        ('{"GetImageFrame": [5, 0]}', "burst >= 1"),
        ('{"GetImageFrame": [5, 0.5]}', "burst >= 1"),
        ('{"GetImageFrame": [1e999, 2]}', "finite"),
    ],
)
def test_bad_overrides_are_clear_errors(text: str, fragment: str) -> None:
    with pytest.raises(ValidationError, match="throttle_rates") as caught:
        parse_overrides(text, KNOWN)
    assert fragment in caught.value.message
    assert caught.value.field == "throttle_rates"


def test_without_a_list_of_operations_any_well_formed_name_passes() -> None:
    assert parse_overrides('{"SomeFutureOperation": [1, 1]}') == {"SomeFutureOperation": Limit(1, 1)}


def test_divided_shares_rate_exactly_and_burst_at_least_one() -> None:
    shares = divided({"GetImageFrame": Limit(1000, 2000), "CreateDatastore": Limit(0.085, 1)}, 4)
    assert shares["GetImageFrame"] == Limit(250, 500)
    assert shares["CreateDatastore"] == Limit(0.085 / 4, 1)
    assert divided({"X": Limit(3, 3)}, 1) == {"X": Limit(3, 3)}
    with pytest.raises(ValueError, match="processes"):
        divided({}, 0)


def test_throttle_refuses_beyond_the_burst_per_operation() -> None:
    clock = FakeClock()
    throttle = Throttle({"GetDatastore": Limit(1, 2), "ListDatastores": Limit(1, 1)}, LocalBuckets(clock), "1" * 12)
    throttle.acquire("GetDatastore")
    throttle.acquire("GetDatastore")
    with pytest.raises(ThrottledError, match="Rate exceeded for GetDatastore") as caught:
        throttle.acquire("GetDatastore")
    assert caught.value.code == "ThrottlingException"
    throttle.acquire("ListDatastores")  # its own bucket
    for _ in range(50):
        throttle.acquire("StoreDICOM")  # not in the table: never throttled
    clock.now += 1.0
    throttle.acquire("GetDatastore")
    with pytest.raises(ThrottledError):
        throttle.acquire("GetDatastore")


def test_buckets_are_per_account() -> None:
    buckets = LocalBuckets(FakeClock())
    limits = {"GetDatastore": Limit(1, 1)}
    first, second = Throttle(limits, buckets, "111111111111"), Throttle(limits, buckets, "222222222222")
    first.acquire("GetDatastore")
    second.acquire("GetDatastore")
    with pytest.raises(ThrottledError):
        first.acquire("GetDatastore")


def test_throttle_off_never_refuses() -> None:
    throttle = Throttle.off()
    assert not throttle.enabled
    for _ in range(100):
        throttle.acquire("CreateDatastore")


def test_settings_choose_the_throttle() -> None:
    default, sources = load_settings(environ={})
    assert (default.throttling, default.throttle_rates, default.throttle_url) == (True, "", "")
    rows = {name: value for name, value, _ in describe(default, sources)}
    assert rows["throttling"] == "True"
    on = open_throttle(default, KNOWN)
    assert on.enabled
    assert on.limit("CreateDatastore") == Limit(0.085, 1)
    assert on.description == "process-local"
    off, sources = load_settings(environ={"OPENHI_THROTTLING": "false"})
    assert sources["throttling"] == "env OPENHI_THROTTLING"
    assert not open_throttle(off, KNOWN).enabled
    workers, _ = load_settings(environ={"OPENHI_WORKERS": "4", "OPENHI_THROTTLE_RATES": '{"GetDatastore": [8, 2]}'})
    shared = open_throttle(workers, KNOWN)
    assert shared.limit("GetDatastore") == Limit(2, 1)
    assert shared.limit("GetImageFrame") == Limit(250, 500)
    assert "4 processes" in shared.description


@pytest.mark.parametrize(("word", "value"), [("true", True), ("1", True), ("On", True), ("no", False), ("0", False)])
def test_booleans_from_the_environment(word: str, value: bool) -> None:
    settings, _ = load_settings(environ={"OPENHI_THROTTLING": word})
    assert settings.throttling is value


def test_booleans_from_toml_and_refusals(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("throttling = false\n")
    settings, sources = load_settings(environ={}, config_file=config)
    assert settings.throttling is False
    assert sources["throttling"] == f"file {config}"
    with pytest.raises(ValidationError, match="not a valid bool"):
        load_settings(environ={"OPENHI_THROTTLING": "maybe"})
    config.write_text("throttling = 1\n")
    with pytest.raises(ValidationError, match="not a valid bool"):
        load_settings(environ={}, config_file=config)


def test_bad_throttle_settings_fail_even_when_throttling_is_off() -> None:
    settings, _ = load_settings(environ={"OPENHI_THROTTLING": "false", "OPENHI_THROTTLE_RATES": '{"Nope": [1, 1]}'})
    with pytest.raises(ValidationError, match="not an operation"):
        open_throttle(settings, KNOWN)
    settings, _ = load_settings(environ={"OPENHI_THROTTLE_URL": "http://localhost:6379"})
    with pytest.raises(ValidationError, match="throttle_url"):
        open_throttle(settings, KNOWN)


@pytest.mark.parametrize(
    "name",
    [
        "max_concurrent_image_set_updates",
        "max_concurrent_image_set_copies",
        "max_concurrent_image_set_deletes",
        "max_frames_per_copy",
        "max_update_payload_bytes",
        "max_image_set_metadata_bytes",
        "max_import_files",
    ],
)
def test_quota_settings_are_ints_at_least_zero(name: str) -> None:
    settings, _ = load_settings(environ={f"OPENHI_{name.upper()}": "7"})
    assert getattr(settings, name) == 7
    with pytest.raises(ValidationError, match=name):
        load_settings(environ={f"OPENHI_{name.upper()}": "-1"})
