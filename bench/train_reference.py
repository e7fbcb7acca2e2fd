"""The reference side of the training benchmark: the libraries' own train commands on what our
executor ran. For yolov5, ``python -m yolov5.train`` with the options our trainer logged (its
"yolov5 train options" line: every option that differs from train.py's defaults) on a copy of
the YOLO-format dataset our executor wrote; for mmdet and mmyolo, the package's own
``tools/train.py`` on the MMEngine config our executor ran."""

from __future__ import annotations

import argparse
import ast
import importlib.util
import re
import shutil
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from unittest import mock

import yaml

OPTIONS_LINE = re.compile(r" yolov5 train options: (\{.*\})$", re.M)


def logged_options(log: str) -> dict[str, Any]:
    """The options of our trainer's "yolov5 train options: {...}" log line."""
    match = OPTIONS_LINE.search(log)
    if match is None:
        raise ValueError("our training log has no 'yolov5 train options' line")
    return ast.literal_eval(match.group(1))


def trainer_parser(parse_opt: Callable[..., Any]) -> argparse.ArgumentParser:
    """The parser that ``parse_opt`` builds (yolov5 returns only what it parsed), caught as it
    parses an empty command line."""
    caught: list[argparse.ArgumentParser] = []
    original = argparse.ArgumentParser.parse_known_args

    def spy(self: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> Any:
        caught.append(self)
        return original(self, *args, **kwargs)

    saved = sys.argv
    sys.argv = ["train.py"]
    try:
        with mock.patch.object(argparse.ArgumentParser, "parse_known_args", spy):
            parse_opt(known=True)
    finally:
        sys.argv = saved
    return caught[0]


def command_line(options: Mapping[str, Any], parser: argparse.ArgumentParser) -> list[str]:
    """train.py's arguments that set each of ``options`` (an option's destination name -> value)."""
    actions = {a.dest: a for a in parser._actions if a.option_strings}  # argparse keeps them here only
    argv: list[str] = []
    for key, value in options.items():
        action = actions.get(key)
        if action is None:
            raise ValueError(f"{key!r} is not an option of yolov5's train.py")
        flag = action.option_strings[0]
        if action.nargs == 0 or (action.nargs == "?" and value is True):  # a flag, or --resume alone
            if value is not True:
                raise ValueError(f"option {key!r} is a flag: {value!r} cannot be given on the command line")
            argv.append(flag)
        elif isinstance(value, list | tuple):
            argv += [flag, *(str(v) for v in value)]
        else:
            argv += [flag, str(value)]
    return argv


def yolov5_command(options: Mapping[str, Any], data_yaml: Path, project: Path) -> list[str]:
    """``python -m yolov5.train`` with ``options`` (ours, from the log), trained on ``data_yaml``
    into ``project``/train instead of our work folder; checked to parse back to the same options."""
    from yolov5 import train as y5train

    from ymir_yolov5lib.train import changed_options

    wanted = {**options, "data": str(data_yaml), "project": str(project), "name": "train"}
    argv = command_line(wanted, trainer_parser(y5train.parse_opt))
    saved = sys.argv
    sys.argv = ["train.py", *argv]
    try:
        parsed = changed_options(y5train.parse_opt(known=False), y5train.parse_opt)
    finally:
        sys.argv = saved
    if parsed != wanted:
        raise ValueError(f"the reference command line parses to {parsed}, not {wanted}")
    return [sys.executable, "-m", "yolov5.train", *argv]


def copy_yolo_dataset(source: Path, target: Path) -> Path:
    """A copy of the YOLO-format dataset our executor wrote (image links, label files) with its
    own data.yaml; returns that data.yaml."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target, symlinks=True)
    data = yaml.safe_load((source / "data.yaml").read_text())
    for split in ("train", "val"):
        data[split] = str(target / Path(data[split]).relative_to(source))
    (target / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    clear_label_caches(target)
    return target / "data.yaml"


def clear_label_caches(dataset: Path) -> None:
    """yolov5's label caches (``labels/<split>.cache``): our executor writes the dataset afresh
    in every task, so each of its runs scans the labels; the reference run does too."""
    for cache in (dataset / "labels").glob("*.cache"):
        cache.unlink()


def openmmlab_config(ours: Path, target: Path, work_dir: Path, tensorboard: Path) -> Path:
    """Our run's MMEngine config with the reference's own work and tensorboard folders."""
    from mmengine.config import Config

    cfg = Config.fromfile(str(ours))
    cfg.work_dir = str(work_dir)
    for backend in cfg.visualizer.vis_backends:
        if backend.get("type") == "TensorboardVisBackend":
            backend.save_dir = str(tensorboard)
    target.parent.mkdir(parents=True, exist_ok=True)
    cfg.dump(str(target))
    return target


def openmmlab_command(package: str, config: Path, work_dir: Path) -> list[str]:
    """The package's own ``tools/train.py`` (shipped in its ``.mim`` folder) on ``config``."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"package {package!r} is not installed")
    tool = Path(next(iter(spec.submodule_search_locations))) / ".mim" / "tools" / "train.py"
    if not tool.is_file():
        raise ValueError(f"{package} ships no {tool}")
    return [sys.executable, str(tool), str(config), "--work-dir", str(work_dir)]
