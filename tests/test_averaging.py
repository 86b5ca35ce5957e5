"""--ema-decay: an exponential moving average of the generators' weights, kept in checkpoints and run by translation."""

import json
from types import SimpleNamespace

import pytest
import torch
from click.testing import CliRunner

from gantk.cli import cli
from gantk.errors import OptionError
from gantk.inference import TrainedModel
from gantk.plugins import default_components
from gantk.systems.base import Phase
from gantk.testing import SystemConformance
from gantk.train import TrainConfig, Trainer
from gantk.train.checkpoint import load_checkpoint, system_config, system_from_config
from gantk.train.resolve import resolve_config
from helpers import train_interrupted_then_resumed, write_paired, write_unaligned

TINY = dict(load_size=36, crop_size=32, batch_size=2, workers=0, log_every=1, sample_every=100, checkpoint_every=2,
            gen_opt={"ngf": 8}, disc_opt={"ndf": 8})


def weights(module):
    return {key: value.clone() for key, value in module.state_dict().items()}


def test_the_average_copies_the_first_weights_then_remembers_more_up_to_the_decay(tmp_path):
    seen = []
    config = TrainConfig(data=str(write_paired(tmp_path / "pairs")), out=str(tmp_path / "run"), max_steps=4, ema_decay=0.15,
                         **TINY)
    trainer = Trainer(config, progress=False, callbacks=[lambda trainer, step, logged: seen.append(weights(trainer.system.networks["G"]))])
    trainer.fit()
    expected = dict(seen[0])  # the first update copies the weights; then n / (n + 10) of the past, at most the decay
    for n, trained in enumerate(seen[1:], 1):
        decay = min(n / (n + 10), 0.15)
        expected = {key: decay * value + (1 - decay) * trained[key] if value.is_floating_point() else trained[key]
                    for key, value in expected.items()}
    state = load_checkpoint(tmp_path / "run")["system_state"]
    assert state["average_updates"].tolist() == [4]
    for key, value in expected.items():
        kept = state[f"averaged.G.{key}"]
        if "running_" in key or "num_batches" in key:  # batch-norm statistics: the newest
            assert torch.equal(kept, seen[-1][key]), key
        else:
            torch.testing.assert_close(kept, value, rtol=1e-5, atol=1e-7, msg=key)
    assert any(not torch.equal(state[f"averaged.G.{key}"], seen[-1][key]) for key in expected if "weight" in key)


def test_translation_runs_the_average_and_generator_steps_alone_update_it(tmp_path):
    config = TrainConfig(data=str(write_paired(tmp_path / "pairs")), out=str(tmp_path / "run"), max_steps=4, n_critic=2,
                         ema_decay=0.9, **TINY)
    Trainer(config, progress=False).fit()
    model = TrainedModel.load(tmp_path / "run", eval_mode=True)
    assert model.system.average_updates.tolist() == [2]  # G trains every second step
    inputs = model.inputs(torch.rand(2, 3, 32, 32) * 2 - 1)
    with torch.no_grad():
        torch.testing.assert_close(model.translate(inputs), model.system.averaged["G"](inputs))
        assert not torch.allclose(model.translate(inputs), model.system.networks["G"](inputs))


def test_cyclegan_averages_both_generators_and_translates_each_way_with_them(tmp_path):
    config = TrainConfig(recipe="cyclegan", data=str(write_unaligned(tmp_path / "data")), out=str(tmp_path / "run"), max_steps=2,
                         gen="resnet6", loss="lsgan+cycle", ema_decay=0.5, **TINY)
    Trainer(config, progress=False).fit()
    model = TrainedModel.load(tmp_path / "run", eval_mode=True)
    assert set(model.system.averaged) == {"G_AB", "G_BA"}
    inputs = model.inputs(torch.rand(1, 3, 32, 32) * 2 - 1, "BtoA")
    with torch.no_grad():
        torch.testing.assert_close(model.translate(inputs, "BtoA"), model.system.averaged["G_BA"](inputs))


def test_an_interrupted_run_resumes_its_average_exactly(tmp_path):
    data = write_paired(tmp_path / "pairs")
    straight = TrainConfig(data=str(data), out=str(tmp_path / "straight"), max_steps=4, ema_decay=0.5, **TINY)
    Trainer(straight, progress=False).fit()
    resumed = TrainConfig(data=str(data), out=str(tmp_path / "resumed"), max_steps=4, ema_decay=0.5, **TINY)
    train_interrupted_then_resumed(resumed, stop_at=2)
    one, other = (load_checkpoint(tmp_path / name)["system_state"] for name in ("straight", "resumed"))
    for key in (key for key in one if key.startswith("averaged.") or key == "average_updates"):
        assert torch.equal(one[key], other[key]), key


def test_a_run_started_from_another_runs_weights_averages_from_them(tmp_path):
    data = write_paired(tmp_path / "pairs")
    Trainer(TrainConfig(data=str(data), out=str(tmp_path / "source"), max_steps=2, **TINY), progress=False).fit()
    tuned = TrainConfig(data=str(data), out=str(tmp_path / "tuned"), max_steps=3, n_critic=3, ema_decay=0.9,
                        init_from=str(tmp_path / "source"), **{**TINY, "checkpoint_every": 1, "keep_checkpoints": 5})
    Trainer(tuned, progress=False).fit()
    state = load_checkpoint(tmp_path / "tuned" / "checkpoint-00000001.pt")["system_state"]  # before G's first step
    assert state["average_updates"].tolist() == [0]
    source = load_checkpoint(tmp_path / "source")["system_state"]
    for key in (key for key in source if key.startswith("networks.G.")):
        assert torch.equal(state["averaged.G." + key.removeprefix("networks.G.")], source[key]), key


def test_generators_trained_in_phases_of_their_own_count_their_own_updates(tmp_path):
    config = TrainConfig(recipe="cyclegan", gen="resnet6", loss="lsgan+cycle", ema_decay=0.5, **TINY)
    data = SimpleNamespace(channels={"A": 3, "B": 3}, num_classes=None, format="unaligned")
    system = system_from_config(system_config(resolve_config(config, default_components()), data, default_components()))
    with torch.no_grad():
        for weight in system.networks["G_BA"].parameters():
            weight.add_(1.0)
    system.update_averages(Phase("G_AB only", ("G_AB",)))
    system.update_averages(Phase("G_BA only", ("G_BA",)))
    assert system.average_updates.tolist() == [1, 1]
    for name in ("G_AB", "G_BA"):  # each one's first update copies its weights
        for kept, weight in zip(system.averaged[name].parameters(), system.networks[name].parameters()):
            assert torch.equal(kept, weight), name


def test_the_decay_is_a_setting_of_the_model(tmp_path):
    pairs = write_paired(tmp_path / "pairs")
    flags = ["--data", str(pairs), "--load-size", "36", "--crop-size", "32", "--batch-size", "2", "--workers", "0",
             "--gen-opt", "ngf=8", "--disc-opt", "ndf=8", "--no-progress"]
    for bad in ("1", "-0.1", "nan"):
        refused = CliRunner().invoke(cli, ["train", "--out", str(tmp_path / "bad"), "--ema-decay", bad, "--max-steps", "1", *flags])
        assert refused.exit_code != 0 and "--ema-decay is the weight of the average's past at each generator step, in [0, 1)" \
            in refused.output, refused.output
    assert CliRunner().invoke(cli, ["train", "--out", str(tmp_path / "run"), "--ema-decay", "0.9", "--max-steps", "2", *flags]).exit_code == 0
    changed = CliRunner().invoke(cli, ["train", "--resume", str(tmp_path / "run"), "--max-steps", "3", "--ema-decay", "0.5"])
    assert changed.exit_code != 0 and "cannot change --ema-decay (the run has --ema-decay 0.9)" in changed.output
    with pytest.raises(OptionError, match="--ema-decay is the weight"):
        TrainConfig(ema_decay=1.5).validate()


class TestPix2pixWithAverages(SystemConformance):
    name = "pix2pix"
    settings = {"ema_decay": 0.5}


class TestCycleGANWithAverages(SystemConformance):
    name = "cyclegan"
    directions = ("AtoB", "BtoA")
    settings = {"loss": "lsgan+cycle@10", "ema_decay": 0.5}


def test_translate_eval_and_export_run_the_last_weights_when_asked(tmp_path):
    pairs = write_paired(tmp_path / "pairs")
    config = TrainConfig(data=str(pairs), out=str(tmp_path / "run"), max_steps=3, ema_decay=0.9, **TINY)
    Trainer(config, progress=False).fit()
    last = TrainedModel.load(tmp_path / "run", eval_mode=True, average=False)
    assert last.average_decay is None and TrainedModel.load(tmp_path / "run").average_decay == 0.9
    inputs = last.inputs(torch.rand(1, 3, 32, 32) * 2 - 1)
    with torch.no_grad():
        torch.testing.assert_close(last.translate(inputs), last.system.networks["G"](inputs))
    flags = ["--checkpoint", str(tmp_path / "run"), "--eval-mode"]
    scored = {}
    for weights in ([], ["--last-weights"]):
        result = CliRunner().invoke(cli, ["eval", *flags, "--data", str(pairs), "--json", str(tmp_path / f"eval{len(weights)}.json"),
                                          "--no-progress", *weights])
        assert result.exit_code == 0, result.output
        scored[len(weights)] = json.loads((tmp_path / f"eval{len(weights)}.json").read_text())
    assert scored[0]["model"]["ema_decay"] == 0.9 and scored[1]["model"]["ema_decay"] is None
    printed = CliRunner().invoke(cli, ["eval", *flags, "--data", str(pairs), "--no-progress"]).output
    assert "weights: the average kept with --ema-decay 0.9" in printed
    assert scored[0]["metrics"]["l1"] != scored[1]["metrics"]["l1"]
    written = {}
    for weights in ([], ["--last-weights"]):
        out = tmp_path / f"out{len(weights)}"
        assert CliRunner().invoke(cli, ["translate", *flags, str(pairs / "A" / "001.png"), str(out), *weights]).exit_code == 0
        written[len(weights)] = [path.read_bytes() for path in sorted(out.iterdir())]
    assert written[0] != written[1]


def test_an_export_says_which_weights_it_holds(tmp_path):
    onnx = pytest.importorskip("onnx", reason="the onnx extra is not installed: pip install -e '.[onnx]'")
    config = TrainConfig(data=str(write_paired(tmp_path / "pairs")), out=str(tmp_path / "run"), max_steps=2, ema_decay=0.9, **TINY)
    Trainer(config, progress=False).fit()
    for weights, expected in (([], "an exponential moving average of the weights (decay 0.9)"), (["--last-weights"], "the last weights")):
        out = tmp_path / f"model{len(weights)}.onnx"
        exported = CliRunner().invoke(cli, ["export", "--checkpoint", str(tmp_path / "run"), str(out), "--eval-mode", *weights])
        assert exported.exit_code == 0 and "checked with onnxruntime: outputs within" in exported.output, exported.output
        assert {entry.key: entry.value for entry in onnx.load(str(out)).metadata_props}["gantk.weights"] == expected
