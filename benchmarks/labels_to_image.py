"""Labels to photo on objects-seg: the pix2pix recipe's U-Net against the SPADE generator, on the same data, losses and steps.

For each generator and seed, ``Trainer`` trains the pix2pix recipe (conditional 70x70 PatchGAN with
batch norm, ``bce+l1@100``, Adam 2e-4 / 0.5, constant then linear decay over the second half) on
``objects-seg`` with ``--direction BtoA``: the 0/255 masks, one-hot in two channels, are the inputs and
the photos the targets. Only ``--gen`` and its width change between the two: ``unet`` (the recipe's
generator: batch norm, dropout 0.5, as deep as the crop allows) at ``--unet-ngf``, and ``spade`` at
``--spade-ngf`` (``--spade-hidden`` channels in its modulation layers). Same crop, load size, batch
size, steps, discriminator width and seed. Each model is then scored on the 100 test pairs with
``gantk.evaluate.evaluate`` at the training crop size (inputs and targets resized to it), in the
paper's test mode (batch statistics and dropout, one image at a time, seed 0) and in eval mode (running
statistics, no dropout): L1, PSNR, SSIM, FID and KID (and LPIPS where its weights are present; FID and
KID where InceptionV3 weights are, else listed as unavailable with the reason). Beside them, the L1 and
PSNR of the best constant guess (the mean colour of the training photos at that size).

The JSON (machine, command, settings, parameter counts, wall times, every metric) goes to ``--out``, by
default ``benchmarks/results/local/labels-to-image.json`` (git-ignored; the committed files in results/
are records); the markdown table is printed, as ``benchmarks/report.py`` renders it.

    python benchmarks/labels_to_image.py [--steps 800] [--seeds 0,1] [--batch-size 4] [--threads 1]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from gantk.data import open_dataset
from gantk.evaluate import evaluate
from gantk.metrics.fid import find_inception_weights
from gantk.train import TrainConfig, Trainer
from hardware import load_average, recorded, write_json
from report import labels_to_image_tables

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "objects-seg"
GENERATORS = ("unet", "spade")
MODES = {"paper": False, "eval": True}  # mode -> eval_mode
MEANS = ("l1", "psnr", "ssim", "lpips", "fid", "kid")


def gen_options(gen: str, args: argparse.Namespace) -> dict:
    return {"ngf": args.unet_ngf} if gen == "unet" else {"ngf": args.spade_ngf, "hidden": args.spade_hidden}


def config(gen: str, seed: int, args: argparse.Namespace, out: Path) -> TrainConfig:
    return TrainConfig(
        recipe="pix2pix", data=str(args.data), data_format="segmentation", direction="BtoA", out=str(out),
        gen=gen, gen_opt=gen_options(gen, args), disc_opt={"ndf": args.ndf},
        max_steps=args.steps, batch_size=args.batch_size, load_size=args.load_size, crop_size=args.size,
        seed=seed, workers=args.workers, device="cpu", log_every=max(1, args.steps // 10), sample_every=args.steps,
        checkpoint_every=args.steps, keep_checkpoints=1,
    )


def parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def train(gen: str, seed: int, args: argparse.Namespace, runs: Path) -> dict:
    """Train one model; its run directory, wall time, parameter counts and resolved generator options."""
    load_start = load_average()
    trainer = Trainer(config(gen, seed, args, runs / f"{gen}-seed{seed}"), progress=False)
    clock = time.perf_counter()
    run_dir = trainer.fit()
    seconds = time.perf_counter() - clock
    networks = trainer.system.networks
    return {
        "generator": gen, "seed": seed, "run_dir": str(run_dir),
        "gen_opt": dict(trainer.config.gen_opt), "disc_opt": dict(trainer.config.disc_opt),
        "parameters_G": parameters(networks["G"]), "parameters_D": parameters(networks["D"]),
        "train_s": seconds, "s_per_step": seconds / args.steps,
        "load_average_start": load_start, "load_average_end": load_average(),
    }


def score(run: dict, args: argparse.Namespace, cache: dict) -> dict:
    """The test-split metrics of one trained model in each mode."""
    scored = {}
    for mode, eval_mode in MODES.items():
        clock = time.perf_counter()
        result = evaluate(run["run_dir"], args.data, data_format="segmentation", device="cpu", eval_mode=eval_mode, batch_size=1,
                          seed=0, progress=False, feature_cache=cache, inception_weights=args.inception_weights)
        scored[mode] = {"metrics": result["metrics"], "unavailable": result["unavailable"], "images": result["images"],
                        "step": result["step"], "mode": result["mode"], "eval_s": time.perf_counter() - clock}
    return scored


def constant_guess(data: Path, size: int) -> dict:
    """L1 and PSNR (images in [0, 1], per image, averaged, as gantk eval computes them) on the test split of the best
    constant image: the mean colour of the training photos, both splits resized to ``size`` as evaluation does."""
    def photos(split: str) -> list[torch.Tensor]:
        dataset = open_dataset(data, format="segmentation", split=split, direction="BtoA", augment=False, load_size=None,
                               crop_size=size, num_classes=2)
        return [dataset[i]["B"].double() * 0.5 + 0.5 for i in range(len(dataset))]

    colour = torch.stack([photo.mean((1, 2)) for photo in photos("train")]).mean(0)[:, None, None]
    test = photos("test")
    return {"l1": statistics.mean((photo - colour).abs().mean().item() for photo in test),
            "psnr": statistics.mean(10 * math.log10(1 / (photo - colour).pow(2).mean().item()) for photo in test)}


def summarise(runs: list[dict]) -> dict:
    """Per generator and mode: each metric's mean, minimum and maximum over the seeds."""
    summary: dict = {}
    for gen in dict.fromkeys(run["generator"] for run in runs):
        mine = [run for run in runs if run["generator"] == gen]
        summary[gen] = {"seeds": len(mine), "parameters_G": mine[0]["parameters_G"],
                        "train_s_mean": statistics.mean(run["train_s"] for run in mine)}
        for mode in MODES:
            values = {}
            for name in MEANS:
                scores = [run["scores"][mode]["metrics"][name] for run in mine if name in run["scores"][mode]["metrics"]]
                if len(scores) == len(mine):
                    values[name] = {"mean": statistics.mean(scores), "min": min(scores), "max": max(scores)}
            summary[gen][mode] = values
    return summary


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA,
                        help="segmentation dataset with train/ and test/ splits of images/ and masks/ (default: ../shared/data/objects-seg)")
    parser.add_argument("--gens", default=",".join(GENERATORS), help="comma-separated generators to train (default: unet,spade)")
    parser.add_argument("--seeds", default="0,1", help="comma-separated seeds, one training of each generator per seed (default: 0,1)")
    parser.add_argument("--steps", type=int, default=800, help="training steps of every run (default: 800)")
    parser.add_argument("--batch-size", type=int, default=4, help="images per training step, for both generators (default: 4)")
    parser.add_argument("--size", type=int, default=64, help="side of the training crops and of the scored test images (default: 64)")
    parser.add_argument("--load-size", type=int, default=72, help="side training images are resized to before the random crop (default: 72)")
    parser.add_argument("--unet-ngf", type=int, default=32, help="the U-Net's base width (default: 32; 7.3M parameters at 64 px)")
    parser.add_argument("--spade-ngf", type=int, default=16,
                        help="SPADE's base width (default: 16; 10.5M parameters with --spade-hidden 128; the paper's 64 has 92M)")
    parser.add_argument("--spade-hidden", type=int, default=128, help="channels of SPADE's modulation convolutions (default: 128, the paper's)")
    parser.add_argument("--ndf", type=int, default=64, help="the PatchGAN discriminator's base width, the same for both (default: 64)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default: 1, the fastest on a shared 2-core CPU)")
    parser.add_argument("--workers", type=int, default=1, help="data-loading processes of each training run (default: 1)")
    parser.add_argument("--inception-weights", type=Path,
                        help="InceptionV3 weights for FID and KID (default: found as gantk eval finds them; without any, those are unavailable)")
    parser.add_argument("--runs", type=Path, help="folder to keep the run directories in (default: a temporary folder, removed)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "local" / "labels-to-image.json",
                        help="JSON file for the results (default: results/local/labels-to-image.json, git-ignored; the committed "
                             "files in results/ are records, not to be overwritten)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.gens.split(",")) - set(GENERATORS))
    if unknown:
        parser.error(f"--gens {args.gens}: {', '.join(unknown)} is not one of {', '.join(GENERATORS)}")
    return args


def main(argv: list[str] | None = None) -> dict | None:
    args = parse_args(argv)
    if not (args.data / "train" / "masks").is_dir():
        print(f"skipped: no segmentation data in {args.data} (the shared data folder is absent); give --data.")
        return None
    torch.set_num_threads(args.threads)
    weights = args.inception_weights or find_inception_weights()
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    result = recorded("labels_to_image.py", argv, settings=settings, omp_num_threads=os.environ.get("OMP_NUM_THREADS"),
                      inception_weights=None if weights is None else str(weights), runs=[])
    started = time.perf_counter()
    result["constant_guess"] = constant_guess(args.data, args.size)
    cache: dict = {}
    with tempfile.TemporaryDirectory(prefix="gantk-labels-") as tmp:
        runs = args.runs or Path(tmp)
        for seed in map(int, args.seeds.split(",")):
            for gen in args.gens.split(","):
                run = train(gen, seed, args, runs)
                run["scores"] = score(run, args, cache)
                if args.runs is None:
                    run["run_dir"] = "(temporary)"
                result["runs"].append(run)
                paper, evaluated = run["scores"]["paper"]["metrics"], run["scores"]["eval"]["metrics"]
                print(f"{gen} seed {seed}: {run['parameters_G']:,} G parameters, {run['train_s']:.0f} s "
                      f"({run['s_per_step']:.2f} s/step); L1 paper {paper['l1']:.4f} / eval {evaluated['l1']:.4f}, "
                      f"FID paper {paper.get('fid', float('nan')):.1f} / eval {evaluated.get('fid', float('nan')):.1f}; "
                      f"load {run['load_average_end']}", flush=True)
    result["summary"] = summarise(result["runs"])
    result["wall_s"] = time.perf_counter() - started
    write_json(args.out, result)
    print("\n".join(labels_to_image_tables(result)))
    print(f"wrote {args.out} ({result['wall_s'] / 60:.1f} min)")
    return result


if __name__ == "__main__":
    main()
