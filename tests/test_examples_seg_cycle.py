"""The segmentation and CycleGAN examples run end to end at a tiny size on the shared data."""

import csv
import importlib.util
import re
from pathlib import Path

import pytest

from gantk.data import read_image

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def load_example(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not (DATA / "objects-seg").is_dir(), reason=f"shared data {DATA / 'objects-seg'} is absent")
def test_segmentation_example(tmp_path):
    out = tmp_path / "run"
    grid = load_example("segmentation_lovasz").main(
        ["--steps", "2", "--size", "32", "--batch-size", "2", "--ngf", "8", "--adversarial", "hinge", "--workers", "0",
         "--rows", "2", "--out", str(out)]
    )
    masks = sorted(p for p in (out / "test").glob("*.png") if not p.stem.endswith("_overlay"))
    assert len(masks) == 100 and len(list((out / "test").glob("*_overlay.png"))) == 100
    mask = read_image(masks[0])
    assert mask.shape == (1, 32, 32) and set(mask.unique().tolist()) <= {0, 255}
    assert read_image(grid).shape[-2:] == (2 * 34 + 2, 3 * 34 + 2)


@pytest.mark.skipif(not (DATA / "photos").is_dir(), reason=f"shared data {DATA / 'photos'} is absent")
def test_cyclegan_example(tmp_path):
    out, data = tmp_path / "run", tmp_path / "data"
    grid = load_example("cyclegan_unpaired").main(
        ["--steps", "2", "--size", "32", "--crops-per-photo", "1", "--ngf", "8", "--ndf", "8", "--workers", "0",
         "--rows", "2", "--data-dir", str(data), "--out", str(out)]
    )
    unaligned = data / "unaligned"
    a_photos = {p.stem.rsplit("_", 1)[0] for p in (unaligned / "trainA").iterdir()}
    b_photos = {p.stem.rsplit("_", 1)[0] for p in (unaligned / "trainB").iterdir()}
    assert a_photos and b_photos and not a_photos & b_photos  # no photo on both sides: no pairs
    for direction in ("AtoB", "BtoA", "AtoB-BtoA", "BtoA-AtoB"):
        images = list((out / "test" / direction).glob("*.png"))
        assert images and read_image(images[0]).shape == (3, 32, 32)
    assert read_image(grid).shape[-2:] == (2 * 34 + 2, 6 * 34 + 2)


@pytest.mark.skipif(not (DATA / "photos").is_dir(), reason=f"shared data {DATA / 'photos'} is absent")
def test_cyclegan_example_needs_two_test_photos_before_writing_anything(tmp_path, capsys):
    import shutil

    photos = tmp_path / "photos"
    photos.mkdir()
    for path in sorted((DATA / "photos").glob("*.jpg"))[:7]:  # one of them would be held out for testing
        shutil.copy(path, photos)
    with pytest.raises(SystemExit) as exit:
        load_example("cyclegan_unpaired").main(["--photos", str(photos), "--size", "32", "--crops-per-photo", "1",
                                                "--out", str(tmp_path / "run"), "--data-dir", str(tmp_path / "data")])
    assert exit.value.code == 2 and "holds 7 photo(s); the example needs at least 8" in capsys.readouterr().err
    assert not (tmp_path / "data").exists() and not (tmp_path / "run").exists()


@pytest.mark.parametrize("name, flag", [("cyclegan_unpaired", "--out"), ("cyclegan_unpaired", "--data-dir"),
                                        ("segmentation_lovasz", "--out")])
def test_the_examples_refuse_a_folder_that_is_not_empty_before_working(tmp_path, capsys, name, flag):
    used = tmp_path / "used"
    used.mkdir()
    (used / "earlier.txt").write_text("an earlier run's")
    for taken in (used, used / "earlier.txt"):  # a folder with files, or a file
        with pytest.raises(SystemExit):
            load_example(name).main([flag, str(taken)])
        assert f"{taken} is not empty: choose a new {flag} folder" in capsys.readouterr().err


@pytest.mark.parametrize("name, flag, message", [("cyclegan_unpaired", "--photos", "no photo folder at"),
                                                 ("segmentation_lovasz", "--data", "no segmentation set at")])
def test_the_examples_explain_a_missing_data_folder(tmp_path, capsys, name, flag, message):
    with pytest.raises(SystemExit) as exit_info:
        load_example(name).main([flag, str(tmp_path / "nowhere"), "--out", str(tmp_path / "run")])
    assert exit_info.value.code == 2 and f"{message} {tmp_path / 'nowhere'}: pass one" in capsys.readouterr().err


@pytest.mark.parametrize("size", ["30", "4", "16"])
def test_the_cyclegan_example_checks_its_crop_size_before_deriving_the_set(tmp_path, capsys, size):
    with pytest.raises(SystemExit) as exit_info:
        load_example("cyclegan_unpaired").main(["--size", size, "--out", str(tmp_path / "run"), "--data-dir", str(tmp_path / "data")])
    assert exit_info.value.code == 2 and f"--size must be a multiple of 4 of at least 24, got {size}" in capsys.readouterr().err
    assert not (tmp_path / "data").exists() and not (tmp_path / "run").exists()


def test_the_cyclegan_pages_loss_table_is_the_logged_run():
    """docs/cyclegan.md quotes rows of the example run's metrics.csv, kept beside its grid."""
    logged = {row["step"]: row for row in csv.DictReader((ROOT / "docs/images/cyclegan/metrics.csv").open())}
    columns = ["G_AB/lsgan", "G_AB/cycle", "G_AB/identity", "G_BA/lsgan", "G_BA/cycle", "G_BA/identity", "D_A/lsgan", "D_B/lsgan"]
    page = (ROOT / "docs/cyclegan.md").read_text(encoding="utf-8")
    quoted = re.findall(r"^\| (\d+) \| ([\d.]+(?: \| [\d.]+){7}) \|$", page, flags=re.M)
    assert len(quoted) == 2
    for step, values in quoted:
        assert [float(v) for v in values.split(" | ")] == [float(f"{float(logged[step][c]):.3g}") for c in columns], step
