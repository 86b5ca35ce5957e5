"""derive_pairs (split by photo, deterministic), combine_folders and the embedded demo set."""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from gantk.data import check_dataset, combine_folders, demo_dataset_dir, derive_input, derive_pairs, open_dataset
from gantk.data.io import read_image, write_png
from gantk.errors import DataError, GantkWarning, OptionError

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "photos"
needs_photos = pytest.mark.skipif(not PHOTOS.is_dir(), reason=f"shared photos {PHOTOS} are not available")


@pytest.fixture
def photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in sorted(PHOTOS.glob("*.jpg"))[:3]:
        (folder / photo.name).symlink_to(photo)
    return folder


def digest(folder: Path) -> str:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return hashlib.sha256(b"".join(p.relative_to(folder).as_posix().encode() + p.read_bytes() for p in files)).hexdigest()


@pytest.mark.parametrize("task, channels", [("edges", 1), ("gray", 1), ("blur", 3), ("downscale", 3)])
def test_derive_input_shapes(task, channels):
    photo = torch.randint(0, 256, (3, 32, 40), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    out = derive_input(photo, task)
    assert out.shape == (channels, 32, 40) and out.dtype == torch.uint8
    if task == "edges":
        assert set(out.unique().tolist()) <= {0, 255}


def test_derive_input_unknown_task():
    with pytest.raises(OptionError, match="edges, gray, blur, downscale"):
        derive_input(torch.zeros(3, 8, 8, dtype=torch.uint8), "sketch")


@needs_photos
def test_derive_pairs_splits_by_photo_and_is_deterministic(photos, tmp_path):
    result = derive_pairs(photos, tmp_path / "out", task="edges", size=32, crops_per_photo=2, test_fraction=0.34, seed=1)
    assert (len(result.train_photos), len(result.test_photos)) == (2, 1)
    assert (result.train_pairs, result.test_pairs) == (4, 2)
    assert str(result) == "4 train pairs from 2 photos, 2 test pairs from 1 photo (edges -> photo, 32 px)"
    for split, names in (("train", result.train_photos), ("test", result.test_photos)):
        stems = {p.stem.rsplit("_", 1)[0] for p in (tmp_path / "out" / split / "B").iterdir()}
        assert stems == {Path(n).stem for n in names}
    summary = check_dataset(tmp_path / "out")
    assert summary.format == "paired"
    assert summary.splits["train"].channels == {"A": 1, "B": 3}
    assert summary.splits["train"].sizes["B"] == {"32x32": 4}
    again = derive_pairs(photos, tmp_path / "again", task="edges", size=32, crops_per_photo=2, test_fraction=0.34, seed=1)
    assert again.test_photos == result.test_photos
    assert digest(tmp_path / "out") == digest(tmp_path / "again")


@needs_photos
def test_a_photo_linked_or_copied_twice_is_used_once(photos, tmp_path):
    first = sorted(photos.iterdir())[0]
    (photos / "zz-link.jpg").symlink_to(first)
    (photos / "zz-copy.jpg").write_bytes(first.read_bytes())
    with pytest.warns(GantkWarning, match=f"{photos}: 2 file\\(s\\) hold the same photo as another, a link or a copy "
                                          f"\\(zz-copy.jpg \\(as {first.name}\\), zz-link.jpg \\(as {first.name}\\)\\); each photo is used once"):
        result = derive_pairs(photos, tmp_path / "out", task="gray", size=32, crops_per_photo=1, test_fraction=0.34, seed=1)
    assert sorted(result.train_photos + result.test_photos) == sorted(p.name for p in PHOTOS.glob("*.jpg"))[:3]


@needs_photos
def test_derive_pairs_refuses_a_full_output_and_leaves_nothing(photos, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(DataError, match="not empty"):
        derive_pairs(photos, out, task="gray", size=16, crops_per_photo=1)
    with pytest.raises(OptionError, match="edges, gray, blur, downscale"):
        derive_pairs(photos, tmp_path / "new", task="paint")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "photos"]


def test_photos_smaller_than_the_crops_need_are_named(tmp_path):
    (tmp_path / "photos").mkdir()
    for name, side in (("big", 48), ("small", 30)):
        write_png(torch.randint(0, 256, (3, side, side + 4), dtype=torch.uint8), tmp_path / "photos" / f"{name}.png")
    with pytest.warns(GantkWarning, match=r"1 of 2 photos \(small.png\) have a short side under 48 px"):
        result = derive_pairs(tmp_path / "photos", tmp_path / "out", task="gray", size=32, crops_per_photo=1)
    assert result.upscaled_photos == ["small.png"]
    with warnings.catch_warnings():  # the warning comes before the work: as an error, it leaves nothing written
        warnings.simplefilter("error", GantkWarning)
        with pytest.raises(GantkWarning, match="small.png"):
            derive_pairs(tmp_path / "photos", tmp_path / "out2", task="gray", size=32, crops_per_photo=1)
    assert not (tmp_path / "out2").exists()


def test_derive_pairs_needs_photos(tmp_path):
    with pytest.raises(DataError, match="no photos .* point it at a folder of photos"):
        derive_pairs(tmp_path, tmp_path / "out")


def test_photos_in_subfolders_are_pointed_to(tmp_path):
    for folder in ("beach", "city", "notes"):
        (tmp_path / "photos" / folder).mkdir(parents=True)
    Image.new("RGB", (48, 40)).save(tmp_path / "photos" / "beach" / "a.jpg")
    write_png(torch.zeros(3, 40, 48, dtype=torch.uint8), tmp_path / "photos" / "city" / "b.png")
    (tmp_path / "photos" / "notes" / "trip.txt").write_text("not a photo")
    with pytest.warns(GantkWarning, match="skipped 3 subfolder"), \
            pytest.raises(DataError, match=r"not its subfolders, and beach/, city/ hold some: point it at one of them"):
        derive_pairs(tmp_path / "photos", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_derive_pairs_reads_jpeg_by_its_other_names_and_warns_of_what_it_skips(tmp_path):
    photos = tmp_path / "photos"
    for i, name in enumerate(("a.jpg", "b.jfif", "c.jpe", "trip/d.jpg")):
        (photos / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (48, 40), (40 * i, 90, 160)).save(photos / name, format="JPEG")
    (photos / "notes.txt").write_text("not a photo")
    with pytest.warns(GantkWarning, match=r"photos: skipped 1 file\(s\) that are not .* images and 1 subfolder\(s\) "
                                          r"\(notes.txt, trip/\); convert or move what should be derived from"):
        summary = derive_pairs(photos, tmp_path / "out", size=32, crops_per_photo=1)
    assert sorted(summary.train_photos + summary.test_photos) == ["a.jpg", "b.jfif", "c.jpe"]


def test_combine_folders_writes_aligned_pairs(tmp_path):
    for i in range(3):
        write_png(torch.full((1, 6, 5), 10 * i, dtype=torch.uint8), tmp_path / "a" / f"{i}.png")
        write_png(torch.full((3, 6, 5), 200, dtype=torch.uint8), tmp_path / "b" / f"{i}.png")
    assert combine_folders(tmp_path / "a", tmp_path / "b", tmp_path / "ab") == 3
    image = read_image(tmp_path / "ab" / "2.png")
    assert image.shape == (3, 6, 10)
    assert image[:, :, :5].unique().tolist() == [20] and image[:, :, 5:].unique().tolist() == [200]
    ds = open_dataset(tmp_path / "ab", format="aligned", augment=False, load_size=None, crop_size=None)
    assert len(ds) == 3 and ds[0]["A"].shape == (3, 6, 5)


def test_combine_folders_fills_the_empty_folder_a_link_leads_to(tmp_path):
    write_png(torch.zeros(3, 4, 4, dtype=torch.uint8), tmp_path / "a" / "x.png")
    write_png(torch.zeros(3, 4, 4, dtype=torch.uint8), tmp_path / "b" / "x.png")
    (tmp_path / "target").mkdir()
    (tmp_path / "ab").symlink_to(tmp_path / "target")
    assert combine_folders(tmp_path / "a", tmp_path / "b", tmp_path / "ab") == 1
    assert (tmp_path / "ab").is_symlink() and [p.name for p in (tmp_path / "target").iterdir()] == ["x.png"]


def test_combine_folders_refuses_a_link_to_no_folder_before_any_work(tmp_path):
    write_png(torch.zeros(3, 4, 4, dtype=torch.uint8), tmp_path / "a" / "x.png")
    write_png(torch.zeros(3, 4, 4, dtype=torch.uint8), tmp_path / "b" / "x.png")
    (tmp_path / "ab").symlink_to(tmp_path / "missing")
    with pytest.raises(DataError, match=f"{tmp_path / 'ab'} is a link to {tmp_path / 'missing'}, which does not exist: "
                                        "create that folder, or choose another output folder."):
        combine_folders(tmp_path / "a", tmp_path / "b", tmp_path / "ab")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a", "ab", "b"]


def test_combine_folders_lists_unmatched_names_and_writes_nothing(tmp_path):
    write_png(torch.zeros(3, 4, 4, dtype=torch.uint8), tmp_path / "a" / "x.png")
    write_png(torch.zeros(3, 4, 4, dtype=torch.uint8), tmp_path / "a" / "y.png")
    write_png(torch.zeros(3, 5, 4, dtype=torch.uint8), tmp_path / "b" / "x.png")
    write_png(torch.zeros(3, 4, 4, dtype=torch.uint8), tmp_path / "b" / "z.png")
    with pytest.raises(DataError) as info:
        combine_folders(tmp_path / "a", tmp_path / "b", tmp_path / "ab")
    message = str(info.value)
    assert "y.png: no file named 'y.*'" in message and "z.png: no file named 'z.*'" in message
    assert "differ in size" in message
    assert not (tmp_path / "ab").exists()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torchvision's notice; filters are not thread-safe
def test_demo_builds_once_and_opens(tmp_path, monkeypatch):
    monkeypatch.setenv("GANTK_CACHE_DIR", str(tmp_path / "cache"))
    with ThreadPoolExecutor(3) as pool:
        folders = list(pool.map(lambda _: demo_dataset_dir(), range(3)))
    root = folders[0]
    assert folders == [root] * 3 and root.parent == tmp_path / "cache"
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [root.name]  # no temporary folders left
    summary = check_dataset(root)
    assert summary.format == "paired"
    assert (summary.splits["train"].items, summary.splits["test"].items) == (48, 12)
    assert summary.splits["train"].channels == {"A": 1, "B": 3}
    assert summary.splits["test"].sizes["B"] == {"64x64": 12}
    ds = open_dataset(root, split="test", load_size=72, crop_size=64)
    assert ds[(0, 0)]["A"].shape == (1, 64, 64) and ds[(0, 0)]["B"].shape == (3, 64, 64)
    assert demo_dataset_dir() == root


def test_a_cache_folder_that_takes_no_files_names_the_setting_that_moves_it(tmp_path, monkeypatch):
    monkeypatch.setenv("GANTK_CACHE_DIR", str(tmp_path / "cache"))

    def refused(*args, dir=None, **kwargs):  # as a folder of another user's, or chmod 555, refuses
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.path.join(dir, "x"))

    monkeypatch.setattr(tempfile, "mkdtemp", refused)
    with pytest.raises(DataError, match=f"cannot build the demo set in {tmp_path / 'cache'}: Permission denied; set "
                                        "GANTK_CACHE_DIR to a folder you may write to, or give your own data with --data DIR."):
        demo_dataset_dir()


def test_cache_dir_follows_xdg(tmp_path, monkeypatch):
    from gantk.data.demo import cache_dir

    monkeypatch.delenv("GANTK_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "gantk"


def test_written_folders_get_the_mode_mkdir_would_give(tmp_path):
    import os
    import stat

    for i in range(2):
        write_png(torch.zeros(3, 6, 5, dtype=torch.uint8), tmp_path / "a" / f"{i}.png")
        write_png(torch.zeros(3, 6, 5, dtype=torch.uint8), tmp_path / "b" / f"{i}.png")
    old = os.umask(0o022)
    try:
        combine_folders(tmp_path / "a", tmp_path / "b", tmp_path / "ab")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "ab").stat().st_mode) == 0o755  # not mkdtemp's owner-only 0700


@pytest.mark.parametrize("options, message", [
    ({"size": 8}, "size must be an integer of at least 16, got 8"),
    ({"test_fraction": 1.0}, "test_fraction must be a number in \\[0, 1\\)"),
    ({"size": "32"}, "size must be an integer of at least 16, got '32'"),
])
def test_derive_pairs_names_the_bad_option(tmp_path, options, message):
    with pytest.raises(OptionError, match=message):
        derive_pairs(tmp_path, tmp_path / "out", **options)


def test_sigterm_removes_a_half_written_folder(tmp_path):
    import subprocess
    import sys

    script = f"""
import os, signal
from pathlib import Path
from gantk.cli import exit_on_sigterm
from gantk.data.derive import fresh_folder
signal.signal(signal.SIGTERM, exit_on_sigterm)
with fresh_folder(Path({str(tmp_path / "out")!r})) as tmp:
    (tmp / "half.png").write_bytes(b"")
    os.kill(os.getpid(), signal.SIGTERM)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 128 + 15, result.stderr
    assert list(tmp_path.iterdir()) == []  # neither the output nor its hidden temporary folder


def test_every_photo_gets_crops_of_its_own_and_training_keeps_a_photo(tmp_path):
    (tmp_path / "photos").mkdir()
    photo = torch.randint(0, 256, (3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    write_png(photo, tmp_path / "photos" / "one.png")
    noted = PngInfo()
    noted.add_text("note", "the same pixels in another file")  # the same picture twice, not the same file
    Image.open(tmp_path / "photos" / "one.png").save(tmp_path / "photos" / "two.png", pnginfo=noted)
    result = derive_pairs(tmp_path / "photos", tmp_path / "out", task="gray", size=16, crops_per_photo=1, test_fraction=0.9)
    assert (len(result.train_photos), len(result.test_photos)) == (1, 1)
    crops = [read_image(next((tmp_path / "out" / split / "B").iterdir())) for split in ("train", "test")]
    assert not torch.equal(*crops)  # each photo draws its own crop positions


def test_demo_test_crops_never_share_photo_columns_with_training(tmp_path):
    from gantk.data import demo

    columns = torch.arange(512).div(2, rounding_mode="floor").to(torch.uint8)  # red = column // 2
    photo = torch.stack([columns.expand(200, 512), torch.zeros(200, 512, dtype=torch.uint8), torch.zeros(200, 512, dtype=torch.uint8)])
    demo._build(photo, tmp_path)
    reds = {split: [read_image(p)[0].float() for p in (tmp_path / split / "B").iterdir()] for split in ("train", "test")}
    assert max(red.max() for red in reds["test"]) <= demo.TEST_COLUMNS[1] // 2 + 1
    assert min(red.min() for red in reds["train"]) >= demo.TRAIN_COLUMNS[0] // 2 - 1


@pytest.mark.parametrize("period, flat", [(4, True), (16, False)])
def test_downscale_loses_details_finer_than_four_pixels(period, flat):
    stripes = ((torch.arange(64) // (period // 2)) % 2 * 255).to(torch.uint8).expand(3, 64, 64).contiguous()
    assert (derive_input(stripes, "downscale").float().std() < 8) == flat


@pytest.mark.parametrize("size, sigma", [(64, 1.0), (256, 2.0), (512, 4.0)])
def test_blur_width_is_the_documented_sigma(size, sigma):
    line = torch.zeros(3, size, size, dtype=torch.uint8)
    line[:, :, size // 2] = 255  # a one-pixel vertical line: each row becomes the Gaussian
    row = derive_input(line, "blur")[0, size // 2].double()
    x = torch.arange(size, dtype=torch.float64) - size // 2
    assert (row * x**2).sum() / row.sum() == pytest.approx(sigma**2, rel=0.1)


def test_edges_are_dark_lines_on_white():
    photo = torch.zeros(3, 32, 32, dtype=torch.uint8)
    photo[:, 8:24, 8:24] = 255
    edges = derive_input(photo, "edges")[0]
    assert (edges == 255).float().mean() > 0.8  # the background
    assert (edges[6:26, 6:26] == 0).any() and (edges[:4] == 255).all()  # lines along the square only


def few_photos(folder: Path) -> Path:
    for i in range(3):
        write_png(torch.randint(0, 256, (3, 40, 40), dtype=torch.uint8), folder / f"{i}.png")
    return folder


def test_a_small_test_fraction_still_holds_out_a_photo(tmp_path):
    result = derive_pairs(few_photos(tmp_path / "photos"), tmp_path / "out", task="gray", size=16, crops_per_photo=1, test_fraction=0.01)
    assert (len(result.train_photos), len(result.test_photos)) == (2, 1)


def test_a_file_is_no_output_folder(tmp_path):
    few_photos(tmp_path / "photos")
    (tmp_path / "file").write_text("")
    with pytest.raises(DataError, match="file already exists and is not empty"):
        derive_pairs(tmp_path / "photos", tmp_path / "file", task="gray", size=16, crops_per_photo=1)


def test_combining_empty_folders_is_refused(tmp_path):
    for side in ("a", "b"):
        (tmp_path / side).mkdir()
    with pytest.raises(DataError, match="no images to combine"):
        combine_folders(tmp_path / "a", tmp_path / "b", tmp_path / "ab")
    assert not (tmp_path / "ab").exists()


def test_combine_folders_names_clashing_files_and_writes_nothing(tmp_path):
    for side in ("a", "b"):
        (tmp_path / side).mkdir()
    for path in ("a/x.png", "b/x.jpg", "b/x.png", "a/y.png", "b/y.png"):
        Image.new("RGB", (4, 4)).save(tmp_path / path)
    with pytest.raises(DataError) as info:
        combine_folders(tmp_path / "a", tmp_path / "b", tmp_path / "ab")
    assert f"{tmp_path / 'b'}: x.jpg, x.png share the name 'x'" in str(info.value)
    assert "no file named" not in str(info.value)
    assert not (tmp_path / "ab").exists()


def test_derive_pairs_names_every_unreadable_photo_and_writes_nothing(tmp_path):
    photos = few_photos(tmp_path / "photos")
    (photos / "corrupt.jpg").write_bytes(b"junk")
    (photos / "trunc.png").write_bytes((photos / "0.png").read_bytes()[:100])
    with pytest.raises(DataError) as info:
        derive_pairs(photos, tmp_path / "out", task="gray", size=16, crops_per_photo=1)
    message = str(info.value)
    assert "2 of 5 photos cannot be read" in message and "corrupt.jpg: cannot be decoded" in message
    assert "trunc.png: cannot be decoded" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]


def test_derive_pairs_names_a_broken_link_among_the_photos(tmp_path):
    photos = few_photos(tmp_path / "photos")
    (photos / "gone.png").symlink_to(tmp_path / "nowhere.png")
    with pytest.raises(DataError) as info:
        derive_pairs(photos, tmp_path / "out", task="gray", size=16, crops_per_photo=1)
    message = str(info.value)
    assert "1 of 4 photos cannot be read" in message and "gone.png: a broken link (its target" in message
    assert not (tmp_path / "out").exists()


def test_derive_pairs_refuses_photos_whose_crops_would_share_files(tmp_path):
    photos = few_photos(tmp_path / "photos")
    (photos / "0.jpg").write_bytes((photos / "1.png").read_bytes())  # 0.png's crops and 0.jpg's are 0_00.png, ...
    with pytest.raises(DataError) as info:
        derive_pairs(photos, tmp_path / "out", task="gray", size=16, crops_per_photo=1)
    assert f"{photos}: 0.jpg, 0.png share the name '0'" in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]


def test_one_photo_gives_a_training_split_and_says_there_is_no_test_split(tmp_path):
    (tmp_path / "photos").mkdir()
    write_png(torch.randint(0, 256, (3, 40, 40), dtype=torch.uint8), tmp_path / "photos" / "only.png")
    with pytest.warns(GantkWarning, match="one photo, so no test split"):
        result = derive_pairs(tmp_path / "photos", tmp_path / "out", task="gray", size=16, crops_per_photo=2)
    assert (result.train_pairs, result.test_pairs) == (2, 0) and not (tmp_path / "out" / "test").exists()


def test_a_photo_that_fitting_would_make_too_large_is_named_and_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv("GANTK_MAX_IMAGE_PIXELS", "100000")
    write_png(torch.zeros(3, 2, 200, dtype=torch.uint8), tmp_path / "photos" / "strip.png")
    write_png(torch.zeros(3, 60, 60, dtype=torch.uint8), tmp_path / "photos" / "square.png")
    with pytest.raises(DataError, match=r"1 of 2 photos cannot be read, so nothing was written:\n  - strip.png: 200x2 resized to "
                                        r"48 px on its shorter side would be 4800x48"):
        derive_pairs(tmp_path / "photos", tmp_path / "pairs", size=32)
    assert not (tmp_path / "pairs").exists()



def test_combine_folders_keeps_alpha_and_names_every_unreadable_file(tmp_path):
    for i in range(2):
        write_png(torch.full((4, 6, 5), 60 * i, dtype=torch.uint8), tmp_path / "a" / f"{i}.png")
        write_png(torch.full((4, 6, 5), 200, dtype=torch.uint8), tmp_path / "b" / f"{i}.png")
    assert combine_folders(tmp_path / "a", tmp_path / "b", tmp_path / "ab") == 2
    assert read_image(tmp_path / "ab" / "1.png")[3, :, :5].unique().tolist() == [60]  # A's alpha, kept
    for name in ("0.png", "1.png"):
        (tmp_path / "a" / name).write_bytes(b"not an image")
    with pytest.raises(DataError, match=r"a/0.png: cannot be decoded.*\n.*a/1.png: cannot be decoded"):
        combine_folders(tmp_path / "a", tmp_path / "b", tmp_path / "unread")
    assert not (tmp_path / "unread").exists()


@pytest.mark.parametrize("unpartnered", [False, True])
def test_combine_folders_names_truncated_files_with_the_other_problems(tmp_path, unpartnered):
    for side in "ab":
        for i in range(3):
            write_png(torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8), tmp_path / side / f"{i}.png")
    truncated = [tmp_path / "a" / "0.png", tmp_path / "b" / "2.png"]
    for path in truncated:
        path.write_bytes(path.read_bytes()[:100])  # the header is whole: the size is read, the pixels are not
    if unpartnered:
        write_png(torch.zeros(3, 32, 32, dtype=torch.uint8), tmp_path / "a" / "lone.png")
    with pytest.raises(DataError) as info:
        combine_folders(tmp_path / "a", tmp_path / "b", tmp_path / "ab")
    message = str(info.value)
    assert message.startswith(f"cannot combine {tmp_path / 'a'} and {tmp_path / 'b'}:")
    assert all(f"{path}: cannot be decoded as an image (" in message for path in truncated), message
    assert ("lone.png: no file named 'lone.*'" in message) == unpartnered
    assert not (tmp_path / "ab").exists()
