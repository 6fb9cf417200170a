"""NetAdapt on a PyTorch model (`joule.torch`): module <-> ONNX layer names, Torch-Pruning
surgery that gives exactly the network joule estimated, and the whole loop on Fashion-MNIST
on a 2-worker local Ray cluster (budget met by joule's estimate of the re-exported model),
the same result from the local executor, and an interrupted run that resumes to it."""

import copy
import os
import pathlib
import subprocess
import sys
import time

import numpy
import pytest

import joule
from conftest import ROOT, _binary

pytestmark = pytest.mark.torch

sys.path.insert(0, str(ROOT / "python" / "examples"))


def test_layer_names_map_to_modules_and_surgery_gives_the_network_joule_estimated(tmp_path):
    import torch
    import torchvision

    import joule.torch as jt

    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval()
    x = torch.zeros(1, 3, 64, 64)
    names = jt.layer_modules(model, x)
    convs = [n for n, m in model.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert sorted(names.values()) == sorted(convs)
    assert names["/layer1/layer1.0/conv1/Conv"] == "layer1.0.conv1"
    assert names["/layer2/layer2.0/downsample/downsample.0/Conv"] == "layer2.0.downsample.0"
    assert names["/fc/Gemm"] == "fc"

    # Every proposal of NetAdapt's first iteration, done by Torch-Pruning on the module and
    # re-exported, is the network joule estimated: same MACs, same energy.
    run = joule.NetAdapt(model, "energy=0.5x", out=tmp_path / "run", accuracy=0.5, example_input=x)
    proposals = run.propose()
    assert len(proposals) >= 5
    for p in proposals:
        pruned = copy.deepcopy(model)
        module = dict(pruned.named_modules())[names[p.layer]]
        norms = numpy.linalg.norm(module.weight.detach().numpy().reshape(p.current_filters, -1), axis=1)
        removed = jt.prune_filters(pruned, names[p.layer], p.filters, x)
        assert removed == sorted(numpy.argsort(norms, kind="stable")[: p.current_filters - p.filters].tolist())
        assert module.weight.shape[0] == p.filters
        report = joule.energy(pruned, example_input=x)
        assert (report.macs, report.total) == (p.macs, p.energy), p


def test_a_torchvision_module_costs_what_its_export_costs_on_the_cli(tmp_path, cli):
    import torch
    import torchvision

    model = torchvision.models.resnet18()
    total = joule.energy(model, hw="eyeriss", input_shape=(1, 3, 224, 224)).total
    path = tmp_path / "resnet18.onnx"
    torch.onnx.export(model.eval(), (torch.zeros(1, 3, 224, 224),), str(path), dynamo=False)
    assert total == cli("energy", str(path), "--hw", "eyeriss", "--json")["total"]["energy"]["total"]


SMALL = ["--width", "8", "--threads", "1", "--train-images", "4000", "--holdout", "1000",
         "--train-steps", "250", "--short-term-steps", "15", "--long-term-steps", "60",
         "--initial-reduction", "0.2"]


@pytest.fixture(scope="module")
def ray_run(tmp_path_factory):
    """The example on a local 2-worker Ray cluster, small enough for CI."""
    import netadapt_fashion
    import ray

    out = tmp_path_factory.mktemp("ray") / "run"
    started = time.monotonic()
    summary = netadapt_fashion.run(
        netadapt_fashion.arguments(SMALL + ["--executor", "ray", "--workers", "2", "--out", str(out)])
    )
    assert not ray.is_initialized(), "the cluster netadapt started is stopped"
    return summary, time.monotonic() - started


def test_netadapt_on_a_local_ray_cluster_meets_its_energy_budget(ray_run):
    summary, seconds = ray_run
    assert summary["status"] == "met"
    assert summary["iterations"] >= 2
    # joule's own estimate of the final torch model, re-exported, is within the budget, and
    # is what the run recorded for it.
    assert summary["final_energy_reexported"] <= summary["budget_energy"]
    assert summary["budget_energy"] == 0.5 * summary["original_energy"]
    assert summary["final_energy_reexported"] == summary["family"][-1]["energy"]
    energies = [m["energy"] for m in summary["family"]]
    assert energies == sorted(energies, reverse=True) and len(set(energies)) == len(energies)
    for key in ("original_test", "final_test", "original_holdout", "final_holdout"):
        assert 0.5 < summary[key] <= 1.0, (key, summary[key])
    out = pathlib.Path(summary["out"])
    for name in ("state.json", "summary.json", "accuracy_vs_energy.svg", "torch_final.pt",
                 "final.onnx", "iter_001.onnx", "torch_iter_001.pt"):
        assert (out / name).is_file(), name
    assert seconds < 600, seconds


def test_the_local_executor_and_an_interrupted_run_give_the_ray_result(ray_run, tmp_path):
    """Same seeds, one thread everywhere: the local executor fine-tunes each candidate as a
    Ray worker does, so the family is the same; a run stopped after its first iteration and
    resumed ends the same way."""
    import netadapt_fashion

    summary, _ = ray_run
    out = tmp_path / "run"

    class Stop(Exception):
        pass

    def stop_after_first(member):
        if member.iteration == 1:
            raise Stop()

    args = netadapt_fashion.arguments(SMALL + ["--executor", "local", "--out", str(out)])
    with pytest.raises(Stop):
        netadapt_fashion.run(args, on_iteration=stop_after_first)
    assert (out / "torch_iter_001.pt").is_file() and not (out / "summary.json").exists()
    args = netadapt_fashion.arguments(SMALL + ["--executor", "local", "--out", str(out), "--resume"])
    resumed = netadapt_fashion.run(args)
    strip = lambda family: [{k: m[k] for k in ("iteration", "layer", "channels", "energy", "macs", "accuracy")}
                            for m in family]
    assert strip(resumed["family"]) == strip(summary["family"])
    assert resumed["final_energy_reexported"] == summary["final_energy_reexported"]
    assert resumed["final_test"] == summary["final_test"]


def test_bad_arguments_are_one_line_errors():
    import torch

    import joule.torch as jt

    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4 * 26 * 26, 10))
    x = torch.zeros(1, 1, 28, 28)
    fn = lambda *a: 0.5
    for kwargs, message in [
        (dict(executor="spark"), "executor: expected 'local' or 'ray', not 'spark'"),
        (dict(short_term_steps=-1), "short_term_steps: expected an int >= 0, not -1"),
    ]:
        with pytest.raises(joule.JouleError) as info:
            jt.netadapt(model, x, fn, fn, **kwargs)
        assert str(info.value) == message
    with pytest.raises(joule.JouleError, match="^model: expected a torch.nn.Module, not str$"):
        jt.netadapt("lenet5", x, fn, fn)
    with pytest.raises(joule.JouleError, match="^train_step_fn: expected a function, not int$"):
        jt.netadapt(model, x, 3, fn)
    with pytest.raises(joule.JouleError, match="^layer: 'nope' is not a Conv2d or Linear module"):
        jt.prune_filters(model, "nope", 2, x)
    with pytest.raises(joule.JouleError, match="^keep: 0: keep 0 of 4 filters$"):
        jt.prune_filters(model, "0", 0, x)
