import pytest

from ymir_base.errors import ConfigError, ErrorCode, ObjectTypeError
from ymir_base.protocol.config import merge_config, object_type_of, parse_overrides
from ymir_base.protocol.params import ParamSpec

SPECS = {
    "epochs": ParamSpec("epochs", "int", 100, minimum=1),
    "save_best_only": ParamSpec("save_best_only", "bool", True),
    "conf_thres": ParamSpec("conf_thres", "float", 0.25, minimum=0, maximum=1),
    "model": ParamSpec("model", "str", "yolov5s", choices=("yolov5n", "yolov5s")),
    "mining_algorithm": ParamSpec("mining_algorithm", "str", "aldd", choices=("aldd", "RSAL")),
}


def test_layers_and_coercion():
    cfg = merge_config(SPECS, {"epochs": 10}, {"epochs": "20", "save_best_only": "False", "gpu_id": 0,
                                               "class_names": "a,b", "unknown_key": [1]}, {"conf_thres": "0.5"})
    assert cfg["epochs"] == 20 and cfg["save_best_only"] is False and cfg["conf_thres"] == 0.5
    assert cfg["model"] == "yolov5s"  # dropped by the UI: default comes back
    assert cfg["gpu_id"] == "0" and cfg["class_names"] == ["a", "b"]
    assert cfg["unknown_key"] == [1]  # tolerated


def test_choice_case_insensitive():
    assert merge_config(SPECS, {}, {"mining_algorithm": "rsal"})["mining_algorithm"] == "RSAL"


@pytest.mark.parametrize("key, value, fragment", [
    ("model", "yolov9", "not one of"),
    ("epochs", "ten", "expected an integer"),
    ("epochs", 0, "below the minimum"),
    ("conf_thres", 1.5, "above the maximum"),
    ("save_best_only", "perhaps", "boolean"),
])
def test_bad_value_names_the_key(key, value, fragment):
    with pytest.raises(ConfigError) as err:
        merge_config(SPECS, {}, {key: value})
    assert err.value.code == ErrorCode.CONFIG
    assert f"'{key}'" in str(err.value) and fragment in str(err.value)


def test_object_type():
    assert object_type_of({}, [2]) == 2
    assert object_type_of({"object_type": 3}, [2, 3, 4]) == 3
    with pytest.raises(ObjectTypeError):
        object_type_of({"object_type": 3}, [2])
    with pytest.raises(ObjectTypeError):
        object_type_of({}, [2, 3])


def test_overrides_parse_yaml_scalars():
    assert parse_overrides(["epochs=2", "save_best_only=false", "model=yolov5n"]) == {
        "epochs": 2, "save_best_only": False, "model": "yolov5n"}
    with pytest.raises(ConfigError):
        parse_overrides(["epochs"])
