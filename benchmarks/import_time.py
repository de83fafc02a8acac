"""Start-up cost: ``import numpy``, ``import ml_math_nn``, a core module, and the ``ml-math-nn`` command.

Each command runs in a fresh interpreter (nothing cached in the process), in rounds that
alternate between the commands so that a load that comes and goes on a shared machine
hits them alike; the figure is the median wall time over the rounds, with the peak
resident memory of the process (``ru_maxrss`` from ``wait4``).  Run::

    python benchmarks/import_time.py [--rounds 21]

(``make bench`` runs it too.)  The issue's targets: ``import ml_math_nn`` within 2x of
``import numpy`` and ``ml-math-nn --version`` within 4x.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

SCRIPT = Path(sys.executable).parent / "ml-math-nn"
"""The console script that ``pip install`` writes beside the interpreter (what a user runs)."""
CLI = [str(SCRIPT)] if SCRIPT.is_file() else [sys.executable, "-m", "ml_math_nn"]

COMMANDS: dict[str, list[str]] = {
    "python -c 'import numpy'": [sys.executable, "-c", "import numpy"],
    "python -c 'import ml_math_nn'": [sys.executable, "-c", "import ml_math_nn"],
    "python -c 'import ml_math_nn.layers'": [sys.executable, "-c", "import ml_math_nn.layers"],
    "python -c 'from ml_math_nn import Network, Adam, Trainer'": [
        sys.executable,
        "-c",
        "from ml_math_nn import Network, Adam, Trainer",
    ],
    "ml-math-nn --version": [*CLI, "--version"],
    "ml-math-nn --help": [*CLI, "--help"],
}
BASELINE = "python -c 'import numpy'"


def run_once(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident MiB of one run of ``argv`` (its output discarded)."""
    start = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=[(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)])
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(argv)} failed")
    return seconds, usage.ru_maxrss / 1024


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21, help="alternating rounds (default: %(default)s)")
    args = parser.parse_args(argv)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    memory: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for command in COMMANDS.values():  # one warm-up each: the file cache, not the interpreter
        run_once(command)
    for _ in range(args.rounds):
        for name, command in COMMANDS.items():
            seconds, mib = run_once(command)
            times[name].append(seconds)
            memory[name].append(mib)
    base = statistics.median(times[BASELINE])
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"load average {os.getloadavg()[0]:.2f}; {args.rounds} alternating rounds, medians\n")
    print("| command | wall time | x import numpy | peak RSS |\n|---|---:|---:|---:|")
    for name in COMMANDS:
        median, mib = statistics.median(times[name]), statistics.median(memory[name])
        print(f"| `{name}` | {median * 1e3:.0f} ms | {median / base:.2f}x | {mib:.0f} MiB |")
    if not SCRIPT.is_file():
        print("\n(no ml-math-nn console script beside this Python: `python -m ml_math_nn` stands for it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
