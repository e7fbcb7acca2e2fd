import pytest

from ymir_base.protocol.coerce import to_bool, to_float, to_int, to_str_list


@pytest.mark.parametrize("value, expected", [
    (True, True), (False, False), (1, True), (0, False), ("True", True), ("false", False),
    ("t", True), ("F", False), ("1", True), ("0", False), (" yes ", True), ("", False),
])
def test_to_bool_accepts_what_the_ui_sends(value, expected):
    assert to_bool(value) is expected


@pytest.mark.parametrize("value", ["maybe", 2, [True], None])
def test_to_bool_rejects_other_values(value):
    with pytest.raises(ValueError):
        to_bool(value)


def test_numbers_from_strings():
    assert to_int("16") == 16
    assert to_int(16.0) == 16
    assert to_int("32.0") == 32
    assert to_float("0.25") == 0.25
    assert to_float(1) == 1.0
    with pytest.raises(ValueError):
        to_int("1.5")
    with pytest.raises(ValueError):
        to_int(True)
    with pytest.raises(ValueError):
        to_float("abc")


def test_str_list_from_comma_string_or_list():
    assert to_str_list("a, b,c") == ["a", "b", "c"]
    assert to_str_list(["a", 1]) == ["a", "1"]
    assert to_str_list("") == []
