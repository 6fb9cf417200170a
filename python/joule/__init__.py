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
    FamilyMember,
    Hardware,
    JouleError,
    LayerEnergy,
    LayerStats,
    LevelEnergy,
    Proposal,
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
    "FamilyMember",
    "Hardware",
    "JouleError",
    "LayerEnergy",
    "LayerStats",
    "LevelEnergy",
    "NetAdapt",
    "Proposal",
    "Stats",
    "TypeEnergy",
    "ZooModel",
    "compare",
    "dataflows",
    "dataset",
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


def _model(
    model: object, example_input: object = None, argument: str = "model", input_shape=None
):
    """``(zoo name or path, name)`` or ``(ONNX bytes, name)`` for the extension. A torch
    module is exported with ``example_input``, else with zeros of ``input_shape``."""
    if isinstance(model, str):
        return model, model
    if isinstance(model, os.PathLike):
        path = os.fsdecode(os.fspath(model))
        return path, path
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model), "onnx"
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(model, torch.nn.Module):
        if example_input is None and input_shape is not None:
            example_input = torch.zeros(_shape_tuple(input_shape))
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
            f"{argument} is a torch.nn.Module: give an example input tensor (or input_shape=) "
            "to export it",
        )
    import io

    args = example_input if isinstance(example_input, tuple) else (example_input,)
    buffer = io.BytesIO()
    # Exported in inference mode (BatchNorm folded, dropout off), as it would be deployed;
    # the module's own mode is restored.
    training = module.training
    module.eval()
    try:
        with torch.no_grad():
            torch.onnx.export(module, args, buffer, dynamo=False)
    except Exception as e:  # the exporter's own message, on one line
        text = " ".join(str(e).split())
        raise _fail(argument, f"torch.onnx.export failed: {text}") from e
    finally:
        module.train(training)
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


def _shape_tuple(value: object):
    """``input_shape`` as a tuple of ints (for a torch example input)."""
    text = _input_shape(value)
    try:
        return tuple(int(d) for d in text.split(","))
    except ValueError:
        raise _fail("input_shape", f"expected (N, C, H, W) or 'N,C,H,W', not {value!r}") from None


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
    spec, name = _model(model, example_input, input_shape=input_shape)
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
    input_shape: Union[Sequence[int], str, None] = None,
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
    - ``example_input`` / ``input_shape``: for a ``torch.nn.Module``, the input it is
      exported with (``input_shape``: zeros of that shape).

    The same numbers as ``joule energy MODEL --hw HW --json`` (``report.to_dict()``).
    """
    if input_shape is not None:
        torch = sys.modules.get("torch")
        if torch is None or not isinstance(model, torch.nn.Module):
            raise _fail(
                "input_shape",
                "only a torch.nn.Module takes an input shape here (the batch is batch=; "
                "joule.stats sets the input of an ONNX file)",
            )
    spec, name = _model(model, example_input, input_shape=input_shape)
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


def dataset(name: str = "fashion-mnist", split: str = "train", data_dir=None):
    """A dataset split as joule trains on it: ``(images, labels)`` as numpy arrays,
    ``images`` float32 of shape ``(N, C, H, W)`` with pixels scaled to [0, 1], ``labels``
    int64. ``name``: ``mnist`` or ``fashion-mnist``; ``split``: ``train`` or ``test``;
    ``data_dir``: the folder holding ``<name>/`` (default: ``$JOULE_DATA``, else
    ``./data``, as the CLI). Needs numpy."""
    import numpy

    d = None if data_dir is None else _str("data_dir", data_dir)
    images, shape, labels, _classes = _joule.dataset(_str("name", name), _str("split", split), d)
    x = numpy.frombuffer(images, dtype="<f4").reshape(shape).copy()
    y = numpy.frombuffer(labels, dtype=numpy.uint8).astype(numpy.int64)
    return x, y


def _float(argument: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(argument, f"expected a number, not {_type_name(value)}")
    return float(value)


class NetAdapt:
    """NetAdapt (Yang et al., ECCV 2018) as an ask/tell loop: joule proposes, you fine-tune.

    Every iteration, :meth:`propose` gives one :class:`Proposal` per prunable layer that can
    meet the iteration's constraint: the layer, how many filters it keeps, and what joule
    estimates the candidate costs on ``hw`` (energy, latency from ``lut``, MACs, weights).
    Fine-tune and score each candidate however you like (``joule.torch`` does it with
    PyTorch, locally or on Ray), then :meth:`tell` the accuracies (higher is better): joule
    keeps the best, records it in the family and advances the schedule. When
    :meth:`propose` returns nothing, iterating is over (``status`` says why: ``met``,
    ``unreachable``, ``out_of_iterations``); long-term fine-tune the last network and
    :meth:`finish` it. This is the planner ``joule adapt`` runs, so the same accuracies give
    the same choices.

    - ``model``: any model :func:`energy` takes (a torch module with ``example_input=``).
    - ``budget``: ``"energy=0.5x"``, ``"latency=0.5x"`` (needs ``lut``), ``"macs=200000"``,
      ``"weights=0.3x"``, or a list of them.
    - ``out``: the run folder: ``state.json`` after every tell, the family's networks
      (``iter_NNN.onnx``/``.safetensors``), ``summary.json`` and charts after finish.
      ``resume=True`` reopens it, proposing exactly what the interrupted run would have.
    - ``accuracy``: the original network's accuracy (a new run needs it).
    - ``initial_reduction``, ``decay``: the schedule (each iteration's target is the current
      resource minus ``initial_reduction * original * decay**i``); ``max_iterations``;
      ``levels`` filter counts per layer; ``selection``: ``accuracy`` or
      ``drop-per-resource``; ``seed``; ``short_term_batches`` (recorded: what the caller's
      short-term fine-tuning does); ``data`` and ``name`` (labels for the summary and
      charts; ``name`` defaults to the zoo name, path, graph name or torch class).
    """

    def __init__(
        self,
        model: ModelLike,
        budget: Union[str, Sequence[str]],
        hw: HardwareLike = "eyeriss",
        lut=None,
        out="netadapt-run",
        *,
        accuracy: Optional[float] = None,
        resume: bool = False,
        example_input: Any = None,
        initial_reduction: float = 0.1,
        decay: float = 0.96,
        max_iterations: int = 50,
        levels: int = 8,
        selection: str = "accuracy",
        seed: int = 1,
        short_term_batches: int = 20,
        data: str = "user data",
        name: Optional[str] = None,
    ):
        spec, label = _model(model, example_input)
        name = label if name is None else _str("name", name)
        self._example_input = example_input
        budgets = [budget] if isinstance(budget, str) else list(budget)
        for i, b in enumerate(budgets):
            _str(f"budget[{i}]", b)
        if accuracy is not None:
            accuracy = _float("accuracy", accuracy)
        if not isinstance(resume, bool):
            raise _fail("resume", f"expected a bool, not {_type_name(resume)}")
        for argument, value in (("max_iterations", max_iterations), ("levels", levels),
                                ("seed", seed), ("short_term_batches", short_term_batches)):
            if _int(argument, value) < 0:
                raise _fail(argument, f"must not be negative, got {value}")
        self._run = _joule._NetAdapt(
            spec,
            name,
            budgets,
            _str("hw", hw),
            None if lut is None else _str("lut", lut),
            _str("out", out),
            resume,
            accuracy,
            _float("initial_reduction", initial_reduction),
            _float("decay", decay),
            max_iterations,
            levels,
            _str("selection", selection),
            seed,
            short_term_batches,
            _str("data", data),
        )

    def propose(self) -> List[Proposal]:
        """The next iteration's proposals, in layer order (the same list until told);
        empty once iterating is over."""
        return self._run.propose()

    def tell(self, accuracies: Sequence[float], models=None) -> FamilyMember:
        """Tells every proposal's accuracy (in :meth:`propose`'s order). ``models``: the
        fine-tuned candidates, as a list in the same order or a function ``index -> model``
        (only the kept one is asked for), or None to keep joule's own candidate. A model
        told must have the proposal's shape. Returns the new family member."""
        accs = [_float(f"accuracies[{i}]", a) for i, a in enumerate(accuracies)]
        getter = None
        if models is not None:
            if callable(models):
                source = models
            elif hasattr(models, "__getitem__"):
                listed = list(models)
                if len(listed) != len(accs):
                    raise _fail("models", f"got {len(listed)} for {len(accs)} accuracies")
                source = listed.__getitem__
            else:
                raise _fail("models", f"expected a list or a function, not {_type_name(models)}")

            def getter(index: int):
                m = source(index)
                return None if m is None else _model(m, self._example_input, argument="models")

        return self._run.tell(accs, getter)

    def finish(
        self,
        accuracy: float,
        model: Any = None,
        test_accuracy: Optional[float] = None,
    ) -> FamilyMember:
        """Records the final network (after your long-term fine-tuning; None: the last
        family member as told) with its accuracy, and writes ``summary.json`` and the
        accuracy-vs-energy/MACs charts into the run folder."""
        m = None if model is None else _model(model, self._example_input)
        t = None if test_accuracy is None else _float("test_accuracy", test_accuracy)
        return self._run.finish(_float("accuracy", accuracy), m, t)

    @property
    def status(self) -> str:
        """``running``, ``met``, ``unreachable`` or ``out_of_iterations``."""
        return self._run.status

    @property
    def message(self) -> Optional[str]:
        """Why iterating stopped, when the budget was unreachable."""
        return self._run.message

    @property
    def is_iterating(self) -> bool:
        return self._run.is_iterating

    @property
    def family(self) -> List[FamilyMember]:
        """The original (iteration 0), then every iteration's network."""
        return self._run.family

    @property
    def current(self) -> FamilyMember:
        """The last family member."""
        return self._run.current

    @property
    def final(self) -> Optional[FamilyMember]:
        """The finished network, after :meth:`finish`."""
        return self._run.final_network

    @property
    def budgets(self):
        """The absolute budget of every resource."""
        return self._run.budgets

    @property
    def history(self):
        """Every finished iteration as ``(targets, proposals with accuracies, chosen index)``."""
        return self._run.history

    @property
    def out(self):
        """The run folder."""
        return self._run.out

    @property
    def unit(self) -> Optional[str]:
        """The unit of every energy (``pJ``, or ``mac`` for MAC-normalised machines)."""
        return self._run.unit

    def to_dict(self):
        """The run's ``state.json``, parsed."""
        return self._run.to_dict()

    def __repr__(self) -> str:
        c = self.current
        return (
            f"NetAdapt(status={self.status!r}, iteration={c.iteration}, "
            f"accuracy={c.accuracy}, energy={c.energy}, budgets={self.budgets})"
        )
