"""CUT (contrastive unpaired translation): PatchNCE, the projection network, the recipe end to end."""

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from gantk.cli import cli
from gantk.errors import GantkWarning, OptionError
from gantk.evaluate import evaluate
from gantk.generators.resnet import ResnetGenerator
from gantk.inference import TrainedModel
from gantk.systems.contrastive import PatchProjection, patch_ids, patch_nce
from gantk.train import TrainConfig, Trainer
from helpers import write_paired, write_stand_in_inception, write_unaligned

TINY = dict(recipe="cut", load_size=36, crop_size=32, batch_size=2, workers=0, max_steps=2, checkpoint_every=2,
            gen="resnet6", gen_opt={"ngf": 8}, disc_opt={"ndf": 8})


def nce_by_patch(query, key, images, temperature):
    """PatchNCE written patch by patch: -log of the softmax weight of a query's own key among its image's keys."""
    per_image = len(query) // images
    losses = []
    for i in range(len(query)):
        image = i // per_image
        others = [j for j in range(image * per_image, (image + 1) * per_image) if j != i]
        logits = [query[i] @ key[i]] + [query[i] @ key[j] for j in others]
        losses.append(-torch.log_softmax(torch.stack(logits) / temperature, 0)[0])
    return torch.stack(losses).mean()


def test_the_generators_loss_is_the_weighted_mean_over_layers_of_patch_nce_with_its_identity_term(tmp_path):
    data = write_unaligned(tmp_path / "data", 2, 2)
    options = {"nce_weight": 3.0, "temperature": 0.2, "patches": 8}
    config = TrainConfig(data=str(data), out=str(tmp_path / "run"), recipe_opt=options, **{**TINY, "max_steps": 1, "checkpoint_every": 1})
    system = TrainedModel.load(Trainer(config, progress=False).fit(), device="cpu").system.train()
    nets, batch = dict(system.networks), {"A": torch.rand(2, 3, 32, 32) * 2 - 1, "B": torch.rand(2, 3, 32, 32) * 2 - 1}
    outputs = system(batch, nets)
    torch.manual_seed(5)
    losses = system.phase_losses(system.phases[1], batch, outputs, nets)
    torch.manual_seed(5)  # the same draws, term by term: X's layers, then Y's
    terms = []
    for source, output in ((batch["A"], outputs["fake_B"]), (batch["B"], outputs["idt_B"])):
        keys, queries = nets["G"](source, encode=True), nets["G"](output, encode=True)
        ids = [torch.randperm(k.shape[2] * k.shape[3])[:8] for k in keys]  # one draw per layer, for keys and queries
        projected = [nets["F"](features, ids) for features in (keys, queries)]
        terms.append(torch.stack([nce_by_patch(q, k, 2, 0.2) for k, q in zip(*projected)]).mean())
    assert losses["G/nce"].item() == pytest.approx(3.0 * (terms[0] + terms[1]).item() / 2, rel=1e-5)
    system.zero_grad()
    losses["G/nce"].backward()
    assert all(p.grad is not None for p in nets["F"].parameters())


def test_patch_nce_is_the_cross_entropy_of_each_patch_against_the_other_patches_of_its_image():
    query, key = F.normalize(torch.randn(2 * 5, 8), dim=1), F.normalize(torch.randn(2 * 5, 8), dim=1)
    # the self-logit masked to -10 weighs e^(-10/0.07) in the softmax: nothing a float32 sum keeps
    assert patch_nce(query, key, 2, 0.07).item() == pytest.approx(nce_by_patch(query, key, 2, 0.07).item(), rel=1e-5)
    one_hot = torch.eye(4)  # each query on its own key, orthogonal to the others
    expected = -math.log(math.exp(1 / 0.5) / (math.exp(1 / 0.5) + 3 * math.exp(0) + math.exp(-10 / 0.5)))
    assert patch_nce(one_hot, one_hot, 1, 0.5).item() == pytest.approx(expected, rel=1e-6)


def test_keys_take_no_gradient():
    query, key = torch.randn(6, 4, requires_grad=True), torch.randn(6, 4, requires_grad=True)
    patch_nce(F.normalize(query, dim=1), F.normalize(key, dim=1), 2, 0.07).backward()
    assert query.grad is not None and key.grad is None


def test_patches_are_drawn_once_per_layer_for_every_image_and_projected_to_vectors_of_length_about_1():
    features = [torch.randn(2, 3, 8, 8), torch.randn(2, 16, 2, 2)]
    ids = patch_ids(features, 10)
    assert [len(i) for i in ids] == [10, 4] and len(set(ids[0].tolist())) == 10  # all 4 of the smaller layer
    projection = PatchProjection((3, 16))
    projected = projection(features, ids)
    assert [tuple(p.shape) for p in projected] == [(20, 256), (8, 256)]
    first_patch = features[0][1, :, ids[0][0] // 8, ids[0][0] % 8]  # image 1's first patch follows image 0's ten
    vector = projection.mlps[0](first_patch)
    assert torch.allclose(projected[0][10], vector / (vector.norm() + 1e-7), atol=1e-6)  # as CUT's Normalize: |v| + 1e-7


def test_the_resnet_generator_gives_cuts_encoder_layers():
    net = ResnetGenerator(3, 3, ngf=8, n_blocks=6).eval()
    x = torch.randn(1, 3, 32, 32)
    features = net(x, encode=True)
    assert [f.shape[1] for f in features] == list(net.nce_channels) == [3, 16, 32, 32, 32]
    expected = [x, net.model[:4](x), net.model[:7](x), net.model[:10](x), net.model[:14](x)]  # after down 1, down 2, blocks 1, 5
    assert all(torch.equal(f, e) for f, e in zip(features, expected))
    assert ResnetGenerator(3, 3, ngf=8, n_blocks=4).nce_channels == ()


@pytest.fixture(scope="module")
def cut_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cut")
    data = write_unaligned(root / "data", 6, 5)
    return Trainer(TrainConfig(data=str(data), out=str(root / "run"), log_every=1, **TINY), progress=False).fit(), data


def test_a_cut_run_trains_g_and_f_together_and_logs_patch_nce(cut_run):
    run, _ = cut_run
    header, *rows = (run / "metrics.csv").read_text().splitlines()
    assert header.split(",")[-3:] == ["D/lsgan", "G/lsgan", "G/nce"] and len(rows) == 2  # D's step first, as CUT's
    model = TrainedModel.load(run, device="cpu")
    assert set(model.system.networks) == {"G", "F", "D"} and [type(g).__name__ for g in model.generators] == ["ResnetGenerator"]
    assert (model.system.network_names("generator"), model.system.network_names("discriminator")) == (["G"], ["D"])  # F: neither
    from gantk.train.checkpoint import load_checkpoint

    optimizers = load_checkpoint(run)["optimizers"]
    assert set(optimizers) == {"G", "D"}
    g_parameters = sum(p.numel() for name in ("G", "F") for p in model.system.networks[name].parameters())
    assert sum(len(group["params"]) for group in optimizers["G"]["param_groups"]) == len(
        [*model.system.networks["G"].parameters(), *model.system.networks["F"].parameters()]) and g_parameters > 0


def test_a_cut_model_translates_and_is_scored_as_an_unpaired_one(cut_run, tmp_path):
    run, data = cut_run
    result = CliRunner().invoke(cli, ["translate", "--checkpoint", str(run), str(data / "trainA"), str(tmp_path / "out"), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "out").glob("*.png"))) == 6
    refused = CliRunner().invoke(cli, ["translate", "--checkpoint", str(run), str(data / "trainB"), str(tmp_path / "back"),
                                        "--direction", "BtoA", "--no-progress"])
    assert refused.exit_code != 0 and "a contrastive (cut) model maps its input to its output only" in refused.output
    scores = evaluate(run, data, split="train", inception_weights=write_stand_in_inception(tmp_path / "in.pt"), progress=False)
    assert scores["images"] == 6 and scores["real_images"] == 5 and "fid" in scores["metrics"]


def test_a_cut_run_resumes_where_it_stopped(cut_run, tmp_path):
    run, data = cut_run
    straight = Trainer(TrainConfig(data=str(data), out=str(tmp_path / "straight"), **{**TINY, "max_steps": 3, "checkpoint_every": 1}),
                       progress=False)
    straight.fit()
    first = Trainer(TrainConfig(data=str(data), out=str(tmp_path / "resumed"), **{**TINY, "max_steps": 2, "checkpoint_every": 1}),
                    progress=False)
    first.fit()
    resumed = Trainer.resume(tmp_path / "resumed", {"max_steps": 3}, progress=False)
    resumed.fit()
    for name, value in straight.system.state_dict().items():
        assert torch.equal(value, resumed.system.state_dict()[name]), name  # PatchNCE's patches come from the saved random state


def test_flip_equivariance_flips_half_the_steps_inputs_and_shows_their_outputs_flipped_back(tmp_path):
    data = write_unaligned(tmp_path / "data", 2, 2)
    config = TrainConfig(data=str(data), out=str(tmp_path / "run"), recipe_opt={"flip_equivariance": True},
                         **{**TINY, "max_steps": 1, "checkpoint_every": 1})
    system = TrainedModel.load(Trainer(config, progress=False).fit(), device="cpu").system.train()
    nets, batch = dict(system.networks), {"A": torch.rand(2, 3, 32, 32) * 2 - 1, "B": torch.rand(2, 3, 32, 32) * 2 - 1}
    seen = []
    for seed in range(8):
        torch.manual_seed(seed)
        outputs = system(batch, nets)
        flipped = bool(outputs["flipped"])
        seen.append(flipped)
        shown = batch["A"].flip(3) if flipped else batch["A"]
        with torch.no_grad():
            assert torch.allclose(outputs["fake_B"], nets["G"](shown), atol=1e-6)
        assert torch.equal(system.sample_images(batch, outputs)[1], outputs["fake_B"].detach().flip(3) if flipped else outputs["fake_B"])
    assert True in seen and False in seen
    assert not any(bool(system.eval()(batch, nets)["flipped"]) for _ in range(8))  # outside training, never


@pytest.mark.parametrize(("settings", "message"), [
    ({"gen": "unet", "gen_opt": {"ngf": 8, "num_downs": 5}}, "--gen unet with these options names none \\(nce_channels\\)"),
    ({"gen_opt": {"ngf": 8, "n_blocks": 4}}, "--gen resnet6 with these options names none \\(nce_channels\\): use resnet9 or "
                                             "resnet6, with n_blocks of 5 or more"),
    ({"disc": "none", "loss": "lsgan"}, "contrastive translation trains its generator against a discriminator"),
    ({"conditional": True}, "drop --conditional"),
    ({"loss": "lsgan+l1"}, "l1 needs a target for each output or a generator each way"),
    ({"loss": "lsgan+cycle"}, "cycle needs a target for each output or a generator each way"),
    ({"recipe_opt": {"temperature": 0.0}}, "--recipe-opt temperature=0.0 is not valid: a number above 0"),
    ({"recipe_opt": {"patches": 1}}, "--recipe-opt patches=1 is not valid: a whole number of at least 2"),
    ({"recipe_opt": {"nce_weight": -1.0}}, "--recipe-opt nce_weight=-1.0 is not valid: a number of at least 0"),
])
def test_what_cut_cannot_train_is_refused(tmp_path, settings, message):
    data = write_unaligned(tmp_path / "data", 2, 2)
    with pytest.raises(OptionError, match=message):
        Trainer(TrainConfig(data=str(data), out=str(tmp_path / "run"), **{**TINY, **settings}), progress=False).fit()


def test_cut_needs_one_channel_count_on_both_sides(tmp_path):
    data = write_unaligned(tmp_path / "data", 2, 2, channels_a=1)
    with pytest.raises(OptionError, match="PatchNCE runs G's encoder on its outputs, so A and B need one channel count, and the "
                                          "data has 1 and 3"):
        Trainer(TrainConfig(data=str(data), out=str(tmp_path / "run"), **TINY), progress=False).fit()


def test_cut_trains_on_paired_data_too_either_way(tmp_path):
    run = Trainer(TrainConfig(data=str(write_paired(tmp_path / "pairs", count=2)), out=str(tmp_path / "run"), direction="BtoA",
                              **{**TINY, "max_steps": 1, "checkpoint_every": 1}), progress=False).fit()
    model = TrainedModel.load(run, device="cpu")
    assert model.config["direction"] == "BtoA" and model.translate(torch.zeros(1, 3, 32, 32)).shape == (1, 3, 32, 32)
    with pytest.raises(OptionError, match="this model maps the data's B images to A\\); for the reverse mapping, train another"):
        model.translate(torch.zeros(1, 3, 32, 32), direction="BtoA")
    from gantk.commands_eval import result_table

    result = evaluate(run, tmp_path / "pairs", split="train", inception_weights=write_stand_in_inception(tmp_path / "in.pt"),
                      progress=False)
    assert result["data_sides"] == "B to A" and "direction: AtoB (the data's B to A)" in result_table(result)


def test_a_pool_size_is_warned_of_as_cut_keeps_no_pool(tmp_path):
    data = write_unaligned(tmp_path / "data", 2, 2)
    config = TrainConfig(data=str(data), out=str(tmp_path / "run"), pool_size=10, **{**TINY, "max_steps": 1, "checkpoint_every": 1})
    with pytest.warns(GantkWarning, match="--pool-size 10 has no effect here"):
        run = Trainer(config, progress=False).fit()
    assert TrainedModel.load(run, device="cpu").config["pool_size"] == 10  # as given; the recipe's is 0


def test_a_run_fed_its_own_config_toml_is_not_warned_of_the_pool_size_it_records(tmp_path):
    data = write_unaligned(tmp_path / "data", 2, 2)
    run = Trainer(TrainConfig(data=str(data), out=str(tmp_path / "run"), **{**TINY, "max_steps": 1, "checkpoint_every": 1}),
                  progress=False).fit()
    args = ["train", "--config", str(run / "config.toml"), "--out", str(tmp_path / "again"), "--no-progress"]
    with warnings.catch_warnings():
        warnings.filterwarnings("error", ".*pool", GantkWarning)  # it records the recipe's pool size, 0
        result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output


def test_a_and_b_go_through_g_in_one_batch_as_cuts_do(tmp_path):
    data = write_unaligned(tmp_path / "data", 2, 2)
    config = TrainConfig(data=str(data), out=str(tmp_path / "run"), **{**TINY, "max_steps": 1, "checkpoint_every": 1})
    system = TrainedModel.load(Trainer(config, progress=False).fit(), device="cpu").system.train()
    nets, batch = dict(system.networks), {"A": torch.rand(2, 3, 32, 32) * 2 - 1, "B": torch.rand(2, 3, 32, 32) * 2 - 1}
    seen = []
    hook = nets["G"].register_forward_hook(lambda module, args, output: seen.append(args[0]))
    outputs = system(batch, nets)
    hook.remove()
    assert len(seen) == 1 and torch.equal(seen[0], torch.cat([batch["A"], batch["B"]]))
    with torch.no_grad():  # instance norm: each image's output is its own
        assert torch.allclose(outputs["fake_B"], nets["G"](batch["A"]), atol=1e-5)
        assert torch.allclose(outputs["idt_B"], nets["G"](batch["B"]), atol=1e-5)
