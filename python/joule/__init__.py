"""joule from Python: the energy of DNNs on accelerators, over the same library as the
``joule`` command.

    >>> import joule
    >>> r = joule.energy("alexnet", hw="eyeriss")
    >>> r.macs
    724406816
    >>> [l.name for l in r.layers][:2]
    ['conv1', 'conv2']

A *model* is a zoo name (``joule.zoo()``), a path (str or os.PathLike) to an ``.onnx``
file or a ``.safetensors`` checkpoint, ONNX bytes, an ``onnx.ModelProto``, or a
``torch.nn.Module`` together with ``example_input=`` (exported to ONNX in memory).
Hardware (``hw``) is a preset name (``joule.presets()``) or a YAML spec file.

Every error is a :class:`JouleError` whose message is one line naming the argument or
file at fault, as the CLI prints it (with keyword names where the CLI says flags).
"""

from __future__ import annotations

import os
import sys

from . import _joule
from ._joule import (
    CompareEntry,
    Comparison,
    DataflowComparison,
    EnergyReport,
    Hardware,
    JouleError,
    LayerEnergy,
    LayerStats,
    LevelEnergy,
    Stats,
    TypeEnergy,
    ZooModel,
)

__version__ = _joule.__version__

__all__ = [
    "CompareEntry",
    "Comparison",
    "DataflowComparison",
    "EnergyReport",
    "Hardware",
    "JouleError",
    "LayerEnergy",
    "LayerStats",
    "LevelEnergy",
    "Stats",
    "TypeEnergy",
    "ZooModel",
    "compare",
    "dataflows",
    "energy",
    "hardware",
    "presets",
    "stats",
    "zoo",
]

# `typing` only for type checkers: importing it would double the package's import time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Iterable, List, Optional, Sequence, Tuple, Union

    #: A model argument: a zoo name, a path, ONNX bytes, an ``onnx.ModelProto`` or a
    #: ``torch.nn.Module`` (the last two typed loosely: neither package is required).
    ModelLike = Union[str, os.PathLike, bytes, bytearray, memoryview, Any]
    #: A machine argument: a preset name or a YAML spec file.
    HardwareLike = Union[str, os.PathLike]

_MODEL_KINDS = (
    "a zoo name, a path to an .onnx or .safetensors file, ONNX bytes, an onnx.ModelProto "
    "or a torch.nn.Module with example_input="
)


def _fail(argument: str, message: str) -> JouleError:
    return JouleError(f"{argument}: {message}")


def _type_name(value: object) -> str:
    return type(value).__name__


def _model(model: object, example_input: object = None, argument: str = "model"):
    """``(zoo name or path, name)`` or ``(ONNX bytes, name)`` for the extension."""
    if isinstance(model, str):
        return model, model
    if isinstance(model, os.PathLike):
        path = os.fsdecode(os.fspath(model))
        return path, path
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model), "onnx"
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(model, torch.nn.Module):
        return _torch_onnx(torch, model, example_input, argument), type(model).__name__
    if type(model).__name__ == "ModelProto" and hasattr(model, "SerializeToString"):
        graph = getattr(model, "graph", None)
        return model.SerializeToString(), (getattr(graph, "name", "") or "onnx")
    raise _fail(argument, f"expected {_MODEL_KINDS}, not {_type_name(model)}")


def _torch_onnx(torch, module, example_input, argument: str) -> bytes:
    """A torch module exported to ONNX bytes in memory (TorchScript exporter)."""
    if example_input is None:
        raise _fail(
            "example_input",
            f"{argument} is a torch.nn.Module: give an example input tensor to export it",
        )
    import io

    args = example_input if isinstance(example_input, tuple) else (example_input,)
    buffer = io.BytesIO()
    try:
        torch.onnx.export(module, args, buffer, dynamo=False)
    except Exception as e:  # the exporter's own message, on one line
        text = " ".join(str(e).split())
        raise _fail(argument, f"torch.onnx.export failed: {text}") from e
    return buffer.getvalue()


def _int(argument: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(argument, f"expected an int, not {_type_name(value)}")
    return value


def _batch(value: object) -> int:
    batch = _int("batch", value)
    if batch < 0 or batch > _joule.MAX_BATCH:  # 0 is the library's to refuse
        raise _fail("batch", f"{batch} is out of range (1 to {_joule.MAX_BATCH})")
    return batch


def _str(argument: str, value: object) -> str:
    if isinstance(value, os.PathLike):
        return os.fsdecode(os.fspath(value))
    if not isinstance(value, str):
        raise _fail(argument, f"expected a str, not {_type_name(value)}")
    return value


def _density(argument: str, value: object):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(argument, f"expected a float in [0, 1], not {_type_name(value)}")
    return float(value)


def _bits(value: object):
    if value is None:
        return None
    bits = _int("bits", value)
    if not 1 <= bits <= 64:
        raise _fail("bits", f"must be 1..=64, got {bits}")
    return bits


def _input_shape(value: object):
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (tuple, list)) and all(
        isinstance(d, int) and not isinstance(d, bool) for d in value
    ):
        return ",".join(str(d) for d in value)
    raise _fail("input_shape", f"expected (N, C, H, W) or 'N,C,H,W', not {value!r}")


def stats(
    model: ModelLike,
    input_shape: Union[Sequence[int], str, None] = None,
    *,
    example_input: Any = None,
) -> Stats:
    """Weights, MACs and activations of ``model``, per layer and in total.

    ``input_shape``: ``(N, C, H, W)`` (or ``"N,C,H,W"``), required when the model does
    not fix it. The same numbers as ``joule stats MODEL --json``.
    """
    spec, name = _model(model, example_input)
    return _joule.stats(spec, name, _input_shape(input_shape))


def energy(
    model: ModelLike,
    hw: HardwareLike = "eyeriss",
    batch: int = 1,
    dataflow: str = "rs",
    objective: str = "energy",
    ifmap_density: Optional[float] = None,
    weight_density: Optional[float] = None,
    bits: Optional[int] = None,
    *,
    example_input: Any = None,
) -> EnergyReport:
    """Per-layer energy, cycles and DRAM traffic of ``model`` on the machine ``hw``.

    - ``hw``: a preset (``joule.presets()``) or a YAML spec file, digital or PIM.
    - ``batch``: images per inference (1 to ``2**20``).
    - ``dataflow``: ``rs``, ``ws``, ``os`` (best of ``os-a``, ``os-b``, ``os-c``),
      ``nlr``, or ``ws-isca16``; a PIM machine is always weight stationary.
    - ``objective``: what the mapper minimises: ``energy``, ``cycles`` or ``edp``.
    - ``ifmap_density``, ``weight_density``: fractions of non-zeros for every layer
      (default: measured weights, else 1).
    - ``bits``: bits per ifmap, filter and psum value (default: the machine's word).

    The same numbers as ``joule energy MODEL --hw HW --json`` (``report.to_dict()``).
    """
    spec, name = _model(model, example_input)
    return _joule.energy(
        spec,
        name,
        _str("hw", hw),
        _batch(batch),
        _str("dataflow", dataflow),
        _str("objective", objective),
        _density("ifmap_density", ifmap_density),
        _density("weight_density", weight_density),
        _bits(bits),
    )


def dataflows(
    model: ModelLike, hw: HardwareLike = "isca16", batch: int = 16, *, example_input: Any = None
) -> DataflowComparison:
    """RS, WS, the three OS variants and NLR on ``model``, each on a machine of the same
    storage area as the RS machine ``hw`` (digital), as in Chen et al., ISCA 2016.

    The same numbers as ``joule dataflows MODEL --hw HW --batch BATCH --json``.
    """
    spec, name = _model(model, example_input)
    return _joule.dataflows(spec, name, _str("hw", hw), _batch(batch))


def compare(
    models: Iterable[Union[ModelLike, Tuple[Any, Any]]],
    hw: Union[HardwareLike, Iterable[HardwareLike]] = ("eyeriss", "pim-128"),
    dataflow: str = "rs",
    batch: int = 1,
) -> Comparison:
    """Models side by side on machines: energy, latency and utilization per batch, with
    ratios against the first model on each machine and where the energy goes.

    ``models``: a list of models (any kind ``energy`` takes; a torch module as a
    ``(module, example_input)`` pair). ``hw``: a machine or a list of machines (presets
    or YAML files, digital or PIM). The same numbers as ``joule compare ... --json``.
    """
    if isinstance(models, (str, bytes, os.PathLike)) or not hasattr(models, "__iter__"):
        raise _fail("models", f"expected a list of models, not {_type_name(models)}")
    pairs = []
    for i, m in enumerate(models):
        example = None
        if isinstance(m, tuple) and len(m) == 2:
            m, example = m
        pairs.append(_model(m, example, argument=f"models[{i}]"))
    if len(pairs) == 0:
        raise _fail("models", "give at least one model")
    if isinstance(hw, (str, os.PathLike)):
        hw = [hw]
    if not hasattr(hw, "__iter__"):
        raise _fail("hw", f"expected a machine or a list of machines, not {_type_name(hw)}")
    machines = [_str("hw", h) for h in hw]
    return _joule.compare(pairs, machines, _str("dataflow", dataflow), _batch(batch))


def hardware(name_or_yaml_path: HardwareLike) -> Hardware:
    """A machine: a preset name (``joule.presets()``) or a YAML spec file, with its name,
    description, kind (``digital`` or ``pim``) and size."""
    return _joule.hardware(_str("hw", name_or_yaml_path))


def presets() -> List[Hardware]:
    """Every hardware preset (digital first, then PIM), as :class:`Hardware`."""
    return _joule.presets()


def zoo() -> List[ZooModel]:
    """The built-in models with their input shape, weights and MACs (``joule zoo``)."""
    return _joule.zoo()
