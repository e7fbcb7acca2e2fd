import pytest

from ymir_base.errors import ConfigError, ErrorCode
from ymir_base.protocol.env import load_env, parse_env


def test_defaults_for_every_missing_field():
    env = parse_env({"run_infer": True, "task_id": "t1", "input": {"candidate_index_file": "/in/c.tsv"}})
    assert env.task_id == "t1" and env.run_infer and not env.run_mining
    assert env.input.candidate_index_file == "/in/c.tsv"
    assert env.input.models_dir == "/in/models"
    assert env.output.monitor_file == "/out/monitor.txt"
    assert env.output.mining_result_file == "/out/result.tsv"
    assert not env.new_protocol  # no protocol_version: legacy


def test_unknown_keys_tolerated_and_string_booleans():
    env = parse_env({"run_training": "True", "protocol_version": "1.1.0", "future_key": 1,
                     "input": {"extra": "x", "training_index_file": "/in/train-index.tsv"}})
    assert env.run_training and env.new_protocol


def test_no_task_requested_is_a_config_error():
    with pytest.raises(ConfigError) as err:
        parse_env({"run_training": False})
    assert err.value.code == ErrorCode.CONFIG


def test_training_with_mining_rejected():
    with pytest.raises(ConfigError, match="run_training"):
        parse_env({"run_training": True, "run_mining": True})


def test_missing_and_garbled_files_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match=r"env\.yaml not found"):
        load_env(tmp_path / "env.yaml")
    bad = tmp_path / "env.yaml"
    bad.write_text("run_training: true\ninput: [unclosed\n")
    with pytest.raises(ConfigError, match=r"not valid YAML.*line \d+"):
        load_env(bad)
