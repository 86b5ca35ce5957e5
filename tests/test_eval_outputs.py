"""gantk eval --outputs: each output scored, written as gantk translate writes it (CPU, 32 px)."""

import json
import shutil
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from gantk.cli import GantkGroup
from gantk.commands_eval import eval_command
from gantk.data.datasets import UnpairedSplit
from gantk.errors import DataError, OptionError
from gantk.eval_outputs import OutputWriter, refuse_clashes
from gantk.evaluate import evaluate
from gantk.inference import TrainedModel
from gantk.metrics import fid as fid_module
from gantk.train import TrainConfig, Trainer
from gantk.translate import translate
from helpers import write_paired, write_segmentation, write_stand_in_inception, write_unaligned

TINY = dict(load_size=36, crop_size=32, batch_size=2, workers=0, max_steps=2, checkpoint_every=2,
            gen_opt={"ngf": 8}, disc_opt={"ndf": 8})


def trained(tmp_path_factory, recipe, write_data):
    root = tmp_path_factory.mktemp(recipe)
    data = write_data(root / "data")
    return Trainer(TrainConfig(recipe=recipe, data=str(data), out=str(root / "run"), **TINY), progress=False).fit(), data


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    return trained(tmp_path_factory, "pix2pix", lambda folder: write_paired(folder, count=5, size=40))


@pytest.fixture(scope="module")
def mask_run(tmp_path_factory):
    return trained(tmp_path_factory, "seg", lambda folder: write_segmentation(folder, count=4, size=40))


@pytest.fixture(autouse=True)
def no_weights(monkeypatch):
    monkeypatch.delenv("GANTK_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr(fid_module, "fid_helper_weights", lambda: None)


def quietly(function, *args, **kwargs):
    with warnings.catch_warnings():  # data without split folders: warned of as the training set
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


def pixels(path):
    return np.asarray(Image.open(path))


def same_files(first, second):
    names = sorted(path.name for path in first.iterdir())
    assert names == sorted(path.name for path in second.iterdir())
    for name in names:
        np.testing.assert_array_equal(pixels(first / name), pixels(second / name), err_msg=name)
    return names


@pytest.mark.parametrize("batch_size", [1, 2])
def test_the_outputs_of_pairs_are_the_files_translate_writes_of_their_inputs(image_run, tmp_path, batch_size):
    run, data = image_run
    result = quietly(evaluate, run, data, split="train", outputs_dir=tmp_path / "eval", batch_size=batch_size, progress=False)
    quietly(translate, run, data / "A", tmp_path / "translate", batch_size=batch_size, progress=False)
    assert same_files(tmp_path / "eval", tmp_path / "translate") == [f"{i:03d}.png" for i in range(5)]
    assert result["outputs"] == str(tmp_path / "eval") and result["images"] == 5


def test_a_mask_models_outputs_are_the_masks_translate_writes(mask_run, tmp_path):
    run, data = mask_run
    quietly(evaluate, run, data, split="train", outputs_dir=tmp_path / "eval", progress=False)
    quietly(translate, run, data / "images", tmp_path / "translate", progress=False)
    names = same_files(tmp_path / "eval", tmp_path / "translate")
    assert len(names) == 4 and set(np.unique(pixels(tmp_path / "eval" / names[0]))) <= {0, 255}  # binary masks as 0/255


def test_at_original_size_the_outputs_take_each_targets_size(image_run, tmp_path):
    run, data = image_run
    quietly(evaluate, run, data, split="train", size="original", outputs_dir=tmp_path / "out", progress=False)
    assert {Image.open(path).size for path in (tmp_path / "out").iterdir()} == {(40, 40)}  # trained at 32
    quietly(evaluate, run, data, split="train", outputs_dir=tmp_path / "crop", progress=False)
    assert {Image.open(path).size for path in (tmp_path / "crop").iterdir()} == {(32, 32)}


def test_unpaired_outputs_are_the_translations_of_the_input_side(tmp_path_factory, tmp_path):
    run, data = trained(tmp_path_factory, "cyclegan", lambda folder: write_unaligned(folder, count_a=3, count_b=2))
    weights = write_stand_in_inception(tmp_path / "stand-in.pt")
    for direction, side in (("AtoB", "A"), ("BtoA", "B")):
        quietly(evaluate, run, data, split="train", direction=direction, inception_weights=weights,
                outputs_dir=tmp_path / direction, progress=False)
        quietly(translate, run, data / f"train{side}", tmp_path / f"translate-{direction}", direction=direction, progress=False)
        assert len(same_files(tmp_path / direction, tmp_path / f"translate-{direction}")) == (3 if side == "A" else 2)


def test_the_command_writes_the_outputs_and_says_so(image_run, tmp_path):
    run, data = image_run
    printed = CliRunner().invoke(GantkGroup(commands={"eval": eval_command}), [
        "eval", "--checkpoint", str(run), "--data", str(data), "--split", "train", "--outputs", str(tmp_path / "out"),
        "--no-progress"])
    assert printed.exit_code == 0, printed.output
    assert f"wrote 5 output(s) to {tmp_path / 'out'}" in printed.output
    assert len(list((tmp_path / "out").iterdir())) == 5
    printed = CliRunner().invoke(GantkGroup(commands={"eval": eval_command}), [
        "eval", "--checkpoint", str(run), "--data", str(data), "--split", "train", "--outputs", str(tmp_path / "json"),
        "--json", "--no-progress"])
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.stdout)["outputs"] == str(tmp_path / "json")  # stdout holds the JSON alone
    assert len(list((tmp_path / "json").iterdir())) == 5


def test_the_command_refuses_an_outputs_folder_it_cannot_write_or_that_is_the_json_file(image_run, tmp_path, monkeypatch):
    import gantk.evaluate

    run, data = image_run
    monkeypatch.setattr(gantk.evaluate, "loaded_model", lambda *args, **kwargs: pytest.fail("the model was loaded"))
    (tmp_path / "file").write_text("")
    group = GantkGroup(commands={"eval": eval_command})
    eval_args = ["eval", "--checkpoint", str(run), "--data", str(data), "--no-progress"]
    refused = CliRunner().invoke(group, [*eval_args, "--outputs", str(tmp_path / "file" / "out")])
    assert refused.exit_code == 1 and f"--outputs {tmp_path / 'file' / 'out'}" in refused.output, refused.output
    refused = CliRunner().invoke(group, [*eval_args, "--outputs", str(tmp_path / "r"), "--json", str(tmp_path / "r")])
    assert refused.exit_code == 2 and "is the --outputs folder" in refused.output, refused.output


def test_a_folder_that_holds_files_is_refused_before_scoring_unless_told_to_overwrite(image_run, tmp_path):
    run, data = image_run
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "000.png").write_bytes(b"an earlier file")
    with pytest.raises(OptionError, match=r"outputs_dir \(--outputs\) .*out already holds 000.png; .*\(--overwrite\)"):
        evaluate(run, data, split="train", outputs_dir=tmp_path / "out", progress=False)
    assert (tmp_path / "out" / "000.png").read_bytes() == b"an earlier file"
    quietly(evaluate, run, data, split="train", outputs_dir=tmp_path / "out", overwrite=True, progress=False)
    assert pixels(tmp_path / "out" / "000.png").shape == (32, 32, 3)


def test_a_folder_in_the_dataset_or_the_report_or_a_file_is_refused(image_run, tmp_path, monkeypatch):
    run, data = image_run
    with pytest.raises(OptionError, match="lies in the dataset .*give a folder outside it"):
        evaluate(run, data, split="train", outputs_dir=data / "outputs", progress=False)
    for inside in (data, data / "A"):
        with pytest.raises(OptionError, match="lies in the dataset"):
            evaluate(run, data, split="train", outputs_dir=inside, overwrite=True, progress=False)
    with pytest.raises(OptionError, match=r"outputs_dir \(--outputs\) and report_dir \(--report\) both name"):
        evaluate(run, data, split="train", outputs_dir=tmp_path / "r", report_dir=tmp_path / "r", progress=False)
    with monkeypatch.context() as patch, pytest.raises(OptionError, match=r"and report_dir \(--report\) both name"):
        patch.chdir(tmp_path)
        evaluate(run, data, split="train", outputs_dir=tmp_path / "r", report_dir="r", progress=False)  # one folder, spelt otherwise
    (tmp_path / "file").write_text("")
    with pytest.raises(OptionError, match=r"\(--outputs\) .*file is a file; give a folder"):
        evaluate(run, data, split="train", outputs_dir=tmp_path / "file", progress=False)
    with pytest.raises(OptionError, match=r"outputs_dir \(--outputs\) is '\.': name a folder of its own"):
        evaluate(run, data, split="train", outputs_dir=".", progress=False)
    with pytest.raises(OptionError, match=r"outputs_dir \(--outputs\) is an empty path"):
        evaluate(run, data, split="train", outputs_dir="", progress=False)
    with pytest.raises(OptionError, match=r"overwrite \(--overwrite\) replaces files in outputs_dir \(--outputs\)"):
        evaluate(run, data, split="train", overwrite=True, progress=False)
    assert not (data / "outputs").exists() and sorted(path.name for path in tmp_path.iterdir()) == ["file"]


def test_a_dataset_given_from_the_home_folder_keeps_the_outputs_out_of_it(image_run, tmp_path, monkeypatch):
    run, data = image_run
    shutil.copytree(data, tmp_path / "data")
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(OptionError, match=f"lies in the dataset {tmp_path / 'data'}, "):  # named as read
        evaluate(run, "~/data", split="train", outputs_dir=tmp_path / "data" / "out", progress=False)


def test_a_dataset_given_through_a_link_keeps_the_outputs_out_of_the_folder_it_links_to(image_run, tmp_path):
    run, data = image_run
    shutil.copytree(data, tmp_path / "data")
    (tmp_path / "link").symlink_to(tmp_path / "data", target_is_directory=True)
    with pytest.raises(OptionError, match="lies in the dataset .*link"):
        evaluate(run, tmp_path / "link", split="train", outputs_dir=tmp_path / "data" / "out", progress=False)
    assert not (tmp_path / "data" / "out").exists()


def test_no_output_replaces_a_file_of_a_dataset_folder_linked_from_elsewhere(image_run, tmp_path, monkeypatch):
    run, data = image_run
    shutil.copytree(data / "B", tmp_path / "elsewhere")
    (tmp_path / "data").mkdir()
    shutil.copytree(data / "A", tmp_path / "data" / "A")
    (tmp_path / "data" / "B").symlink_to(tmp_path / "elsewhere")
    before = {path.name: path.read_bytes() for path in (tmp_path / "elsewhere").iterdir()}
    with pytest.raises(DataError, match=r"outputs_dir \(--outputs\) .*elsewhere is the folder of .*data/B/00[0-9].png, a file of the "
                                        r"dataset evaluated, which the outputs would join \(or replace\)"):
        quietly(evaluate, run, tmp_path / "data", split="train", outputs_dir=tmp_path / "elsewhere", overwrite=True,
                progress=False)
    assert {path.name: path.read_bytes() for path in (tmp_path / "elsewhere").iterdir()} == before
    with monkeypatch.context() as patch, pytest.raises(DataError, match=r"\(--outputs\) elsewhere is the folder of"):
        patch.chdir(tmp_path)  # the folder named relative to the working directory
        quietly(evaluate, run, tmp_path / "data", split="train", outputs_dir="elsewhere", overwrite=True, progress=False)
    assert {path.name: path.read_bytes() for path in (tmp_path / "elsewhere").iterdir()} == before
    (tmp_path / "data" / "out").symlink_to(tmp_path / "outside", target_is_directory=True)  # in the dataset as written
    with pytest.raises(OptionError, match="lies in the dataset"):
        evaluate(run, tmp_path / "data", split="train", outputs_dir=tmp_path / "data" / "out", progress=False)


def test_a_study_takes_no_report_or_outputs_folder():
    from gantk.ablate.runner import AblationError, check_eval_options

    for option in ("report_dir", "k_best_worst", "outputs_dir", "overwrite"):
        with pytest.raises(AblationError, match=f"eval_options {option}: a study passes no report or outputs folder"):
            check_eval_options({option: None})
    with pytest.raises(AblationError, match="eval_options splt: not options") as refused:
        check_eval_options({"splt": "test"})
    assert "split" in str(refused.value) and not [option for option in ("report_dir", "k_best_worst", "outputs_dir", "overwrite")
                                                  if option in str(refused.value)]  # not offered as options it takes


def test_an_input_that_cannot_be_decoded_names_the_outputs_already_written(image_run, tmp_path):
    run, data = image_run
    shutil.copytree(data, tmp_path / "data")
    broken = tmp_path / "data" / "A" / "003.png"
    broken.write_bytes(broken.read_bytes()[:100])  # its header is whole: found when it is decoded
    with pytest.raises(DataError) as info:
        quietly(evaluate, run, tmp_path / "data", split="train", outputs_dir=tmp_path / "out", progress=False)
    assert "003.png" in str(info.value)
    assert f"The 3 file(s) written to {tmp_path / 'out'} before it are kept; once it is fixed, run gantk eval again with " \
           "--overwrite." in str(info.value)
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["000.png", "001.png", "002.png"]


@pytest.mark.parametrize("command", ["eval", "translate"])
def test_a_stop_names_the_outputs_already_written(image_run, tmp_path, monkeypatch, command):
    import signal

    import gantk.translate
    from gantk.cli import cli

    run, data = image_run
    write = OutputWriter.write if command == "eval" else gantk.translate.write_translation
    calls = []

    def stopped_after_the_first_batch(*args, **kwargs):
        if calls:
            raise KeyboardInterrupt
        calls.append(args)
        return write(*args, **kwargs)

    if command == "eval":
        monkeypatch.setattr(OutputWriter, "write", stopped_after_the_first_batch)
        args = ["eval", "--checkpoint", str(run), "--data", str(data), "--split", "train", "--outputs", str(tmp_path / "out"),
                "--batch-size", "2"]
    else:
        monkeypatch.setattr(gantk.translate, "write_translation", stopped_after_the_first_batch)
        args = ["translate", "--checkpoint", str(run), str(data / "A"), str(tmp_path / "out")]
    printed = CliRunner().invoke(cli, [*args, "--no-progress"])
    assert printed.exit_code == 128 + signal.SIGINT, printed.output
    again = "run gantk eval" if command == "eval" else "translate"
    kept = 2 if command == "eval" else 1
    assert printed.output.endswith(f"\nAborted.\nThe {kept} file(s) written to {tmp_path / 'out'} before the stop are kept; "
                                   f"{again} again with --overwrite to write every output.\n"), printed.output
    assert len(list((tmp_path / "out").iterdir())) == kept


def test_two_inputs_of_one_name_are_refused_before_any_is_written(tmp_path):
    listed = types.SimpleNamespace(files={"A": [Path("a/x.png"), Path("a/y.png")], "B": [Path("b/x.jpg"), Path("b/x.png")]})
    refuse_clashes(tmp_path / "out", listed, "A")  # the targets' outputs are not written
    with pytest.raises(DataError, match=r"^b/x.jpg and b/x.png would both be written to .*x.png .*rename one of them"):
        refuse_clashes(tmp_path / "out", listed, "B")  # a model translating BtoA
    aligned = types.SimpleNamespace(files={"A|B": [Path("ab/x.png"), Path("other/x.jpg")]})
    with pytest.raises(DataError, match=r"^ab/x.png and other/x.jpg would both be written"):
        refuse_clashes(tmp_path / "out", aligned, "A")
    unpaired = UnpairedSplit("unaligned", {"A": types.SimpleNamespace(files={"A": [Path("a/x.png")]}),
                                           "B": types.SimpleNamespace(files={"A": [Path("b/x.jpg"), Path("b/x.png")]})})
    refuse_clashes(tmp_path / "out", unpaired, "A")  # the B side's outputs are not written
    with pytest.raises(DataError, match=r"^b/x.jpg and b/x.png would both be written"):
        refuse_clashes(tmp_path / "out", unpaired, "B")
    assert not (tmp_path / "out").exists()


def test_two_inputs_of_one_name_met_while_writing_are_refused_naming_both(image_run, tmp_path, monkeypatch):
    model = TrainedModel.load(image_run[0])
    writer = OutputWriter(model, tmp_path / "out", "AtoB")  # for a dataset that lists no files
    outputs = torch.zeros(2, 3, 32, 32)  # images, as the model outputs them
    writer.write(["a/x.png", "a/y.png"], outputs)
    writer.write(["a/x.png"], outputs[:1])  # the same input again: its file, written again
    with pytest.raises(DataError, match=r"a/x.png and b/x.jpg would both be written to .*x.png .*rename one of them"):
        writer.write(["b/x.jpg"], outputs[:1])
    written = {path.name: path.read_bytes() for path in (tmp_path / "out").iterdir()}
    assert sorted(written) == ["x.png", "y.png"]
    with pytest.raises(DataError, match=r"outputs_dir \(--outputs\) .*out is the folder of the input .*out/x.png, which the "
                                        r"outputs would join"):
        writer.write([str(tmp_path / "out" / "x.png")], outputs[:1])  # a format that lists no files, read from there
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match=r"is the folder of the input out/z.png"):
        writer.write(["out/z.png"], outputs[:1])  # the same, its files named relative to the working directory
    assert {path.name: path.read_bytes() for path in (tmp_path / "out").iterdir()} == written


def test_an_output_is_named_after_its_input_where_its_target_is_spelt_otherwise(image_run, tmp_path):
    run, data = image_run
    for side, name in (("A", "cafe\u0301"), ("B", "caf\u00e9")):  # an accent decomposed (as macOS writes names), and composed
        (tmp_path / "data" / side).mkdir(parents=True)
        shutil.copyfile(data / side / "000.png", tmp_path / "data" / side / f"{name}.png")
    quietly(evaluate, run, tmp_path / "data", split="train", outputs_dir=tmp_path / "eval", progress=False)
    quietly(translate, run, tmp_path / "data" / "A", tmp_path / "translate", progress=False)
    assert same_files(tmp_path / "eval", tmp_path / "translate") == ["cafe\u0301.png"]


def test_a_stop_before_any_output_is_written_adds_no_note(tmp_path):
    from gantk.translate import naming_written

    written: list[Path] = []
    with pytest.raises(KeyboardInterrupt) as stopped:
        with naming_written(written, tmp_path / "out"):
            raise KeyboardInterrupt
    assert not getattr(stopped.value, "__notes__", [])
    written.append(tmp_path / "out" / "a.png")
    with pytest.raises(KeyboardInterrupt) as stopped:
        with naming_written(written, tmp_path / "out", "run gantk eval"):
            raise KeyboardInterrupt
    assert stopped.value.__notes__ == [f"The 1 file(s) written to {tmp_path / 'out'} before the stop are kept; run gantk eval "
                                       "again with --overwrite to write every output."]

