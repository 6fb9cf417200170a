"""joule.torch: hardware-aware NetAdapt on a PyTorch model, candidates fine-tuned in
parallel (locally, or as Ray tasks on a cluster).

NetAdapt splits cleanly in two. The hardware-aware half (which layer, how many filters,
what the candidate will cost on the target) is :class:`joule.NetAdapt`, in Rust, the same
planner ``joule adapt`` runs. The expensive half (short-term fine-tuning of one candidate
per layer, every iteration; long-term fine-tuning of the result) is PyTorch training,
done here by your own functions:

    >>> result = joule.torch.netadapt(model, example_input, train_step_fn, evaluate_fn,
    ...                               budget="energy=0.5x", hw="eyeriss", executor="ray")
    >>> result.model        # the adapted torch.nn.Module
    >>> result.family       # every iteration's network: accuracy, energy, MACs, weights

- ``train_step_fn(model, steps)``: fine-tunes ``model`` in place for ``steps`` mini-batches
  (short-term fine-tuning). The model is already on the worker's device; put your batches
  on ``next(model.parameters()).device``.
- ``evaluate_fn(model) -> float``: the model's accuracy on held-out data (higher is better;
  keep the test split out of it).

Filter surgery is Torch-Pruning's (``torch-pruning`` on PyPI): it follows the dependencies
(a removed filter takes the matching BatchNorm channels and the consumers' input channels
with it). Which filters go is decided as NetAdapt does: the smallest L2 norms of the layer's
weights. Layers are named by their ONNX export's node names (``/layer1/layer1.0/conv1/Conv``),
which carry the module path (``layer1.0.conv1``): :func:`layer_modules` maps one to the other.
"""

from __future__ import annotations

import copy
import io
import os
import sys
import time

import torch

import joule

__all__ = ["NetAdaptResult", "layer_modules", "netadapt", "onnx_bytes", "prune_filters"]


def _fail(argument: str, message: str) -> joule.JouleError:
    return joule.JouleError(f"{argument}: {message}")


def onnx_bytes(model: torch.nn.Module, example_input) -> bytes:
    """``model`` exported to ONNX in memory, in inference mode (BatchNorm folded), the way
    joule estimates it."""
    spec, _ = joule._model(model, example_input)
    return spec


def _module_name(node_name: str, modules) -> str:
    """The module path in an ONNX node name from the TorchScript exporter, resolved against
    the model's modules: ``/layer1/layer1.0/conv1/Conv`` -> ``layer1.0.conv1``,
    ``/layer2/layer2.0/downsample/downsample.0/Conv`` -> ``layer2.0.downsample.0``. Each
    scope is named either relative to the scope above it (``conv1``) or, for a container's
    items, relative to that scope's parent (``layer1.0``, ``downsample.0``). None if a
    scope names no module."""
    scopes = [p for p in node_name.split("/") if p][:-1]
    path = ""
    for scope in scopes:
        parent = path.rpartition(".")[0]
        for candidate in (f"{path}.{scope}" if path else scope, f"{parent}.{scope}" if parent else scope):
            if candidate in modules:
                path = candidate
                break
        else:
            return None
    return path or None


def layer_modules(model: torch.nn.Module, example_input) -> dict:
    """Every layer joule can prune (CONV and FC), by its ONNX node name, with the name of
    the ``torch.nn.Conv2d``/``torch.nn.Linear`` module it comes from."""
    modules = dict(model.named_modules())
    stats = joule.stats(onnx_bytes(model, example_input))
    mapping = {}
    for layer in stats.layers:
        if layer.class_ not in ("conv", "fc"):
            continue
        name = _module_name(layer.name, modules)
        module = modules.get(name)
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            mapping[layer.name] = name
    return mapping


def _weakest(weight: torch.Tensor, count: int) -> list:
    """The ``count`` filters with the smallest L2 norm (ties: lower index first), as NetAdapt
    and ``joule adapt`` choose them."""
    norms = weight.detach().flatten(1).double().norm(dim=1).cpu().tolist()
    order = sorted(range(len(norms)), key=lambda i: (norms[i], i))
    return sorted(order[:count])


def prune_filters(model: torch.nn.Module, module_name: str, keep: int, example_input) -> list:
    """Removes filters of ``model``'s module ``module_name`` (a Conv2d or Linear) in place,
    keeping ``keep`` (the smallest L2 norms go), with Torch-Pruning's dependency graph so
    that BatchNorm and the consumers follow. Returns the removed filter indices."""
    import torch_pruning as tp

    module = dict(model.named_modules()).get(module_name)
    if isinstance(module, torch.nn.Conv2d):
        prune_fn, current = tp.prune_conv_out_channels, module.out_channels
    elif isinstance(module, torch.nn.Linear):
        prune_fn, current = tp.prune_linear_out_channels, module.out_features
    else:
        raise _fail("layer", f"{module_name!r} is not a Conv2d or Linear module of the model")
    if not 0 < keep <= current:
        raise _fail("keep", f"{module_name}: keep {keep} of {current} filters")
    removed = _weakest(module.weight, current - keep)
    if removed:
        args = example_input if isinstance(example_input, tuple) else (example_input,)
        graph = tp.DependencyGraph().build_dependency(model, example_inputs=args)
        group = graph.get_pruning_group(module, prune_fn, idxs=removed)
        group.prune()
    return removed


def _candidate(model, module_name, keep, example_input, seed, steps, train_step_fn,
               evaluate_fn, device):
    """One proposal, fine-tuned and scored (runs locally or as a Ray task): the pruned
    model (on the CPU) and its accuracy."""
    torch.manual_seed(seed)
    model = copy.deepcopy(model)
    prune_filters(model, module_name, keep, example_input)
    model.to(device)
    model.train()
    if steps > 0:
        train_step_fn(model, steps)
    model.eval()
    with torch.no_grad():
        accuracy = float(evaluate_fn(model))
    return model.to("cpu"), accuracy


def _ray_candidate(*args):
    """The Ray task: `_candidate` on a worker, on its GPU when it was given one."""
    import ray

    device = "cuda" if ray.get_gpu_ids() and torch.cuda.is_available() else "cpu"
    model, accuracy = _candidate(*args, device)
    return accuracy, model


def _save_atomic(obj, path: str) -> None:
    """``torch.save`` to a temporary file in the same folder, synced, then renamed."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class NetAdaptResult:
    """What :func:`netadapt` ends with: the adapted ``model`` (long-term fine-tuned when a
    ``long_term_fn`` was given), the ``original_accuracy`` and ``accuracy`` (from
    ``evaluate_fn``), and the run (:class:`joule.NetAdapt`): ``family``, ``final``,
    ``status``, ``budgets`` and the folder ``out``."""

    def __init__(self, model, run: joule.NetAdapt, original_accuracy: float, seconds: float):
        self.model = model
        self.run = run
        self.original_accuracy = original_accuracy
        self.accuracy = run.final.accuracy
        self.family = run.family
        self.final = run.final
        self.status = run.status
        self.out = run.out
        self.seconds = seconds

    def __repr__(self) -> str:
        o, f = self.family[0], self.final
        return (
            f"NetAdaptResult(status={self.status!r}, iterations={len(self.family) - 1}, "
            f"accuracy {self.original_accuracy:.4f} -> {self.accuracy:.4f}, "
            f"energy {o.energy} -> {f.energy} {self.run.unit}, macs {o.macs} -> {f.macs})"
        )


class _Local:
    """Candidates one after another in this process."""

    name = "local"

    def __init__(self):
        self.device = "cuda" if torch.cuda.is_available() else "cpu"

    def run(self, tasks):
        out = [_candidate(*t, self.device) for t in tasks]
        return [a for _, a in out], (lambda i: out[i][0])

    def close(self):
        pass


class _Ray:
    """Candidates as Ray tasks: `address` (or ``RAY_ADDRESS``) joins a cluster, else a
    local one starts with `num_workers` CPUs. The pruned models stay in Ray's object store;
    only the accuracies and the kept model come back."""

    name = "ray"

    def __init__(self, address, num_workers, modules):
        import ray
        import ray.cloudpickle as cloudpickle

        self.ray = ray
        self.started = False
        if not ray.is_initialized():
            kwargs = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
            if address is None and not os.environ.get("RAY_ADDRESS"):
                kwargs["num_cpus"] = num_workers
            ray.init(address=address, **kwargs)
            self.started = True
        # The user's functions and model class travel by value: workers of a cluster need
        # not have the script's module on their path (they do need torch, torch-pruning
        # and joule installed).
        for module in modules:
            if module and module not in ("__main__", "builtins") and not module.startswith(
                ("torch", "joule", "ray")
            ):
                cloudpickle.register_pickle_by_value(sys.modules[module])
        gpus = 1 if ray.cluster_resources().get("GPU", 0) > 0 else 0
        self.task = ray.remote(num_cpus=1, num_gpus=gpus, num_returns=2)(_ray_candidate)

    def run(self, tasks):
        # The model goes into the object store once, not once per task.
        model = self.ray.put(tasks[0][0])
        refs = [self.task.remote(model, *t[1:]) for t in tasks]
        accuracies = self.ray.get([a for a, _ in refs])
        return accuracies, (lambda i: self.ray.get(refs[i][1]))

    def close(self):
        if self.started:
            self.ray.shutdown()


def netadapt(
    model: torch.nn.Module,
    example_input,
    train_step_fn,
    evaluate_fn,
    budget="energy=0.5x",
    hw="eyeriss",
    *,
    lut=None,
    out="netadapt-torch",
    resume: bool = False,
    executor: str = "local",
    address=None,
    num_workers=None,
    short_term_steps: int = 20,
    long_term_fn=None,
    initial_reduction: float = 0.1,
    decay: float = 0.96,
    max_iterations: int = 50,
    levels: int = 8,
    selection: str = "accuracy",
    seed: int = 1,
    data: str = "user data",
    on_iteration=None,
) -> NetAdaptResult:
    """Adapts ``model`` to ``budget`` on ``hw`` with NetAdapt: every iteration, joule proposes
    one candidate per layer (how many filters it keeps, what it will cost), each candidate is
    pruned with Torch-Pruning, short-term fine-tuned with ``train_step_fn(model,
    short_term_steps)`` and scored with ``evaluate_fn(model)``, and the best one is kept.

    - ``executor``: ``"local"`` (one candidate after another, on the GPU if there is one)
      or ``"ray"`` (one Ray task per candidate; ``address=`` or ``RAY_ADDRESS`` joins a
      cluster, else ``ray.init`` starts a local one with ``num_workers`` CPUs; a task gets
      a GPU when the cluster has them).
    - ``long_term_fn(model)``: long-term fine-tuning of the final network (may itself be a
      Ray Train or DDP job); None keeps the last family member as it is.
    - ``out``: the run folder: joule's ``state.json`` and the family (``iter_NNN.onnx``),
      the torch modules (``torch_iter_NNN.pt``), after the end ``summary.json``, the
      charts and ``torch_final.pt``. Every iteration is checkpointed: ``resume=True``
      continues an interrupted run where it stopped.
    - ``on_iteration(member)``: called with every new :class:`joule.FamilyMember`.

    The rest are :class:`joule.NetAdapt`'s. Returns a :class:`NetAdaptResult`.
    """
    if not isinstance(model, torch.nn.Module):
        raise _fail("model", f"expected a torch.nn.Module, not {type(model).__name__}")
    for argument, fn in (("train_step_fn", train_step_fn), ("evaluate_fn", evaluate_fn)):
        if not callable(fn):
            raise _fail(argument, f"expected a function, not {type(fn).__name__}")
    if executor not in ("local", "ray"):
        raise _fail("executor", f"expected 'local' or 'ray', not {executor!r}")
    if isinstance(short_term_steps, bool) or not isinstance(short_term_steps, int) or (
        short_term_steps < 0
    ):
        raise _fail("short_term_steps", f"expected an int >= 0, not {short_term_steps!r}")
    started = time.monotonic()
    out = os.fsdecode(os.fspath(out))
    model = copy.deepcopy(model).cpu().eval()
    settings = dict(
        hw=hw, lut=lut, out=out, initial_reduction=initial_reduction, decay=decay,
        max_iterations=max_iterations, levels=levels, selection=selection, seed=seed,
        short_term_batches=short_term_steps, data=data, name=type(model).__name__,
    )
    if resume and os.path.isfile(os.path.join(out, "state.json")):
        run = joule.NetAdapt(onnx_bytes(model, example_input), budget, resume=True, **settings)
        original_accuracy = run.family[0].accuracy
        if run.current.iteration > 0:
            path = os.path.join(out, f"torch_iter_{run.current.iteration:03d}.pt")
            model = torch.load(path, weights_only=False)
    else:
        with torch.no_grad():
            original_accuracy = float(evaluate_fn(model))
        run = joule.NetAdapt(
            onnx_bytes(model, example_input), budget, accuracy=original_accuracy, **settings
        )
    modules = layer_modules(model, example_input)
    if executor == "ray":
        pool = _Ray(
            address,
            num_workers,
            {f.__module__ for f in (train_step_fn, evaluate_fn) if hasattr(f, "__module__")}
            | {type(model).__module__},
        )
    else:
        pool = _Local()
    try:
        while True:
            proposals = run.propose()
            if not proposals:
                break
            tasks = []
            for p in proposals:
                module = modules.get(p.layer)
                if module is None:
                    raise _fail("model", f"layer {p.layer!r} has no Conv2d/Linear module")
                tasks.append((model, module, p.filters, example_input, p.seed,
                              short_term_steps, train_step_fn, evaluate_fn))
            accuracies, pruned = pool.run(tasks)
            kept = {}
            path = os.path.join(out, f"torch_iter_{proposals[0].iteration:03d}.pt")

            def told(i):
                # Saved before joule records the iteration: a run killed in between
                # redoes the iteration rather than missing its torch module.
                kept["model"] = pruned(i).eval()
                _save_atomic(kept["model"], path)
                return onnx_bytes(kept["model"], example_input)

            member = run.tell(accuracies, told)
            model = kept["model"]
            modules = layer_modules(model, example_input)
            if on_iteration is not None:
                on_iteration(member)
    finally:
        pool.close()
    if run.final is None:
        if long_term_fn is not None:
            model.train()
            long_term_fn(model)
            model.eval()
        with torch.no_grad():
            accuracy = float(evaluate_fn(model))
        _save_atomic(model, os.path.join(out, "torch_final.pt"))
        run.finish(accuracy, model=onnx_bytes(model, example_input))
    else:
        model = torch.load(os.path.join(out, "torch_final.pt"), weights_only=False)
    return NetAdaptResult(model, run, original_accuracy, time.monotonic() - started)
