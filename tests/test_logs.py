"""The metrics CSV of a run: columns that appear late, resume truncation, and the loss-curve columns."""

import csv
import sys
import types
import warnings

import pytest
import torch

from gantk.train.logs import LossWindow, MetricsLog, read_metrics, tensorboard_writer
from gantk.train.plots import loss_columns
from helpers import DEVICES


def read_raw(path):
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_late_key_adds_a_column_left_empty_before(tmp_path):
    path = tmp_path / "metrics.csv"
    log = MetricsLog(path)
    log.write({"step": 1, "D/bce": 0.5})
    log.write({"step": 2, "D/bce": 0.4, "G/l1": 3.0})
    log.write({"step": 3, "D/bce": 0.3})
    assert read_raw(path) == [
        {"step": "1", "D/bce": "0.5", "G/l1": ""},
        {"step": "2", "D/bce": "0.4", "G/l1": "3.0"},
        {"step": "3", "D/bce": "0.3", "G/l1": ""},
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.csv"]
    assert loss_columns(read_metrics(path)) == ["D/bce", "G/l1"]


def test_resume_drops_rows_after_the_resumed_step(tmp_path):
    path = tmp_path / "metrics.csv"
    log = MetricsLog(path)
    for step in (1, 2, 3):
        log.write({"step": step, "D/bce": step / 10})
    MetricsLog(path, resume_step=2).write({"step": 3, "D/bce": 0.9, "G/l1": 1.0})
    assert [(r["step"], r["D/bce"], r["G/l1"]) for r in read_raw(path)] == [("1", "0.1", ""), ("2", "0.2", ""), ("3", "0.9", "1.0")]


def test_an_empty_metrics_file_is_resumed_without_a_warning(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("")  # as a run stopped before its first row leaves it
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MetricsLog(path, resume_step=2).write({"step": 3, "D/bce": 0.9})
    assert read_raw(path) == [{"step": "3", "D/bce": "0.9"}]


def test_plot_errors_name_the_problem(tmp_path):
    from gantk.errors import GantkError
    from gantk.train.plots import plot_losses

    metrics = tmp_path / "metrics.csv"
    metrics.write_text("step,epoch,lr,G/l1\n1,0,0.0002,0.5\ngarbage\n")
    with pytest.raises(GantkError, match="has a damaged row at line 3 "):
        plot_losses(metrics, tmp_path / "curves.png")
    for text, problem in ((b"step,G/l1\n1,\xf0\x28\n", "it is not CSV text"), (b"step\n1\n2\n", r"has no loss columns \(only step\)")):
        metrics.write_bytes(text)
        with pytest.raises(GantkError, match=problem):
            plot_losses(metrics, tmp_path / "curves.png")
    (tmp_path / "run" / "metrics.csv").mkdir(parents=True)
    with pytest.raises(GantkError, match="metrics.csv is not a file: pass a run directory"):
        plot_losses(tmp_path / "run" / "metrics.csv", tmp_path / "curves.png")
    with pytest.raises(GantkError, match="ending in .png"):
        plot_losses(metrics, tmp_path / "curves.txt")
    metrics.write_text("garbage,,,\n")  # not "no rows yet": no run wrote this
    with pytest.raises(GantkError, match="is not a run's metrics file: its header has no 'step' column"):
        plot_losses(metrics, tmp_path / "curves.png")
    metrics.write_text("step,epoch,lr,G/l1\n")
    with pytest.raises(GantkError, match="has no rows yet"):
        plot_losses(metrics, tmp_path / "curves.png")


def test_sample_grid_shows_four_samples_a_line_each_mapped_from_minus_one_one(tmp_path):
    from torchvision.io import decode_image

    from gantk.train.logs import save_sample_grid

    inputs, outputs = torch.full((6, 3, 8, 8), -1.0), torch.full((6, 3, 8, 8), 1.0)
    outputs[3] = 0.0
    save_sample_grid([inputs, outputs], tmp_path / "grid.png")
    grid = decode_image(str(tmp_path / "grid.png"))
    assert grid.shape == (3, 2 + 4 * 10, 2 + 2 * 10)  # 4 of 6 samples, 2 px padding
    assert grid[:, 2, 2].tolist() == [0, 0, 0] and grid[:, 2, 12].tolist() == [255, 255, 255]
    assert grid[:, 32, 12].tolist() == [128, 128, 128]  # sample 4's output, 0 -> mid gray


@pytest.mark.parametrize("device", DEVICES)
def test_losses_carried_from_a_checkpoint_join_those_of_the_run_device(device):
    window = LossWindow()
    window.add({"G/l1": torch.tensor(3.0, device=device)})
    window.carry({"G/l1": [1.0, 2.0]})  # as a checkpoint holds them, taken before the resumed run's
    assert window.means() == {"G/l1": 2.0} and window.state() == {"G/l1": [1.0, 2.0, 3.0]}


def test_loss_curves_have_a_panel_per_network_and_points_only_where_logged(tmp_path, monkeypatch):
    from gantk.train import plots

    figures, made = [], plots.figure

    def recorded(*args, **kwargs):
        fig, axes = made(*args, **kwargs)
        figures.append(fig)
        return fig, axes

    monkeypatch.setattr(plots, "figure", recorded)
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("step,epoch,lr,D/bce,G/bce,G/l1\n1,0,0.0002,0.7,0.6,\n2,0,0.0002,0.6,0.7,0.5\n")
    assert plots.plot_losses(metrics, tmp_path / "curves.PNG").is_file()
    panels = figures[0].axes
    assert [panel.get_title() for panel in panels] == ["D", "G"]
    assert {line.get_label(): list(line.get_xdata()) for line in panels[1].lines} == {"G/bce": [1, 2], "G/l1": [2]}
    assert {line.get_label(): line.get_marker() for line in panels[1].lines} == {"G/bce": "None", "G/l1": "o"}  # one point: a dot


def test_plots_leave_the_callers_matplotlib_backend_alone(tmp_path):
    import subprocess
    import sys

    script = """
import sys, matplotlib
matplotlib.use("pdf")
from gantk.train.plots import plot_losses
metrics = sys.argv[1] + "/metrics.csv"
open(metrics, "w").write("step,epoch,lr,G/l1\\n1,0,0.0002,0.5\\n")
plot_losses(metrics, sys.argv[1] + "/curves.png")
print(matplotlib.get_backend())
"""
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "pdf" and (tmp_path / "curves.png").stat().st_size > 0


def test_a_resumed_run_purges_the_tensorboard_events_after_its_checkpoint(tmp_path, monkeypatch):
    made = []
    fake = types.ModuleType("torch.utils.tensorboard")
    fake.SummaryWriter = lambda log_dir, purge_step=None: made.append((log_dir, purge_step))
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", fake)
    tensorboard_writer(tmp_path)
    tensorboard_writer(tmp_path, step=40)
    assert [purge for _, purge in made] == [None, 40]


def test_a_plot_replaces_a_link_at_its_path_and_leaves_its_target_alone(tmp_path):
    from gantk.train.plots import plot_losses

    metrics, precious = tmp_path / "metrics.csv", tmp_path / "precious.txt"
    metrics.write_text("step,epoch,lr,G/l1\n1,0,0.0002,0.5\n2,0,0.0002,0.4\n")
    precious.write_text("keep me")
    (tmp_path / "loss_curves.png").symlink_to(precious)
    plot_losses(metrics, tmp_path / "loss_curves.png")
    assert precious.read_text() == "keep me"
    assert not (tmp_path / "loss_curves.png").is_symlink() and (tmp_path / "loss_curves.png").read_bytes().startswith(b"\x89PNG")


def test_a_loss_that_stops_being_finite_is_marked_where_its_line_ends(tmp_path, monkeypatch):
    from gantk.train import plots

    drawn = []
    monkeypatch.setattr(plots, "save_png", lambda fig, path, dpi: drawn.append(fig))
    (tmp_path / "metrics.csv").write_text("step,epoch,lr,D/bce,G/bce\n1,0,0.0002,0.7,0.9\n2,0,0.0002,0.6,1.1\n3,0,0.0002,nan,inf\n")
    plots.plot_losses(tmp_path / "metrics.csv", tmp_path / "curves.png")
    labels = [text.get_text() for axis in drawn[0].axes for text in axis.get_legend().get_texts()]
    assert labels == ["D/bce", "D/bce first not finite at step 3", "G/bce", "G/bce first not finite at step 3"]
