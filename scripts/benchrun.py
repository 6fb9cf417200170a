"""What scripts/bench-infer.py and scripts/bench-train.py share: the load average and the
times a side's process prints (`times <seconds>...` on its last such line)."""

import subprocess


def load1():
    """The 1-minute load average."""
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def times_of(cmd, env):
    """Runs `cmd` and returns the seconds of its last `times` line; a failure raises with
    its stderr."""
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {proc.stderr.strip()}")
    line = [l for l in proc.stdout.splitlines() if l.startswith("times ")][-1]
    return [float(t) for t in line.split()[1:]]
