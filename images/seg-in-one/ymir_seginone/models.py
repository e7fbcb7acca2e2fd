"""The models of the seed table and the config names that select them.

``config_file`` names an mmsegmentation config as the seed documents it (mmseg 0.x names, e.g.
``configs/fastscnn/fast_scnn_lr0.12_8x4_160k_cityscapes.py``) or as mmseg 1.x names the same
config (``configs/fastscnn/fast_scnn_8xb4-160k_cityscapes-512x1024.py``). Both select one model
key, which also names the model's baked Cityscapes weights (``/weights/seg-in-one/<key>.pth``).
"""

from __future__ import annotations

from pathlib import Path

from ymir_base.errors import ConfigError

_HRNETS = ("hr18s", "hr18", "hr48")
_SCHEDULES = ("40k", "80k", "160k")

# model key -> the mmseg 1.x config (under mmseg's configs/) that the image trains from
MODELS: dict[str, str] = {
    "fast_scnn": "fastscnn/fast_scnn_8xb4-160k_cityscapes-512x1024.py",
    **{f"fcn_{net}_{sch}": f"hrnet/fcn_{net}_4xb2-{sch}_cityscapes-512x1024.py"
       for net in _HRNETS for sch in _SCHEDULES},
}
# model key -> the seed's mmseg 0.x config name of the same model
LEGACY_NAMES: dict[str, str] = {
    "fast_scnn": "fastscnn/fast_scnn_lr0.12_8x4_160k_cityscapes.py",
    **{f"fcn_{net}_{sch}": f"hrnet/fcn_{net}_512x1024_{sch}_cityscapes.py" for net in _HRNETS for sch in _SCHEDULES},
}
DEFAULT_CONFIG = f"configs/{LEGACY_NAMES['fast_scnn']}"


def config_choices() -> list[str]:
    """Every accepted ``config_file`` value: the seed's 0.x names first, then the 1.x names."""
    return [f"configs/{name}" for name in LEGACY_NAMES.values()] + [f"configs/{name}" for name in MODELS.values()]


def model_of(config_file: str) -> str:
    """The model key of a ``config_file`` value (any folder; the file name decides)."""
    stem = Path(str(config_file).strip()).name.removesuffix(".py")
    for key in MODELS:
        if stem in (Path(MODELS[key]).stem, Path(LEGACY_NAMES[key]).stem):
            return key
    raise ConfigError(f"config key 'config_file': {config_file!r} is not one of this image's models "
                      f"(FastSCNN, HRNet W18-Small/W18/W48 at 40k/80k/160k iterations), e.g. {DEFAULT_CONFIG}")


def config_dir() -> Path:
    """The configs installed with mmsegmentation (its ``.mim`` copy of the repository's configs/)."""
    import mmseg

    return Path(mmseg.__file__).resolve().parent / ".mim" / "configs"
