"""LPIPS in gantk eval: the lpips package's network with AlexNet's weights read from torchvision's file."""

import json
import os
import sys
import warnings

import pytest
import torch
import torchvision
from click.testing import CliRunner

from gantk.errors import GantkWarning, OptionError
from gantk.evaluate import evaluate, open_eval_split
from gantk.inference import TrainedModel
from gantk.metrics import LpipsScores, lpips_distance
from gantk.metrics.lpips_distance import WEIGHTS_FILE, lpips_network, weights_path
from gantk.train import TrainConfig, Trainer
from gantk.train.logs import read_metrics
from helpers import write_paired, write_segmentation, write_unaligned

lpips = pytest.importorskip("lpips", reason="the lpips package (gantk's test and lpips extras) is not installed")
TINY = dict(load_size=36, crop_size=32, batch_size=2, workers=0, max_steps=2, checkpoint_every=2, gen_opt={"ngf": 8}, disc_opt={"ndf": 8})


def reference_lpips() -> torch.nn.Module:
    """The lpips package's LPIPS, its v0.1 calibration loaded and its AlexNet initialised at random (seeded)."""
    torch.manual_seed(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False).eval()


@pytest.fixture(scope="module")
def alexnet_file(tmp_path_factory):
    """A torchvision AlexNet state dict holding the reference's (random) convolution weights, as torchvision's file."""
    state = torchvision.models.alexnet().state_dict()
    for key, value in reference_lpips().net.state_dict().items():  # slice2.3.weight is features.3.weight
        state[f"features.{key.split('.', 1)[1]}"] = value
    path = tmp_path_factory.mktemp("alexnet") / WEIGHTS_FILE
    torch.save(state, path)
    return path


def split_pairs(root):
    write_paired(root / "train", count=4, size=40)
    write_paired(root / "test", count=3, size=40)
    return root


def split_masks(root):
    for split in ("train", "test"):
        write_segmentation(root / split, count=2)
    return root


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("pix2pix")
    data = write_paired(root / "data", count=5, size=40)
    return Trainer(TrainConfig(data=str(data), out=str(root / "run"), **TINY), progress=False).fit(), data


def test_distances_are_the_lpips_packages_with_the_files_alexnet(alexnet_file):
    scores = LpipsScores(lpips_network(alexnet_file, torch.device("cpu")))
    pred, target = torch.rand(3, 3, 40, 48) * 2 - 1, torch.rand(3, 3, 40, 48) * 2 - 1
    with torch.no_grad():
        expected = reference_lpips()(pred, target).flatten()
    assert torch.allclose(scores.distances(pred, target), expected, atol=1e-6)
    assert scores.distances(pred, pred).abs().max() < 1e-6
    grey = pred[:, :1]  # repeated to three channels
    assert torch.allclose(scores.distances(grey, target[:, :1]), scores.distances(grey.expand(-1, 3, -1, -1), target[:, :1].expand(-1, 3, -1, -1)))


def test_another_file_than_torchvisions_is_warned_of_and_the_callers_random_draws_stay(alexnet_file, monkeypatch):
    monkeypatch.setattr(lpips_distance, "_loaded", {})  # built here, not taken from an earlier test
    torch.manual_seed(0)
    expected = torch.rand(1)
    torch.manual_seed(0)
    loaded = lpips_network(alexnet_file, torch.device("cpu"))
    assert torch.equal(torch.rand(1), expected) and not loaded.is_reference
    with pytest.warns(GantkWarning, match=f"{alexnet_file} is not torchvision's alexnet-owt-7be5be79.pth \\(its SHA-256 is "):
        loaded.warn_unless_reference()


def test_a_file_is_built_once_per_device_until_it_changes(alexnet_file, tmp_path):
    copy = tmp_path / WEIGHTS_FILE
    copy.write_bytes(alexnet_file.read_bytes())
    first = lpips_network(copy, torch.device("cpu"))
    assert lpips_network(copy, torch.device("cpu")) is first
    state = torch.load(copy, weights_only=True)
    state["features.0.weight"] += 1
    torch.save(state, copy)
    os.utime(copy, ns=(copy.stat().st_atime_ns, copy.stat().st_mtime_ns + 10**9))  # however coarse the file system's clock
    second = lpips_network(copy, torch.device("cpu"))
    assert second.sha256 != first.sha256
    assert torch.equal(second.network.net.slice1[0].weight, first.network.net.slice1[0].weight + 1)


def test_images_it_cannot_compare_leave_it_unavailable(alexnet_file):
    scores = LpipsScores(lpips_network(alexnet_file, torch.device("cpu")))
    scores.update(torch.zeros(2, 3, 32, 32), torch.ones(2, 3, 32, 32))
    assert scores.compute() > 0
    scores.update(torch.zeros(1, 3, 16, 32), torch.zeros(1, 3, 16, 32))
    assert scores.compute() is None
    assert scores.unavailable == "LPIPS compares images of at least 31 px a side, and outputs of 16x32 px were scored."
    four = LpipsScores(lpips_network(alexnet_file, torch.device("cpu")))
    four.update(torch.zeros(1, 4, 32, 32), torch.zeros(1, 4, 32, 32))
    assert four.compute() is None and four.unavailable == "LPIPS compares RGB or grey images, and the outputs have 4 channels."


def test_eval_scores_the_mean_lpips_of_the_outputs(image_run, alexnet_file):
    run, data = image_run
    result = evaluate(run, data, lpips_weights=alexnet_file, eval_mode=True, batch_size=2, progress=False)
    model = TrainedModel.load(run, device="cpu", eval_mode=True)
    dataset = open_eval_split(data, model.config, "test")
    scores = LpipsScores(lpips_network(alexnet_file, torch.device("cpu")))
    distances = [scores.distances(model.translate(model.inputs(item["A"][None])), item["B"][None]) for item in dataset]
    assert result["metrics"]["lpips"] == pytest.approx(torch.cat(distances).mean().item(), rel=1e-5)
    from gantk.metrics.lpips_distance import sha256_of

    assert result["lpips"] == {"weights": str(alexnet_file), "sha256": sha256_of(alexnet_file), "reference": False, "network": "alex",
                               "version": "0.1"} and "lpips" not in result["unavailable"]


def test_torchvisions_file_in_torchs_cache_is_found(image_run, alexnet_file, tmp_path, monkeypatch):
    run, data = image_run
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert weights_path() == tmp_path / "hub" / "checkpoints" / WEIGHTS_FILE
    missing = evaluate(run, data, progress=False)["unavailable"]["lpips"]
    assert missing.startswith(f"no AlexNet weights at {weights_path()}: fetch AlexNet's ImageNet weights once (233 MB) with python -c")
    assert "alexnet(weights='IMAGENET1K_V1')" in missing and "install" not in missing
    weights_path().parent.mkdir(parents=True)
    weights_path().write_bytes(alexnet_file.read_bytes())
    assert "lpips" in evaluate(run, data, progress=False)["metrics"]


def test_what_is_missing_is_said(image_run, alexnet_file, tmp_path, monkeypatch):
    run, data = image_run
    with pytest.raises(OptionError, match=f"--lpips-weights names {tmp_path / 'nosuch.pth'}, which does not exist or is not a file"):
        evaluate(run, data, lpips_weights=tmp_path / "nosuch.pth", progress=False)
    (tmp_path / "other.pth").write_bytes(b"not torch")
    with pytest.raises(OptionError, match=r"--lpips-weights .*other.pth cannot be read as a weights file"):
        evaluate(run, data, lpips_weights=tmp_path / "other.pth", progress=False)
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, tmp_path / "vgg.pth")
    with pytest.raises(OptionError, match=r"does not hold AlexNet's weights: features.0.weight should have shape \(64, 3, 11, 11\)"):
        evaluate(run, data, lpips_weights=tmp_path / "vgg.pth", progress=False)
    monkeypatch.setitem(sys.modules, "lpips", None)  # as if not installed
    reason = evaluate(run, data, lpips_weights=alexnet_file, progress=False)["unavailable"]["lpips"]
    assert reason == "the lpips package is not installed: install the lpips package (pip install 'gantk[lpips]')."


def test_unpaired_data_has_no_lpips_and_refuses_its_weights(tmp_path, alexnet_file):
    data = write_unaligned(tmp_path / "data", 4, 4)
    run = Trainer(TrainConfig(recipe="cyclegan", data=str(data), out=str(tmp_path / "run"), gen="resnet6", **{**TINY, "max_steps": 1,
                                                                                                             "checkpoint_every": 1}),
                  progress=False).fit()
    from helpers import write_stand_in_inception

    inception = write_stand_in_inception(tmp_path / "in.pt")
    result = evaluate(run, data, split="train", inception_weights=inception, progress=False)
    assert result["unavailable"]["lpips"] == "unpaired data: no target for each output." and "lpips" not in result
    with pytest.raises(OptionError, match=f"--lpips-weights\\) is for LPIPS, which compares each output image with its target, "
                                          f"and the unpaired data {data} has none: drop it"):
        evaluate(run, data, split="train", inception_weights=inception, lpips_weights=alexnet_file, progress=False)


def test_the_eval_command_takes_the_weights(image_run, alexnet_file, tmp_path):
    from gantk.cli import GantkGroup
    from gantk.commands_eval import eval_command

    run, data = image_run
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(GantkGroup(commands={"eval": eval_command}), [
        "eval", "--checkpoint", str(run), "--data", str(data), "--lpips-weights", str(alexnet_file), "--json", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert any(line.split()[:1] == ["lpips"] and "unavailable" not in line for line in result.output.splitlines())
    assert json.loads(out.read_text())["metrics"]["lpips"] > 0


def test_a_study_given_lpips_scores_its_cells_again_once_and_tables_it(tmp_path, alexnet_file, monkeypatch):
    from gantk.cli import GantkGroup
    from gantk.commands_eval import ablate_command
    from gantk.metrics import fid as fid_module

    monkeypatch.delenv("GANTK_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr(fid_module, "fid_helper_weights", lambda: None)
    grid = tmp_path / "grid.toml"
    grid.write_text('name = "tiny"\ndescription = "two"\n[common]\ngen_opt = { ngf = 8 }\ndisc_opt = { ndf = 8 }\n'
                    '[[cells]]\nname = "L1"\nloss = "l1"\ndisc = "none"\n[[cells]]\nname = "L1+cGAN"\nloss = "bce+l1"\n')
    args = ["ablate", "--grid", str(grid), "--data", str(write_paired(tmp_path / "pairs", count=4, size=40)), "--out",
            str(tmp_path / "study"), "--max-steps", "2", "--batch-size", "2", "--load-size", "36", "--crop-size", "32", "--no-progress"]

    def invoke(*more):
        result = CliRunner().invoke(GantkGroup(commands={"ablate": ablate_command}), [*args, *more])
        assert result.exit_code == 0, result.output
        table = (tmp_path / "study" / "results.md").read_text()
        return result.output, next(line for line in table.splitlines() if line.startswith("| cell")), table

    _, header, table = invoke()
    assert "lpips" not in header and "- unavailable lpips: no AlexNet weights at" in table
    output, header, _ = invoke("--lpips-weights", alexnet_file)
    assert output.count("evaluating again") == 2 and header.endswith("| ssim ↑ | lpips ↓ |")
    assert invoke("--lpips-weights", alexnet_file)[0].count("finished earlier, skipped") == 2
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, tmp_path / "vgg.pth")
    (tmp_path / "study2").mkdir()
    wrong = CliRunner().invoke(GantkGroup(commands={"ablate": ablate_command}),
                               [str(tmp_path / "study2") if a == str(tmp_path / "study") else a for a in args]
                               + ["--lpips-weights", str(tmp_path / "vgg.pth")])
    assert wrong.exit_code != 0 and "does not hold AlexNet's weights" in wrong.output
    assert "training into" not in wrong.output and not any((tmp_path / "study2").iterdir())  # refused before any cell trained


def test_a_mask_study_refuses_lpips_weights(tmp_path, alexnet_file):
    from gantk.ablate import AblationError, run_ablation
    from gantk.ablate.grids import load_grid


    grid = tmp_path / "grid.toml"
    grid.write_text('name = "masks"\ndescription = "one"\n[common]\nrecipe = "seg"\n[[cells]]\nname = "lovasz"\nloss = "hinge+lovasz"\n')
    with pytest.raises(AblationError, match="--lpips-weights is for LPIPS, which compares each output image with its target, and no "
                                            "cell of this study has one"):
        run_ablation(load_grid(str(grid)), write_segmentation(tmp_path / "data", count=2), tmp_path / "study",
                     common={**TINY, "gen_opt": {"ngf": 8, "num_downs": 5}}, eval_options={"lpips_weights": str(alexnet_file)},
                     progress=False)
    assert not (tmp_path / "study" / "lovasz").exists()


def lpips_run(tmp_path, weights, max_steps, callbacks=()):
    """A run on pairs in ``tmp_path / "data"``, validated every 2 steps with LPIPS by ``weights``, keeping the model it
    rates best."""
    config = TrainConfig(data=str(split_pairs(tmp_path / "data")), out=str(tmp_path / "run"), **{**TINY, "max_steps": max_steps},
                         val_every=2, val_lpips=True, lpips_weights=str(weights), keep_best="lpips")
    with pytest.warns(GantkWarning, match="is not torchvision's"):
        return Trainer(config, progress=False, callbacks=list(callbacks)).fit()


def test_validation_scores_lpips_as_eval_does_and_keeps_the_best_model_by_it(tmp_path, alexnet_file):
    run = lpips_run(tmp_path, alexnet_file, 4)
    rows = read_metrics(run / "validation.csv")
    assert [row["step"] for row in rows] == [2, 4] and all(row["val/lpips"] > 0 for row in rows)
    result = evaluate(run, tmp_path / "data", lpips_weights=alexnet_file, eval_mode=True, batch_size=2, progress=False)
    assert rows[-1]["val/lpips"] == pytest.approx(result["metrics"]["lpips"], rel=1e-5)
    best = torch.load(run / "best.pt", weights_only=True)
    assert best["best"] == {"score": "lpips", "value": min(row["val/lpips"] for row in rows), "split": "test",
                            "lpips_sha256": lpips_distance.sha256_of(alexnet_file)}
    assert best["step"] == min(rows, key=lambda row: row["val/lpips"])["step"]


def test_the_train_command_takes_validation_lpips(tmp_path, alexnet_file):
    from gantk.cli import cli
    from helpers import TINY_FLAGS

    result = CliRunner().invoke(cli, ["train", "--data", str(split_pairs(tmp_path / "data")), "--out", str(tmp_path / "run"),
                                      *TINY_FLAGS, "--max-steps", "2", "--val-every", "2", "--val-lpips", "--lpips-weights",
                                      str(alexnet_file), "--keep-best", "lpips"])
    assert result.exit_code == 0, result.output
    assert read_metrics(tmp_path / "run" / "validation.csv")[0]["val/lpips"] > 0 and (tmp_path / "run" / "best.pt").is_file()


def test_a_resume_scoring_with_another_file_replaces_the_best_model(tmp_path, alexnet_file):
    run = lpips_run(tmp_path, alexnet_file, 2)
    other = tmp_path / "other.pth"
    state = torch.load(alexnet_file, weights_only=True)
    state["features.0.weight"] *= 2
    torch.save(state, other)
    with pytest.warns(GantkWarning) as warned:
        Trainer.resume(run, {"max_steps": 4, "lpips_weights": str(other)}, progress=False).fit()
    messages = [str(warning.message) for warning in warned]
    assert any(f"holds the model of the best LPIPS scored with another AlexNet weights file than {other}: it is replaced at "
               "the next validation" in message for message in messages)
    assert any(f"the run scored validation LPIPS with {alexnet_file} and goes on with {other}: the LPIPS of validation.csv "
               "after step 2 may be of another network" in message for message in messages)
    assert torch.load(run / "best.pt", weights_only=True)["best"]["lpips_sha256"] == lpips_distance.sha256_of(other)


@pytest.mark.parametrize("settings, message", [
    (dict(val_every=2, keep_best="lpips"), "--keep-best lpips keeps the model of the best validation LPIPS, which validation "
                                            "scores with --val-lpips: add it."),
    (dict(val_every=2, lpips_weights="a.pth"), "--lpips-weights .*a.pth names AlexNet's weights for validation LPIPS, which is off"),
    (dict(val_lpips=True), "--val-lpips adds LPIPS to validation, and there is no validation: add --val-every"),
    (dict(val_every=2, val_lpips=True, load_size=30, crop_size=30), "--val-lpips: LPIPS compares images of at least 31 px a side, "
                                                                    "and validation scores them at --crop-size 30"),
    (dict(val_every=2, val_lpips=True), "--val-lpips cannot score here: no AlexNet weights at .*: fetch AlexNet's ImageNet weights "
                                        "once .* Or drop --val-lpips \\(and --keep-best lpips\\)."),
])
def test_validation_lpips_is_refused_before_training_where_it_cannot_score(tmp_path, settings, message):
    data = split_pairs(tmp_path / "data")
    with pytest.raises(OptionError, match=message):
        Trainer(TrainConfig(data=str(data), out=str(tmp_path / "run"), **{**TINY, **settings}), progress=False).fit()
    assert not (tmp_path / "run" / "metrics.csv").exists()


def test_validation_lpips_is_refused_for_masks(tmp_path, alexnet_file):
    config = TrainConfig(recipe="seg", data=str(split_masks(tmp_path / "data")), out=str(tmp_path / "run"),
                         **{**TINY, "gen_opt": {"ngf": 8, "num_downs": 5}}, val_every=2, val_lpips=True, lpips_weights=str(alexnet_file))
    with pytest.raises(OptionError, match="--val-lpips compares each output image with its target image, and this run's targets "
                                          "are masks: drop it."):
        Trainer(config, progress=False).fit()


def test_a_resume_may_stop_scoring_lpips(tmp_path, alexnet_file):
    run = lpips_run(tmp_path, alexnet_file, 2)
    trainer = Trainer.resume(run, {"max_steps": 4, "val_lpips": False, "keep_best": "l1"}, progress=False)
    assert trainer.config.lpips_weights is None
    trainer.fit()
    assert [row.get("val/lpips") for row in read_metrics(run / "validation.csv")] == [pytest.approx(
        read_metrics(run / "validation.csv")[0]["val/lpips"]), None]


def test_validation_keeps_the_network_it_read_when_the_run_began(tmp_path, alexnet_file):
    weights = tmp_path / WEIGHTS_FILE
    weights.write_bytes(alexnet_file.read_bytes())

    def remove_the_file(trainer, step, logged):
        weights.unlink(missing_ok=True)

    run = lpips_run(tmp_path, weights, 4, [remove_the_file])
    assert [row["step"] for row in read_metrics(run / "validation.csv")] == [2, 4]
    assert torch.load(run / "best.pt", weights_only=True)["best"]["lpips_sha256"] == lpips_distance.sha256_of(alexnet_file)
