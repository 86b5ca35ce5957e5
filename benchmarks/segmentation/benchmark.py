"""Segmentation objectives compared on objects-seg: train each with one seed and step count, score the test split.

Each run trains ``recipe="seg"`` (U-Net, batch norm, dropout 0.5) with one objective, reloads the
model from its final checkpoint, predicts the 100 unseen test images in eval mode and writes
``results/<run>.json``. ``--table`` prints the markdown table of the JSON files present.

Metrics (foreground = object, at the masks' own 256 px: probabilities predicted at the training
size are upsampled bilinearly, then thresholded at 0.5):

- IoU: foreground intersection over union summed over the whole test set;
  mean image IoU: the same per image, averaged (an image with empty union counts 1).
- pixel accuracy: share of all test pixels whose hard label is right.
- RMSE: root mean squared difference between foreground probability and the 0/1 mask, over all pixels.

Example:
    python benchmarks/segmentation/benchmark.py --steps 500 --batch-size 4 --out /tmp/seg-bench
    python benchmarks/segmentation/benchmark.py --table
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.utils import save_image

from gantk.data import check_dataset, open_dataset, read_mask
from gantk.train import TrainConfig, Trainer
from gantk.train.checkpoint import system_from_checkpoint

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "objects-seg"

# run name -> (objective spec, discriminator); "lovasz+l1@0.5" needs an adversarial term to use a
# discriminator, so that run pairs it with hinge, the seg recipe's adversarial term. Runs in BALANCED
# give their ce or focal term the median-frequency class weights of the training masks.
RUNS = {
    "bce-l1": ("bce+l1@100", "patch70"),
    "hinge-l1": ("hinge+l1@0.5", "patch70"),
    "hinge-lovasz": ("hinge+lovasz", "patch70"),  # the seg recipe's objective
    "hinge-lovasz-l1": ("hinge+lovasz+l1@0.5", "patch70"),
    "l1": ("l1", "none"),
    "lovasz": ("lovasz", "none"),
    "ce": ("ce", "none"),
    "ce-lovasz": ("ce+lovasz", "none"),
    "hinge-ce-lovasz": ("hinge+ce+lovasz", "patch70"),
    "focal": ("focal", "none"),
    "focal-lovasz": ("focal+lovasz", "none"),
    "ce-balanced": ("ce", "none"),
    "focal-balanced": ("focal", "none"),
}
BALANCED = {"ce-balanced": "ce", "focal-balanced": "focal"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="objects-seg folder (train/ and test/)")
    parser.add_argument("--out", type=Path, default=Path("runs/seg-bench"), help="folder for the run directories")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for the JSON results")
    parser.add_argument("--runs", nargs="+", choices=list(RUNS), default=list(RUNS))
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--size", type=int, default=128, help="training crop and test input size")
    parser.add_argument("--load-size", type=int, default=143, help="training images are resized to this, then cropped")
    parser.add_argument("--ngf", type=int, default=32)
    parser.add_argument("--ndf", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1 is fastest on a busy CPU)")
    parser.add_argument("--workers", type=int, default=0, help="data-loading processes")
    parser.add_argument("--table", action="store_true", help="only print the table of the results present")
    parser.add_argument("--figure", type=Path, help="only save test predictions of the trained runs in OUT to this PNG")
    return parser.parse_args(argv)


def class_weights(data: Path) -> list[float]:
    """The median-frequency class weights of the training masks, as ``gantk data check`` gives them."""
    return check_dataset(data, "segmentation", count_classes=True).splits["train"].class_weights


def train(name: str, args: argparse.Namespace) -> tuple[Path, float]:
    """Train one run; returns its directory and the wall time of ``fit``."""
    loss, disc = RUNS[name]
    loss_opt = {BALANCED[name]: {"class_weights": class_weights(args.data)}} if name in BALANCED else {}
    config = TrainConfig(
        recipe="seg", data=str(args.data), data_format="segmentation", out=str(args.out / name),
        loss=loss, disc=disc, loss_opt=loss_opt, gen_opt={"ngf": args.ngf}, disc_opt={"ndf": args.ndf} if disc != "none" else {},
        max_steps=args.steps, batch_size=args.batch_size, load_size=args.load_size, crop_size=args.size,
        seed=args.seed, workers=args.workers, device="cpu", log_every=20, sample_every=args.steps,
        checkpoint_every=args.steps, keep_checkpoints=1,
    )
    start = time.perf_counter()
    run_dir = Trainer(config, progress=False).fit()
    return run_dir, time.perf_counter() - start


def load_model(run_dir: Path):
    """The trained system of ``run_dir`` in eval mode (running batch-norm statistics, no dropout)."""
    system, _ = system_from_checkpoint(run_dir)
    return system.eval()


def open_test_split(data: Path, size: int):
    """The test split resized to ``size`` (no crop, no flip); masks as class ids."""
    return open_dataset(data, format="segmentation", split="test", augment=False, load_size=None, crop_size=size, num_classes=2)


@torch.no_grad()
def evaluate(run_dir: Path, data: Path, size: int, batch_size: int = 10) -> dict[str, float]:
    """Test-split metrics of the model in ``run_dir``."""
    system = load_model(run_dir)
    test = open_test_split(data, size)
    inter = union = wrong = total = squared = 0.0
    image_ious = []
    for start in range(0, len(test), batch_size):
        items = [test[i] for i in range(start, min(start + batch_size, len(test)))]
        probs = system.translate(torch.stack([item["A"] for item in items]))
        masks = torch.stack([read_mask(Path(item["B_path"])) for item in items]) > 0
        probs = F.interpolate(probs, size=masks.shape[-2:], mode="bilinear", align_corners=False)[:, 0].clamp(0, 1)
        pred = probs > 0.5
        i = (pred & masks).flatten(1).sum(1).double()
        u = (pred | masks).flatten(1).sum(1).double()
        image_ious += torch.where(u > 0, i / u.clamp_min(1), torch.ones_like(u)).tolist()
        inter, union = inter + i.sum().item(), union + u.sum().item()
        wrong += (pred != masks).sum().item()
        squared += (probs.double() - masks.double()).pow(2).sum().item()
        total += masks.numel()
    return {
        "iou": inter / union,
        "mean_image_iou": sum(image_ious) / len(image_ious),
        "pixel_accuracy": 1 - wrong / total,
        "rmse": (squared / total) ** 0.5,
        "test_images": len(test),
    }


def foreground_share(data: Path) -> float:
    """Share of object pixels in the test masks (1 minus it is the accuracy of predicting all background)."""
    paths = sorted((data / "test" / "masks").glob("*.png"))
    return sum((read_mask(p) > 0).float().mean().item() for p in paths) / len(paths)


def table(results: Path) -> str:
    """The markdown table of the JSON results in ``results``, in the order of ``RUNS``."""
    rows = [json.loads(p.read_text()) for p in sorted(results.glob("*.json"))]
    order = list(RUNS)
    rows.sort(key=lambda r: order.index(r["run"]) if r["run"] in order else len(order))
    lines = [
        "| objective | D | test IoU | mean image IoU | pixel accuracy | RMSE | s/step | train time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        m = r["test"]
        weights = r.get("class_weights")
        objective = f"`{r['loss']}`" + (f" with class weights {', '.join(f'{w:.3g}' for w in weights)}" if weights else "")
        lines.append(
            f"| {objective} | {r['disc']} | {m['iou']:.3f} | {m['mean_image_iou']:.3f} | {m['pixel_accuracy']:.3f} "
            f"| {m['rmse']:.3f} | {r['seconds_per_step']:.2f} | {r['train_seconds'] / 60:.1f} min |"
        )
    return "\n".join(lines)


@torch.no_grad()
def figure(args: argparse.Namespace, path: Path, indices: tuple[int, ...] = (0, 25, 50, 75)) -> None:
    """Rows of test images: image | ground truth | the hard mask of each trained run."""
    test = open_test_split(args.data, args.size)
    images = torch.stack([test[i]["A"] for i in indices])
    truth = torch.stack([test[i]["B"] for i in indices]).unsqueeze(1).float()
    columns = [images * 0.5 + 0.5, truth]
    names = [name for name in args.runs if (args.out / name).is_dir()]
    for name in names:
        columns.append((load_model(args.out / name).translate(images) > 0.5).float())
    tiles = [column[row].expand(3, -1, -1) for row in range(len(indices)) for column in columns]
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(torch.stack(tiles), path, nrow=len(columns), padding=2, pad_value=1.0)
    print(f"{path}: image | ground truth | {' | '.join(names)}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.table:
        print(table(args.results))
        return
    if args.figure:
        figure(args, args.figure)
        return
    torch.set_num_threads(args.threads)
    args.results.mkdir(parents=True, exist_ok=True)
    share = foreground_share(args.data)
    for name in args.runs:
        run_dir, seconds = train(name, args)
        metrics = evaluate(run_dir, args.data, args.size)
        loss, disc = RUNS[name]
        result = {
            "run": name, "loss": loss, "disc": disc, "class_weights": class_weights(args.data) if name in BALANCED else None,
            "steps": args.steps, "batch_size": args.batch_size,
            "load_size": args.load_size, "crop_size": args.size, "ngf": args.ngf, "ndf": args.ndf if disc != "none" else None,
            "seed": args.seed, "threads": args.threads, "workers": args.workers,
            "train_seconds": round(seconds, 1), "seconds_per_step": round(seconds / args.steps, 3),
            "test": metrics, "test_foreground_share": share, "eval_mode": True,
            "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *(argv if argv is not None else sys.argv[1:])]),
            "torch": torch.__version__, "machine": f"{platform.machine()}, {torch.get_num_threads()} threads",
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        (args.results / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        print(f"{name}: {json.dumps(metrics)} ({seconds:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
