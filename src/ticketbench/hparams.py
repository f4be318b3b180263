"""Hyper-parameters are frozen dataclasses: they make the CLI flags, read config files and name runs.

Rules (taken from OpenLTH): fields are ``str``/``int``/``float``/``bool``; a boolean that defaults to False
becomes a ``--flag`` switch, one that defaults to True a ``--flag/--no-flag`` pair; help text lives in ``field(metadata={"help": ...})``; a new
field needs a default that changes nothing, so that the run id of old runs (``stage.make_run_id``, which
hashes non-default fields only) stays the same.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from .errors import ConfigError

H = TypeVar("H", bound="Hparams")
SEED_MAX = 2 ** 32 - 1  # numpy's seeds are 32-bit; a larger one is a typo, not a seed
INT_MAX = 2 ** 31 - 1  # no count, size or epoch of a recipe comes near it
THREADS_MAX = 1024
IMAGE_SIZE_MAX = 1024  # four times ImageNet's largest common test size; digits at 100,000 would need terabytes
_SCALARS = {"str": str, "int": int, "float": float, "bool": bool}


def hp(default: Any, help: str) -> Any:  # noqa: A002 - mirrors argparse's name
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Hparams:
    """Base class. Subclasses set ``section`` (the config-file block they read) and override ``check``."""

    section: ClassVar[str] = ""

    @classmethod
    def _fields(cls) -> list[dataclasses.Field]:
        return [f for f in dataclasses.fields(cls) if f.init]

    @classmethod
    def add_args(cls, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group(cls.section or cls.__name__, cls.__doc__.splitlines()[0] if cls.__doc__ else None)
        for f in cls._fields():
            kind = _SCALARS[f.type] if isinstance(f.type, str) else f.type
            flag = "--" + f.name.replace("_", "-")
            # argparse %-formats help text; a literal percentage ("5%") must reach it escaped.
            text = f"{f.metadata.get('help', '')} (default: {f.default!r})".replace("%", "%%")
            if kind is bool:
                action = argparse.BooleanOptionalAction if f.default else "store_true"
                group.add_argument(flag, dest=f.name, action=action, default=argparse.SUPPRESS, help=text)
            else:
                group.add_argument(flag, dest=f.name, type=kind, default=argparse.SUPPRESS, metavar=f.name.upper(),
                                   help=text)

    @classmethod
    def from_sources(cls: type[H], config: dict[str, Any] | None = None, args: argparse.Namespace | None = None) -> H:
        """Defaults, then the config file's block, then explicit command-line flags."""
        values = dict((config or {}).get(cls.section, {}) or {}) if cls.section else dict(config or {})
        if args is not None:
            values.update({f.name: getattr(args, f.name) for f in cls._fields() if hasattr(args, f.name)})
        return cls.from_dict(values)

    @classmethod
    def from_dict(cls: type[H], values: dict[str, Any], *, check: bool = True) -> H:
        """The block of ``values``, coerced to the fields' types; ``check=False`` leaves out the range checks
        (some import the data layer, and with it torch) for a caller that only compares settings."""
        names = {f.name: f for f in cls._fields()}
        kwargs = {}
        for key, value in values.items():
            if key not in names:
                raise ConfigError(f"{cls.section}.{key}" if cls.section else key, value,
                                  f"known keys of {cls.section or cls.__name__}: {', '.join(sorted(names))}")
            kwargs[key] = _coerce(cls.section, names[key], value)
        obj = cls(**kwargs)
        if check:
            obj.check()
        return obj

    def check(self) -> None:
        """Raise ConfigError for values that are out of range. Subclasses extend this."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in self._fields()}

    def non_default(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in self._fields() if getattr(self, f.name) != f.default}

    def _require(self, key: str, ok: bool, allowed: str) -> None:
        if not ok:
            name = f"{self.section}.{key}" if self.section else key
            raise ConfigError(name, getattr(self, key), allowed)


def _coerce(section: str, f: dataclasses.Field, value: Any) -> Any:
    kind = _SCALARS[f.type] if isinstance(f.type, str) else f.type
    key = f"{section}.{f.name}" if section else f.name
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(key, value, "true or false")
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is str and isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    if kind is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ConfigError(key, value, f"a value of type {kind.__name__}")
    # inf and nan pass every range check written as a comparison, and train a run that looks normal.
    if kind is float and not math.isfinite(value):
        raise ConfigError(key, value, "a finite number")
    if kind is int and not -INT_MAX <= value <= INT_MAX:
        raise ConfigError(key, value, f"an integer from {-INT_MAX} to {INT_MAX}")
    if kind is str and any(c < " " or c == "\x7f" for c in value):
        # A value here is a flag's argument and often a path: a newline in one is never meant.
        raise ConfigError(key, value, "a value without control characters (newlines, tabs)")
    return value


def int_list(text: str) -> list[int]:
    """Parse '3,8' (config strings for epoch lists) into [3, 8]."""
    return [int(t) for t in str(text).replace(" ", "").split(",") if t != ""]


def iteration_point(spec: str, total_iterations: int) -> int:
    """An iteration given as ``n`` or as ``p%`` of a run's ``total_iterations``.

    Structure-LTH rewinds to 5% of training (epoch 8 of 160); a percentage names the same point of any schedule,
    so a short CPU run and the paper's schedule share one config value.
    """
    spec = str(spec).strip()
    if spec.endswith("%"):
        return round(float(spec[:-1]) / 100 * total_iterations)
    return int(spec)


def iteration_points(text: str, total_iterations: int) -> list[int]:
    return [iteration_point(t, total_iterations) for t in str(text).replace(" ", "").split(",") if t != ""]


def _is_iteration_spec(t: str) -> bool:
    if t.endswith("%"):
        try:
            return 0 <= float(t[:-1]) <= 100
        except ValueError:
            return False
    return t.isdigit()


@dataclass(frozen=True)
class DataHparams(Hparams):
    """Which data to train on and how to load it."""

    section: ClassVar[str] = "data"
    dataset: str = hp("digits", "dataset name: digits (embedded), synthetic, cifar10, cifar100, tiny-imagenet, imagenet")
    data_root: str = hp("", "folder that holds the dataset files (not needed for digits/synthetic)")
    download: bool = hp(False, "download CIFAR into --data-root if it is missing")
    no_augment: bool = hp(False, "turn off training-set augmentation")
    image_size: int = hp(0, "resize in-memory datasets to this size (0: the dataset's default)")
    workers: int = hp(-1, "loader processes for datasets read from files (-1: from the core count; 0: none); "
                      "in-memory datasets are batched on the training device and need none")
    cache: str = hp("", "folder for a uint8 copy of the decoded images of tiny-imagenet/imagenet, built on first use "
                        "and read instead of the JPEG files afterwards (empty: none)")

    def check(self) -> None:
        from .data import dataset_names

        self._require("dataset", self.dataset in dataset_names(), f"one of {', '.join(dataset_names())}")
        self._require("image_size", 0 <= self.image_size <= IMAGE_SIZE_MAX,
                      f"0 (dataset default) or a size from 1 to {IMAGE_SIZE_MAX}")
        self._require("workers", self.workers >= -1, "-1 (from the core count) or a non-negative integer")


@dataclass(frozen=True)
class ModelHparams(Hparams):
    """Which network to build."""

    section: ClassVar[str] = "model"
    backbone: str = hp("test_resnet", "any timm model name, or a paper network such as cifar_resnet20")


SCHEDULES = ("cosine", "cosine_epoch", "multistep", "constant")
PRECISIONS = ("fp32", "bf16", "fp16")
LAYOUTS = ("channels_last", "contiguous")


@dataclass(frozen=True)
class TrainHparams(Hparams):
    """How to train: SGD with momentum, a learning-rate schedule and rewind snapshots."""

    section: ClassVar[str] = "train"
    epochs: int = hp(15, "training epochs")
    batch_size: int = hp(128, "minibatch size")
    lr: float = hp(0.1, "peak learning rate")
    momentum: float = hp(0.9, "SGD momentum")
    nesterov: bool = hp(False, "use Nesterov momentum")
    weight_decay: float = hp(5e-4, "L2 weight decay")
    schedule: str = hp("cosine", "learning-rate schedule: cosine (annealed every iteration), cosine_epoch (annealed "
                                 "once per epoch, as torch's CosineAnnealingLR stepped per epoch), multistep or "
                                 "constant")
    milestones: str = hp("", "multistep: comma-separated epochs at which the lr is multiplied by --gamma")
    gamma: float = hp(0.1, "multistep decay factor")
    warmup_epochs: int = hp(0, "linear learning-rate warm-up epochs")
    rewind_epochs: str = hp("0", "comma-separated epochs k: save the weights after k epochs as rewind snapshots")
    rewind_iterations: str = hp("", "comma-separated iterations at which to save rewind snapshots too; p% is that "
                                    "share of the run's iterations (snapshot it<n>)")
    label_smoothing: float = hp(0.0, "label smoothing of the cross-entropy loss")
    precision: str = hp("fp32", "arithmetic of forward and backward passes: fp32, bf16 (autocast) or fp16 (autocast "
                        "with a gradient scaler); weights and optimiser state stay fp32")
    layout: str = hp("channels_last", "memory layout of images and conv weights: channels_last or contiguous (NCHW)")
    compile: bool = hp(False, "compile the model with torch.compile (first steps are slower while it compiles)")

    def check(self) -> None:
        self._require("epochs", self.epochs > 0, "a positive number of epochs")
        self._require("batch_size", self.batch_size > 0, "a positive batch size")
        self._require("lr", self.lr > 0, "a positive learning rate")
        self._require("momentum", 0 <= self.momentum < 1, "a value in [0, 1)")
        self._require("weight_decay", self.weight_decay >= 0, "a non-negative value")
        self._require("schedule", self.schedule in SCHEDULES, f"one of {', '.join(SCHEDULES)}")
        self._require("warmup_epochs", 0 <= self.warmup_epochs < self.epochs, "0 <= warmup_epochs < epochs")
        self._require("label_smoothing", 0 <= self.label_smoothing < 1, "a value in [0, 1)")
        self._require("precision", self.precision in PRECISIONS, f"one of {', '.join(PRECISIONS)}")
        self._require("layout", self.layout in LAYOUTS, f"one of {', '.join(LAYOUTS)}")
        self._require("rewind_iterations", all(_is_iteration_spec(t) for t in str(self.rewind_iterations)
                                               .replace(" ", "").split(",") if t),
                      "comma-separated iterations n or percentages p% of the run, e.g. '100,5%'")
        for key in ("milestones", "rewind_epochs"):
            try:
                values = int_list(getattr(self, key))
            except ValueError:
                self._require(key, False, "comma-separated non-negative integers, e.g. '0,3'")
            self._require(key, all(v >= 0 for v in values), "comma-separated non-negative integers")
        self._require("rewind_epochs", all(v <= self.epochs for v in int_list(self.rewind_epochs)),
                      f"epochs between 0 and epochs={self.epochs}")
        self._require("milestones", self.schedule != "multistep" or bool(int_list(self.milestones)),
                      "at least one epoch when schedule is multistep")


def numerics_of(hp: TrainHparams) -> dict[str, Any]:
    """The arithmetic settings of a recipe, for a stage that trains with its own epochs and rates (jackpot)."""
    return {"precision": hp.precision, "layout": hp.layout, "compile": hp.compile}


@dataclass(frozen=True)
class RuntimeHparams(Hparams):
    """How the machine runs the numbers (does not change the recipe, may change the last bits)."""

    section: ClassVar[str] = "runtime"
    deterministic: bool = hp(True, "deterministic kernels and TF32 off, so a seed repeats bit for bit on one machine; "
                             "--no-deterministic lets cuDNN pick the fastest (autotuned, non-deterministic) kernels")
