"""The SPADE generator: its structure, its modulation by the input map, and its test-phase behaviour."""

from __future__ import annotations

import importlib.util

import pytest
import torch

import gantk
from gantk.errors import OptionError
from gantk.generators.spade import SpadeBlock, SpadeGenerator, SpadeNorm
from gantk.inference import TrainedModel
from gantk.systems import targets
from gantk.train import TrainConfig, Trainer
from gantk.translate import translate
from helpers import write_segmentation


def test_the_blocks_follow_the_papers_normal_generator():
    g = SpadeGenerator(4, 3, ngf=2, num_up=5)
    blocks = [block for block in g.modules() if isinstance(block, SpadeBlock)]
    widths = [(block.conv_0.in_channels, block.conv_1.out_channels) for block in blocks]
    assert widths == [(32, 32)] * 3 + [(32, 16), (16, 8), (8, 4), (4, 2)]
    assert [block.learned_shortcut for block in blocks] == [False] * 3 + [True] * 4
    assert (g.size_multiple, g.min_input_size) == (32, 64) and SpadeGenerator(4, 3, ngf=2, num_up=6).size_multiple == 64
    spectral = [conv for block in blocks for conv in block.convolutions() if hasattr(conv, "parametrizations")]
    assert len(spectral) == 3 * 2 + 4 * 3
    assert not any(hasattr(module, "parametrizations") for module in SpadeGenerator(4, 3, ngf=2, spectral=False).modules())


def test_spade_norm_modulates_each_pixel_by_the_map_around_it():
    torch.manual_seed(0)
    norm = SpadeNorm(4, 2, hidden=8).eval()
    x = torch.randn(1, 4, 16, 16)
    left = torch.zeros(1, 2, 16, 16)
    left[:, 0] = 1
    right = left.clone()
    right[:, :, :, 12:] = torch.tensor([0.0, 1.0])[:, None, None]  # another class in the last four columns
    changed = (norm(x, left) - norm(x, right)).abs().amax(dim=(0, 1, 2))
    assert (changed[12:] > 0).all() and (changed[:10] == 0).all()  # two 3x3 convolutions see 2 columns further
    without_map = torch.nn.functional.batch_norm(x, None, None, training=True)
    for conv in (norm.gamma, norm.beta):
        torch.nn.init.zeros_(conv.weight), torch.nn.init.zeros_(conv.bias)
    torch.testing.assert_close(norm.train()(x, left), without_map)


def test_the_options_are_checked():
    for num_up in (4, 7, 5.0):
        with pytest.raises(OptionError, match=f"num_up={num_up!r} is not valid: it is the number of upsamplings, 5 .* or 6"):
            SpadeGenerator(3, 3, num_up=num_up)
    with pytest.raises(OptionError, match="hidden=0 is not valid: it is the channels each SPADE layer predicts"):
        SpadeGenerator(3, 3, hidden=0)
    with pytest.raises(OptionError, match="spectral='no' is not valid: true or false"):
        SpadeGenerator(3, 3, spectral="no")
    with pytest.raises(OptionError, match="norm"):
        SpadeGenerator(3, 3, norm="group")
    with pytest.raises(OptionError, match="multiples of 32, got 48x64"):
        SpadeGenerator(3, 3, ngf=2)(torch.zeros(2, 3, 64, 48))
    with pytest.raises(OptionError, match="at least 64 px.*: raise the crop size\\.$"):
        SpadeGenerator(3, 3, ngf=2)(torch.zeros(2, 3, 32, 32))
    with pytest.raises(OptionError, match="at least 128 px.*: raise the crop size or use num_up=5"):
        SpadeGenerator(3, 3, ngf=2, num_up=6)(torch.zeros(2, 3, 64, 64))


@pytest.fixture(scope="module")
def spade_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("spade")
    data = write_segmentation(root / "data", count=2, size=72, num_classes=3)
    config = TrainConfig(data=str(data), out=str(root / "run"), direction="BtoA", gen="spade", gen_opt={"ngf": 4},
                         disc_opt={"ndf": 8}, load_size=72, crop_size=64, batch_size=2, workers=0, max_steps=2)
    return Trainer(config, progress=False).fit(), data


def test_a_label_model_trains_and_translates_with_it(spade_run, tmp_path):
    run, data = spade_run
    model = TrainedModel.load(run, device="cpu")
    assert model.config["gen"] == "spade" and model.input_classes == 3
    written = translate(model, data / "masks", tmp_path / "out", progress=False)
    assert len(written) == 2


def test_the_test_phase_keeps_the_spectral_norms_trained_estimates(spade_run):
    model = TrainedModel.load(spade_run[0], device="cpu")
    assert model.system.training  # the paper's test phase: batch statistics
    norms = [module for module in model.system.modules() if hasattr(module, "n_power_iterations")]
    assert norms and not any(norm.training for norm in norms)  # no power iteration at test time
    vectors = {name: buffer.clone() for name, buffer in model.system.named_buffers() if name.endswith("_u")}
    assert vectors
    inputs = model.inputs(torch.randint(0, 3, (2, 64, 64)))
    first, second = model.translate(inputs), model.translate(inputs)
    assert torch.equal(first, second)
    assert all(torch.equal(buffer, vectors[name]) for name, buffer in model.system.named_buffers() if name in vectors)


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="the onnx extra is not installed")
def test_the_test_phase_exports(spade_run, tmp_path):
    from gantk.export import export_onnx

    import onnxruntime

    summary = export_onnx(spade_run[0], tmp_path / "spade.onnx")
    model = TrainedModel.load(spade_run[0], device="cpu")
    inputs = targets.encode_labels(torch.randint(0, 3, (2, 64, 128)), 3)
    session = onnxruntime.InferenceSession(str(summary.path), providers=["CPUExecutionProvider"])
    assert [item.name for item in session.get_inputs()] == ["label_maps"]
    ran = torch.from_numpy(session.run(None, {"label_maps": inputs.numpy()})[0])
    assert summary.difference is not None and torch.allclose(ran, model.translate(inputs), atol=1e-4)


def test_it_is_registered():
    entry = gantk.load_components(autoload=False).registry("generator").get("spade")
    assert entry.plugin == "gantk.generators" and entry.options()["num_up"] == 5


def test_the_paper_test_mode_stops_power_iteration_of_both_spectral_norms():
    from gantk.nn import paper_test_mode

    parametrized = torch.nn.utils.parametrizations.spectral_norm(torch.nn.Conv2d(2, 2, 3))
    hooked = torch.nn.utils.spectral_norm(torch.nn.Conv2d(2, 2, 3))
    net = paper_test_mode(torch.nn.Sequential(parametrized, hooked, torch.nn.BatchNorm2d(2), torch.nn.Dropout(0.5)))
    assert net[2].training and net[3].training  # batch statistics and dropout, as the paper's test phase
    before = hooked.weight_u.clone(), parametrized.parametrizations.weight[0]._u.clone()
    net(torch.randn(2, 2, 8, 8))
    assert torch.equal(before[0], hooked.weight_u) and torch.equal(before[1], parametrized.parametrizations.weight[0]._u)
