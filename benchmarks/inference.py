"""Inference latency on the CPU: a trained model run by gantk (PyTorch) against its ``gantk export``
ONNX file run by onnxruntime, interleaved run by run on the same inputs.

The model is pix2pix's generator as the recipe builds it at ``--size`` (a U-Net of 8 levels at 256 px,
batch norm, ``--ngf`` 64 as in the paper), trained for one step so that it is a real checkpoint. Both runtimes get the same
threads (``--threads``, default torch's). Reported per mode (eval: running statistics; test: the
paper's batch statistics and dropout) and batch size: the median time per run of each runtime, the
median of the per-round ratios, and images/s. With ``--out``, the JSON holds them with the machine
(date, CPU, load average) as the run starts and the command.

    python benchmarks/inference.py                              # 256 px, batches 1 and 4
    python benchmarks/inference.py --size 128 --batch-sizes 1 --runs 5 --out /tmp/inference.json
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import onnxruntime
import torch

from gantk.export import export_onnx
from gantk.inference import TrainedModel
from gantk.train import TrainConfig, Trainer

from hardware import recorded, write_json


def trained_checkpoint(folder: Path, size: int, ngf: int) -> Path:
    """A pix2pix run of one step at ``size`` px on the demo set (enlarged: only the networks matter here)."""
    config = TrainConfig(out=str(folder / "run"), max_steps=1, load_size=size, crop_size=size, workers=0, batch_size=1,
                         gen_opt={"ngf": ngf}, disc_opt={"ndf": 8})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # that the demo images are enlarged
        return Trainer(config, progress=False).fit()


def timed(run, inputs) -> float:
    start = time.perf_counter()
    run(inputs)
    return time.perf_counter() - start


def measure(model: TrainedModel, path: Path, batch_size: int, size: int, runs: int, warmup: int, threads: int) -> dict:
    """Times of ``model`` and of its ONNX file ``path`` on one random batch, interleaved."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    channels = model.config["channels"]["A"]
    inputs = torch.rand(batch_size, channels, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    array = inputs.numpy()

    def with_torch(images):
        with model.buffers_kept():
            return model.translate(images)

    runners = {"torch": (with_torch, inputs), "onnxruntime": (lambda images: session.run(None, {"images": images}), array)}
    times: dict[str, list[float]] = {name: [] for name in runners}
    for round_ in range(warmup + runs):
        order = list(runners) if round_ % 2 == 0 else list(reversed(runners))  # neither always runs first
        for name in order:
            run, data = runners[name]
            seconds = timed(run, data)
            if round_ >= warmup:
                times[name].append(seconds)
    ratios = [t / o for t, o in zip(times["torch"], times["onnxruntime"])]
    return {
        "mode": "test" if model.system.training else "eval", "batch_size": batch_size, "size": size, "runs": runs, "threads": threads,
        "median_s": {name: statistics.median(values) for name, values in times.items()},
        "images_per_s": {name: batch_size / statistics.median(values) for name, values in times.items()},
        "onnxruntime_speedup": statistics.median(ratios),
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256, help="image side and training crop (default: 256)")
    parser.add_argument("--ngf", type=int, default=64, help="the generator's base width (default: 64, the paper's)")
    parser.add_argument("--batch-sizes", default="1,4", help="comma-separated batch sizes (default: 1,4)")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per runtime (default: 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first (default: 3)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="threads of each runtime (default: torch's)")
    parser.add_argument("--out", type=Path, help="JSON file for the results and the machine")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    record = recorded("inference.py", argv)  # the machine and its load as the run starts, and the command
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        run_dir = trained_checkpoint(folder, args.size, args.ngf)
        for eval_mode in (True, False):
            model = TrainedModel.load(run_dir, device="cpu", eval_mode=eval_mode)
            path = export_onnx(run_dir, folder / f"model-{eval_mode}.onnx", eval_mode=eval_mode).path
            for batch_size in map(int, args.batch_sizes.split(",")):
                result = measure(model, path, batch_size, args.size, args.runs, args.warmup, args.threads)
                results.append(result)
                print(f"{result['mode']:>4} b{batch_size} {args.size}px: torch {result['median_s']['torch'] * 1e3:8.1f} ms, "
                      f"onnxruntime {result['median_s']['onnxruntime'] * 1e3:8.1f} ms, "
                      f"onnxruntime {result['onnxruntime_speedup']:.2f}x torch's speed", flush=True)
    if args.out:
        write_json(args.out, {**record, "onnxruntime": onnxruntime.__version__, "results": results})
    return results


if __name__ == "__main__":
    main()
