"""Held-out quality of gantk's pix2pix against the plain eager loop: edges -> photo at 128 px.

Pairs are derived from ``../shared/data/photos`` (Canny edges -> photo, 4 crops per photo, photos
split 80/20 between train and test) into a temporary folder. For each seed, gantk trains with
``Trainer`` (``--recipe pix2pix --crop-size 128 --load-size 143 --max-steps N``) and the plain loop
of ``reference_pix2pix`` trains from the same initial weights (same seed, same registry networks)
for the same steps with the same schedule. Both are scored by the L1 distance (images in [-1, 1])
of their outputs to the photos of the test split, in the paper's inference mode (dropout on,
batch statistics, one image at a time, fixed seed) and in eval mode, next to the L1 of the best
constant guess (the mean training colour). First, gantk's step and the plain step with fused Adam
(as gantk's) are run in lockstep on the same batches to show they compute the same update. The JSON
goes to ``--out``, by default ``benchmarks/results/local/pix2pix_quality.json`` (git-ignored).

    python benchmarks/pix2pix_quality.py [--steps 800] [--seeds 0,1,2] [--ngf 32] [--ndf 32] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import json
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

import gantk
from gantk.data import derive_pairs
from gantk.data.io import list_images
from gantk.train import TrainConfig, Trainer
from hardware import load_average, machine
from reference_pix2pix import PairedFolder, Pix2PixStep
from trainer_step import TrainerStep, build_system, data_info

PHOTOS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "photos"


def gantk_config(data: Path, out: Path, args, seed: int) -> TrainConfig:
    return TrainConfig(
        recipe="pix2pix", data=str(data), out=str(out), device="cpu", seed=seed, max_steps=args.steps,
        crop_size=args.size, load_size=args.load_size, gen_opt={"ngf": args.ngf}, disc_opt={"ndf": args.ndf},
        log_every=50, sample_every=args.steps, checkpoint_every=args.steps,
    )


def train_gantk(data: Path, out: Path, args, seed: int) -> torch.nn.Module:
    trainer = Trainer(gantk_config(data, out, args, seed), progress=False)
    trainer.fit()
    return trainer.system.networks["G"]


def train_plain(data: Path, args, seed: int, channels: dict[str, int]) -> tuple[torch.nn.Module, bool]:
    """The plain loop; also says whether its initial weights equal those gantk's trainer starts from."""
    _, system, _ = build_system(gantk_config(data, data / "unused", args, seed), data_info(channels))
    torch.manual_seed(seed)
    G = gantk.create("generator", "unet", in_channels=channels["A"], out_channels=channels["B"], ngf=args.ngf,
                     num_downs=system.config["gen_opt"]["num_downs"], norm="batch", dropout=0.5)
    D = gantk.create("discriminator", "patch70", in_channels=channels["A"] + channels["B"], ndf=args.ndf, norm="batch")
    reference = {**system.networks["G"].state_dict(), **{f"D.{k}": v for k, v in system.networks["D"].state_dict().items()}}
    mine = {**G.state_dict(), **{f"D.{k}": v for k, v in D.state_dict().items()}}
    same_init = reference.keys() == mine.keys() and all(torch.equal(reference[k], mine[k]) for k in mine)

    torch.manual_seed(seed)
    step = Pix2PixStep(G, D, total_steps=args.steps)
    loader = DataLoader(PairedFolder(data / "train", args.load_size, args.size), batch_size=1, shuffle=True,
                        num_workers=2, drop_last=True, generator=torch.Generator().manual_seed(seed))
    G.train(), D.train()
    done = 0
    while done < args.steps:
        for real_A, real_B in loader:
            step(real_A, real_B)
            done += 1
            if done == args.steps:
                break
    return G, same_init


def lockstep(data: Path, args, channels: dict[str, int], steps: int = 5) -> dict:
    """gantk's trainer step and the plain step fed the same batches from the same weights and RNG state
    (both with fused Adam): the largest differences of their losses and weights after ``steps`` steps."""
    gantk_step = TrainerStep(gantk_config(data, data / "unused", args, seed=0), data_info(channels))
    nets = gantk_step.system.networks
    plain = Pix2PixStep(copy.deepcopy(nets["G"]), copy.deepcopy(nets["D"]), fused=True)
    dataset, _ = gantk_step.trainer.open_data()
    loss_gap = 0.0
    for k in range(steps):
        batch = {key: value[None] for key, value in dataset[(k, 0)].items() if key in "AB"}
        torch.manual_seed(k)
        ours = {key: value.item() for key, value in gantk_step(batch).items()}
        torch.manual_seed(k)
        theirs = plain(batch["A"], batch["B"])
        pairs = [(ours["D/bce"], theirs["D"]), (ours["G/bce"] + ours["G/l1"], theirs["G"])]
        loss_gap = max(loss_gap, *(abs(a - b) / abs(b) for a, b in pairs))
    def gap(tensors):
        pairs = [(a, b) for name, mine in (("G", plain.G), ("D", plain.D))
                 for a, b in zip(tensors(nets[name]), tensors(mine)) if a.is_floating_point()]
        return max((a - b).abs().max().item() for a, b in pairs)

    # Batch-norm running statistics are reported apart: they follow the order D is shown the fake and the
    # real pair, which changes the running averages (used in eval mode) but no loss.
    return {"steps": steps, "max_relative_loss_difference": loss_gap,
            "max_weight_difference": gap(lambda net: net.parameters()),
            "max_running_statistics_difference": gap(lambda net: net.buffers())}


@torch.no_grad()
def held_out_l1(G: torch.nn.Module, test: PairedFolder, paper_mode: bool, seed: int = 1234) -> list[float]:
    """Per-image mean |G(A) - B| over the test pairs (images in [-1, 1])."""
    G.train(paper_mode)
    torch.manual_seed(seed)
    scores = [(G(a[None]) - b[None]).abs().mean().item() for a, b in (test[i] for i in range(len(test)))]
    G.train()
    return scores


def summarise(runs: list[dict], mode: str) -> dict:
    """Means over seeds, and the gantk - plain difference against two noise scales: its spread over
    seeds (training noise) and the standard error of the per-image differences (test-set noise)."""
    gantk_l1 = [r[mode]["gantk"] for r in runs]
    plain_l1 = [r[mode]["plain"] for r in runs]
    diffs = [g - p for g, p in zip(gantk_l1, plain_l1)]
    seed_se = statistics.stdev(diffs) / len(diffs) ** 0.5 if len(diffs) > 1 else 0.0
    image_se = statistics.mean(r[mode]["image_se"] for r in runs)
    return {
        "gantk_mean": statistics.mean(gantk_l1), "plain_mean": statistics.mean(plain_l1),
        "mean_difference": statistics.mean(diffs), "seed_standard_error": seed_se, "image_standard_error": image_se,
        "gantk_no_worse": statistics.mean(diffs) <= 2 * max(seed_se, image_se),
    }


def score(G_gantk: torch.nn.Module, G_plain: torch.nn.Module, test: PairedFolder, paper_mode: bool) -> dict:
    gantk_l1, plain_l1 = held_out_l1(G_gantk, test, paper_mode), held_out_l1(G_plain, test, paper_mode)
    diffs = [g - p for g, p in zip(gantk_l1, plain_l1)]
    return {"gantk": statistics.mean(gantk_l1), "plain": statistics.mean(plain_l1),
            "image_se": statistics.stdev(diffs) / len(diffs) ** 0.5}


def mean_colour_l1(train: PairedFolder, test: PairedFolder) -> float:
    """L1 on the test set of the best constant guess: the mean colour of the training photos."""
    colour = torch.stack([train[i][1].mean((1, 2)) for i in range(len(train))]).mean(0)[:, None, None]
    return statistics.mean((test[i][1] - colour).abs().mean().item() for i in range(len(test)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, default=PHOTOS,
                        help="folder of photos the edges -> photo pairs are derived from (default: ../shared/data/photos)")
    parser.add_argument("--steps", type=int, default=800, help="training steps of each loop, at batch 1 (default: 800)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds, one training of each loop per seed (default: 0,1,2)")
    parser.add_argument("--size", type=int, default=128, help="side of the training crops and of the test images (default: 128)")
    parser.add_argument("--load-size", type=int, default=143, help="side training images are resized to before the random crop (default: 143)")
    parser.add_argument("--ngf", type=int, default=32, help="the U-Net generator's base width (default: 32)")
    parser.add_argument("--ndf", type=int, default=32, help="the PatchGAN discriminator's base width (default: 32)")
    parser.add_argument("--threads", type=int, help="torch threads for both loops (default: torch's)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "local" / "pix2pix_quality.json",
                        help="JSON file for the results (default: results/local/pix2pix_quality.json, git-ignored; the "
                             "committed files in results/ are records, not to be overwritten)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not list_images(args.photos):
        print(f"skipped: no photos in {args.photos} (the shared data folder is absent).")
        return

    result = {"command": shlex.join([Path(sys.executable).name, *sys.argv]), "machine": machine(),
              "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, "runs": []}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gantk-quality-") as tmp:
        data = Path(tmp) / "edges"
        clock = time.perf_counter()
        derived = derive_pairs(args.photos, data, task="edges", size=args.size, crops_per_photo=4, test_fraction=0.2, seed=0)
        result["data"] = derived.as_dict() | {"out_dir": "(temporary)", "derive_s": time.perf_counter() - clock}
        print(f"{derived} in {result['data']['derive_s']:.0f} s")
        test = PairedFolder(data / "test", args.load_size, args.size, augment=False)
        result["mean_colour_l1"] = mean_colour_l1(PairedFolder(data / "train", args.load_size, args.size, augment=False), test)
        channels = {"A": 1, "B": 3}
        result["lockstep"] = lockstep(data, args, channels)
        print("same batches, weights and RNG, {steps} steps: largest relative loss difference "
              "{max_relative_loss_difference:.1e}, largest weight difference {max_weight_difference:.1e}, "
              "of batch-norm running statistics {max_running_statistics_difference:.1e}".format(**result["lockstep"]))
        for seed in map(int, args.seeds.split(",")):
            run = {"seed": seed, "load_average_start": load_average()}
            clock = time.perf_counter()
            G_gantk = train_gantk(data, Path(tmp) / f"gantk-{seed}", args, seed)
            run["gantk_s"] = time.perf_counter() - clock
            clock = time.perf_counter()
            G_plain, run["same_initial_weights"] = train_plain(data, args, seed, channels)
            run["plain_s"] = time.perf_counter() - clock
            for mode, paper in (("paper_mode", True), ("eval_mode", False)):
                run[mode] = score(G_gantk, G_plain, test, paper)
            run["load_average_end"] = load_average()
            result["runs"].append(run)
            print(f"seed {seed}: held-out L1 (paper mode) gantk {run['paper_mode']['gantk']:.4f}, plain "
                  f"{run['paper_mode']['plain']:.4f}; eval mode gantk {run['eval_mode']['gantk']:.4f}, plain "
                  f"{run['eval_mode']['plain']:.4f}; train {run['gantk_s']:.0f} s / {run['plain_s']:.0f} s; "
                  f"same initial weights: {run['same_initial_weights']}; load {run['load_average_end']}")
    result["summary"] = {mode: summarise(result["runs"], mode) for mode in ("paper_mode", "eval_mode")}
    result["wall_s"] = time.perf_counter() - started
    for mode, s in result["summary"].items():
        print(f"{mode}: gantk {s['gantk_mean']:.4f}, plain {s['plain_mean']:.4f}, difference {s['mean_difference']:+.4f} "
              f"(standard error over seeds {s['seed_standard_error']:.4f}, over test images {s['image_standard_error']:.4f}); "
              f"gantk no worse: {s['gantk_no_worse']}")
    print(f"the mean training colour as a constant guess: held-out L1 {result['mean_colour_l1']:.4f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out} ({result['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
