"""Wall-clock time of the README's main job, ``gantk train --out DIR`` on the embedded demo set, in a fresh process.

    python benchmarks/demo_time.py --out benchmarks/results/local/demo-time.json
    python benchmarks/demo_time.py --threads 1          # as with OMP_NUM_THREADS=1
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hardware import load_average, recorded, write_json


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, help="OMP_NUM_THREADS of the run (default: unset, torch's choice)")
    parser.add_argument("--max-steps", type=int, help="stop the demo early (default: its own length, 1500 steps)")
    parser.add_argument("--out", type=Path, help="JSON file for the result and the machine")
    args = parser.parse_args(argv)
    environment = dict(os.environ)
    if args.threads:
        environment["OMP_NUM_THREADS"] = str(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "gantk", "train", "--out", str(Path(tmp) / "demo"), "--no-progress",
                   *(["--max-steps", str(args.max_steps)] if args.max_steps else [])]
        before, start = load_average(), time.perf_counter()
        subprocess.run(command, env=environment, check=True, capture_output=True)
        seconds = time.perf_counter() - start
        steps = max(int(path.stem.rpartition("-")[2]) for path in (Path(tmp) / "demo").glob("checkpoint-*.pt"))
    result = recorded("demo_time.py", argv, threads=args.threads, max_steps=args.max_steps, seconds=seconds, steps=steps,
                      load_average_start=before, load_average_end=load_average())
    print(f"gantk train on the demo set, {steps} steps: {seconds:.0f} s ({seconds / 60:.1f} min); load average {before} -> {result['load_average_end']}")
    if args.out:
        write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
