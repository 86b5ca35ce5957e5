"""Start-up time of the command line, as a user waits for it: the wall time of ``gantk --help``,
``gantk list`` and ``import gantk`` (``import torch`` for scale), each in a fresh process, in rounds
that run every command of every checkout once in turn.

``--gantk DIR`` (repeatable) times the gantk of another checkout against this one, in the same rounds.

    python benchmarks/startup.py --out benchmarks/results/local/startup.json
    python benchmarks/startup.py --gantk . --gantk /tmp/older-checkout --runs 9
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hardware import git_revision, load_average, machine, write_json

COMMANDS = {
    "gantk --help": ["-m", "gantk", "--help"],
    "gantk list": ["-m", "gantk", "list"],
    "import gantk": ["-c", "import gantk"],
    "import torch": ["-c", "import torch"],
}


def wall_time(arguments: list[str], checkout: Path, cwd: str) -> float:
    """Seconds for one run, with ``checkout``'s gantk first on the path (run from ``cwd``, outside every checkout)."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    start = time.perf_counter()
    subprocess.run([sys.executable, *arguments], cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gantk", type=Path, action="append", help="a gantk checkout to time; repeatable, to time several in the same rounds (default: this one)")
    parser.add_argument("--runs", type=int, default=7, help="rounds (default 7)")
    parser.add_argument("--out", type=Path, help="write the results as JSON")
    args = parser.parse_args()
    checkouts = [c.resolve() for c in args.gantk or [Path(__file__).resolve().parents[1]]]
    labels = [revision if (revision := git_revision(c)) != "unknown" else str(c) for c in checkouts]
    times: dict[str, dict[str, list[float]]] = {label: {name: [] for name in COMMANDS} for label in labels}
    load_start = load_average()
    with tempfile.TemporaryDirectory() as cwd:
        for checkout, label in zip(checkouts, labels):  # a first run of each, not timed, writes its bytecode
            wall_time(COMMANDS["gantk list"], checkout, cwd)
        for _ in range(args.runs):
            for name, arguments in COMMANDS.items():
                for checkout, label in zip(checkouts, labels):
                    times[label][name].append(wall_time(arguments, checkout, cwd))
    result = {
        "machine": machine(),
        "command": " ".join(["python", *sys.argv]),
        "load_average_start": load_start,
        "load_average_end": load_average(),
        "runs": args.runs,
        "checkouts": {label: {name: {"best_s": min(t), "median_s": statistics.median(t), "s": t} for name, t in by_name.items()}
                      for label, by_name in times.items()},
    }
    print(f"{'command':16s}" + "".join(f"{label:>22s}" for label in labels) + "   (best / median s)")
    for name in COMMANDS:
        cells = [result["checkouts"][label][name] for label in labels]
        print(f"{name:16s}" + "".join(f"{c['best_s']:>13.2f} / {c['median_s']:.2f}" for c in cells))
    if args.out:
        write_json(args.out, result)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
