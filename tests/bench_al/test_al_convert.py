"""The yolov5 -> mmyolo YOLOv5 start (bench/al/convert.py): the converted network computes what
the yolov5 one does, and what mmyolo's configs cannot take is refused with the reason."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

from al import commands  # noqa: E402
from al.convert import yolov5_to_mmyolo  # noqa: E402

NUM_CLASSES = 3


def yolov5_model(name: str = "yolov5n", seed: int = 0):
    import yolov5
    from yolov5.models.yolo import Model

    torch.manual_seed(seed)
    model = Model(str(Path(yolov5.__file__).parent / "models" / f"{name}.yaml"), nc=NUM_CLASSES)
    # a network whose every layer matters: BN statistics measured on images (left at 0 and 1, or set
    # at random, the signal fades within a few layers and a wrong early mapping goes unseen) and
    # affine parameters away from 1 and 0
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for m in norms:
        m.momentum = None  # a cumulative average over the calibration batches
        m.weight.data.uniform_(0.5, 1.5)
        m.bias.data.uniform_(-0.5, 0.5)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(4, 3, 64, 96))
    return model.eval()


def save_stage(model, folder: Path) -> Path:
    """A stage folder as the yolov5 image writes it: the model pickled in half precision."""
    folder.mkdir(parents=True)
    torch.save({"model": copy.deepcopy(model).half(), "epoch": -1}, folder / "best.pt")
    return folder


def mmyolo_model(size: str):
    from mmengine.config import Config
    from mmyolo.registry import MODELS
    from mmyolo.utils import register_all_modules

    from ymir_mmyolo.backend import MODELS as NAMES
    from ymir_mmyolo.backend import config_dir

    register_all_modules()
    cfg = Config.fromfile(str(config_dir() / NAMES[f"yolov5_{size}"]))
    cfg.model.bbox_head.head_module.num_classes = NUM_CLASSES
    return MODELS.build(cfg.model).eval()


def test_the_converted_model_computes_what_yolov5_computes(tmp_path, capsys):
    source = yolov5_model()
    stage = save_stage(source, tmp_path / "best")
    assert commands.convert(commands.argparse.Namespace(model=stage, out=tmp_path / "mm")) == 0
    assert "--model yolov5_n --pretrained" in capsys.readouterr().out
    target = tmp_path / "mm" / "yolov5_n.pth"
    state = torch.load(target, weights_only=True)["state_dict"]
    assert {v.dtype for v in state.values() if v.is_floating_point()} == {torch.float32}

    mm = mmyolo_model("n")
    result = mm.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys

    # both from the same half-precision weights. The backbone's and neck's feature maps are compared
    # too: a random head's outputs are mostly its prior biases, which would hide a wrong mapping.
    reference = torch.load(stage / "best.pt", weights_only=False)["model"].float().eval()
    taps = (4, 6, 9, 17, 20, 23)  # yolov5's layers that give the backbone's three outputs, then the neck's
    seen = {}
    for index in taps:
        reference.model[index].register_forward_hook(lambda _m, _i, out, index=index: seen.__setitem__(index, out))
    image = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference.model[-1].training = True  # yolov5's Detect then returns its raw maps
        want = reference(image)  # per level: (1, anchors, h, w, 5 + classes)
        features = mm.backbone(image)
        necks = mm.neck(features)
        cls, box, obj = mm.bbox_head.head_module(necks)
    for got, index in zip([*features, *necks], taps, strict=True):
        torch.testing.assert_close(got, seen[index], rtol=1e-4, atol=1e-4)
    for level, expected in enumerate(want):
        b, a, h, w, _ = expected.shape
        got = torch.cat([box[level].view(b, a, 4, h, w), obj[level].view(b, a, 1, h, w),
                         cls[level].view(b, a, NUM_CLASSES, h, w)], dim=2).permute(0, 1, 3, 4, 2)
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_a_model_with_its_own_anchors_is_refused(tmp_path):
    model = yolov5_model()
    model.model[-1].anchors[0, 0] *= 1.5  # as autoanchor leaves them
    with pytest.raises(ValueError, match=r"anchors .* differ from mmyolo's YOLOv5 priors"):
        yolov5_to_mmyolo(save_stage(model, tmp_path / "best"), tmp_path / "mm")
    assert not (tmp_path / "mm").exists() or not any((tmp_path / "mm").iterdir())


def test_a_folder_without_one_pt_file_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"expected one yolov5 \.pt file, found \[\]"):
        yolov5_to_mmyolo(tmp_path / "empty", tmp_path / "mm")
