"""instance_demo_settings: keys of the seed's instance tables, a hyp file the seg trainer reads,
and args_options its own parser accepts (the learning itself: bench/seg_instance_learning.py)."""

from __future__ import annotations

from pathlib import Path

import yaml
from seglayer import SegLayerBackend, seg_task

from ymir_base.protocol.params import ParamSchema


def test_settings_use_the_instance_tables_keys_and_valid_values(tmp_path):
    from ymir_yolov5lib.segment_demo import instance_demo_settings

    settings = instance_demo_settings(tmp_path / "settings")
    schema = ParamSchema.load(SegLayerBackend.params_file)
    for task in ("training", "infer"):
        specs = schema.for_task(task)
        assert set(settings[task]) <= set(specs), set(settings[task]) - set(specs)
        for key, value in settings[task].items():
            assert specs[key].coerce(value) == value  # the schema's type, choices and bounds
    assert settings["mining"] == settings["infer"]
    assert settings["training"]["img_size"] % 32 == 0


def test_args_options_parse_with_the_seg_trainer_and_name_a_complete_hyp_file(tmp_path):
    from yolov5.segment import train as y5seg

    from ymir_yolov5lib.models import PACKAGE_DIR
    from ymir_yolov5lib.segment_demo import HYP_CHANGES, instance_demo_settings
    from ymir_yolov5lib.train import build_opt

    training = instance_demo_settings(tmp_path / "settings")["training"]
    ctx, _, out_dir = seg_task(tmp_path, overrides=training)
    opt = build_opt(SegLayerBackend(), ctx, out_dir / "data.yaml", None, y5seg.parse_opt, out_dir / "run")
    assert opt.optimizer == "AdamW"
    assert (int(opt.epochs), int(opt.imgsz), int(opt.batch_size)) == (training["epochs"], training["img_size"],
                                                                       training["batch_size_per_gpu"])
    hyp = yaml.safe_load(Path(opt.hyp).read_text())
    upstream = yaml.safe_load((PACKAGE_DIR / "data" / "hyps" / "hyp.scratch-low.yaml").read_text())
    assert set(hyp) == set(upstream)  # every key the trainer reads
    assert hyp == {**upstream, **HYP_CHANGES}
    assert Path(opt.hyp).parent == tmp_path / "settings"
