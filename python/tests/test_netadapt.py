"""NetAdapt's ask/tell loop from Python (`joule.NetAdapt`): the same choices as `joule adapt`
given the same accuracies, resume, and one-line errors for bad calls."""

import json
import os
import pathlib
import subprocess

import pytest

import joule
from conftest import ROOT, _binary

SETTINGS = dict(initial_reduction=0.2, decay=0.9, max_iterations=12, levels=8, seed=2)


@pytest.fixture(scope="module")
def adapted(tmp_path_factory):
    """`joule adapt` on LeNet-5 (its zoo initialisation, fine-tuned on 1,000 MNIST images)
    to half its energy on eyeriss: the run folder and its state."""
    out = tmp_path_factory.mktemp("cli") / "run"
    subprocess.run(
        [
            _binary(), "adapt", "--model", "lenet5", "--data", "mnist",
            "--data-dir", str(ROOT / "data"), "--budget", "energy=0.5x", "--out", str(out),
            "--train-samples", "1000", "--holdout", "300", "--short-term-batches", "3",
            "--long-term-epochs", "0", "--no-measure", "--iterations", "12",
            "--initial-reduction", "0.2", "--decay", "0.9", "--seed", "2",
            "--selection", "drop-per-resource",
        ],
        check=True,
        capture_output=True,
    )
    state = json.loads((out / "state.json").read_text())
    return out, state


def test_ask_tell_makes_the_choices_of_joule_adapt(adapted, tmp_path):
    cli_out, state = adapted
    assert state["status"]["status"] == "met"
    history = state["history"]
    assert len(history) >= 3, len(history)
    run = joule.NetAdapt(
        "lenet5", "energy=0.5x", hw="eyeriss", out=tmp_path / "asktell",
        accuracy=state["original"]["accuracy"], selection="drop-per-resource", **SETTINGS,
    )
    assert run.budgets == state["budgets"]
    for log, member in zip(history, state["family"]):
        proposals = run.propose()
        assert [p.to_dict() for p in run.propose()] == [
            p.to_dict() for p in proposals
        ]
        assert [(p.layer, p.filters, p.current_filters, p.removed, p.seed, p.energy, p.macs)
                for p in proposals] == [
            (q["layer"], q["filters"], q["current_filters"], q["removed"], q["seed"],
             q["resources"]["energy"], q["resources"]["macs"])
            for q in log["proposals"]
        ]
        asked = []

        def model_of(i):
            asked.append(i)
            return cli_out / member["checkpoint"].replace(".safetensors", ".onnx")

        told = run.tell([q["accuracy"] for q in log["proposals"]], model_of)
        assert asked == [log["chosen"]]
        assert (told.layer, told.channels, told.energy, told.macs, told.accuracy) == (
            member["layer"], member["channels"], member["energy"], member["macs"], member["accuracy"]
        )
    assert run.propose() == []
    assert run.status == "met" and not run.is_iterating
    assert [m.channels for m in run.family[1:]] == [m["channels"] for m in state["family"]]
    fin = run.finish(0.5)
    assert fin.iteration == len(history) and fin.energy == run.family[-1].energy
    summary = json.loads((pathlib.Path(run.out) / "summary.json").read_text())
    assert summary["status"]["status"] == "met" and len(summary["family"]) == len(history) + 1
    assert (pathlib.Path(run.out) / "accuracy_vs_energy.svg").is_file()
    assert run.to_dict()["history"][0]["chosen"] == history[0]["chosen"]


def test_a_reopened_run_proposes_what_the_uninterrupted_run_proposes(tmp_path):
    scores = lambda ps: [0.9 - 0.01 * ((p.filters * 7 + len(p.layer)) % 5) for p in ps]

    def run_to_end(na, stop_after=None):
        told = 0
        while True:
            ps = na.propose()
            if not ps or told == stop_after:
                return ps
            na.tell(scores(ps))
            told += 1

    whole = joule.NetAdapt("lenet5", "energy=0.5x", out=tmp_path / "whole", accuracy=0.9, **SETTINGS)
    run_to_end(whole)
    part = joule.NetAdapt("lenet5", "energy=0.5x", out=tmp_path / "part", accuracy=0.9, **SETTINGS)
    pending = run_to_end(part, stop_after=2)
    assert pending, "stopped with proposals pending"
    del part
    with pytest.raises(joule.JouleError, match="already holds a run"):
        joule.NetAdapt("lenet5", "energy=0.5x", out=tmp_path / "part", accuracy=0.9, **SETTINGS)
    again = joule.NetAdapt("lenet5", "energy=0.5x", out=tmp_path / "part", resume=True, **SETTINGS)
    assert [p.to_dict() for p in again.propose()] == [p.to_dict() for p in pending]
    run_to_end(again)
    assert [m.to_dict() | {"checkpoint": ""} for m in again.family] == [
        m.to_dict() | {"checkpoint": ""} for m in whole.family
    ]
    with pytest.raises(joule.JouleError, match=r"^decay: cannot resume the run in .*: it was started with 0.9, not 0.5$"):
        joule.NetAdapt("lenet5", "energy=0.5x", out=tmp_path / "part", resume=True,
                       **(SETTINGS | {"decay": 0.5}))


def test_a_run_reopened_on_another_model_is_refused(tmp_path):
    files = {}
    for name in ("lenet5", "lenet300"):
        files[name] = tmp_path / f"{name}.onnx"
        subprocess.run([_binary(), "export", "--model", name, "--out", str(files[name]),
                        "--init-seed", "1"], check=True, capture_output=True)
    joule.NetAdapt(files["lenet5"].read_bytes(), "macs=0.5x", out=tmp_path / "r", accuracy=0.9)
    with pytest.raises(joule.JouleError, match=r"the model \(\d+ MACs, \d+ weights\) is not the stored run's original"):
        joule.NetAdapt(files["lenet300"].read_bytes(), "macs=0.5x", out=tmp_path / "r", resume=True)


def error(call):
    with pytest.raises(joule.JouleError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and message, message
    return message


def test_bad_calls_are_one_line_errors(tmp_path, fixture_path):
    out = lambda name: tmp_path / name
    assert 'speed=0.5x: unknown resource "speed"' in error(
        lambda: joule.NetAdapt("lenet5", "speed=0.5x", out=out("a"), accuracy=1)
    )
    assert "a new run needs the original network's accuracy" in error(
        lambda: joule.NetAdapt("lenet5", "energy=0.5x", out=out("b"))
    )
    assert "a latency budget needs a latency table" in error(
        lambda: joule.NetAdapt("lenet5", "latency=0.5x", out=out("c"), accuracy=1)
    )
    assert error(lambda: joule.NetAdapt("lenet5", "energy=0.5x", out=out("d"), accuracy=1,
                                        selection="best")).startswith("selection: ")
    assert error(lambda: joule.NetAdapt("lenet5", "energy=0.5x", out=out("e"), accuracy="x")) == (
        "accuracy: expected a number, not str"
    )
    # resume=True on a folder without a run starts one (so a restart script can always pass
    # it), which needs the accuracy.
    assert "a new run needs the original network's accuracy" in error(
        lambda: joule.NetAdapt("lenet5", "energy=0.5x", out=out("f"), resume=True)
    )
    assert error(lambda: joule.NetAdapt("nomodel", "energy=0.5x", out=out("g"), accuracy=1)).startswith(
        'unknown model "nomodel"'
    )
    run = joule.NetAdapt("lenet5", "energy=0.5x", out=out("h"), accuracy=0.9, **SETTINGS)
    assert "call propose() first" in error(lambda: run.tell([0.5]))
    n = len(run.propose())
    assert f"got 1 for {n} proposals" in error(lambda: run.tell([0.5]))
    assert error(lambda: run.tell([float("nan")] * n)) == "accuracies[0]: must be a finite number, got NaN"
    assert "does not have the shape of the proposal" in error(
        lambda: run.tell([0.5] * n, lambda i: "lenet5")
    )
    assert "expected a list or a function" in error(lambda: run.tell([0.5] * n, 3))
    with pytest.raises(ZeroDivisionError):  # the caller's own error comes through as it is
        run.tell([0.5] * n, lambda i: 1 / 0)
    assert "iterating is not over" in error(lambda: run.finish(0.5))
    assert run.tell([0.5] * n).iteration == 1
