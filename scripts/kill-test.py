"""Kills joule's long commands at random moments and checks that nothing is lost (issue #19).

For each command (train, export, prune, adapt, eliminate, lut build) on tiny LeNet-5 settings:
one uninterrupted reference run, then KILLS runs each killed with SIGKILL after a random
delay (seeded) within the reference's duration. After every kill:

- every file left in the output is whole: each .json parses, each .safetensors/.onnx loads
  (`joule stats`), no temporary file is left where a final name is expected;
- a file the command overwrites (train --out, export --out, lut build --out) is either the
  old one or the new one, byte for byte;
- a resumable run (prune, adapt) resumed to the end gives the reference's final checkpoint
  and summary (timings aside) byte for byte.

    .venv/bin/python scripts/kill-test.py --kills 20           # every command
    .venv/bin/python scripts/kill-test.py --kills 5 prune adapt

Prints one line per command: kills, where they landed (before the first file, mid-run,
after), and failures; exits 1 if any check failed.
"""

import argparse
import hashlib
import json
import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
JOULE = str(ROOT / "target" / "release" / "joule")
DATA = ["--data", "mnist", "--data-dir", str(ROOT / "data")]


def sha(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def run(args, check=True):
    return subprocess.run([JOULE, *args], capture_output=True, text=True, check=check)


def loads(path):
    """Whether a file joule wrote is whole."""
    p = pathlib.Path(path)
    if p.suffix == ".json":
        json.loads(p.read_text())
        return True
    if p.suffix in (".safetensors", ".onnx"):
        return run(["stats", str(p), "--json"], check=False).returncode == 0
    return True


def whole(folder):
    """Problems with the files in `folder`: unreadable ones, temporaries left behind."""
    problems = []
    for p in pathlib.Path(folder).rglob("*"):
        if not p.is_file():
            continue
        if ".tmp" in p.name:
            continue  # a temporary is harmless: never read, replaced next time
        try:
            if not loads(p):
                problems.append(f"{p.name} does not load")
        except Exception as e:  # noqa: BLE001: any failure to read is the finding
            problems.append(f"{p.name}: {e}")
    return problems


def without_timings(path):
    """A summary or state without what differs between any two runs (wall times)."""
    value = json.loads(pathlib.Path(path).read_text())

    def strip(v):
        if isinstance(v, dict):
            return {
                k: strip(x)
                for k, x in v.items()
                if k not in ("timings", "seconds") and not k.endswith("_seconds")
            }
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v

    return strip(value)


def kill_after(args, delay):
    """Starts joule with `args`, kills it after `delay` s; True if it was still running."""
    proc = subprocess.Popen([JOULE, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=delay)
        return False
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True


class Case:
    def __init__(self, work, checkpoint):
        self.work = pathlib.Path(work)
        self.checkpoint = checkpoint


def overwrite_case(name, make_args, out_name):
    """A command that writes one file over an existing one: after a kill the file is the
    old or the new one, whole."""

    def test(case, kills, rng):
        out = case.work / name
        out.mkdir()
        target = out / out_name
        t = time.monotonic()
        run(make_args(case, target))
        duration = time.monotonic() - t
        reference = sha(target)
        deterministic = name != "lut"
        failures, landed = [], {"running": 0, "finished": 0}
        for k in range(kills):
            old = sha(target)
            killed = kill_after(make_args(case, target), rng.uniform(0.02, 1.0) * duration)
            landed["running" if killed else "finished"] += 1
            problems = whole(out)
            if not target.is_file():
                problems.append(f"{out_name} is gone")
            elif deterministic and sha(target) not in (old, reference):
                problems.append(f"{out_name} is neither the old nor the new file")
            failures += [f"kill {k}: {p}" for p in problems]
        return duration, landed, failures

    return test


def resumable_case(name, start_args, resume_args, final):
    """A run directory: after a kill its files are whole; resumed, it ends as the reference."""

    def test(case, kills, rng):
        ref = case.work / f"{name}-reference"
        t = time.monotonic()
        run(start_args(case, ref))
        duration = time.monotonic() - t
        def result(folder):
            """The final files: JSON without timings, others by hash; `@best` is the
            checkpoint a pruning state names as its best network."""
            out = {}
            for f in final:
                if f == "@best":
                    out[f] = sha(folder / json.loads((folder / "state.json").read_text())["best_checkpoint"])
                elif f.endswith(".json"):
                    out[f] = without_timings(folder / f)
                else:
                    out[f] = sha(folder / f)
            return out

        expected = result(ref)
        failures, landed = [], {"before state": 0, "mid-run": 0, "finished": 0}
        for k in range(kills):
            out = case.work / f"{name}-{k}"
            killed = kill_after(start_args(case, out), rng.uniform(0.02, 1.0) * duration)
            problems = whole(out) if out.exists() else []
            if not killed:
                landed["finished"] += 1
            elif not (out / "state.json").is_file():
                landed["before state"] += 1
            else:
                landed["mid-run"] += 1
            if (out / "state.json").is_file():
                r = run(resume_args(case, out), check=False)
            else:
                shutil.rmtree(out, ignore_errors=True)
                r = run(start_args(case, out), check=False)
            if r.returncode != 0:
                problems.append(f"resume failed: {r.stderr.strip()}")
            else:
                got = result(out)
                for f, want in expected.items():
                    if got[f] != want:
                        problems.append(f"{f} differs from the uninterrupted run's")
            failures += [f"kill {k}: {p}" for p in problems]
            shutil.rmtree(out, ignore_errors=True)
        return duration, landed, failures

    return test


def eliminate_case(case, kills, rng):
    """No resume: after a kill the files left are whole, and a new run into a new folder
    gives the reference."""
    args = lambda out: ["eliminate", "--model", case.checkpoint, *DATA, "--samples", "500",
                        "--layer", "fc1", "--out", str(out)]
    ref = case.work / "eliminate-reference"
    t = time.monotonic()
    run(args(ref))
    duration = time.monotonic() - t
    failures, landed = [], {"running": 0, "finished": 0}
    for k in range(kills):
        out = case.work / f"eliminate-{k}"
        killed = kill_after(args(out), rng.uniform(0.02, 1.0) * duration)
        landed["running" if killed else "finished"] += 1
        failures += [f"kill {k}: {p}" for p in (whole(out) if out.exists() else [])]
        shutil.rmtree(out, ignore_errors=True)
    return duration, landed, failures


CASES = {
    "train": overwrite_case(
        "train",
        lambda c, target: ["train", "--model", "lenet5", *DATA, "--epochs", "1", "--holdout", "7500",
                           "--threads", "1", "--out", str(target)],
        "model.safetensors",
    ),
    "export": overwrite_case(
        "export", lambda c, target: ["export", "--model", c.checkpoint, "--out", str(target)], "model.onnx"
    ),
    "lut": overwrite_case(
        "lut",
        lambda c, target: ["lut", "build", "lenet5", "--levels", "2", "--sweeps", "1",
                           "--round", "3", "--max-runs", "6", "--warmup", "1", "--out", str(target)],
        "lut.json",
    ),
    "prune": resumable_case(
        "prune",
        lambda c, out: ["prune", "--model", c.checkpoint, *DATA, "--method", "eap", "--train-samples", "400",
                        "--rounds", "2", "--finetune-epochs", "1", "--threads", "1", "--out", str(out)],
        lambda c, out: ["prune", "--resume", str(out), "--data-dir", str(ROOT / "data"), "--threads", "1"],
        ["state.json", "@best"],
    ),
    "adapt": resumable_case(
        "adapt",
        lambda c, out: ["adapt", "--model", c.checkpoint, *DATA, "--budget", "macs=0.6x", "--train-samples", "400",
                        "--holdout", "200", "--short-term-batches", "2", "--long-term-epochs", "1",
                        "--no-measure", "--initial-reduction", "0.2", "--train-threads", "1", "--out", str(out)],
        lambda c, out: ["adapt", "--model", c.checkpoint, *DATA, "--budget", "macs=0.6x", "--train-samples", "400",
                        "--holdout", "200", "--short-term-batches", "2", "--long-term-epochs", "1",
                        "--no-measure", "--initial-reduction", "0.2", "--train-threads", "1", "--out", str(out),
                        "--resume"],
        ["final.safetensors", "summary.json"],
    ),
    "eliminate": eliminate_case,
}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("commands", nargs="*", default=list(CASES))
    args = p.parse_args()
    rng = random.Random(args.seed)
    work = pathlib.Path(tempfile.mkdtemp(prefix="joule-kill-"))
    try:
        checkpoint = str(work / "lenet5.safetensors")
        run(["train", "--model", "lenet5", *DATA, "--epochs", "1", "--holdout", "7000", "--out", checkpoint])
        case = Case(work, checkpoint)
        failed = False
        print(f"load average {os.getloadavg()[0]:.2f}")
        for name in args.commands:
            duration, landed, failures = CASES[name](case, args.kills, rng)
            where = ", ".join(f"{v} {k}" for k, v in landed.items())
            print(f"{name}: {args.kills} kills within {duration:.1f} s ({where}): "
                  f"{'ok' if not failures else f'{len(failures)} FAILURES'}", flush=True)
            for f in failures[:10]:
                print(f"  {f}")
            failed = failed or bool(failures)
        print(f"load average {os.getloadavg()[0]:.2f}")
        return 1 if failed else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
