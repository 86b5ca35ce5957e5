"""The benchmark scripts drive the trainer's own code; tiny runs keep them working (nothing is timed here)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture
def benchmarks(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))


@pytest.mark.parametrize("recipe", ["pix2pix", "seg", "cyclegan"])
@pytest.mark.parametrize("baseline", ["eager", "eager-fused"])
def test_the_eager_baseline_computes_what_the_trainer_computes(benchmarks, recipe, baseline):
    """Three steps: the losses of the third read weights after two optimizer updates, the first that depends on
    Adam's betas (a first update is +-lr whatever they are), in every phase order. gantk's fused Adam rounds as
    eager-fused's does; the unfused Adam of eager differs in the last bits, which CycleGAN's instance norms on
    32 px images raise to 1e-4 by the third step (other betas move its losses by 17%)."""
    from cases import Case

    case = Case(recipe, 32, 2)
    batches = case.batches(3)
    gantk_step, eager_step = case.stepper("gantk"), case.stepper(baseline)
    tolerance = 1e-4 if baseline == "eager-fused" else 1e-3
    for batch in batches:
        ours, eager = gantk_step(batch), eager_step(batch)
        for phase in {key.split("/")[0][0] for key in ours}:  # "D" and "G" (D_A, G_AB... for cyclegan)
            total = sum(value.item() for key, value in ours.items() if key.startswith(phase))
            assert total == pytest.approx(eager[phase], rel=tolerance), (phase, ours, eager)
    assert gantk_step.trainer.step == 3


def test_results_record_the_revision_of_the_gantk_measured_not_of_the_working_directory(benchmarks, tmp_path, monkeypatch):
    import gantk
    import hardware

    monkeypatch.chdir(tmp_path)  # no checkout here
    assert hardware.git_revision() == hardware.git_revision(Path(gantk.__file__).parent)
    monkeypatch.setattr(hardware, "git_revision", lambda checkout=None: "unknown")  # gantk installed, not checked out
    assert hardware.measured_revision() == f"{gantk.__version__} (not a git checkout)"


def test_a_photo_folder_without_photos_is_refused_and_the_missing_default_named(benchmarks, tmp_path, monkeypatch, capsys):
    import argparse

    import loader

    with pytest.raises(SystemExit):
        loader.check_photos(argparse.ArgumentParser(), tmp_path)
    assert f"--photos {tmp_path}: no photos there" in capsys.readouterr().err
    monkeypatch.setattr(loader, "PHOTOS", tmp_path / "shared-photos")
    loader.check_photos(argparse.ArgumentParser(), loader.PHOTOS)
    assert "the loader reads synthetic images" in capsys.readouterr().out


def test_the_loader_benchmark_reads_through_the_trainers_pipeline(benchmarks, tmp_path):
    import loader

    root = loader.write_jpeg_pairs(tmp_path / "pairs", 4, size=40, photo_dir=tmp_path / "no-photos")
    for augment_on in ("loader", "device"):
        rate = loader.loader_rate(root, workers=0, augment_on=augment_on, epochs=2, warmup=1, load_size=40, crop_size=32)
        assert rate["images"] == 6 and rate["images_per_s"] > 0


def test_a_case_interleaves_its_paths_and_records_each_steps_time_faults_and_system_time(benchmarks):
    from cases import Case
    from throughput import run_case

    paths = ["eager", "eager-twin", "gantk"]
    result = run_case(Case("pix2pix", 32, 2), paths, steps=2, warmup=1, threads=1)
    for path in paths:
        measured = result["paths"][path]
        assert len(measured["step_s"]) == len(measured["page_faults"]) == len(measured["system_s"]) == 2
        assert all(faults >= 0 for faults in measured["page_faults"]) and all(s >= 0 for s in measured["system_s"])
    assert result["paths"]["eager"]["vs_eager_median"] == 1.0


def test_a_case_can_time_each_path_alone(benchmarks, monkeypatch, capsys):
    import throughput
    from cases import Case
    from worker import Worker

    events = []

    class Recorded(Worker):
        def __init__(self, case, path, threads=None):
            events.append(f"start {path}")
            super().__init__(case, path, threads)

        def stop(self):
            super().stop()
            events.append(f"stop {self.path}")

    monkeypatch.setattr(throughput, "Worker", Recorded)
    result = throughput.run_case(Case("pix2pix", 32, 2), ["eager", "gantk"], steps=2, warmup=1, threads=1, alone=True)
    assert events == ["start eager", "stop eager", "start gantk", "stop gantk"] and result["alone"]
    assert [len(result["paths"][path]["step_s"]) for path in ("eager", "gantk")] == [2, 2]
    printed = capsys.readouterr().out  # each path's median as soon as it is timed, in case the run is cut short
    for path in ("eager", "gantk"):
        assert f"{path}: median step {result['paths'][path]['median_step_s']:.4g} s" in printed


def test_a_path_alone_is_timed_step_by_step_profiled_and_recorded(benchmarks, monkeypatch, capsys, tmp_path):
    import torch

    import step_profile

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # --device auto then takes the CPU
    out = tmp_path / "profile.json"
    argv = ["gantk", "--case", "pix2pix-32-b2", "--steps", "3", "--out", str(out)]
    result = step_profile.main(argv)
    printed = capsys.readouterr().out
    times = printed.split("step ms", 1)[1].splitlines()[0]
    assert printed.startswith("gantk pix2pix-32-b2 step ms") and len(times.split(",")) == 3
    assert "Self CPU time total" in printed and "aten::convolution" in printed
    recorded = json.loads(out.read_text())
    assert recorded == result and recorded["command"] == "python benchmarks/step_profile.py " + " ".join(argv)
    assert {"date", "cpu", "load_average", "cuda"} <= set(recorded["machine"])
    assert (recorded["path"], recorded["case"], recorded["device"]) == ("gantk", "pix2pix-32-b2", "cpu")
    assert len(recorded["step_s"]) == 3 and recorded["median_step_s_from_step_3"] == recorded["step_s"][2]


def _usage_error(main, argv, capsys) -> str:
    """The message of the usage error ``main`` stops with on ``argv`` (argparse's exit status 2)."""
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    return capsys.readouterr().err


@pytest.fixture
def no_cuda_no_work(benchmarks, monkeypatch):
    """No CUDA device, and any measurement fails the test: the errors must come before the work."""
    import torch

    import throughput

    def measured(*args, **kwargs):
        raise AssertionError("the benchmark started measuring before refusing its arguments")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(throughput, "matmul_peaks", measured)
    monkeypatch.setattr(throughput, "run_case", measured)
    return throughput


def _throughput(throughput, monkeypatch):
    import sys

    def main(argv):
        monkeypatch.setattr(sys, "argv", ["throughput.py", "--no-loader", *argv])
        throughput.main()

    return main


def test_throughput_on_cuda_without_a_gpu_is_a_usage_error_before_any_work(no_cuda_no_work, monkeypatch, capsys):
    err = _usage_error(_throughput(no_cuda_no_work, monkeypatch), ["--device", "cuda"], capsys)
    assert "--device cuda: PyTorch sees no CUDA device on this machine; use --device cpu" in err


@pytest.mark.parametrize("cases", ["pix2pix256", "pix2pix-256-16", "pix2pix-256-b0", "cut-256-b1", "pix2pix-256-b1,"])
def test_a_malformed_case_names_the_expected_form_before_any_work(no_cuda_no_work, monkeypatch, capsys, cases):
    err = _usage_error(_throughput(no_cuda_no_work, monkeypatch), ["--cases", cases], capsys)
    assert "--cases: " in err and "expected RECIPE-SIZE-bBATCH, such as pix2pix-256-b16, with RECIPE one of pix2pix, seg, cyclegan" in err


def test_a_cuda_only_path_on_the_cpu_is_a_usage_error_before_any_work(no_cuda_no_work, monkeypatch, capsys):
    err = _usage_error(_throughput(no_cuda_no_work, monkeypatch), ["--cases", "pix2pix-32-b1", "--paths", "eager,gantk-graph"], capsys)
    assert "--paths gantk-graph: " in err and "run only on a GPU; use --device cuda, or leave them out" in err


def test_a_case_is_read_from_its_name(benchmarks):
    from cases import Case, parse_case

    assert parse_case("cyclegan-64-b4", "cuda") == Case("cyclegan", 64, 4, "cuda")
    with pytest.raises(ValueError, match=r"'seg-64' is not a case: expected RECIPE-SIZE-bBATCH"):
        parse_case("seg-64")


def test_step_profile_refuses_cuda_without_a_gpu_and_a_malformed_case(no_cuda_no_work, capsys):
    import step_profile

    err = _usage_error(step_profile.main, ["gantk", "--device", "cuda"], capsys)
    assert "--device cuda: PyTorch sees no CUDA device on this machine; use --device cpu or auto" in err
    assert "is not a case: expected RECIPE-SIZE-bBATCH" in _usage_error(step_profile.main, ["gantk", "--case", "pix2pix"], capsys)
    assert "runs only on a GPU" in _usage_error(step_profile.main, ["gantk-graph", "--device", "cpu"], capsys)


@pytest.mark.parametrize("script", ["throughput", "loader", "pix2pix_quality", "step_profile", "inference", "tiled_translate",
                                    "tiled_quality", "startup", "metric_checks", "demo_time", "report", "labels_to_image",
                                    "png_write"])
def test_every_option_of_a_benchmark_script_is_explained_and_its_description_is_whole(benchmarks, monkeypatch, script):
    """The parser each script builds, caught as it parses: a description of whole sentences, help on every option."""
    import argparse
    import importlib

    if script in ("inference", "tiled_translate"):
        pytest.importorskip("onnxruntime", reason="the onnx extra is not installed: pip install -e '.[onnx]'")

    class Built(Exception):
        pass

    def caught(parser, args=None, namespace=None):
        raise Built(parser)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", caught)
    module = importlib.import_module(script)
    with pytest.raises(Built) as built:
        module.main()
    parser = built.value.args[0]
    assert parser.description.rstrip().endswith("."), parser.description
    unexplained = [action.dest for action in parser._actions if not action.help]
    assert unexplained == [], f"{script}: options without help: {unexplained}"
    if script == "startup":
        assert "repeatable" in next(a.help for a in parser._actions if a.dest == "gantk")
    if script in ("throughput", "step_profile"):
        assert "CUDA only: gantk-graph" in next(a.help for a in parser._actions if a.dest in ("paths", "path"))


def test_the_inference_benchmark_runs_both_runtimes_on_an_exported_checkpoint(benchmarks, tmp_path):
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed: pip install -e '.[onnx]'")
    import inference

    out = tmp_path / "inference.json"
    argv = ["--size", "32", "--ngf", "8", "--batch-sizes", "1,2", "--runs", "2", "--warmup", "1", "--out", str(out)]
    results = inference.main(argv)
    assert [(r["mode"], r["batch_size"]) for r in results] == [("eval", 1), ("eval", 2), ("test", 1), ("test", 2)]
    assert all(set(r["median_s"]) == {"torch", "onnxruntime"} and r["onnxruntime_speedup"] > 0 for r in results)
    recorded = json.loads(out.read_text())
    assert recorded["results"] == results and recorded["command"] == "python benchmarks/inference.py " + " ".join(argv)
    assert {"date", "cpu", "load_average"} <= set(recorded["machine"])


def test_the_tiled_translation_benchmark_measures_each_way_in_a_process_of_its_own(benchmarks, tmp_path):
    import report
    import tiled_translate

    out = tmp_path / "tiled_translate.json"
    results = tiled_translate.main(["--crop", "32", "--ngf", "8", "--image", "96", "--tiles", "32,64", "--overlap", "8", "--runs", "1",
                                    "--threads", "1", "--out", str(out)])
    assert [(r["way"], r["tiles"]) for r in results] == [("whole", 1), ("tiles of 32, overlap 8", 16),
                                                           ("tiles of 64, overlap 8", 4)]
    assert all(r["median_s"] > 0 and r["peak_above_loaded_mib"] >= 0 for r in results)
    assert json.loads(out.read_text())["results"] == results
    assert "| 96² | tiles of 32, overlap 8 | 16 |" in "\n".join(report.render(out))


def test_the_png_benchmark_encodes_at_each_level_and_translates_at_gantks_and_zlibs_default(benchmarks, tmp_path):
    import png_write
    import report
    from helpers import smooth_image
    from torchvision.io import write_jpeg

    import gantk.data.io

    (tmp_path / "photos").mkdir()
    for i in range(3):
        write_jpeg(smooth_image(i, 300), str(tmp_path / "photos" / f"{i}.jpg"))
    out = tmp_path / "png_write.json"
    result = png_write.main(["--photos", str(tmp_path / "photos"), "--levels", "1,9", "--translate", "2", "--ngf", "8",
                             "--rounds", "2", "--threads", "1", "--out", str(out)])
    assert json.loads(out.read_text())["encoding"] == result["encoding"] and result["gantk_level"] == gantk.data.io.PNG_COMPRESSION
    photo, crop = result["encoding"]["photo"], result["encoding"]["crop 256"]
    assert [row["level"] for row in photo] == [1, 9] and photo[0]["total_mb"] > photo[1]["total_mb"] > crop[1]["total_mb"]
    assert gantk.data.io.PNG_COMPRESSION == 3  # restored after the translations at level 6
    assert result["translation"]["photos"] == 2 and [len(runs) for runs in result["translation"]["runs_s"].values()] == [2, 2]
    assert "| 9 |" in "\n".join(report.render(out)) and "`gantk translate --size original` of 2 photos" in "\n".join(report.render(out))


def test_the_tiled_quality_benchmark_compares_tiles_with_the_whole_photo(benchmarks, tmp_path):
    import report
    import tiled_quality
    from helpers import smooth_image

    from gantk.data import derive_pairs, write_png
    from gantk.train import TrainConfig, Trainer

    for i in range(3):
        write_png(smooth_image(i, 96)[:, :72], tmp_path / "photos" / f"photo{i}.png")
    derive_pairs(tmp_path / "photos", tmp_path / "pairs", size=32, crops_per_photo=1, test_fraction=0.34)
    run = Trainer(TrainConfig(data=str(tmp_path / "pairs"), out=str(tmp_path / "run"), load_size=36, crop_size=32, workers=0,
                              max_steps=1, gen_opt={"ngf": 8}, disc_opt={"ndf": 8}), progress=False).fit()
    out = tmp_path / "tiled_quality.json"
    results = tiled_quality.main([str(run), "--pairs", str(tmp_path / "pairs"), "--photos", str(tmp_path / "photos"),
                                  "--tiles", "32", "--overlap", "8", "--out", str(out)])
    ways = [(r["mode"], r["way"]) for r in results]
    assert ways == [("eval", "whole"), ("eval", "tiles of 32, overlap 8"),
                    ("test", "whole"), ("test", "whole, dropout seed 1"), ("test", "tiles of 32, overlap 8")]
    assert all(r["photos"] == 1 and r["short_side"] == 48 and 0 < r["l1_to_photo"] <= 1 for r in results)
    # (a U-Net of 5 levels has no dropout, so its other seed changes nothing)
    assert [r["from_whole"] > 0 for r in results if r["way"] != "whole, dropout seed 1"] == [False, True, False, True]
    assert json.loads(out.read_text())["results"] == results
    assert "| run (step 1) | test | whole, dropout seed 1 |" in "\n".join(report.render(out))


def test_the_report_names_the_default_adam_of_the_device_and_the_cuda_peak_it_has(benchmarks):
    """PyTorch's default Adam is the single-tensor for-loop on a CPU and foreach on CUDA; results from before the
    timed steps' CUDA peak was kept apart hold only the whole process's, warm-up included."""
    import copy

    import report

    cpu = json.loads((BENCHMARKS / "results" / "throughput.json").read_text())  # records no device: a machine without a GPU
    assert "| eager | plain eager loop, fp32, default (for-loop) Adam |" in "\n".join(report.throughput_tables(cpu))
    cuda = json.loads((BENCHMARKS / "results" / "throughput-cuda-b1.json").read_text())
    table = "\n".join(report.throughput_tables(cuda))
    assert "| eager | plain eager loop, fp32, default (foreach) Adam |" in table
    assert "; CUDA max allocated 8.81 GiB, warm-up included |" in table
    newer = copy.deepcopy(cuda)
    for case in newer["cases"]:
        for measured in case["paths"].values():
            measured["cuda_max_allocated_timed_bytes"] = 2**30
    assert "; CUDA max allocated 1.00 GiB in the timed steps, 8.81 GiB with warm-up |" in "\n".join(
        report.throughput_tables(newer))


def test_a_cuda_run_records_the_timed_steps_peak_apart_from_the_warm_up(benchmarks):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    from cases import Case
    from throughput import run_case

    result = run_case(Case("pix2pix", 32, 2, "cuda"), ["eager", "gantk"], steps=2, warmup=2)
    for measured in result["paths"].values():
        assert 0 < measured["cuda_max_allocated_timed_bytes"] <= measured["cuda_max_allocated_bytes"]


def test_the_benchmark_docs_tables_are_those_their_result_files_give(benchmarks):
    import report

    doc = BENCHMARKS.parent / "docs" / "benchmarks.md"
    text, changed = report.regenerated(doc.read_text(), BENCHMARKS / "results")
    assert changed == [] and text == doc.read_text(), f"run: python benchmarks/report.py --update {doc}"


def test_a_stale_generated_block_is_found_and_rewritten(benchmarks):
    import report

    marker = "<!-- generated by benchmarks/report.py from results/loader-b1.json -->"
    doc = f"before\n\n{marker}\n| an edited table |\n{report.END}\nafter\n"
    text, changed = report.regenerated(doc, BENCHMARKS / "results")
    assert changed == ["loader-b1.json"]
    table = "\n".join(report.render(BENCHMARKS / "results" / "loader-b1.json")).rstrip("\n")
    assert text == f"before\n\n{marker}\n{table}\n{report.END}\nafter\n"
    assert report.regenerated(text, BENCHMARKS / "results") == (text, [])


def test_report_check_fails_on_a_stale_block_and_update_mends_it(tmp_path):
    import subprocess
    import sys

    doc = tmp_path / "doc.md"
    doc.write_text("<!-- generated by benchmarks/report.py from results/loader-b1.json -->\n| stale |\n"
                   "<!-- end of generated tables -->\n")
    report = [sys.executable, str(BENCHMARKS / "report.py")]
    check = subprocess.run([*report, "--check", str(doc)], capture_output=True, text=True)
    assert check.returncode == 1 and "loader-b1.json is out of date" in check.stdout and "| stale |" in doc.read_text()
    update = subprocess.run([*report, "--update", str(doc)], capture_output=True, text=True)
    assert update.returncode == 0 and "| stale |" not in doc.read_text() and "**Data loader**" in doc.read_text()
    assert subprocess.run([*report, "--check", str(doc)], capture_output=True, text=True).returncode == 0


@pytest.mark.parametrize("marker, refusal", [
    ("results/missing.json -->", "there is no result file"),
    ("results/threads-1.json -->", "no table is made from threads-1.json"),
    ("results/throughput-cyclegan.json (loader) -->", "throughput-cyclegan.json holds no loader measurement"),
    ("results/loader-b1.json (cases) -->", "no table (cases) is made from loader-b1.json"),
    ("results/loader-b1.json-->", "names report.py but is not a marker"),
])
def test_report_names_a_marker_it_cannot_fill(benchmarks, marker, refusal):
    import report

    with pytest.raises(SystemExit, match=re.escape(refusal)):
        report.regenerated(f"<!-- generated by benchmarks/report.py from {marker}\n{report.END}\n", BENCHMARKS / "results")


def test_report_needs_an_end_after_the_last_block(benchmarks):
    import report

    with pytest.raises(SystemExit, match="has no '<!-- end of generated tables -->' after it"):
        report.regenerated("<!-- generated by benchmarks/report.py from results/loader-b1.json -->\n| table |\n", BENCHMARKS / "results")


def test_the_startup_benchmark_times_each_command_of_each_checkout(benchmarks, tmp_path):
    import subprocess
    import sys

    import report

    out = tmp_path / "startup.json"
    subprocess.run([sys.executable, str(BENCHMARKS / "startup.py"), "--runs", "1", "--out", str(out)], check=True,
                   capture_output=True)
    result = json.loads(out.read_text())
    (timed,) = result["checkouts"].values()
    assert set(timed) == {"gantk --help", "gantk list", "import gantk", "import torch"}
    assert all(len(t["s"]) == 1 and t["best_s"] > 0 for t in timed.values())
    assert "| `gantk --help` | " in "\n".join(report.render(out))


def test_the_segmentation_pages_table_is_the_one_its_result_files_give(benchmarks):
    from segmentation.benchmark import RESULTS, table

    page = (BENCHMARKS.parent / "docs" / "segmentation.md").read_text(encoding="utf-8")
    assert table(RESULTS) + "\n" in page


@pytest.mark.parametrize("results", sorted((BENCHMARKS / "ablation" / "results").glob("*.md")), ids=lambda path: path.stem)
def test_the_ablation_pages_tables_are_the_ones_their_result_files_give(results):
    page = (BENCHMARKS.parent / "docs" / "ablation.md").read_text(encoding="utf-8")
    rows = [line for line in results.read_text(encoding="utf-8").splitlines() if line.startswith("|")]
    assert rows and not [row for row in rows if row not in page]


def test_the_segmentation_benchmark_scores_as_gantk_eval_at_the_masks_own_size(benchmarks, tmp_path):
    """Two implementations of scoring at the labels' resolution, the benchmark's own and ``evaluate(size="original")``,
    agree on one model."""
    from helpers import write_segmentation
    from segmentation.benchmark import evaluate as benchmark_scores

    from gantk.evaluate import evaluate
    from gantk.train import TrainConfig, Trainer

    data = tmp_path / "seg"
    for split, count in (("train", 4), ("test", 3)):
        write_segmentation(data / split, count=count, size=48)
    run = Trainer(TrainConfig(recipe="seg", data=str(data), out=str(tmp_path / "run"), load_size=36, crop_size=32, batch_size=2,
                              max_steps=2, workers=0, gen_opt={"ngf": 8}, disc_opt={"ndf": 8}), progress=False).fit()
    ours = evaluate(run, data, eval_mode=True, size="original", progress=False)["metrics"]
    theirs = benchmark_scores(run, data, 32)
    assert ours["foreground_iou"] == pytest.approx(theirs["iou"])
    assert ours["pixel_accuracy"] == pytest.approx(theirs["pixel_accuracy"])
    assert ours["rmse"] == pytest.approx(theirs["rmse"], rel=1e-5)


def test_the_metric_checks_measure_the_resize_and_the_paired_kid(benchmarks, tmp_path):
    from gantk.metrics.fid import find_inception_weights

    if find_inception_weights() is None:
        pytest.skip("no InceptionV3 weights: the fid extra is not installed")
    import metric_checks
    from helpers import smooth_image

    from gantk.data.io import write_png

    for i in range(4):
        write_png(smooth_image(i, 80)[:, :, :72], tmp_path / "photos" / f"{i}.png")
    result = metric_checks.main(["--photos", str(tmp_path / "photos"), "--resize-photos", "3", "--sizes", "64,128", "--crop", "48",
                                 "--out", str(tmp_path / "checks.json")])
    assert [(r["size"], r["photos"]) for r in result["resize"]] == [(64, 3), (128, 3)]
    assert all(r["fid_tf_against_torch_bilinear"] > 0 for r in result["resize"])  # the resize moves FID
    kid = result["kid_on_pairs"]
    assert kid["images"] == 8 and kid["kid"] < kid["kid_matched_pairs_left_out"] and kid["kid_of_the_photos_against_themselves"] < 0
    assert json.loads((tmp_path / "checks.json").read_text())["kid_on_pairs"] == kid


def test_the_demo_timing_runs_the_readmes_main_job(benchmarks, tmp_path):
    import demo_time

    result = demo_time.main(["--max-steps", "2", "--threads", "1", "--out", str(tmp_path / "demo.json")])
    assert result["steps"] == 2 and result["seconds"] > 0 and result["threads"] == 1
    assert json.loads((tmp_path / "demo.json").read_text())["seconds"] == result["seconds"]


@pytest.mark.filterwarnings("ignore:.*is not the verified InceptionV3 of published FIDs")
def test_the_labels_to_image_benchmark_trains_and_scores_each_generator_in_both_modes(benchmarks, tmp_path):
    """A tiny run on generated masks (no shared data): each generator trains, is scored in the paper's test mode and in
    eval mode, and the JSON holds what the docs' table is made from."""
    import labels_to_image
    import report
    from helpers import write_segmentation, write_stand_in_inception

    data = tmp_path / "seg"
    for split, count in (("train", 4), ("test", 3)):
        write_segmentation(data / split, count=count, size=72)
    out = tmp_path / "labels-to-image.json"
    argv = ["--data", str(data), "--steps", "2", "--seeds", "0", "--batch-size", "2", "--size", "64", "--load-size", "64",
            "--unet-ngf", "4", "--spade-ngf", "2", "--spade-hidden", "8", "--ndf", "4", "--workers", "0",
            "--inception-weights", str(write_stand_in_inception(tmp_path / "stand-in.pt")), "--out", str(out)]
    result = labels_to_image.main(argv)
    recorded = json.loads(out.read_text())
    assert recorded == json.loads(json.dumps(result)) and recorded["command"] == "python benchmarks/labels_to_image.py " + " ".join(argv)
    assert {"date", "cpu", "load_average"} <= set(recorded["machine"])
    assert [(run["generator"], run["seed"]) for run in recorded["runs"]] == [("unet", 0), ("spade", 0)]
    for run in recorded["runs"]:
        assert run["parameters_G"] > 0 and run["parameters_D"] > 0 and run["train_s"] > 0 and run["run_dir"] == "(temporary)"
        for mode in ("paper", "eval"):
            scored = run["scores"][mode]
            assert scored["images"] == 3 and scored["step"] == 2
            assert {"l1", "psnr", "ssim", "fid", "kid"} <= set(scored["metrics"])
    assert recorded["runs"][0]["gen_opt"]["num_downs"] == 6  # the recipe's U-Net, as deep as 64 px crops allow
    assert recorded["runs"][1]["gen_opt"] == {"ngf": 2, "hidden": 8, "norm": "batch"}  # no dropout option: SPADE has none
    assert recorded["runs"][0]["scores"]["eval"]["mode"] == "eval" != recorded["runs"][0]["scores"]["paper"]["mode"]
    assert set(recorded["summary"]) == {"unet", "spade"} and recorded["summary"]["spade"]["eval"]["l1"]["min"] > 0
    assert 0 < recorded["constant_guess"]["l1"] < 1
    table = "\n".join(report.render(out))
    assert "| unet | 0 | paper |" in table and "| spade (1 seed) | eval |" in table


def test_the_labels_to_image_benchmark_skips_without_its_data(benchmarks, tmp_path, capsys):
    import labels_to_image

    assert labels_to_image.main(["--data", str(tmp_path / "absent"), "--out", str(tmp_path / "out.json")]) is None
    assert "skipped: no segmentation data in" in capsys.readouterr().out and not (tmp_path / "out.json").exists()
