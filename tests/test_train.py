"""The shared trainer end to end on tiny data (CPU, 32 px, a few steps)."""

import copy as copy_module
import csv
import errno
import functools
import itertools
import math
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import types
import warnings
import zipfile
from pathlib import Path

import pytest
import torch

from gantk.data import check_dataset
from gantk.errors import CheckpointError, DataError, GantkError, GantkWarning, OptionError, SpecError
from gantk.train import TrainConfig, Trainer
from gantk.train import checkpoint as ckpt
from gantk.train import trainer as trainer_module
from gantk.train.config import default_workers
from gantk.train.interrupt import WorkerStopSignals
from gantk.train.logs import read_metrics
from helpers import (
    components_with_generator, exploding_components, fit_recording_optimizer_steps, flip_a_bit, learned_objective_components,
    signalled_once_training, smooth_image, train_interrupted_then_resumed, without_timings, write_paired, write_unaligned,
)

TINY = dict(load_size=36, crop_size=32, batch_size=2, workers=0, log_every=1, sample_every=2, checkpoint_every=2,
            gen_opt={"ngf": 8}, disc_opt={"ndf": 8})


def tiny_config(data, out, **overrides):
    return TrainConfig(data=str(data), out=str(out), **{**TINY, **overrides})


def read_rows(run_dir):
    with (run_dir / "metrics.csv").open() as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def pairs(tmp_path):
    return write_paired(tmp_path / "pairs")


def test_pix2pix_run_writes_everything(pairs, tmp_path):
    run = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=4), progress=False).fit()
    rows = read_rows(run)
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert {"D/bce", "G/bce", "G/l1", "lr", "images_per_s"} <= set(rows[0])
    assert all(float(r["G/l1"]) > 0 for r in rows)
    assert [p.name for p in ckpt.list_checkpoints(run)] == ["checkpoint-00000002.pt", "checkpoint-00000004.pt"]
    assert (run / "samples" / "step-00000004.png").is_file()
    assert (run / "loss_curves.png").is_file()
    config = (run / "config.toml").read_text()
    assert 'gen = "unet"' in config and "num_downs = 5" in config  # depth fitted to 32 px


def test_training_reduces_l1_on_a_learnable_mapping(pairs, tmp_path):
    config = tiny_config(pairs, tmp_path / "run", max_steps=40, disc="none", loss="l1", lr=2e-3, checkpoint_every=40)
    rows = read_rows(Trainer(config, progress=False).fit())
    first = sum(float(r["G/l1"]) for r in rows[:5]) / 5
    last = sum(float(r["G/l1"]) for r in rows[-5:]) / 5
    assert last < 0.7 * first


def test_resume_without_a_discriminator(pairs, tmp_path):
    Trainer(tiny_config(pairs, tmp_path / "run", max_steps=2, disc="none", loss="l1"), progress=False).fit()
    trainer = Trainer.resume(tmp_path / "run", {"max_steps": 3}, progress=False)
    trainer.fit()
    assert trainer.step == 3 and list(trainer.system.networks) == ["G"]


def test_checkpoint_rebuilds_model_alone(pairs, tmp_path):
    run = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=2), progress=False).fit()
    system, payload = ckpt.system_from_checkpoint(run)
    assert payload["step"] == 2 and payload["gantk_version"]
    assert payload["system"]["gen"] == "unet" and payload["system"]["channels"] == {"A": 3, "B": 3}
    system.eval()
    out = system.translate(torch.zeros(1, 3, 32, 32))
    assert out.shape == (1, 3, 32, 32) and out.abs().max() <= 1


def resume_losses(pairs, out, stop_at=None, log_every=1):
    # 64 px: the fitted U-Net (6 levels) has a dropout level, so the RNG state must be restored too
    config = tiny_config(pairs, out, max_steps=7, checkpoint_every=2, flip=True, load_size=72, crop_size=64, log_every=log_every)
    train_interrupted_then_resumed(config, stop_at)
    return without_timings(read_rows(out))


@pytest.mark.parametrize("log_every, rows", [(1, 7), (3, 3)])
def test_resume_reproduces_an_uninterrupted_run(tmp_path, log_every, rows):
    pairs = write_paired(tmp_path / "pairs", size=72)
    straight = resume_losses(pairs, tmp_path / "straight", log_every=log_every)
    # 3 steps per epoch: resumes mid-epoch from the checkpoint at step 2, step 3 is lost and redone;
    # with log_every 3, the row of step 3 averages steps 1 and 2 from the checkpoint and the redone step 3
    resumed = resume_losses(pairs, tmp_path / "resumed", stop_at=3, log_every=log_every)
    assert len(straight) == rows
    assert resumed == straight


def test_new_run_refuses_a_directory_with_checkpoints(pairs, tmp_path):
    run = tmp_path / "my run"
    Trainer(tiny_config(pairs, run, max_steps=2), progress=False).fit()
    with pytest.raises(OptionError, match=f"pass --resume {re.escape(repr(str(run)))} "  # quoted for a shell
                                          rf"\(Trainer.resume\({re.escape(repr(str(run)))}\) in Python\) to continue it"):
        Trainer(tiny_config(pairs, run, max_steps=2), progress=False).fit()


def test_a_trainer_refuses_callbacks_it_cannot_call_and_a_config_that_is_no_trainconfig(pairs, tmp_path):
    def two_parameters(step, logged):
        pass

    class Callback:
        def __call__(self, trainer, step, logged, extra=None):
            pass

    config = tiny_config(pairs, tmp_path / "run", max_steps=2)
    with pytest.raises(OptionError, match=r"callback 'test_.*two_parameters'\(step, logged\) cannot be called as "
                                          r"callback\(trainer, step, logged\)"):
        Trainer(config, callbacks=[two_parameters])
    with pytest.raises(OptionError, match=r"callbacks is a list of callables, got the callable .*: pass callbacks=\[it\]"):
        Trainer(config, callbacks=two_parameters)
    with pytest.raises(OptionError, match=r"callbacks must be callables, got 3"):
        Trainer(config, callbacks=[3])
    with pytest.raises(OptionError, match=r"config must be a gantk.train.TrainConfig, got dict"):
        Trainer({"data": str(pairs)})
    with pytest.raises(OptionError, match=r"resume_from is a checkpoint's contents .*, got PosixPath: to continue the run "
                                          r"in a folder, call Trainer.resume\(run_dir\)"):
        Trainer(config, resume_from=tmp_path / "run")
    kept = Trainer(config, callbacks=[Callback(), lambda *args: None, print, max]).callbacks  # max: no signature to check
    assert kept[0].__class__ is Callback and kept[-1] is max
    assert not (tmp_path / "run").exists()


def test_a_run_started_from_another_runs_weights_trains_from_them_afresh(pairs, tmp_path):
    first = Trainer(tiny_config(pairs, tmp_path / "first", max_steps=2), progress=False).fit()
    trained = ckpt.load_checkpoint(first)["system_state"]
    trainer = Trainer(tiny_config(pairs, tmp_path / "tuned", max_steps=1, lr=1e-4, init_from=first), progress=False)
    system = trainer.build_system(trainer.open_data()[0], torch.device("cpu"))
    assert system.state_dict().keys() == trained.keys()
    for key, value in system.state_dict().items():
        torch.testing.assert_close(value, trained[key], rtol=0, atol=0, msg=key)
    trainer = Trainer(tiny_config(pairs, tmp_path / "tuned", max_steps=1, lr=1e-4, init_from=first), progress=False)
    tuned = ckpt.load_checkpoint(trainer.fit())
    assert tuned["step"] == 1 and tuned["train_config"]["init_from"] == str(first / "checkpoint-00000002.pt")  # the file read
    assert tuned["optimizers"]["G"]["state"][0]["step"] == 1  # Adam started afresh
    with pytest.raises(OptionError, match=rf"--init-from {first}/checkpoint-00000002.pt holds other weights for G than this "
                                          r"run's network \(\d+ size mismatches, e.g. model.\S+: \[8, .*\] in the checkpoint, "
                                          r"\[16, .*\] here\): train with the --gen, --disc and network options.* They "
                                          r"differ in: gen_opt\.ngf: 8 then, 16 now\.$"):
        Trainer(tiny_config(pairs, tmp_path / "wider", max_steps=1, gen_opt={"ngf": 16}, init_from=first), progress=False).fit()
    alone = Trainer(tiny_config(pairs, tmp_path / "alone", max_steps=1, disc="none", loss="l1", init_from=first), progress=False)
    with pytest.warns(GantkWarning, match=r"--init-from .*checkpoint-00000002.pt: the checkpoint's D is not used"):
        system = alone.build_system(alone.open_data()[0], torch.device("cpu"))
    torch.testing.assert_close(system.networks["G"].state_dict(), {k[len("networks.G."):]: v for k, v in trained.items()
                                                                  if k.startswith("networks.G.")}, rtol=0, atol=0)
    with pytest.raises(CheckpointError, match=rf"--init-from: .*{pairs}"):
        Trainer(tiny_config(pairs, tmp_path / "none", max_steps=1, init_from=pairs), progress=False).fit()


def test_resume_with_other_architecture_is_a_clear_error(pairs, tmp_path):
    run = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=2), progress=False).fit()
    payload = ckpt.load_checkpoint(run)
    with pytest.raises(CheckpointError, match="different settings.*gen_opt"):
        Trainer(tiny_config(pairs, run, max_steps=4, gen_opt={"ngf": 4}), resume_from=payload, progress=False).fit()
    with pytest.raises(CheckpointError, match="different settings .*disc: 'patch70' then, 'pixel' now"):
        Trainer(tiny_config(pairs, run, max_steps=4, disc="pixel"), resume_from=payload, progress=False).fit()
    system = ckpt.system_from_config({**payload["system"], "gen_opt": {"ngf": 4, "num_downs": 5}})
    with pytest.raises(CheckpointError, match=r"another architecture .* \(\d+ size mismatches, e\.g\. networks\.G\.\S+: "
                                              r"\[8, 3, 4, 4\] in the checkpoint, \[4, 3, 4, 4\] here\)") as error:
        ckpt.load_system_state(system, payload["system_state"], payload["path"])
    assert len(str(error.value)) < 400
    system = ckpt.system_from_config({**payload["system"], "gen": "resnet6", "gen_opt": {"ngf": 8}})
    with pytest.raises(CheckpointError, match=r"\(\d+ missing keys, e\.g\. networks\.G\.\S+; \d+ unexpected keys, e\.g\. "):
        ckpt.load_system_state(system, payload["system_state"], payload["path"])


def test_a_resume_of_a_run_that_went_on_meanwhile_is_refused(pairs, tmp_path):
    import shutil

    run = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=2), progress=False).fit()
    resumed = Trainer.resume(run, {"max_steps": 4}, progress=False)
    shutil.copy(run / "checkpoint-00000002.pt", run / "checkpoint-00000003.pt")  # what a trainer still running would write
    with pytest.raises(CheckpointError, match=r"went on while this resume read its checkpoint checkpoint-00000002.pt: its "
                                              r"newest is now checkpoint-00000003.pt, so another process trained it"):
        resumed.fit()
    assert sorted(p.name for p in run.glob("checkpoint-*.pt")) == ["checkpoint-00000002.pt", "checkpoint-00000003.pt"]


def test_a_run_read_while_its_trainer_prunes_gives_its_newest_whole_checkpoint(pairs, tmp_path, monkeypatch):
    run = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=2), progress=False).fit()
    newest = run / "checkpoint-00000002.pt"
    real_resolve, real_read = ckpt.resolve_checkpoint, ckpt.read_weights_only
    pruned = iter([run / "checkpoint-00000001.pt"])  # listed as the newest, then removed before it was opened
    monkeypatch.setattr(ckpt, "resolve_checkpoint", lambda path: next(pruned, None) or real_resolve(path))
    assert ckpt.load_checkpoint(run)["path"] == str(newest)

    def pruned_while_read(handle, map_location):  # the trainer removes the file once it is open, before it is checked
        newest.unlink()
        return real_read(handle, map_location)

    monkeypatch.setattr(ckpt, "resolve_checkpoint", real_resolve)
    monkeypatch.setattr(ckpt, "read_weights_only", pruned_while_read)
    assert ckpt.load_checkpoint(run)["step"] == 2 and not newest.exists()
    monkeypatch.setattr(ckpt, "resolve_checkpoint", lambda path: run / "checkpoint-00000009.pt")  # each newest is gone
    with pytest.raises(CheckpointError, match=f"each of the {ckpt.PRUNED_TRIES} newest checkpoints of {re.escape(str(run))} "
                                              "was removed before it could be read"):
        ckpt.load_checkpoint(run)


def test_a_checkpoint_copied_from_another_run_or_renamed_is_not_resumed(pairs, tmp_path):
    import shutil

    run = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=2), progress=False).fit()
    other = Trainer(tiny_config(pairs, tmp_path / "other", max_steps=2, seed=1, loss="lsgan+l1"), progress=False).fit()
    kept = sorted(path.name for path in run.iterdir())
    shutil.copy(run / "checkpoint-00000002.pt", tmp_path / "own-checkpoint-00000002.pt")
    shutil.copy(other / "checkpoint-00000002.pt", run / "checkpoint-00000009.pt")
    with pytest.raises(CheckpointError, match=r"checkpoint-00000009.pt holds step 2, not the step 9 its name says: it was renamed or "
                                              r"copied from another run; move it out of .*run to resume from the run's own checkpoints"):
        Trainer.resume(run, {"max_steps": 4}, progress=False)
    (run / "checkpoint-00000009.pt").rename(run / "checkpoint-00000002.pt")  # another run's, under this run's name
    with pytest.raises(CheckpointError, match=r"checkpoint .*checkpoint-00000002.pt differs from the run's config.toml in .*run: it "
                                              r"has --loss lsgan\+l1; --seed 1, where config.toml has --loss bce\+l1@100; --seed 0\. If "
                                              r"config.toml was edited, restore it or delete it \(resuming writes it again from the "
                                              r"checkpoint\); if the checkpoint was copied from another run, move it out of .*run to "
                                              r"resume from the run's own\.$"):
        Trainer.resume(run, {"max_steps": 4}, progress=False)
    assert sorted(path.name for path in run.iterdir()) == kept  # nothing of the run replaced
    lr = Trainer(tiny_config(pairs, tmp_path / "lr", max_steps=2, lr=1e-4, direction="BtoA"), progress=False).fit()
    shutil.copy(lr / "checkpoint-00000002.pt", run / "checkpoint-00000002.pt")  # any setting a resume keeps tells the runs apart
    with pytest.raises(CheckpointError, match=r"has --direction BtoA; --lr 0.0001, where config.toml has --direction AtoB; "
                                              r"--lr 0.0002\. "):
        Trainer.resume(run, {"max_steps": 4}, progress=False)
    config = run / "config.toml"
    config.write_text(re.sub(r"^lr = .*\n", "", config.read_text(), flags=re.M))  # edited by hand
    with pytest.raises(CheckpointError, match=r"has --direction BtoA; --lr 0.0001, where config.toml has --direction AtoB; no --lr\. "):
        Trainer.resume(run, {"max_steps": 4}, progress=False)
    (run / "checkpoint-00000002.pt").unlink()  # the run's own checkpoint, its config.toml emptied (as a crash may leave it)
    shutil.copy(tmp_path / "own-checkpoint-00000002.pt", run / "checkpoint-00000002.pt")
    config.write_text("")
    assert Trainer.resume(run, {"max_steps": 3}, progress=False).fit() == run
    assert "recipe = " in config.read_text()  # written again from the checkpoint


def test_a_run_stopped_after_a_resume_rewrote_its_settings_resumes_from_its_older_checkpoint(tmp_path):
    """The resumed run writes its config.toml with settings it filled in (the detected format): its checkpoints,
    written before, are still its own."""
    from helpers import write_segmentation

    class Crash(Exception):
        pass

    def crash(trainer, step, logged):
        raise Crash

    data = write_segmentation(tmp_path / "seg", count=4, num_classes=3)
    run = Trainer(tiny_config(data, tmp_path / "run", recipe="seg", max_steps=2), progress=False).fit()
    with pytest.raises(Crash):
        Trainer.resume(run, {"max_steps": 4}, callbacks=[crash], progress=False).fit()
    assert Trainer.resume(run, {"max_steps": 4}, progress=False).fit() == run


def test_resume_a_checkpoint_from_before_later_keys(pairs, tmp_path):
    run = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=2), progress=False).fit()
    path = ckpt.list_checkpoints(run)[-1]
    payload = torch.load(path, weights_only=True)
    del payload["system"]["n_critic"], payload["train_config"]["n_critic"], payload["plugins"], payload["process_extra_state"]
    del payload["system"]["gen_defaults"], payload["system"]["disc_defaults"]
    del payload["system"]["loss_weights"], payload["system"]["loss_defaults"]
    torch.save(payload, path)  # as gantk saved it before these keys
    trainer = Trainer.resume(run, {"max_steps": 3}, progress=False)
    trainer.fit()
    assert trainer.step == 3


@pytest.mark.parametrize(("cpus", "advice"), [(2, "raise --workers (now 0; this machine has 2 CPUs)"),
                                               (1, "the loader has every CPU (0 workers): images stored at --load-size")])
def test_log_rows_hold_the_share_of_time_spent_waiting_for_data(pairs, tmp_path, monkeypatch, cpus, advice):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
    batches = Trainer._batches

    def slow(self, loader, parts):
        for batch in batches(self, loader, parts):
            time.sleep(0.1)  # a loader far slower than the step
            yield batch

    monkeypatch.setattr(Trainer, "_batches", slow)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = read_rows(Trainer(tiny_config(pairs, tmp_path / "run", max_steps=24, log_every=4, sample_every=24,
                                             checkpoint_every=24), progress=False).fit())
    assert len(rows) == 6 and all(0.25 < float(row["data_wait"]) <= 1 for row in rows)
    # Once, over 10 steps or more after the first row (which waits for the loader to start too).
    told = [str(w.message) for w in caught if "waited for its next batch" in str(w.message)]
    assert len(told) == 1 and "over the last 12 steps" in told[0] and advice in told[0], told


@pytest.mark.parametrize(("local_processes", "advice"), [(1, "raise --workers (now 2; this machine has 16 CPUs)"),
                                                          (8, "the loader has every CPU (2 workers)")])
def test_the_data_wait_advice_counts_the_cpus_each_training_process_has(monkeypatch, local_processes, advice):
    """Under torchrun the processes of a machine share its CPUs, as the default worker count shares them."""
    from gantk.torchrun import ProcessInfo
    from gantk.train.health import RunHealth

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    health = RunHealth(TrainConfig(), resumed=False)
    log = types.SimpleNamespace(steps_since_first=12, waited_since_first=6.0, time_since_first=10.0)
    process = ProcessInfo(0, local_processes, 0, local_processes)
    with pytest.warns(GantkWarning, match="waited for its next batch 60% of the time") as caught:
        health.warn_if_waiting_for_data(log, types.SimpleNamespace(process=process, device=torch.device("cpu")),
                                        workers=default_workers(8))  # 2: eight processes' share
    assert advice in str(caught[0].message)


def test_a_run_that_keeps_up_with_its_loader_is_not_told_to_raise_workers(pairs, tmp_path, monkeypatch):
    first = []

    def instant(self, loader, parts):  # the first batch of the run again and again, at once
        first[:] = first or [next(iter(loader))]
        yield from itertools.repeat(first[0], min(len(loader), self.total_steps - self.step))

    monkeypatch.setattr(Trainer, "_batches", instant)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Trainer(tiny_config(pairs, tmp_path / "run", max_steps=24, log_every=4), progress=False).fit()
    assert not [w for w in caught if "waited for its next batch" in str(w.message)]


@pytest.mark.parametrize(("cpus", "local_processes", "workers"), [(1, 1, 2), (2, 1, 2), (5, 1, 4), (16, 1, 15), (64, 1, 16),
                                                               (16, 4, 3), (16, 8, 2)])
def test_the_default_worker_count_shares_the_cpus_among_the_training_processes(monkeypatch, cpus, local_processes, workers):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
    assert default_workers(local_processes) == workers


def test_a_run_without_workers_set_takes_the_default_count_each_time_it_starts(pairs, tmp_path, monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)  # three workers
    seen = []

    def loader(*args, num_workers, persistent_workers, **kwargs):  # records the count, loads in this process
        seen.append(num_workers)
        return torch.utils.data.DataLoader(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "DataLoader", loader)
    config = tiny_config(pairs, tmp_path / "run", max_steps=2)
    config.workers = None
    trainer = Trainer(config, progress=False)
    trainer.fit()
    assert seen and set(seen) == {3} and trainer.workers == 3
    assert not re.search(r"^workers", (tmp_path / "run" / "config.toml").read_text(), re.M)  # resumed elsewhere, the count fits that machine
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(9)), raising=False)
    Trainer.resume(tmp_path / "run", {"max_steps": 3}, progress=False).fit()
    assert seen[-1] == 8


def test_only_the_newest_checkpoints_are_kept(pairs, tmp_path):
    Trainer(tiny_config(pairs, tmp_path / "run", max_steps=6), progress=False).fit()  # every 2 steps, keep 2
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "run")] == ["checkpoint-00000004.pt", "checkpoint-00000006.pt"]
    Trainer.resume(tmp_path / "run", {"max_steps": 8, "keep_checkpoints": 1}, progress=False).fit()
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "run")] == ["checkpoint-00000008.pt"]


def test_a_sample_is_written_before_its_steps_checkpoint_and_a_failing_one_loses_no_training(pairs, tmp_path, monkeypatch):
    import gantk.train.trainer as trainer_module

    written, save_checkpoint, save_sample_grid = [], ckpt.save_checkpoint, trainer_module.save_sample_grid
    monkeypatch.setattr(ckpt, "save_checkpoint", lambda path, payload: written.append(path.name) or save_checkpoint(path, payload))

    def sample_failing_at_step_4(images, path):
        written.append(path.name)
        if path.name == "step-00000004.png":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return save_sample_grid(images, path)

    monkeypatch.setattr(trainer_module, "save_sample_grid", sample_failing_at_step_4)
    with pytest.raises(GantkError, match="step-00000004.png: No space left on device. Training stopped at step 4: once"):
        Trainer(tiny_config(pairs, tmp_path / "run", max_steps=6), progress=False).fit()  # every 2 steps
    assert written == ["step-00000002.png", "checkpoint-00000002.pt", "step-00000004.png", "checkpoint-00000004.pt"]


def test_a_loss_plot_that_cannot_be_written_is_warned_of_and_the_finished_run_kept(pairs, tmp_path):
    run = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=2), progress=False).fit()
    (run / "loss_curves.png").unlink()
    (run / "loss_curves.png").mkdir()  # a folder in its place, as a full disk refuses the file
    with pytest.warns(GantkWarning, match=rf"loss_curves.png could not be written \(Is a directory\); the run is saved at step 4, "
                                          rf"and `gantk plot {re.escape(str(run))}` draws the plot once it can be written\."):
        assert Trainer.resume(run, {"max_steps": 4}, progress=False).fit() == run
    assert ckpt.list_checkpoints(run)[-1].name == "checkpoint-00000004.pt"


def test_a_run_killed_after_its_last_checkpoint_is_tidied_when_resumed(pairs, tmp_path):
    import socket

    run = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=6), progress=False).fit()  # every 2 steps, keep 2
    shutil.copy(run / "checkpoint-00000004.pt", run / "checkpoint-00000002.pt")  # killed before it was pruned
    left = run / "samples" / f".step-00000006.png.writing+{socket.gethostname()}+999999999+x.tmp"  # a killed sample write
    left.write_bytes(b"")
    Trainer.resume(run, progress=False).fit()  # a finished run: no step
    assert [p.name for p in ckpt.list_checkpoints(run)] == ["checkpoint-00000004.pt", "checkpoint-00000006.pt"]
    assert not left.exists()


def test_log_rows_hold_the_epoch_the_window_mean_and_the_image_rate(pairs, tmp_path, monkeypatch):
    now = [0.0]  # the log's clock: each training step takes 1 s, what follows it (here a callback) 100 s
    monkeypatch.setattr("gantk.train.logs.time", types.SimpleNamespace(perf_counter=lambda: now[0]))
    train_step = Trainer.train_step

    def one_second_step(self, parts, batch):
        now[0] += 1
        return train_step(self, parts, batch)

    def chores(trainer, step, logged):  # as samples, checkpoints and validation, not counted as training time
        now[0] += 100

    monkeypatch.setattr(Trainer, "train_step", one_second_step)
    every_step = read_rows(Trainer(tiny_config(pairs, tmp_path / "a", max_steps=4), callbacks=[chores], progress=False).fit())
    every_other = read_rows(Trainer(tiny_config(pairs, tmp_path / "b", max_steps=4, log_every=2), callbacks=[chores],
                                    progress=False).fit())
    assert [row["epoch"] for row in every_step] == ["0", "0", "0", "1"]  # 6 pairs, batch 2: 3 steps an epoch
    assert [float(row["images_per_s"]) for row in every_step] == [2.0] * 4  # 1 step of 2 images per window
    assert [float(row["images_per_s"]) for row in every_other] == [2.0] * 2  # 2 steps of 2 images in 2 s
    for key in ("D/bce", "G/bce", "G/l1"):
        mean = (float(every_step[0][key]) + float(every_step[1][key])) / 2
        assert float(every_other[0][key]) == pytest.approx(mean, rel=1e-5)


def test_lr_column_is_the_rate_each_step_used(pairs, tmp_path):
    run = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=4, lr=2e-4, decay_start=0.5), progress=False).fit()
    # constant for the first half, then linear towards 0 at step 4
    assert [float(r["lr"]) for r in read_rows(run)] == pytest.approx([2e-4, 2e-4, 2e-4, 1e-4])


def test_lr_column_follows_a_warm_up_then_a_cosine_decay(pairs, tmp_path):
    config = tiny_config(pairs, tmp_path / "run", max_steps=8, lr=2e-4, decay_start=0.25, lr_schedule="cosine", warmup_steps=4)
    run = Trainer(config, progress=False).fit()
    # warm-up: (s + 1) / 4 over steps 0..3, reaching --lr at step 3; the cosine starts there (not at a quarter of 8,
    # inside the warm-up) and falls to 0 at step 8
    expected = [2e-4 * (s + 1) / 4 if s < 4 else 2e-4 * 0.5 * (1 + math.cos(math.pi * (s - 3) / 5)) for s in range(8)]
    assert [float(r["lr"]) for r in read_rows(run)] == pytest.approx(expected)
    assert max(expected) == 2e-4


def test_a_warm_up_longer_than_the_run_is_warned_of(pairs, tmp_path):
    with pytest.warns(GantkWarning, match=r"--warmup-steps 10 is longer than the run's 2 steps: the learning rate never reaches --lr"):
        Trainer(tiny_config(pairs, tmp_path / "run", max_steps=2, warmup_steps=10), progress=False).fit()


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_grad_clip_bounds_the_norm_of_each_phases_gradients(pairs, tmp_path, precision, monkeypatch):
    monkeypatch.setattr(trainer_module, "grad_scaler", lambda device, precision: torch.amp.GradScaler(
        device.type, init_scale=8.0, enabled=precision == "fp16"))  # a first fp16 step that does not overflow
    norms = {}
    for name, clip in (("clipped", 1e-3), ("free", None)):
        trainer = Trainer(tiny_config(pairs, tmp_path / name, max_steps=1, grad_clip=clip, precision=precision), progress=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GantkWarning)  # fp16 may be slow on this CPU
            trainer.fit()
        norms[name] = {net: torch.linalg.vector_norm(torch.stack([p.grad.float().norm() for p in module.parameters()])).item()
                       for net, module in trainer.system.networks.items()}  # the last step's gradients, as its phase left them
    assert all(norm == pytest.approx(1e-3, rel=1e-3) for norm in norms["clipped"].values()), norms
    assert all(norm > 1e-2 for norm in norms["free"].values()), norms


def test_a_loss_term_no_gradient_reaches_is_warned_of_once_and_refused_alone(pairs, tmp_path):
    from gantk import Objective, hookimpl, load_components

    class Constant(Objective):
        """A number that nothing trained reaches."""

        def generator_loss(self, ctx):
            return torch.tensor(1.0)

    class Plugin:
        @hookimpl
        def gantk_register_objectives(self, registry):
            registry.add("constant", Constant)

    components = load_components(plugins=[Plugin()])
    with pytest.warns(GantkWarning, match=r"no gradient reaches G/constant at step 1, so it trains nothing there") as warned:
        Trainer(tiny_config(pairs, tmp_path / "run", max_steps=3, loss="bce+l1+constant"), components=components,
                progress=False).fit()
    assert len([w for w in warned if "no gradient reaches" in str(w.message)]) == 1  # once a run
    with pytest.raises(OptionError, match=r"no gradient reaches any loss of the G step \(G/constant\), so it cannot train"):
        Trainer(tiny_config(pairs, tmp_path / "alone", max_steps=1, loss="constant", disc="none"), components=components,
                progress=False).fit()


def test_resuming_without_the_plugin_of_a_loss_term_names_it_before_the_data_opens(pairs, tmp_path, monkeypatch):
    from gantk import Objective, hookimpl, load_components

    class Smooth(Objective):
        """L1 under another name, from a plugin."""

        def generator_loss(self, ctx):
            return (ctx.fake - ctx.real).abs().mean()

    class Plugin:
        @hookimpl
        def gantk_register_objectives(self, registry):
            registry.add("smooth", Smooth)

    with_plugin = load_components(autoload=False, plugins=[Plugin()])
    run = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=1, loss="bce+smooth"), components=with_plugin, progress=False).fit()
    monkeypatch.setattr(Trainer, "open_data", lambda *args, **kwargs: pytest.fail("the data opened first"))
    plugin = with_plugin.registry("objective").get("smooth").plugin
    with pytest.raises(CheckpointError, match=rf"uses a part that no loaded plugin provides: unknown objective 'smooth'.*"
                                              rf"Install \(or load\) the plugin\(s\) the run was trained with: {re.escape(plugin)}"):
        Trainer.resume(run, {"max_steps": 2}, components=load_components(autoload=False))


@pytest.mark.parametrize("recipe", ["pix2pix", "cyclegan"])
def test_loss_terms_read_the_share_of_training_done_at_each_step(tmp_path, recipe):
    from gantk import Objective, hookimpl, load_components

    seen = []

    class Ramped(Objective):
        """L1 whose weight rises over the first half of training."""

        def generator_loss(self, ctx):
            seen.append(ctx.progress.item())
            return (2 * ctx.progress).clamp(max=1) * (ctx.fake - ctx.real).abs().mean()

    class Plugin:
        @hookimpl
        def gantk_register_objectives(self, registry):
            registry.add("ramped", Ramped)

    data = write_unaligned(tmp_path / "data") if recipe == "cyclegan" else write_paired(tmp_path / "data")
    config = tiny_config(data, tmp_path / "run", recipe=recipe, max_steps=4, loss="lsgan+ramped" if recipe == "cyclegan" else "bce+ramped",
                         gen_opt={"ngf": 8}, **({"gen": "resnet6"} if recipe == "cyclegan" else {}))
    run = Trainer(config, components=load_components(plugins=[Plugin()]), progress=False).fit()
    per_step = 2 if recipe == "cyclegan" else 1  # both directions
    assert seen == [step / 4 for step in range(4) for _ in range(per_step)]
    assert float(read_rows(run)[0][("G_AB" if recipe == "cyclegan" else "G") + "/ramped"]) == 0.0  # weight 0 at the start


def test_a_lengthened_resume_follows_the_new_schedule_from_its_first_step(pairs, tmp_path):
    config = tiny_config(pairs, tmp_path / "run", max_steps=4, lr=2e-4, decay_start=0.5, checkpoint_every=4)
    Trainer(config, progress=False).fit()
    with pytest.warns(GantkWarning, match=r"on resuming, the learning rate rises \(D's from 0 to 0.0002; G's from 0 to 0.0002\): "
                                          r"it follows the schedule as set now, whose decay is stretched over a longer run"):
        Trainer.resume(tmp_path / "run", {"max_steps": 8}, progress=False).fit()
    straight = Trainer(config.merged({"out": str(tmp_path / "straight"), "max_steps": 8}), progress=False).fit()
    # the finished 4-step run ended at lr 0; its continuation must not spend step 5 there
    lengthened = [float(r["lr"]) for r in read_rows(tmp_path / "run")[4:]]
    assert lengthened == pytest.approx([float(r["lr"]) for r in read_rows(straight)[4:]])
    assert lengthened == pytest.approx([2e-4, 1.5e-4, 1e-4, 0.5e-4])


def test_a_keyword_that_is_no_setting_is_named_with_the_closest_one():
    with pytest.raises(OptionError, match=r"unknown setting\(s\) maxsteps\. Did you mean max_steps\?"):
        TrainConfig(maxsteps=3)
    assert TrainConfig(max_steps=3).max_steps == 3 and TrainConfig.__init__.__name__ == "__init__"


@pytest.mark.filterwarnings("ignore:--load-size 100 enlarges")  # 96 px crops of 40 px images
def test_a_unet_too_shallow_for_its_dropout_is_warned_of(pairs, tmp_path):
    def built(crop_size, **gen_opt):
        config = tiny_config(pairs, tmp_path / f"run-{crop_size}-{gen_opt.get('dropout')}", crop_size=crop_size, load_size=crop_size + 4,
                             gen_opt={"ngf": 8, **gen_opt})
        trainer = Trainer(config, progress=False)
        return trainer.build_system(trainer.open_data()[0], torch.device("cpu"))

    def dropout_warnings(crop_size, **gen_opt):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            system = built(crop_size, **gen_opt)
        return system, [str(w.message) for w in caught if "dropout" in str(w.message)]

    # 96 px: num_downs 5, which a deeper crop would not leave; 32 px with another dropout given: the user asked for it
    for crop_size, rate in ((96, 0.5), (32, 0.3)):
        with pytest.warns(GantkWarning, match=rf"generator 'unet' takes dropout={rate}, and as built it has no layer where "
                                              r"dropout applies, so it trains and translates without dropout noise "
                                              r"\(num_downs=5\): a U-Net"):
            built(crop_size, **({} if rate == 0.5 else {"dropout": rate}))
    # the recipe's dropout, also as a run's config.toml gives it, on a crop no U-Net depth gives dropout levels
    assert dropout_warnings(32)[1] == [] and dropout_warnings(32, dropout=0.5)[1] == []
    system, warned = dropout_warnings(64)  # num_downs 6: one level with dropout
    assert any(isinstance(m, torch.nn.Dropout) for m in system.modules()) and warned == []


def test_a_shortened_resume_says_the_learning_rate_falls(pairs, tmp_path):
    from gantk.train import StopTraining

    def stop(trainer, step, logged):
        if step == 4:
            raise StopTraining

    config = tiny_config(pairs, tmp_path / "run", max_steps=8, lr=2e-4, decay_start=0.5, checkpoint_every=100)
    Trainer(config, callbacks=[stop], progress=False).fit()
    with pytest.warns(GantkWarning, match=r"on resuming, the learning rate falls \(D's from 0.0002 to 0.000133; G's from 0.0002 "
                                          r"to 0.000133\): it follows the schedule as set now, whose decay is pressed"):
        Trainer.resume(tmp_path / "run", {"max_steps": 6}, progress=False).fit()


def test_resume_with_epochs_replaces_a_length_set_in_steps(pairs, tmp_path):
    Trainer(tiny_config(pairs, tmp_path / "run", max_steps=2), progress=False).fit()
    trainer = Trainer.resume(tmp_path / "run", {"epochs": 2}, progress=False)
    trainer.fit()
    assert trainer.config.max_steps is None and trainer.step == 2 * 3  # 6 pairs, batch 2


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint-00000001.pt"
    ckpt.save_checkpoint(path, {"system": {}, "value": 1})

    def crash(obj, handle):
        handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError):
        ckpt.save_checkpoint(path, {"system": {}, "value": 2})
    assert ckpt.load_checkpoint(path)["value"] == 1
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_a_checkpoint_write_replaces_the_file_rather_than_overwriting_it(tmp_path):
    path = ckpt.save_checkpoint(tmp_path / "checkpoint-00000001.pt", {"system": {}, "value": 1})
    before = path.stat().st_ino
    ckpt.save_checkpoint(path, {"system": {}, "value": 2})
    assert path.stat().st_ino != before and ckpt.load_checkpoint(path)["value"] == 2


class Planted:
    """Pickles into a call that creates ``marker``: what a malicious checkpoint could run."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_loading_a_checkpoint_runs_no_code_from_it(tmp_path):
    marker = tmp_path / "code-ran"
    torch.save({"format": ckpt.FORMAT_VERSION, "system": {}, "trap": Planted(marker)}, tmp_path / "checkpoint-00000001.pt")
    with pytest.raises(CheckpointError, match=r"cannot read checkpoint .*\(Unsupported global: GLOBAL getattr was not an allowed global by default\)") as error:
        ckpt.load_checkpoint(tmp_path)
    assert "weights_only" not in str(error.value)  # none of torch's advice to load it unsafely
    assert not marker.exists()


def test_a_checkpoint_path_that_is_no_file_says_what_it_is(tmp_path):
    with pytest.raises(CheckpointError, match=r"checkpoint .*missing.pt does not exist; pass a .pt file or a run directory\.$"):
        ckpt.load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "gone.pt").symlink_to(tmp_path / "moved.pt")
    (tmp_path / "loop.pt").symlink_to(tmp_path / "loop.pt")
    for link in ("gone.pt", "loop.pt"):
        with pytest.raises(CheckpointError, match=rf"checkpoint .*{link} is a link that leads to no file \(its target is gone, or it loops\)"):
            ckpt.load_checkpoint(tmp_path / link)
    os.mkfifo(tmp_path / "pipe.pt")
    with pytest.raises(CheckpointError, match=r"checkpoint .*pipe.pt is not a file \(a device or pipe\)"):
        ckpt.load_checkpoint(tmp_path / "pipe.pt")


def test_a_plain_pickle_is_refused_without_torchs_protocol_note(tmp_path):
    import pickle

    for protocol in (2, 4):
        (tmp_path / "plain.pt").write_bytes(pickle.dumps({"a": 1}, protocol=protocol))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(CheckpointError, match=r"cannot read checkpoint .*plain.pt \(a plain pickle, not a file torch.save "
                                                      r"wrote\): it is not a complete gantk checkpoint"):
                ckpt.load_checkpoint(tmp_path / "plain.pt")
        assert [str(w.message) for w in caught] == []


def test_a_checkpoint_referring_to_code_is_refused_as_such(tmp_path):
    class Calls:
        def __reduce__(self):
            return (os.getcwd, ())  # a function of a module weights-only loading blocks

    torch.save({"format": ckpt.FORMAT_VERSION, "system": Calls()}, tmp_path / "calls.pt")
    with pytest.raises(CheckpointError, match=r"cannot read checkpoint .*calls.pt \(it refers to code \(posix.getcwd\), which gantk does not load\)"):
        ckpt.load_checkpoint(tmp_path / "calls.pt")


def test_a_checkpoint_with_compressed_entries_is_refused_before_they_are_inflated(tmp_path, monkeypatch):
    torch.save({"format": ckpt.FORMAT_VERSION, "system": {}}, tmp_path / "stored.pt")
    with zipfile.ZipFile(tmp_path / "stored.pt") as stored, zipfile.ZipFile(tmp_path / "deflated.pt", "w") as deflated:
        for info in stored.infolist():
            deflated.writestr(info.filename, stored.read(info), compress_type=zipfile.ZIP_DEFLATED)
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load read a compressed checkpoint"))
    with pytest.raises(CheckpointError, match=r"cannot read checkpoint .*deflated.pt: it holds entries \(.*data.pkl\.\.\.\) that would "
                                              r"unpack to more memory than the file's size \(compressed, or sharing stored bytes\), which "
                                              "torch.save never writes"):
        ckpt.load_checkpoint(tmp_path / "deflated.pt")
    with zipfile.ZipFile(tmp_path / "stored.pt") as stored, zipfile.ZipFile(tmp_path / "hidden.pt", "w") as hidden:
        for info in stored.infolist():
            info.extra = b"\xfe\xca\x64\x00"  # an extra field claiming 100 bytes: torch's reader skips it, zipfile's stops
            hidden.writestr(info, stored.read(info), compress_type=zipfile.ZIP_DEFLATED)
    with pytest.raises(CheckpointError, match=r"cannot read checkpoint .*hidden.pt \(the file is cut short or damaged: its zip "
                                              r"directory cannot be read\)"):
        ckpt.load_checkpoint(tmp_path / "hidden.pt")


@pytest.mark.parametrize("aliases", [49, 1])  # one more name for the record, most of the file: just more than the file holds
def test_a_checkpoint_whose_entries_share_one_stored_record_is_refused_before_it_is_read(tmp_path, monkeypatch, aliases):
    torch.save({"format": ckpt.FORMAT_VERSION, "system": {}, "weights": torch.zeros(1000)}, tmp_path / "stored.pt")
    with zipfile.ZipFile(tmp_path / "stored.pt") as stored, zipfile.ZipFile(tmp_path / "aliased.pt", "w") as aliased:
        for info in stored.infolist():
            aliased.writestr(info, stored.read(info))
        record = next(info for info in aliased.infolist() if info.filename.endswith("/data/0"))
        for copy in range(1, aliases + 1):  # more names pointing at the one record: torch would allocate each
            alias = copy_module.copy(record)
            alias.filename, alias.CRC = f"{record.filename}{copy}", 0  # no checksum: the damage check reads none
            aliased.filelist.append(alias)
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load read an aliased checkpoint"))
    with pytest.raises(CheckpointError, match=r"aliased.pt: it holds entries \(.*data/0\.\.\.\) that would unpack to more memory than "
                                              r"the file's size \(compressed, or sharing stored bytes\)"):
        ckpt.load_checkpoint(tmp_path / "aliased.pt")


def test_a_zip_whose_data_is_no_pickle_is_not_called_a_plain_pickle(tmp_path):
    torch.save({"format": ckpt.FORMAT_VERSION, "system": {}}, tmp_path / "stored.pt")
    with zipfile.ZipFile(tmp_path / "stored.pt") as stored, zipfile.ZipFile(tmp_path / "garbled.pt", "w") as garbled:
        for info in stored.infolist():  # data.pkl replaced, with a checksum of its own
            garbled.writestr(info, b"\x00\x01garbage" if info.filename.endswith("/data.pkl") else stored.read(info))
    with pytest.raises(CheckpointError, match=r"cannot read checkpoint .*garbled.pt \(the file is damaged: its pickled data is "
                                              r"not as torch.save writes it\)"):
        ckpt.load_checkpoint(tmp_path / "garbled.pt")


@pytest.mark.parametrize("protocol", [4, 5])
def test_a_checkpoint_pickled_with_a_protocol_torch_reads_only_unsafely_is_named_so(tmp_path, protocol):
    torch.save({"format": ckpt.FORMAT_VERSION, "system": {}}, tmp_path / "framed.pt", pickle_protocol=protocol)
    with pytest.raises(CheckpointError, match=rf"framed.pt \(its data is pickled with protocol {protocol}, which torch reads "
                                              r"without running code only up to protocol 3: save it again with torch.save's "
                                              r"default protocol\)"):
        ckpt.load_checkpoint(tmp_path / "framed.pt")


def test_a_checkpoint_damaged_after_it_was_written_is_refused(pairs, tmp_path):
    run = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=4), progress=False).fit()  # checkpoints of steps 2 and 4
    newest = ckpt.checkpoint_path(run, 4)
    copied = shutil.copy(newest, tmp_path / "copied.pt")
    flip_a_bit(newest, "data/0")
    with pytest.raises(CheckpointError, match=re.escape(
            f"cannot read checkpoint {newest}: its entry archive/data/0 differs from the checksum written with it, so "
            f"the file was damaged after it was written (on a disk, or in a copy); {run} also holds checkpoint-00000002.pt: "
            "delete the unreadable file to use those.")):
        Trainer.resume(run, progress=False)
    flip_a_bit(Path(copied), "data.pkl")
    with pytest.raises(CheckpointError, match=r"copied.pt: its entry .*data.pkl differs .*: restore it from a sound copy\.$"):
        ckpt.load_checkpoint(copied)
    crc32 = torch.serialization.get_crc32_options()
    try:
        torch.serialization.set_crc32_options(False)  # no checksums written: nothing to check
        torch.save({"format": ckpt.FORMAT_VERSION, "weight": torch.arange(8.0)}, tmp_path / "unsummed.pt")
    finally:
        torch.serialization.set_crc32_options(crc32)
    flip_a_bit(tmp_path / "unsummed.pt", "data/0")
    with pytest.raises(CheckpointError, match="unsummed.pt is not a gantk checkpoint"):
        ckpt.load_checkpoint(tmp_path / "unsummed.pt")


@pytest.mark.parametrize("damage, named", [
    (lambda p: p["system"].pop("gen"), "system.gen"), (lambda p: p["system"].update(channels={"A": 3}), "system.channels"),
    (lambda p: p.pop("system_state"), "system_state"), (lambda p: p.update(step="x"), "step"), (lambda p: p.update(step=-5), "step"),
    (lambda p: p.pop("optimizers"), "optimizers"), (lambda p: p.update(loss_windows=[{"G_l1": "x"}]), "loss_windows"),
    (lambda p: p["system"].update(num_classes=-3), "system.num_classes"), (lambda p: p["system"].update(direction="up"), "system.direction"),
    (lambda p: p["system"].update(conditional="yes"), "system.conditional"), (lambda p: p["system"].update(data_format=3), "system.data_format"),
    (lambda p: p["system"].update(gen_opt="ngf=8"), "system.gen_opt"), (lambda p: p["system"].update(disc_opt=None), "system.disc_opt"),
    (lambda p: p["system"].update(loss_opt=["l1"]), "system.loss_opt"), (lambda p: p["system"].update(recipe_opt=[]), "system.recipe_opt"),
    (lambda p: p["system"].update(gen_defaults=[1]), "system.gen_defaults"), (lambda p: p["system"].update(loss_weights={"l1": "x"}), "system.loss_weights"),
    (lambda p: p["system"].update(ignore_label="x"), "system.ignore_label"),
    (lambda p: p.update(part_plugins=[]), "part_plugins"), (lambda p: p.update(part_plugins={"generator": {"unet": "x"}}), "part_plugins"),
    (lambda p: p.update(plugins="gantk"), "plugins"), (lambda p: p["system_state"].update({3: torch.zeros(1)}), "system_state"),
    (lambda p: p["system_state"].update({next(iter(p["system_state"])): "x"}), "system_state"),
    (lambda p: p["system_state"].update({next(iter(p["system_state"])): torch.zeros(2, 2).to_sparse()}), "system_state"),
    (lambda p: p.update(rng=[]), "rng"), (lambda p: p.update(train_items="x"), "train_items"),
    (lambda p: p.update(logged_steps={"metrics": "x"}), "logged_steps"),
    (lambda p: p["system"]["gen_opt"].update(norm=functools.reduce(lambda inner, _: [inner, inner], range(40), [])), "system.gen_opt"),
    (lambda p: p["system"]["disc_opt"].update(norm=functools.reduce(lambda inner, _: {"x": inner}, range(50), {})), "system.disc_opt"),
    (lambda p: p["train_config"].update(gen_opt={"norm": torch.zeros(1)}), "train_config"),
])
def test_a_damaged_checkpoint_is_named_with_what_it_lacks(pairs, tmp_path, damage, named):
    run = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=2), progress=False).fit()
    path = run / "checkpoint-00000002.pt"
    payload = torch.load(path, weights_only=True)
    damage(payload)
    torch.save(payload, path)
    message = rf"checkpoint {path} is incomplete or damaged \({named} missing or of another kind than gantk writes\)"
    with pytest.raises(CheckpointError, match=message):
        Trainer.resume(run, {"max_steps": 3})
    if named not in ("optimizers", "loss_windows", "rng", "train_items", "train_config", "logged_steps"):  # what translating needs
        with pytest.raises(CheckpointError, match=message):
            ckpt.system_from_checkpoint(run)


def test_weights_that_do_not_fit_the_networks_described_are_refused_before_those_are_built(pairs, tmp_path, monkeypatch):
    run = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=1), progress=False).fit()
    path = run / "checkpoint-00000001.pt"
    payload = torch.load(path, weights_only=True)
    payload["system"]["gen_opt"]["ngf"] = payload["train_config"]["gen_opt"]["ngf"] = 64  # hostile files ask for far more
    torch.save(payload, path)
    built_on, build = [], ckpt.system_from_config
    monkeypatch.setattr(ckpt, "system_from_config", lambda *a, **k: built_on.append(torch.empty(0).device.type) or build(*a, **k))
    message = (rf"checkpoint {path} holds weights that do not fit the networks its settings describe \(\d+ size mismatches, "
               r"e.g. networks.G.\S+: \[8, .*\] in the checkpoint, \[64, .*\] here\): the file is damaged or was edited")
    with pytest.raises(CheckpointError, match=message):
        ckpt.system_from_checkpoint(run)
    with pytest.raises(CheckpointError, match=message):
        Trainer.resume(run, {"max_steps": 2}, progress=False).fit()
    assert built_on == ["meta", "meta"]


def test_networks_far_deeper_than_the_weights_held_are_refused_while_they_are_built(pairs, tmp_path):
    run = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=1, gen="resnet", gen_opt={"ngf": 8, "n_blocks": 1}),
                  progress=False).fit()
    path = run / "checkpoint-00000001.pt"
    payload = torch.load(path, weights_only=True)
    payload["system"]["gen_opt"]["n_blocks"] = 10**6  # built as described, it took minutes and gigabytes
    torch.save(payload, path)
    held = len(payload["system_state"])
    with pytest.raises(CheckpointError, match=rf"checkpoint {path} describes networks of more than {2 * held + 20_000} weight "
                                              rf"tensors but holds {held}: the file is damaged or was edited"):
        ckpt.system_from_checkpoint(run)


class BuiltWholeThenCut(torch.nn.Module):
    """A generator that, as timm builds a backbone before keeping the depth asked for, registers far more
    tensors while it is built than it keeps; one of its options reads a tensor's value (the meta device has none)."""

    def __init__(self, in_channels=3, out_channels=3, *, discarded=3000, reads_a_value=False):
        super().__init__()
        whole = torch.nn.ModuleList(torch.nn.Linear(1, 1) for _ in range(discarded))
        del whole
        if reads_a_value:
            assert torch.ones(1).item() == 1  # raises on the meta device
        self.conv = torch.nn.Conv2d(in_channels, out_channels, 3, padding=1)

    def forward(self, x):
        return torch.tanh(self.conv(x))


@pytest.mark.parametrize("options", [{}, {"discarded": 0, "reads_a_value": True}])
def test_a_network_built_whole_then_cut_or_not_buildable_on_the_meta_device_loads(pairs, tmp_path, options):
    config = tiny_config(pairs, tmp_path / "run", max_steps=1, gen="cut", gen_opt=options)
    components = components_with_generator("cut", BuiltWholeThenCut)
    run = Trainer(config, components=components, progress=False).fit()
    system, payload = ckpt.system_from_checkpoint(run, components=components)
    assert len(payload["system_state"]) < 100  # the 6,000 tensors built and discarded exceed twice these plus 1,000
    assert torch.equal(system.networks["G"].conv.weight, payload["system_state"]["networks.G.conv.weight"])


@pytest.mark.parametrize("dtype", [torch.int64, torch.complex64])
def test_weights_of_another_kind_of_number_are_refused(pairs, tmp_path, dtype):  # a complex weight loaded as its real part
    run = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=1), progress=False).fit()
    path = run / "checkpoint-00000001.pt"
    payload = torch.load(path, weights_only=True)
    weight = next(key for key in payload["system_state"] if key.endswith(".weight"))
    payload["system_state"][weight] = payload["system_state"][weight].to(dtype)
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=rf"checkpoint {path} holds weights of another kind of number than the networks its "
                                              rf"settings describe \(1 weight\(s\), e.g. {re.escape(weight)}: {dtype} in the checkpoint, torch.float32 here\)"):
        ckpt.system_from_checkpoint(run)


@pytest.mark.parametrize("entry, value", [("weight", float("nan")), ("running_var", float("nan")), ("running_var", float("inf"))])
def test_weights_that_are_not_finite_are_refused_naming_the_checkpoint(pairs, tmp_path, entry, value):  # eval-mode outputs go flat
    run = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=1), progress=False).fit()
    path = run / "checkpoint-00000001.pt"
    payload = torch.load(path, weights_only=True)
    weight = next(key for key in payload["system_state"] if key.startswith("networks.D.") and key.endswith(entry))
    payload["system_state"][weight][0] = value
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=rf"--init-from {path} holds weights that are not finite \(NaN or infinity\) in D: "):
        Trainer(tiny_config(pairs, tmp_path / "tuned", max_steps=2, init_from=str(run)), progress=False).fit()
    message = rf"checkpoint {path} holds weights that are not finite \(NaN or infinity\) in D; .*use an earlier checkpoint of the run"
    with pytest.raises(CheckpointError, match=message):
        ckpt.system_from_checkpoint(run)
    with pytest.raises(CheckpointError, match=message):
        Trainer.resume(run, {"max_steps": 2}, progress=False).fit()


def moments(payload):
    return payload["optimizers"]["G"]["state"][0]


@pytest.mark.parametrize("damage", [lambda p: p.update(optimizers={}), lambda p: p.update(rng=[{"cpu": "x"}]),
                                    lambda p: p["schedulers"]["G"].update(base_lrs="x"),
                                    lambda p: p["rng"][0].update(cpu=torch.zeros(3, dtype=torch.uint8)),  # torch's RuntimeError
                                    lambda p: moments(p).update(exp_avg=torch.zeros(2)),  # the fused step would read past it
                                    lambda p: moments(p).update(exp_avg_sq=moments(p)["exp_avg_sq"].long()),
                                    lambda p: moments(p).pop("exp_avg_sq"),  # read by the first step after
                                    lambda p: p["optimizers"]["G"]["param_groups"][0].update(amsgrad=True),
                                    lambda p: moments(p).update(step=torch.zeros(5)),
                                    lambda p: p["optimizers"]["G"]["param_groups"][0].update(betas=(0.5,)),
                                    lambda p: p["optimizers"]["G"].update(state=[]),
                                    lambda p: p["schedulers"].update(G=None)])
def test_training_state_that_cannot_be_restored_is_named(pairs, tmp_path, damage):
    run = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=1), progress=False).fit()
    path = run / "checkpoint-00000001.pt"
    payload = torch.load(path, weights_only=True)
    damage(payload)
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=rf"checkpoint {path} holds training state gantk cannot restore \(\w+Error: .*\); "
                                              "it may be damaged or edited: try another checkpoint of the run"):
        Trainer.resume(run, {"max_steps": 2}, progress=False).fit()


def test_a_checkpoint_of_a_gantk_without_validation_settings_resumes(pairs, tmp_path):
    run = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=2), progress=False).fit()
    path = run / "checkpoint-00000002.pt"
    payload = torch.load(path, weights_only=True)
    del payload["train_config"]["val_split"], payload["train_config"]["val_every"]
    torch.save(payload, path)
    Trainer.resume(run, {"max_steps": 3}, progress=False).fit()
    assert ckpt.load_checkpoint(run)["step"] == 3


def test_a_run_of_a_newer_gantk_with_settings_this_one_lacks_is_not_resumed(pairs, tmp_path):
    run = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=2), progress=False).fit()
    path = run / "checkpoint-00000002.pt"
    payload = torch.load(path, weights_only=True)
    payload["train_config"]["lookahead_steps"], payload["gantk_version"] = 5, "9.0"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=r"was written by gantk 9.0 with settings this gantk .* does not know \(lookahead_steps\); upgrade"):
        Trainer.resume(run, {"max_steps": 3})


def test_checkpoint_mode_follows_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        path = ckpt.save_checkpoint(tmp_path / "checkpoint-00000001.pt", {"system": {}})
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_a_zip_cut_short_within_its_signature_is_called_cut_short(tmp_path):
    cut = tmp_path / "checkpoint-00000001.pt"
    cut.write_bytes(b"PK\x03")  # the first 3 bytes of a zip's 4-byte signature
    with pytest.raises(CheckpointError, match=r"cannot read checkpoint .*checkpoint-00000001.pt \(the file is cut short or damaged"):
        ckpt.load_checkpoint(cut)


def test_not_a_checkpoint(tmp_path):
    bad = tmp_path / "checkpoint-00000001.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"cannot read checkpoint .*\(the file was not written by torch.save\)"):
        ckpt.load_checkpoint(bad)
    ckpt.save_checkpoint(tmp_path / "checkpoint-00000000.pt", {"system": {}})
    bad.write_bytes((tmp_path / "checkpoint-00000000.pt").read_bytes()[:300])  # a write cut short
    with pytest.raises(CheckpointError, match=r"\(the file is cut short or damaged: its zip directory cannot be read\)"):
        ckpt.load_checkpoint(bad)
    (tmp_path / "checkpoint-00000002.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"\(the file is empty\).*also holds checkpoint-00000000.pt, checkpoint-00000001.pt"):
        ckpt.load_checkpoint(tmp_path)
    (tmp_path / "config.toml").write_text("seed = 0\n")  # a run's other file, passed by mistake: never to be deleted
    with pytest.raises(CheckpointError, match=r"config.toml .*checkpoint; pass a checkpoint-\*.pt file or the run directory\.$"):
        ckpt.load_checkpoint(tmp_path / "config.toml")
    empty = tmp_path / "empty-run"
    empty.mkdir()
    with pytest.raises(CheckpointError, match="holds no checkpoint"):
        ckpt.load_checkpoint(empty)
    (tmp_path / "study" / "cell").mkdir(parents=True)
    (tmp_path / "study" / "cell" / "checkpoint-00000001.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"holds no checkpoint \(checkpoint-\*.pt\); its folders cell/ do \(a study's "
                                              r"cells\?\): pass one of them\.$"):
        ckpt.load_checkpoint(tmp_path / "study")
    torch.save({"G.weight": torch.zeros(1)}, empty / "checkpoint-00000001.pt")  # another project's state_dict
    with pytest.raises(CheckpointError, match="is not a gantk checkpoint; pass a checkpoint-"):
        ckpt.load_checkpoint(empty)
    torch.save({"format": ckpt.FORMAT_VERSION + 1, "gantk_version": "9.0", "system": {}}, empty / "checkpoint-00000001.pt")
    with pytest.raises(CheckpointError, match=f"was written by gantk 9.0 in checkpoint format {ckpt.FORMAT_VERSION + 1}, newer than "
                                              f"the format {ckpt.FORMAT_VERSION} this gantk .* reads; upgrade gantk"):
        ckpt.load_checkpoint(empty)


def test_a_checkpoint_of_format_1_which_names_each_parts_plugin_only_loads_and_resumes(pairs, tmp_path):
    from gantk.inference import TrainedModel

    run = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=1), progress=False).fit()
    path = ckpt.list_checkpoints(run)[-1]
    payload = torch.load(path, weights_only=True)
    payload["format"] = 1
    payload["part_plugins"] = {kind: {name: then["plugin"] for name, then in providers.items()}
                               for kind, providers in payload["part_plugins"].items()}
    torch.save(payload, path)
    assert ckpt.load_checkpoint(run)["part_plugins"]["generator"] == {"unet": {"plugin": "gantk.generators"}}
    assert TrainedModel.load(run).translate(torch.zeros(1, 3, 32, 32)).shape == (1, 3, 32, 32)
    Trainer.resume(run, {"max_steps": 2}, progress=False).fit()
    assert ckpt.load_checkpoint(run)["format"] == ckpt.FORMAT_VERSION == 2


def test_a_checkpoint_lists_each_plugin_of_its_parts_once(pairs, tmp_path):
    run = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=1), progress=False).fit()  # bce and l1: one plugin's
    plugins = ckpt.load_checkpoint(run)["plugins"]
    assert "gantk.objectives" in plugins and plugins == sorted(set(plugins))  # a missing plugin is named once


def test_a_checkpoint_that_cannot_be_read_is_not_called_damaged(tmp_path, monkeypatch):
    """A failing disk, a denied read or too little memory is no reason to delete a whole checkpoint."""
    older, newer = tmp_path / "checkpoint-00000001.pt", tmp_path / "checkpoint-00000002.pt"
    for path in (older, newer):
        ckpt.save_checkpoint(path, {"system": {}})
    for error, told in ((OSError(errno.EIO, "Input/output error"), "Input/output error."),
                        (PermissionError(errno.EACCES, "Permission denied"),
                         "Permission denied; change its permissions so that this user may read it.")):
        monkeypatch.setattr(torch, "load", lambda *args, error=error, **kwargs: (_ for _ in ()).throw(error))
        with pytest.raises(CheckpointError, match=f"cannot read checkpoint .*{newer.name}: {re.escape(told)}$"):
            ckpt.load_checkpoint(tmp_path)
    monkeypatch.setattr(torch, "load", lambda *args, **kwargs: (_ for _ in ()).throw(MemoryError()))
    with pytest.raises(MemoryError):
        ckpt.load_checkpoint(tmp_path)


@pytest.mark.filterwarnings("ignore::gantk.errors.GantkWarning")  # slow half precision on some CPUs
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_runs(pairs, tmp_path, precision):
    run = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=2, precision=precision, channels_last=True), progress=False).fit()
    assert bool(ckpt.load_checkpoint(run)["scaler"]) == (precision == "fp16")  # fp16 only scales its gradients
    rows = read_rows(run)
    assert len(rows) == 2 and all(float(r["G/l1"]) > 0 for r in rows)


@pytest.mark.filterwarnings("ignore::gantk.errors.GantkWarning")  # slow half precision on some CPUs
def test_a_resumed_fp16_run_keeps_its_gradient_scale(pairs, tmp_path):
    run = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=1, precision="fp16"), progress=False).fit()
    path = run / "checkpoint-00000001.pt"
    payload = torch.load(path, weights_only=True)
    payload["scaler"]["scale"] = 1024.0  # as a run that backed off from overflows has it
    torch.save(payload, path)
    Trainer.resume(run, {"max_steps": 2}, progress=False).fit()
    assert ckpt.load_checkpoint(run)["scaler"]["scale"] == 1024.0


def test_the_optimizers_take_the_betas_and_the_weights_channels_last(pairs, tmp_path):
    from gantk.train.trainer import make_optimizers

    trainer = Trainer(tiny_config(pairs, tmp_path / "run", beta1=0.3, beta2=0.9, channels_last=True), progress=False)
    system = trainer.build_system(trainer.open_data()[0], torch.device("cpu"))
    optimizers, _ = make_optimizers(system, trainer.config, 10)
    assert {group["betas"] for optimizer in optimizers.values() for group in optimizer.param_groups} == {(0.3, 0.9)}
    convs = [m.weight for m in system.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)]
    assert all(weight.is_contiguous(memory_format=torch.channels_last) for weight in convs)


def test_disc_lr_sets_the_rate_of_the_phases_that_train_discriminators(pairs, tmp_path):
    from gantk.train.trainer import make_optimizers

    unaligned = write_unaligned(tmp_path / "unaligned")
    for recipe, data in (("pix2pix", pairs), ("cyclegan", unaligned)):
        trainer = Trainer(tiny_config(data, tmp_path / recipe, recipe=recipe, lr=1e-4, disc_lr=4e-4), progress=False)
        system = trainer.build_system(trainer.open_data()[0], torch.device("cpu"))
        optimizers, _ = make_optimizers(system, trainer.config, 10)
        assert {name: opt.param_groups[0]["lr"] for name, opt in optimizers.items()} == {"D": 4e-4, "G": 1e-4}, recipe
    run = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=2, lr=1e-4, disc_lr=4e-4, log_every=1), progress=False).fit()
    assert read_metrics(run / "metrics.csv")[0]["lr"] == pytest.approx(1e-4)  # the generator's, though D steps first
    Trainer.resume(run, {"max_steps": 4}, progress=False).fit()
    schedulers = ckpt.load_checkpoint(run)["schedulers"]
    assert {name: state["base_lrs"] for name, state in schedulers.items()} == {"D": [4e-4], "G": [1e-4]}
    alone = Trainer(tiny_config(pairs, tmp_path / "alone", disc="none", loss="l1", lr=1e-4, disc_lr=4e-4), progress=False)
    system = alone.build_system(alone.open_data()[0], torch.device("cpu"))
    assert {name: opt.param_groups[0]["lr"] for name, opt in make_optimizers(system, alone.config, 10)[0].items()} == {"G": 1e-4}
    with pytest.raises(OptionError, match="--disc-lr must be a positive number"):
        TrainConfig(disc_lr=0.0).validate()


def test_mismatched_discriminator_and_objective(pairs, tmp_path):
    with pytest.raises(OptionError, match=r"no adversarial term: .* or pass --disc none \(disc='none' in Python, where None "
                                          r"takes the recipe's discriminator\)"):
        Trainer(tiny_config(pairs, tmp_path / "a", max_steps=1, loss="l1"), progress=False).fit()
    with pytest.raises(OptionError, match=r"no discriminator is set: .* or drop the term \(give --loss without it: without "
                                          r"--loss, the recipe's loss is trained\)"):
        Trainer(tiny_config(pairs, tmp_path / "b", max_steps=1, disc="none"), progress=False).fit()


def test_crop_size_the_generator_cannot_take(pairs, tmp_path):
    config = tiny_config(pairs, tmp_path / "run", max_steps=1, crop_size=30, load_size=36, gen_opt={"ngf": 8, "num_downs": 5})
    with pytest.raises(OptionError, match="multiples of 32.*--crop-size is 30: use --crop-size 32, or other options for the "
                                          "generator, or another \\(`gantk describe generator unet --opt KEY=VALUE,...` shows the size "
                                          "multiple of those options\\)"):
        Trainer(config, progress=False).fit()
    for load_size, advice in [(32, "--crop-size 32,"), (30, "--crop-size 32 --load-size 32,")]:  # the advice is taken
        config = tiny_config(pairs, tmp_path / "run", max_steps=1, crop_size=30, load_size=load_size, gen_opt={"ngf": 8, "num_downs": 5})
        with pytest.raises(OptionError, match=f"--crop-size is 30: use {advice} or other options for the generator"):
            Trainer(config, progress=False).fit()
    config = tiny_config(pairs, tmp_path / "run", max_steps=1, crop_size=34, load_size=34, gen="resnet6", gen_opt={"ngf": 8})
    with pytest.raises(OptionError, match=r"multiples of 4, but --crop-size is 34: use --crop-size 32 \(or --crop-size 36 --load-size 36\)"):
        Trainer(config, progress=False).fit()
    pan = {"arch": "pan", "encoder": "resnet18"}  # multiples of 16, 128 px at least: 80 and 64 would not do
    config = tiny_config(pairs, tmp_path / "run", max_steps=1, crop_size=72, load_size=72, gen="smp", gen_opt=pan)
    with pytest.raises(OptionError, match=r"multiples of 16, but --crop-size is 72: use --crop-size 128 --load-size 128, or"):
        Trainer(config, progress=False).fit()


def test_batch_norm_that_sees_one_value_per_channel_names_the_fixes(pairs, tmp_path):
    # resnet18 reduces 32 px to 1x1 features, which a batch of one gives batch norm one value each.
    config = tiny_config(pairs, tmp_path / "run", max_steps=1, batch_size=1, gen="smp", gen_opt={"encoder": "resnet18"})
    with pytest.raises(OptionError, match=r"needs more than one value per channel, but a network reduced its batch to "
                                          r"features of shape \[1, 512, 1, 1\]: use --batch-size 2 or more"):
        Trainer(config, progress=False).fit()
    from gantk.inference import TrainedModel

    model = TrainedModel.load(Trainer(config.merged({"batch_size": 2}), progress=False).fit())  # the paper's test mode
    with pytest.raises(OptionError, match=r"\[1, 512, 1, 1\]: translate a batch of 2 or more images, or use eval mode"):
        model.translate(torch.zeros(1, 3, 32, 32))
    assert model.translate(torch.zeros(2, 3, 32, 32)).shape == (2, 3, 32, 32)


def test_systems_record_the_component_of_each_network(pairs, tmp_path):
    from helpers import write_unaligned

    def parts(data, **overrides):
        trainer = Trainer(tiny_config(data, tmp_path / "run", **overrides), progress=False)
        return trainer.build_system(trainer.open_data()[0], torch.device("cpu")).network_parts

    assert parts(pairs, disc="patch16") == {"G": ("generator", "unet"), "D": ("discriminator", "patch16")}
    assert parts(write_unaligned(tmp_path / "unaligned"), recipe="cyclegan", gen="resnet6") == {
        "G_AB": ("generator", "resnet6"), "G_BA": ("generator", "resnet6"),
        "D_A": ("discriminator", "patch70"), "D_B": ("discriminator", "patch70"),
    }


def test_crop_size_the_discriminator_cannot_take(pairs, tmp_path):
    config = tiny_config(pairs, tmp_path / "run", max_steps=1, disc="patch286", batch_size=1)
    with pytest.raises(OptionError, match=r"D \(patch286\) needs images of at least 96 px a side, but --crop-size is 32: "
                                          r"raise --crop-size \(and --load-size\) to 96 or more, or choose a discriminator"):
        Trainer(config, progress=False).fit()
    assert not (tmp_path / "run").exists()


def test_suggested_crop_sizes_suit_every_network(pairs, tmp_path):
    def refusal(crop_size):
        config = tiny_config(pairs, tmp_path / "run", max_steps=1, disc="patch286", batch_size=1, crop_size=crop_size,
                             load_size=160, gen_opt={"ngf": 8, "num_downs": 6})  # sizes: multiples of 64; D: 96 px or more
        with pytest.raises(OptionError) as info:
            Trainer(config, progress=False).fit()
        return str(info.value)

    assert "G (unet) needs image sizes that are multiples of 64, but --crop-size is 93: use --crop-size 128, or other options" in refusal(93)
    assert "D (patch286) needs images of at least 96 px a side, but --crop-size is 64: raise --crop-size (and --load-size) to 128 or more" in refusal(64)


def test_suggested_crop_sizes_fit_images_that_are_not_resized(tmp_path):
    pairs = write_paired(tmp_path / "pairs", size=40)
    config = tiny_config(pairs, tmp_path / "run", max_steps=1, resize="none", crop_size=36, load_size=286,
                         gen_opt={"ngf": 8, "num_downs": 5})  # sizes: multiples of 32
    with pytest.raises(OptionError) as info:
        Trainer(config, progress=False).fit()
    assert "but --crop-size is 36: use --crop-size 32, or" in str(info.value)  # not 64: no image has 64 px
    assert "--load-size" not in str(info.value)  # unused without a resize


def test_a_run_directory_another_process_trains_in_is_refused(pairs, tmp_path):
    from gantk.train import run_files

    run_dir = tmp_path / "run"
    Trainer(tiny_config(pairs, run_dir, max_steps=2), progress=False).fit()
    before = {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()}
    with run_files.claimed(run_dir):  # as a gantk train process still running there holds it
        with pytest.raises(OptionError, match=f"another process is training in {run_dir}; wait for it to end"):
            Trainer.resume(run_dir, {"max_steps": 4}, progress=False).fit()
    assert {path: path.read_bytes() for path in run_dir.rglob("*") if path.is_file()} == before
    assert Trainer.resume(run_dir, {"max_steps": 4}, progress=False).fit() == run_dir  # free again


def test_loader_workers_of_a_killed_run_do_not_hold_its_folder(tmp_path):
    # Killed hard (an out-of-memory killer), a trainer leaves its workers for seconds: resuming at once must work.
    from gantk.train import run_files

    pairs = write_paired(tmp_path / "pairs", count=40)
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "gantk", "train", "--data", str(pairs), "--out", str(run_dir), "--load-size", "36",
               "--crop-size", "32", "--gen-opt", "ngf=8", "--disc-opt", "ndf=8", "--workers", "2", "--log-every", "1",
               "--max-steps", "2000", "--no-progress"]
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while not ((run_dir / "metrics.csv").is_file() and len((run_dir / "metrics.csv").read_text().splitlines()) > 3):
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.2)
        workers = [int(pid) for task in Path(f"/proc/{process.pid}/task").iterdir() for pid in (task / "children").read_text().split()]
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        assert workers and all(Path(f"/proc/{pid}").exists() for pid in workers)  # still running
        with run_files.claimed(run_dir):
            pass
    finally:
        os.killpg(process.pid, signal.SIGKILL)


def test_d_step_then_g_step_with_d_frozen(pairs, tmp_path):
    """The D optimizer changes only D; then the G optimizer changes only G and D receives no gradient."""
    trainer = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=1), progress=False)
    steps = fit_recording_optimizer_steps(trainer)
    assert [changed for changed, _ in steps] == [{"D"}, {"G"}]
    d_grads_after_d_step = steps[1][1]["D"]
    assert all(torch.equal(a, b) for a, b in zip(d_grads_after_d_step, [p.grad for p in trainer.system.networks["D"].parameters()]))
    assert all(p.requires_grad for p in trainer.system.networks["D"].parameters())


class WorkerPids(torch.utils.data.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, index):
        return os.getpid()


def test_loader_workers_outlive_stop_signals_while_training():
    """Inside the loop a group-wide SIGTERM must not kill them: the training process stops them."""
    signals = WorkerStopSignals()
    loader = torch.utils.data.DataLoader(WorkerPids(), batch_size=1, num_workers=1, persistent_workers=True,
                                         worker_init_fn=signals)
    with signals.training():
        pid = int(next(iter(loader)))
        os.kill(pid, signal.SIGTERM)
        assert [int(item) for item in loader] == [pid] * 4  # the worker still serves the next epoch


def test_a_loader_worker_left_behind_does_not_hold_up_the_exit(tmp_path):
    """After the loop, the SIGTERM with which multiprocessing ends a worker still alive at exit
    must end it, or the process would wait for it forever."""
    script = tmp_path / "leak.py"
    script.write_text(
        "import torch\n"
        "from gantk.train.interrupt import WorkerStopSignals\n"
        "signals = WorkerStopSignals()\n"
        "loader = torch.utils.data.DataLoader(torch.arange(4), num_workers=1, persistent_workers=True, worker_init_fn=signals)\n"
        "with signals.training():\n"
        "    assert len(list(loader)) == 4\n"
        "left_behind = loader  # alive at exit, its worker never shut down\n"
    )
    subprocess.run([sys.executable, str(script)], check=True, timeout=120)


def test_a_parameter_frozen_on_purpose_stays_frozen(pairs, tmp_path, monkeypatch):
    """Freezing D for the G step must not unfreeze, afterwards, a D parameter its network keeps fixed."""
    kept, build_system = {}, Trainer.build_system

    def build_with_a_fixed_parameter(trainer, dataset, device):
        system = build_system(trainer, dataset, device)
        kept["param"] = next(system.networks["D"].parameters())
        kept["param"].requires_grad_(False)
        kept["value"] = kept["param"].detach().clone()
        return system

    monkeypatch.setattr(Trainer, "build_system", build_with_a_fixed_parameter)
    Trainer(tiny_config(pairs, tmp_path / "run", max_steps=3), progress=False).fit()
    assert not kept["param"].requires_grad
    assert torch.equal(kept["param"].detach(), kept["value"])


def test_n_critic_steps_g_once_every_n_d_steps(pairs, tmp_path):
    trainer = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=6, n_critic=3, checkpoint_every=6), progress=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        steps = fit_recording_optimizer_steps(trainer)
    assert [changed for changed, _ in steps] == [{"D"}, {"D"}, {"D"}, {"G"}] * 2
    rows = read_rows(tmp_path / "run")
    assert [r["G/l1"] == "" for r in rows] == [True, True, False] * 2  # a G column from the first row with it on
    assert all(float(r["D/bce"]) > 0 for r in rows)
    # each phase's schedule spans the steps it takes: both learning rates reach 0 at the end
    assert not [w for w in caught if "lr_scheduler" in str(w.message)]
    schedulers = ckpt.load_checkpoint(tmp_path / "run")["schedulers"]
    assert schedulers["G"]["_step_count"] == 3 and schedulers["D"]["_step_count"] == 7
    assert schedulers["G"]["_last_lr"] == [0.0] and schedulers["D"]["_last_lr"] == [0.0]


def test_a_run_too_short_for_one_generator_step_is_refused(pairs, tmp_path):
    config = tiny_config(pairs, tmp_path / "run", max_steps=3, n_critic=5)
    with pytest.raises(OptionError, match=r"the G step runs once every 5 steps \(as --n-critic sets it\), so in a run of 3 "
                                          r"step\(s\) it never runs and G would not train: raise --max-steps to 5 steps or more"):
        Trainer(config, progress=False).fit()
    assert not (tmp_path / "run").exists()


def test_a_resumed_run_whose_dataset_is_gone_says_which_path_to_fix(pairs, tmp_path):
    run = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=1), progress=False).fit()
    pairs.rename(tmp_path / "moved")
    with pytest.raises(OptionError, match=r"the run's dataset .*pairs does not exist; if it moved, pass its new place: "
                                          r"gantk train --resume .*run --data NEW_PATH\."):
        Trainer.resume(run, {"max_steps": 2}, progress=False).fit()
    with pytest.raises(OptionError, match=r"^--data .*elsewhere does not exist; check the path\.$"):
        Trainer.resume(run, {"max_steps": 2, "data": str(tmp_path / "elsewhere")}, progress=False).fit()
    Trainer.resume(run, {"max_steps": 2, "data": str(tmp_path / "moved")}, progress=False).fit()


def test_a_resumed_process_restores_the_cuda_random_state_of_its_own_gpu(monkeypatch):
    from gantk.train.resume import restore_cuda_rng

    restored = []
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device: restored.append((state, device)))
    gpu1 = torch.device("cuda", 1)
    restore_cuda_rng(["mine"], gpu1)  # saved by this process: its GPU's state alone
    restore_cuda_rng(["gpu0", "gpu1", "gpu2"], gpu1)  # an older checkpoint: every visible GPU's, by index
    restore_cuda_rng(["gpu0", "gpu1"], torch.device("cuda", 3))  # resumed where the GPUs are numbered otherwise
    restore_cuda_rng(["gpu0"], torch.device("cpu"))
    restore_cuda_rng([], gpu1)
    assert restored == [("mine", gpu1), ("gpu1", gpu1), ("gpu1", torch.device("cuda", 3))]


def test_n_critic_needs_a_discriminator(pairs, tmp_path):
    with pytest.raises(OptionError, match="--n-critic 2 .* no discriminator"):
        Trainer(tiny_config(pairs, tmp_path / "run", max_steps=1, disc="none", loss="l1", n_critic=2), progress=False).fit()


def test_resume_with_n_critic_reproduces_an_uninterrupted_run(pairs, tmp_path):
    def run(out, stop_at=None):
        train_interrupted_then_resumed(tiny_config(pairs, out, max_steps=6, n_critic=2, checkpoint_every=3), stop_at)
        return without_timings(read_rows(out))

    assert run(tmp_path / "resumed", stop_at=5) == run(tmp_path / "straight")


def test_cudnn_picks_its_fastest_convolutions_on_cuda_only_while_training(pairs, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    current = [0]
    monkeypatch.setattr(torch.cuda, "current_device", lambda: current[0])
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: current.__setitem__(0, device if isinstance(device, int) else device.index))
    with trainer_module.tuned_backends(torch.device("cpu")):
        assert torch.backends.cudnn.benchmark is False and current == [0]
    with trainer_module.tuned_backends(torch.device("cuda", 1)):
        assert torch.backends.cudnn.benchmark is True and current == [1]
    assert torch.backends.cudnn.benchmark is False and current == [0]  # the caller's settings again
    tuned, tuning = [], trainer_module.tuned_backends
    monkeypatch.setattr(trainer_module, "tuned_backends", lambda device: tuned.append(device) or tuning(device))
    Trainer(tiny_config(pairs, tmp_path / "run", max_steps=1, device="cpu"), progress=False).fit()
    assert tuned == [torch.device("cpu")]


def test_a_step_without_loss_terms_is_a_clear_error(pairs, tmp_path):
    from gantk import Objective, hookimpl, load_components

    class Silent(Objective):
        """Takes part in no step: its loss is always None."""

        def generator_loss(self, ctx):
            return None

    class Plugin:
        @hookimpl
        def gantk_register_objectives(self, registry):
            registry.add("silent", Silent)

    components = load_components(autoload=False, plugins=[Plugin()])
    config = tiny_config(pairs, tmp_path / "run", max_steps=1, disc="none", loss="silent")
    with pytest.raises(OptionError, match="no loss term takes part in the G step"):
        Trainer(config, components=components, progress=False).fit()


def test_a_diverged_run_stops_with_the_loss_named(pairs, tmp_path):
    config = tiny_config(pairs, tmp_path / "run", max_steps=4, disc="none", loss="exploding", log_every=1)
    with pytest.raises(GantkError, match=r"training diverged at step 2: G/exploding is not finite; lower --lr or clip the gradients \(--grad-clip\); or check the loss terms "
                                          r"of plugin\(s\) helpers\..*Plugin\.$"):  # fp32 already
        Trainer(config, components=exploding_components(), progress=False).fit()
    assert [row["step"] for row in read_metrics(tmp_path / "run" / "metrics.csv")] == [1.0, 2.0]
    config = tiny_config(pairs, tmp_path / "init", max_steps=2, gen_opt={"ngf": 8, "init_gain": 1e30}, log_every=1)
    with pytest.raises(GantkError, match=r"training diverged at step 1: D/bce, G/bce and G/l1 are not finite; at the first step, check the networks' "
                                          r"starting options \(--gen-opt, --disc-opt\), the loss options and the data before the "
                                          r"learning rate \(lower --lr or clip the gradients \(--grad-clip\)\)\.$"):
        Trainer(config, progress=False).fit()


def test_a_discriminator_loss_through_the_generators_graph_is_named_with_its_fix(pairs, tmp_path):
    from gantk import Objective, hookimpl, load_components
    from gantk.objectives.adversarial import bce_discriminator_loss

    class Undetached(Objective):
        """BCE whose discriminator loss reads the fake undetached: its backward frees the generator's graph."""

        adversarial = True

        def discriminator_loss(self, ctx):
            return bce_discriminator_loss(ctx.d_real, ctx.d_fake)

    class Plugin:
        @hookimpl
        def gantk_register_objectives(self, registry):
            registry.add("undetached", Undetached)

    components = load_components(autoload=False, plugins=[Plugin()])
    with pytest.raises(GantkError, match=r"^the G step's losses \(G/l1\) back-propagate through outputs whose graph an earlier step "
                                          r"of this training step freed \(D/undetached\): a term's discriminator loss must read "
                                          r"ctx.d_fake_detached, not ctx.d_fake"):
        Trainer(tiny_config(pairs, tmp_path / "run", max_steps=1, loss="undetached+l1"), components=components, progress=False).fit()


def test_a_run_stopped_by_an_error_stops_its_loader_workers(pairs, tmp_path):
    import multiprocessing

    config = tiny_config(pairs, tmp_path / "run", max_steps=4, disc="none", loss="exploding", log_every=1, workers=1)
    with pytest.raises(GantkError) as stopped:  # its traceback, kept here, holds the trainer's frames
        Trainer(config, components=exploding_components(), progress=False).fit()
    assert stopped.value.__traceback__ is not None and multiprocessing.active_children() == []  # not left to be killed at exit


def test_a_damaged_metrics_file_is_named_when_the_run_resumes(pairs, tmp_path):
    run = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=2), progress=False).fit()
    with (run / "metrics.csv").open("a") as handle:
        handle.write("garbage\n")
    with pytest.raises(GantkError, match=f"{run / 'metrics.csv'} is damaged: a row without a step number; repair or delete"):
        Trainer.resume(run, {"max_steps": 3}, progress=False).fit()


def killed_after(trainer, step):
    """Train with ``trainer`` and stop it after ``step`` as kill -9 would: without a checkpoint of that step (the
    one the trainer writes on an error is removed)."""
    class Killed(Exception):
        pass

    def stop(trainer, done, logged):
        if done == step:
            raise Killed

    trainer.callbacks.append(stop)
    with pytest.raises(Killed):
        trainer.fit()
    ckpt.checkpoint_path(trainer.run_dir, step).unlink()


def test_a_row_cut_short_when_the_run_stopped_is_dropped_on_resuming(pairs, tmp_path):
    config = tiny_config(pairs, tmp_path / "run", max_steps=12, checkpoint_every=10, sample_every=100)
    whole = read_rows(Trainer(tiny_config(pairs, tmp_path / "whole", max_steps=12), progress=False).fit())
    killed_after(Trainer(config, progress=False), 11)  # as a power cut while step 11's row was written
    path = tmp_path / "run" / "metrics.csv"
    text = path.read_text()
    path.write_text(text[: text.rindex("\n", 0, -1) + 2])  # step 11's row cut after its first digit: it reads as step 1
    with pytest.warns(GantkWarning, match=f"{path}: its last row was cut short when the run stopped; it is dropped"):
        Trainer.resume(config.out, progress=False).fit()
    assert without_timings(read_rows(tmp_path / "run")) == without_timings(whole)


def test_rows_lost_since_the_checkpoint_was_written_are_warned_of_on_resuming(tmp_path):
    for split in ("train", "test"):
        write_paired(tmp_path / "data" / split, count=4)
    config = tiny_config(tmp_path / "data", tmp_path / "run", max_steps=4, val_every=2, checkpoint_every=2)
    run = Trainer(config, progress=False).fit()
    metrics = run / "metrics.csv"
    metrics.write_text("".join(metrics.read_text().splitlines(keepends=True)[:2]))  # the header and step 1's row
    (run / "validation.csv").unlink()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Trainer.resume(run, {"max_steps": 5}, progress=False).fit()
    messages = [str(w.message) for w in caught if issubclass(w.category, GantkWarning)]
    assert any(m.startswith(f"{metrics}: its rows end at step 1, but held rows up to step 4 when the checkpoint of step 4 "
                            "was written") for m in messages), messages
    assert any(m.startswith(f"{run / 'validation.csv'}: it has no rows, but held rows up to step 2 when the checkpoint of "
                            "step 4 was written") for m in messages), messages  # a step validates after its checkpoint
    assert [row["step"] for row in read_rows(run)] == ["1", "5"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Trainer.resume(run, {"max_steps": 6}, progress=False).fit()
    assert not [w for w in caught if "rows" in str(w.message)]  # rows as the checkpoint left them: nothing to warn of


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="no /proc/self/fd to name the file each fsync syncs")
def test_the_rows_a_checkpoint_covers_are_synced_to_disk_before_it(tmp_path, monkeypatch):
    for split in ("train", "test"):
        write_paired(tmp_path / "data" / split, count=4)
    synced = []  # (file name, the steps of its rows then), in order
    sync = os.fsync

    def recording_fsync(fd):
        path = Path(os.readlink(f"/proc/self/fd/{fd}"))
        steps = [row["step"] for row in csv.DictReader(path.open())] if path.suffix == ".csv" else None
        synced.append((path.name, steps))
        sync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    Trainer(tiny_config(tmp_path / "data", tmp_path / "run", max_steps=4, val_every=2), progress=False).fit()
    checkpoints = [i for i, (name, _) in enumerate(synced) if name.startswith(".checkpoint-")]
    assert len(checkpoints) == 2
    for step, at in zip((2, 4), checkpoints):
        before = dict(synced[:at])  # each file's newest sync before the checkpoint's
        assert before["metrics.csv"] == [str(s) for s in range(1, step + 1)]
        assert before.get("validation.csv") == (None if step == 2 else ["2"])  # a step validates after its checkpoint


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full (a device every write to fails as a full disk's)")
def test_a_run_folder_that_takes_no_more_writes_stops_training_with_how_to_resume(pairs, tmp_path):
    run = tmp_path / "run"

    def disk_full_after_step_2(trainer, step, logged):
        if step == 2:  # metrics.csv's next row goes to a device that is always full
            (run / "metrics.csv").unlink()
            (run / "metrics.csv").symlink_to("/dev/full")

    with pytest.raises(GantkError, match=f"{run / 'metrics.csv'}: No space left on device. Training stopped at step 3: once {run} "
                                         r"can be written again \(space freed\), continue from the "
                                         f"run's last checkpoint with `gantk train --resume {run}`."):
        Trainer(tiny_config(pairs, run, max_steps=4, log_every=1), callbacks=[disk_full_after_step_2], progress=False).fit()


def test_resuming_a_run_whose_folder_takes_no_files_is_refused_before_the_set_up(pairs, tmp_path, monkeypatch):
    run = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=2), progress=False).fit()
    make_file = tempfile.TemporaryFile

    def refused(*args, dir=None, **kwargs):  # as a run folder made read-only (chmod 555) refuses
        if dir is not None and Path(dir) == run:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        return make_file(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "TemporaryFile", refused)
    monkeypatch.setattr(Trainer, "open_data", lambda *args, **kwargs: pytest.fail("the data were opened"))
    with pytest.raises(OptionError, match=f"^cannot resume the run in {run}: Permission denied; once it can be written again "
                                          r"\(its permissions changed so that this user may write there\), resume it"):
        Trainer.resume(run, {"max_steps": 4}, progress=False).fit()


@pytest.mark.parametrize("code, how", [(errno.EACCES, "its permissions changed so that this user may write there"),
                                       (errno.EPERM, "its permissions changed so that this user may write there"),
                                       (errno.EROFS, "the file system writable")])
def test_a_run_folder_this_user_may_no_longer_write_stops_training_with_how_to_resume(pairs, tmp_path, monkeypatch, code, how):
    run = tmp_path / "run"
    save = trainer_module.save_sample_grid

    def refused_at_step_2(images, path):  # as samples/ made read-only (chmod 555, or the file system remounted) refuses
        if path.name == "step-00000002.png":
            raise OSError(code, os.strerror(code), str(path))
        save(images, path)

    monkeypatch.setattr(trainer_module, "save_sample_grid", refused_at_step_2)
    with pytest.raises(GantkError, match=f"{run / 'samples' / 'step-00000002.png'}: {os.strerror(code)}. Training stopped at step "
                                         f"2: once {run / 'samples'} can be written again \\({how}\\), continue from the run's "
                                         f"last checkpoint with `gantk train --resume {run}`."):
        Trainer(tiny_config(pairs, run, max_steps=4, sample_every=1), progress=False).fit()


def test_a_callback_that_switches_a_network_to_eval_mode_leaves_training_as_it_was(pairs, tmp_path):
    seen = []

    def peek(trainer, step, logged):
        seen.append({name: net.training for name, net in trainer.trained_system.networks.items()})
        trainer.trained_system.networks["G"].eval()  # a look at G, not switched back

    Trainer(tiny_config(pairs, tmp_path / "run", max_steps=3), callbacks=[peek], progress=False).fit()
    assert seen == [{"G": True, "D": True}] * 3


def test_trained_system_is_refused_before_fit_builds_the_system(pairs, tmp_path):
    trainer = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=1), progress=False)
    with pytest.raises(GantkError, match=r"Trainer.trained_system was read before fit\(\) built the system: read it in a "
                                         r"callback or after fit\(\) \(trainer.system is None until then\)."):
        trainer.trained_system
    assert trainer.system is None
    trainer.fit()
    assert trainer.trained_system is trainer.system


def test_settings_of_a_resume_killed_before_its_first_checkpoint_are_warned_of(pairs, tmp_path):
    run = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=2, checkpoint_every=2), progress=False).fit()
    killed_after(Trainer.resume(run, {"max_steps": 6, "log_every": 2}, progress=False), 3)  # no checkpoint of the resume
    with pytest.warns(GantkWarning, match=f"{run / 'config.toml'} holds --log-every 2; --max-steps 6, and the newest checkpoint "
                                          r"\(step 2\) --log-every 1; --max-steps 2: a resume that set them stopped before its "
                                          "first checkpoint"):
        trainer = Trainer.resume(run, progress=False)
    assert trainer.config.max_steps == 2


def test_a_checkpoint_older_than_a_setting_resumes_without_a_warning_of_it(pairs, tmp_path):
    run = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=2, checkpoint_every=2), progress=False).fit()
    payload = torch.load(ckpt.checkpoint_path(run, 2), weights_only=True)
    for key in ("val_fid", "inception_weights", "keep_best"):  # settings a gantk of before did not know
        del payload["train_config"][key]
    ckpt.save_checkpoint(ckpt.checkpoint_path(run, 2), payload)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GantkWarning)
        Trainer.resume(run, progress=False)


@pytest.mark.parametrize("returned, message", [
    (lambda x: (x, x), r"generator 'odd' returned a tuple for an input of \(2, 3, 32, 32\); a generator must return one tensor, "
                       r"N x 3 x H x W"),
    (lambda x: x[..., ::2, ::2], r"generator 'odd' returned \(2, 3, 16, 16\) for an input of \(2, 3, 32, 32\); a generator "
                                 r"must return N x 3 x H x W, the size of its input\. A generator that takes only sizes of "
                                 r"some multiple .* declares it as size_multiple"),
    (lambda x: x[:, :1], r"generator 'odd' returned \(2, 1, 32, 32\) .* the size of its input\.$"),  # no word of sizes
    (lambda x: x.mean((2, 3)), r"generator 'odd' returned \(2, 3\) .* the size of its input\.$"),
    (lambda x: (x * 127).to(torch.uint8), r"generator 'odd' returned torch.uint8 values for an input of \(2, 3, 32, 32\); a "
                                          r"generator returns floating-point values"),
])
def test_a_generator_output_of_another_shape_or_type_is_named(pairs, tmp_path, returned, message):
    class Odd(torch.nn.Module):
        def __init__(self, in_channels=3, out_channels=3):
            super().__init__()
            self.conv = torch.nn.Conv2d(in_channels, out_channels, 1)

        def forward(self, x):
            return returned(self.conv(x))

    config = tiny_config(pairs, tmp_path / "run", max_steps=1, gen="odd", gen_opt={})
    with pytest.raises(OptionError, match=message):
        Trainer(config, components=components_with_generator("odd", Odd), progress=False).fit()


def test_an_exception_in_a_generators_forward_names_the_generator(pairs, tmp_path):
    class Broken(torch.nn.Module):
        def __init__(self, in_channels=3, out_channels=3):
            super().__init__()
            self.conv = torch.nn.Conv2d(in_channels, out_channels, 1)

        def forward(self, x):
            raise ZeroDivisionError("boom")

    config = tiny_config(pairs, tmp_path / "run", max_steps=1, gen="broken", gen_opt={})
    with pytest.raises(ZeroDivisionError, match="boom") as raised:
        Trainer(config, components=components_with_generator("broken", Broken), progress=False).fit()
    assert raised.value.__notes__ == ["(raised in the forward pass of generator 'broken')"]


@pytest.mark.parametrize("settings, error, message", [
    ({"gen_opt": {"ngff": 8}}, OptionError, r"generator 'unet' has no option 'ngff'.*Did you mean 'ngf'"),
    ({"disc_opt": {"ndf": "wide"}}, OptionError, "ndf"),
    ({"loss": "bce+l3"}, SpecError, "unknown objective 'l3'"),
    ({"loss_opt": {"bce": {"smoothing": 0.1}}}, OptionError, "objective 'bce' has no option 'smoothing'"),
])
def test_a_misspelt_part_or_option_is_refused_before_the_data_are_read(tmp_path, settings, error, message):
    config = TrainConfig(data=str(tmp_path / "not-read"), out=str(tmp_path / "run"), **settings)
    with pytest.raises(error, match=message):
        Trainer(config, progress=False)  # no fit: the data are neither checked nor opened


def test_a_network_may_keep_an_infinite_buffer(pairs, tmp_path):
    class Floored(torch.nn.Module):
        """A convolution that keeps a floor of -inf (a mask value) in a buffer."""

        def __init__(self, in_channels=3, out_channels=3):
            super().__init__()
            self.conv = torch.nn.Conv2d(in_channels, out_channels, 3, padding=1)
            self.register_buffer("floor", torch.tensor(float("-inf")))

        def forward(self, x):
            return torch.tanh(self.conv(x)).clamp(min=self.floor)

    config = tiny_config(pairs, tmp_path / "run", max_steps=2, gen="floored", gen_opt={})
    Trainer(config, components=components_with_generator("floored", Floored), progress=False).fit()
    assert [p.name for p in ckpt.list_checkpoints(tmp_path / "run")] == ["checkpoint-00000002.pt"]


def test_a_checkpoint_between_logged_steps_is_not_written_with_diverged_weights(pairs, tmp_path):
    # The loss turns NaN at step 2 and so do G's weights; step 3 checkpoints but logs nothing.
    config = tiny_config(pairs, tmp_path / "run", max_steps=6, disc="none", loss="exploding", log_every=5, checkpoint_every=3)
    with pytest.raises(GantkError, match=r"training diverged at step 3: G holds weights that are not finite, so no checkpoint "
                                          r"is written for this step; lower --lr or clip the gradients \(--grad-clip\), or log every step \(--log-every 1\)"):
        Trainer(config, components=exploding_components(), progress=False).fit()
    assert ckpt.list_checkpoints(tmp_path / "run") == []


def test_a_resumed_run_that_diverges_is_pointed_to_a_new_run(pairs, tmp_path):
    config = tiny_config(pairs, tmp_path / "run", max_steps=1, disc="none", loss="exploding", log_every=1)
    Trainer(config, components=exploding_components(), progress=False).fit()
    resumed = Trainer.resume(tmp_path / "run", {"max_steps": 4}, components=exploding_components(), progress=False)
    with pytest.raises(GantkError, match=r"diverged at step 3: G/exploding is not finite; resuming this run repeats it, as its "
                                          r"settings cannot change: start a new run instead \(--init-from an earlier checkpoint "
                                          r"of this one starts it from those weights\), and lower --lr or clip the gradients "
                                          r"\(--grad-clip\); or check"):
        resumed.fit()


@pytest.mark.filterwarnings("ignore::gantk.errors.GantkWarning")  # fp16 may be slow on this CPU
def test_a_diverged_fp16_run_stops_once_the_loss_scale_falls_below_one(pairs, tmp_path, monkeypatch):
    # Skipped steps halve the scale: from 4, the steps 2, 3 and 4 overflow and take it to 0.5.
    monkeypatch.setattr(trainer_module, "grad_scaler", lambda device, precision: torch.amp.GradScaler(
        device.type, init_scale=4.0, enabled=precision == "fp16"))
    config = tiny_config(pairs, tmp_path / "run", max_steps=8, disc="none", loss="exploding", log_every=1, precision="fp16")
    with pytest.raises(GantkError, match="diverged at step 4: G/exploding is not finite and the fp16 loss scale fell to 0.5"):
        Trainer(config, components=exploding_components(), progress=False).fit()


def test_fp16_steps_skipped_for_overflowing_gradients_are_warned_of(pairs, tmp_path):
    config = tiny_config(pairs, tmp_path / "run", max_steps=22, loss="bce+l1@1e6", log_every=1, precision="fp16")
    with pytest.warns(GantkWarning) as caught:
        Trainer(config, progress=False).fit()
    skips = [str(w.message) for w in caught if "loss scaler skipped" in str(w.message)]
    assert len(skips) == 1 and re.match(r"fp16's loss scaler skipped (1[1-9]|20) of the 20 G steps so far", skips[0]), skips
    assert "G barely trains; lower the loss weights or --lr, or use --precision bf16 or fp32." in skips[0]
    optimizers = ckpt.load_checkpoint(tmp_path / "run")["optimizers"]
    steps = {name: int(next(iter(state["state"].values()))["step"]) for name, state in optimizers.items()}
    assert steps["G"] < 11 and steps["D"] > 11  # D's steps, mostly taken, are not warned of


def test_a_generator_that_changes_the_size_is_named(pairs, tmp_path):
    from gantk import hookimpl, load_components

    def halving(in_channels=3, out_channels=3):
        """Halves the image (a broken generator)."""
        return torch.nn.Conv2d(in_channels, out_channels, 2, stride=2)

    class Plugin:
        @hookimpl
        def gantk_register_generators(self, registry):
            registry.add("halving", halving)

    components = load_components(autoload=False, plugins=[Plugin()])
    config = tiny_config(pairs, tmp_path / "run", max_steps=1, gen="halving", gen_opt={})
    with pytest.raises(OptionError, match=r"generator 'halving' returned \(2, 3, 16, 16\) for an input of \(2, 3, 32, 32\)"):
        Trainer(config, components=components, progress=False).fit()


def test_epochs_that_make_too_many_steps_are_refused(pairs, tmp_path):
    trainer = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=None, epochs=10**12, batch_size=1), progress=False)
    with pytest.raises(OptionError, match=r"--epochs 1000000000000 makes 10000000000000000000 steps, more than gantk takes"):
        trainer.plan_schedule(types.SimpleNamespace(phases=()), 10**7)  # a split of ten million items


@pytest.mark.parametrize("key, value, message", [
    ("beta1", 1.5, "--beta1 is an Adam decay rate in [0, 1), got 1.5."),
    ("beta2", -0.1, "--beta2 is an Adam decay rate in [0, 1), got -0.1."),
    ("pool_size", -1, "--pool-size must be an integer of at least 0, got -1."),
    ("warmup_steps", -1, "--warmup-steps must be an integer of at least 0, got -1."),
    ("grad_clip", 0.0, "--grad-clip must be a positive number, got 0.0."),
    ("grad_clip", float("inf"), "--grad-clip must be a positive number, got inf."),
    ("lr_schedule", "step", "--lr-schedule must be one of linear, cosine, got 'step'."),
    ("workers", -2, "--workers must be an integer of at least 0, got -2."),
    ("max_steps", 10**20, "--max-steps is 100000000000000000000, more than gantk takes (1e+12); give a smaller one."),
    ("keep_checkpoints", 0, "--keep-checkpoints must be an integer of at least 1, got 0."),
    ("seed", 2**64, f"seed must be an integer from {-2**63} to {2**64 - 1}, got {2**64}."),
    ("max_steps", 1e1, "max_steps must be an integer, got 10.0."),
    ("lr", "2e-4", "lr must be a number, got '2e-4'."),
    ("device", "cuda:x", "--device must be auto, cpu, cuda or cuda:N (e.g. cuda:1), got 'cuda:x'."),
    ("device", "cuda:01", "--device must be auto, cpu, cuda or cuda:N (e.g. cuda:1), got 'cuda:01'."),
    ("device", torch.device("cpu"), "--device must be auto, cpu, cuda or cuda:N (e.g. cuda:1), got device(type='cpu')."),
    ("compile_mode", "fast", "--compile-mode must be one of default, reduce-overhead, max-autotune, got 'fast'."),
    ("compile_mode", "reduce-overhead", "--compile-mode reduce-overhead is a mode of torch.compile, which is off: add --compile."),
])
def test_out_of_range_settings_are_named(pairs, tmp_path, key, value, message):
    with pytest.raises(OptionError, match=re.escape(message)):
        Trainer(tiny_config(pairs, tmp_path / "run", **{"max_steps": 1, key: value}), progress=False)


def test_paths_config_toml_cannot_record_are_refused_before_anything_is_written(pairs, tmp_path):
    out = tmp_path / os.fsdecode(b"run\xff")
    with pytest.raises(OptionError, match=re.escape(f"--out {str(out)!a} holds bytes that are not UTF-8, which the run's config.toml "
                                                    "cannot record: rename it (or a folder above it).")):
        Trainer(tiny_config(pairs, out, max_steps=1), progress=False)
    assert not out.exists()


@pytest.mark.parametrize("key", ["data", "init_from", "lpips_weights", "inception_weights"])
def test_other_paths_config_toml_cannot_record_are_refused(tmp_path, key):
    path = tmp_path / os.fsdecode(b"x\xff")
    flag = "--" + key.replace("_", "-")
    with pytest.raises(OptionError, match=re.escape(f"{flag} {str(path)!a} holds bytes that are not UTF-8, which the run's config.toml")):
        TrainConfig(out=str(tmp_path / "run"), **{key: str(path)}).validate()


def test_a_config_file_not_in_utf8_is_refused_as_not_valid_toml(tmp_path):
    from gantk.train.config import read_config_file

    config = tmp_path / "run.toml"
    config.write_bytes(b"seed = 0\n# \xff\n")
    with pytest.raises(OptionError, match=rf"config file {re.escape(str(config))} is not valid TOML: 'utf-8' codec can't decode"):
        read_config_file(config)


@pytest.mark.parametrize("cuda", [True, False])
def test_a_device_named_otherwise_is_the_same_device(monkeypatch, cuda):
    """Resuming with --device cuda:0 a run of --device cuda (or auto, on a GPU) changes no arithmetic: no warning."""
    from gantk.train.resume import _runs_on

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert (_runs_on("auto") == _runs_on("cuda") == _runs_on("cuda:0")) is cuda
    assert _runs_on("cuda:1") != _runs_on("cuda") and (_runs_on("auto") == _runs_on("cpu")) is not cuda


def test_option_tables_merge_at_every_depth():
    """A flag's table adds to a config file's (and a recipe's): one objective's option leaves its others."""
    from gantk.train.config import layered

    config = TrainConfig(loss_opt={"bce": {"real_label": 0.9}}, gen_opt={"ngf": 8})
    merged = config.merged({"loss_opt": {"bce": {"fake_label": 0.2}, "l1": {}}, "gen_opt": {"norm": "batch"}})
    assert merged.loss_opt == {"bce": {"real_label": 0.9, "fake_label": 0.2}, "l1": {}} and merged.gen_opt == {"ngf": 8, "norm": "batch"}
    assert layered({"loss_opt": {"bce": {"real_label": 0.9}}}, {"loss_opt": {"bce": {"fake_label": 0.2}}}) == {
        "loss_opt": {"bce": {"real_label": 0.9, "fake_label": 0.2}}}


def test_a_later_layer_in_epochs_replaces_a_length_in_steps():
    from gantk.train.config import layered

    assert layered({"max_steps": 2, "lr": 1e-3}, {"epochs": 1}) == {"lr": 1e-3, "epochs": 1}
    assert layered({"epochs": 1}, {"max_steps": 2}) == {"epochs": 1, "max_steps": 2}  # steps override epochs
    assert layered({"max_steps": 2}, {"epochs": 1, "max_steps": 3}) == {"max_steps": 3, "epochs": 1}
    assert TrainConfig(max_steps=2).merged({"epochs": 1}).max_steps is None
    assert TrainConfig(max_steps=2).merged({"epochs": 1}, only_unset=True).max_steps == 2


def test_a_run_does_not_write_through_a_link_in_place_of_its_samples_folder(pairs, tmp_path):
    run = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=1), progress=False).fit()
    shutil.rmtree(run / "samples")
    (tmp_path / "elsewhere").mkdir()
    (run / "samples").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OptionError, match=r"run: samples/ is a link to another folder, which the run would write its files "
                                          r"into: remove the link"):
        Trainer.resume(run, {"max_steps": 2}, progress=False).fit()
    assert not any((tmp_path / "elsewhere").iterdir())


def test_resume_changes_only_how_the_run_is_executed(pairs, tmp_path):
    Trainer(tiny_config(pairs, tmp_path / "run", max_steps=1), progress=False).fit()
    with pytest.raises(OptionError, match=r"cannot change --lr, --seed \(the run has --lr 0.0002; --seed 0\); it may change .*--max-steps"):
        Trainer.resume(tmp_path / "run", {"lr": 1e-3, "seed": 1, "log_every": 5})
    with pytest.raises(OptionError, match=r"cannot change --grad-clip \(the run has no --grad-clip\)"):
        Trainer.resume(tmp_path / "run", {"grad_clip": 1.0})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the run's own values, its own folder and the device auto picks: no change
        Trainer.resume(tmp_path / "run", {"lr": 2e-4, "seed": 0, "out": f"{tmp_path / 'run'}/", "device": "cpu",
                                          "gen_opt": {"ngf": 8}, "flip": True})  # part of the run's options table
    with pytest.raises(OptionError, match=r"cannot change --flip, --gen-opt \(the run has --flip; --gen-opt .*ngf=8,num_downs=5\)"):
        Trainer.resume(tmp_path / "run", {"gen_opt": {"ngf": 16}, "flip": False})
    with pytest.raises(OptionError, match="takes a run directory .* not the file"):
        Trainer.resume(ckpt.list_checkpoints(tmp_path / "run")[-1])
    with pytest.warns(GantkWarning, match="the run had --no-compile: changing it changes the arithmetic"):
        Trainer.resume(tmp_path / "run", {"compile": True})
    trainer = Trainer.resume(tmp_path / "run", {"max_steps": 2, "log_every": 5, "compile": False}, progress=False)
    assert trainer.step == 1  # the checkpoint's, before fit
    assert trainer.config.log_every == 5 and trainer.fit() and trainer.step == 2
    with pytest.raises(OptionError, match=r"this Trainer has trained the run in .* \(to step 2\): continue it with Trainer.resume"):
        trainer.fit()


def test_a_resumed_checkpoint_whose_settings_are_of_another_type_is_named_as_damaged(pairs, tmp_path):
    run = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=1), progress=False).fit()
    path = run / "checkpoint-00000001.pt"
    written = path.read_bytes()
    for key, value, named in (("log_every", "x", "log_every must be an integer, got 'x'"),  # not compared with config.toml
                              ("crop_size", "32", "crop_size must be an integer, got '32'")):  # compared: 32 as text is not 32
        path.write_bytes(written)
        payload = torch.load(path, weights_only=True)
        payload["train_config"][key] = value
        torch.save(payload, path)
        with pytest.raises(CheckpointError, match=rf"checkpoint {path} holds settings gantk cannot take \({named}\): the file is "
                                                  r"damaged or was edited"):
            Trainer.resume(run, {"max_steps": 2}, progress=False)


def test_resuming_on_another_device_warns_that_the_arithmetic_changes(pairs, tmp_path):
    from gantk.plugins import default_components
    from gantk.train.resume import resumed_config

    Trainer(tiny_config(pairs, tmp_path / "run", max_steps=1, device="cpu"), progress=False).fit()
    with pytest.warns(GantkWarning, match="the run had --device cpu: changing it changes the arithmetic"):
        config, _ = resumed_config(tmp_path / "run", {"device": "cuda"}, default_components())  # not built: no GPU needed
    assert config.device == "cuda"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the run's own device: no change
        resumed_config(tmp_path / "run", {"device": "cpu"}, default_components())


def test_resuming_with_another_torch_or_cpu_thread_count_warns_that_the_arithmetic_changes(pairs, tmp_path):
    from gantk.plugins import default_components
    from gantk.train.resume import resumed_config

    run = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=1, device="cpu"), progress=False).fit()
    assert ckpt.load_checkpoint(run)["computed_by"] == {"device": "cpu", "torch": str(torch.__version__),
                                                        "threads": torch.get_num_threads()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # computed as before: no warning
        resumed_config(run, {}, default_components())
    threads = torch.get_num_threads()
    torch.set_num_threads(threads + 1)
    try:
        with pytest.warns(GantkWarning, match=rf"computed with {threads} CPU threads, now {threads + 1} \(OMP_NUM_THREADS "
                                              r"sets them\): the resumed run continues, but not bit for bit"):
            resumed_config(run, {}, default_components())
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            resumed_config(run, {"device": "cuda"}, default_components())  # not built: no GPU needed
        assert [str(w.message) for w in caught if "computed with" in str(w.message)] == [  # not the CPU's threads, on a GPU
            "the run was computed with device cpu, now cuda: the resumed run continues, but not bit for bit as an "
            "uninterrupted one would."]
    finally:
        torch.set_num_threads(threads)
    path = ckpt.list_checkpoints(run)[-1]
    payload = torch.load(path, weights_only=True)
    payload["computed_by"]["torch"] = "2.0.0"
    torch.save(payload, path)
    with pytest.warns(GantkWarning, match=rf"computed with torch 2.0.0, now {re.escape(torch.__version__)}: the resumed"):
        resumed_config(run, {}, default_components())
    del payload["computed_by"]  # a checkpoint of an older gantk: nothing to compare
    torch.save(payload, path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resumed_config(run, {}, default_components())


def test_training_without_progress_leaves_no_thread_behind(pairs, tmp_path):
    import threading

    before = set(threading.enumerate())
    Trainer(tiny_config(pairs, tmp_path / "run", max_steps=1), progress=False).fit()
    assert not [thread.name for thread in set(threading.enumerate()) - before]  # tqdm starts a monitor for each bar


def test_another_default_dtype_is_refused_before_training(pairs, tmp_path):
    torch.set_default_dtype(torch.float64)
    try:
        with pytest.raises(OptionError, match=r"torch's default dtype is torch.float64 \(torch.set_default_dtype\), and gantk trains "
                                              r"in float32 .*set it back with torch.set_default_dtype\(torch.float32\)"):
            Trainer(tiny_config(pairs, tmp_path / "run", max_steps=1), progress=False).fit()
    finally:
        torch.set_default_dtype(torch.float32)
    assert not list((tmp_path / "run").glob("checkpoint-*"))


def test_resume_names_overrides_given_the_wrong_way(pairs, tmp_path):
    with pytest.raises(OptionError, match=r"run directory .*nowhere does not exist; resume the --out directory"):
        Trainer.resume(tmp_path / "nowhere")
    (tmp_path / "early").mkdir()
    (tmp_path / "early" / "config.toml").write_text("seed = 0\n")  # a run killed before its first checkpoint
    with pytest.raises(OptionError, match=r"stopped before its first checkpoint, so there is nothing to resume: start it again "
                                          r"with the same --out"):
        Trainer.resume(tmp_path / "early")
    held = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDONLY); "
                             "fcntl.flock(fd, fcntl.LOCK_EX); print(flush=True); time.sleep(60)", str(tmp_path / "early")],
                            stdout=subprocess.PIPE, text=True)
    try:
        held.stdout.readline()  # another process trains there, and has written no checkpoint yet
        with pytest.raises(OptionError, match=r"another process is training in .*early, and has written no checkpoint yet; "
                                              r"wait for it to end"):
            Trainer.resume(tmp_path / "early")
    finally:
        held.kill()
        held.wait()
    Trainer(tiny_config(pairs, tmp_path / "run", max_steps=1), progress=False).fit()
    with pytest.raises(OptionError, match=r"unknown setting\(s\) max_step\. Did you mean max_steps\?"):
        Trainer.resume(tmp_path / "run", {"max_step": 2})
    with pytest.raises(OptionError, match=r"overrides is a dict of the settings to change .*, not a TrainConfig"):
        Trainer.resume(tmp_path / "run", TrainConfig(max_steps=2))
    with pytest.raises(OptionError, match=r"max_steps given as keyword: .* Trainer.resume\(run_dir, \{'max_steps': 2\}\)"):
        Trainer.resume(tmp_path / "run", max_steps=2)
    with pytest.raises(OptionError, match=r"takes no resume_from; .* call Trainer\(config, resume_from=\.\.\.\)"):
        Trainer.resume(tmp_path / "run", resume_from={})


def test_a_callback_that_fails_stops_the_run_after_a_checkpoint_of_its_step(pairs, tmp_path):
    def broken(trainer, step, logged):
        if step == 3:
            raise ValueError("a bug in the callback")

    with pytest.raises(ValueError, match="a bug in the callback"):
        Trainer(tiny_config(pairs, tmp_path / "run", max_steps=6, checkpoint_every=4), callbacks=[broken], progress=False).fit()
    assert [path.name for path in ckpt.list_checkpoints(tmp_path / "run")] == ["checkpoint-00000003.pt"]
    assert Trainer.resume(tmp_path / "run", progress=False).fit() and ckpt.load_checkpoint(tmp_path / "run")["step"] == 6


def test_a_run_resumes_from_another_working_directory(pairs, tmp_path, monkeypatch):
    monkeypatch.chdir(pairs.parent)
    Trainer(tiny_config(pairs.name, tmp_path / "run", max_steps=2), progress=False).fit()  # a relative --data
    monkeypatch.chdir(tmp_path / "run")
    trainer = Trainer.resume(tmp_path / "run", {"max_steps": 3}, progress=False)
    assert trainer.config.data == str(pairs)
    trainer.fit()
    assert trainer.step == 3


def test_resume_to_fewer_steps_than_done_is_refused(pairs, tmp_path):
    Trainer(tiny_config(pairs, tmp_path / "run", max_steps=2), progress=False).fit()
    config_before = (tmp_path / "run" / "config.toml").read_text()
    with pytest.raises(OptionError, match="is at step 2, past the 1 steps asked for"):
        Trainer.resume(tmp_path / "run", {"max_steps": 1}, progress=False).fit()
    assert (tmp_path / "run" / "config.toml").read_text() == config_before


def test_a_finished_run_resumed_for_no_step_keeps_its_settings(pairs, tmp_path):
    Trainer(tiny_config(pairs, tmp_path / "run", max_steps=2), progress=False).fit()
    config_before = (tmp_path / "run" / "config.toml").read_text()
    other = write_paired(tmp_path / "other")
    trainer = Trainer.resume(tmp_path / "run", {"max_steps": 2, "data": str(other)}, progress=False)
    trainer.fit()
    assert trainer.step == 2 and (tmp_path / "run" / "config.toml").read_text() == config_before


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_finishes_the_step_and_saves_a_checkpoint(pairs, tmp_path, signum, capsys):
    from gantk.train.interrupt import TrainingInterrupted

    def send_signal(trainer, step, logged):
        if step == 3:
            os.kill(os.getpid(), signum)

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    config = tiny_config(pairs, tmp_path / "run", max_steps=6, checkpoint_every=100)
    with pytest.raises(TrainingInterrupted) as stop:
        Trainer(config, callbacks=[send_signal], progress=False).fit()
    assert (stop.value.step, stop.value.signum) == (3, signum) and ckpt.load_checkpoint(tmp_path / "run")["step"] == 3
    assert (tmp_path / "run" / "loss_curves.png").is_file()  # plotted from the rows logged before the signal
    assert f"{signal.Signals(signum).name}: stopping after this step, with a checkpoint; send it again" in capsys.readouterr().err
    assert handlers == {sig: signal.getsignal(sig) for sig in handlers}  # the signals act as before again
    trainer = Trainer.resume(tmp_path / "run", progress=False)
    trainer.fit()
    assert trainer.step == 6


@pytest.mark.parametrize("swallowed", [False, True])
def test_a_ctrl_c_during_the_set_up_stops_it_before_any_step_even_if_swallowed(pairs, tmp_path, monkeypatch, swallowed):
    build = Trainer.build_system

    def signalled_while_building(self, *args, **kwargs):
        try:
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C in the set-up, before the loop begins
        except KeyboardInterrupt:
            if not swallowed:  # as a finalizer running then would: Python prints it and goes on
                raise
        return build(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "build_system", signalled_while_building)
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        Trainer(tiny_config(pairs, tmp_path / "run", max_steps=6), progress=False).fit()
    assert not ckpt.list_checkpoints(tmp_path / "run") and signal.getsignal(signal.SIGINT) is handler
    monkeypatch.undo()
    assert Trainer(tiny_config(pairs, tmp_path / "run", max_steps=1), progress=False).fit()  # the folder is free


@pytest.mark.parametrize("stop_at, saved", [(3, [2, 3]), (4, [2, 4])])  # a step between checkpoints, and one of them
def test_a_callback_stops_training_after_a_checkpoint(pairs, tmp_path, stop_at, saved):
    from gantk.train import StopTraining

    def stop(trainer, step, logged):
        if step == stop_at:
            raise StopTraining

    steps = []
    run = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=8, checkpoint_every=2, keep_checkpoints=5),
                  callbacks=[stop, lambda trainer, step, logged: steps.append(step)], progress=False).fit()
    assert steps == list(range(1, stop_at)) and [int(p.stem[11:]) for p in ckpt.list_checkpoints(run)] == saved
    assert (run / "loss_curves.png").is_file()
    trainer = Trainer.resume(run, progress=False)
    trainer.fit()
    assert trainer.step == 8


@pytest.mark.parametrize("workers", [0, 2])
def test_a_file_removed_during_training_stops_it_with_one_message_after_a_checkpoint(pairs, tmp_path, workers):
    import multiprocessing

    gone = sorted((pairs / "B").iterdir())[0]
    remove = lambda trainer, step, logged: step == 1 and gone.unlink()  # noqa: E731
    config = tiny_config(pairs, tmp_path / "run", max_steps=30, checkpoint_every=100, workers=workers)
    with pytest.raises(DataError) as stopped:
        Trainer(config, callbacks=[remove], progress=False).fit()
    step = ckpt.load_checkpoint(tmp_path / "run")["step"]
    assert str(stopped.value) == (f"{gone}: not found: it was moved or deleted after gantk listed the data; put it back. Training "
                                  f"stopped at step {step}, which is saved: once the data are fixed, continue with "
                                  f"`gantk train --resume {tmp_path / 'run'}`.")
    assert 1 <= step < 30 and not multiprocessing.active_children()  # the loader's workers stopped with it


def test_a_loader_worker_killed_mid_run_stops_training_after_a_checkpoint(pairs, tmp_path):
    import multiprocessing
    import os
    import signal

    def kill_a_worker(trainer, step, logged):
        if step == 2:
            os.kill(multiprocessing.active_children()[0].pid, signal.SIGKILL)  # as the system's memory killer would

    config = tiny_config(pairs, tmp_path / "run", max_steps=30, checkpoint_every=2, workers=2)
    with pytest.raises(DataError) as stopped:
        Trainer(config, callbacks=[kill_a_worker], progress=False).fit()
    step = ckpt.load_checkpoint(tmp_path / "run")["step"]
    # torch tells of it as a worker "killed by signal" (from its signal handler, anywhere in the main process: mid-step
    # then, with no checkpoint of that step) or as one that "exited unexpectedly" (waiting for a batch: after a checkpoint).
    ended = r"a data-loading worker ended: \((?:pid \d+\) is killed by signal: Killed|pid\(s\) \d+\) exited unexpectedly)"
    resume = rf"continue (?:from the run's last checkpoint )?with `gantk train --resume {re.escape(str(tmp_path / 'run'))}`."
    stopped_at = rf"Training stopped (?:at step {step}, which is saved|during step \d+, which is not saved)"
    assert re.fullmatch(rf"{ended} \(by the system when short of memory, or by another process\). {stopped_at}: with fewer --workers "
                        rf"or more free memory, {resume}", str(stopped.value)), str(stopped.value)
    assert 2 <= step < 30 and not multiprocessing.active_children()  # the other worker stopped with the run


def test_a_validation_file_removed_during_training_stops_it_after_a_checkpoint(tmp_path):
    data = tmp_path / "data"
    write_paired(data / "train")
    gone = sorted((write_paired(data / "val") / "B").iterdir())[0]
    remove = lambda trainer, step, logged: step == 3 and gone.unlink()  # noqa: E731
    config = tiny_config(data, tmp_path / "run", max_steps=8, checkpoint_every=100, val_every=5, val_split="val")
    with pytest.raises(DataError, match=rf"{gone}: not found: .* Training stopped at step 5, which is saved"):
        Trainer(config, callbacks=[remove], progress=False).fit()
    assert ckpt.load_checkpoint(tmp_path / "run")["step"] == 5


def test_a_run_stopped_before_its_first_log_row_ends_without_a_plot(pairs, tmp_path):
    from gantk.train import StopTraining

    def stop(trainer, step, logged):
        raise StopTraining

    run = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=20, log_every=10), callbacks=[stop], progress=False).fit()
    assert ckpt.load_checkpoint(run)["step"] == 1 and not (run / "loss_curves.png").exists()


def test_a_failing_sample_grid_loses_no_training(pairs, tmp_path, monkeypatch):
    from gantk.train import trainer as trainer_module

    def fail(images, path):
        raise OSError(f"{path}: no space left on device")

    monkeypatch.setattr(trainer_module, "save_sample_grid", fail)
    with pytest.raises(OSError, match="no space left"):
        Trainer(tiny_config(pairs, tmp_path / "run", max_steps=4), progress=False).fit()
    assert ckpt.load_checkpoint(tmp_path / "run")["step"] == 2  # the step's checkpoint came first


def test_a_signal_during_the_last_step_lets_the_run_finish(pairs, tmp_path):
    from gantk.train.interrupt import TrainingInterrupted

    def send_signal(trainer, step, logged):
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)

    trainer = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=2), callbacks=[send_signal], progress=False)
    try:
        trainer.fit()
    except TrainingInterrupted:  # a KeyboardInterrupt, which would stop the test session
        pytest.fail("a signal during the last step interrupted a finished run")
    assert trainer.step == 2 and (tmp_path / "run" / "loss_curves.png").is_file()


def test_a_signal_to_the_whole_process_group_spares_the_loader_workers(tmp_path):
    # Job schedulers signal every process of a job: the loader's workers must not die mid-step.
    pairs = write_paired(tmp_path / "pairs", count=40)
    command = [sys.executable, "-m", "gantk", "train", "--data", str(pairs), "--out", str(tmp_path / "run"), "--load-size", "36",
               "--crop-size", "32", "--gen-opt", "ngf=8", "--disc-opt", "ndf=8", "--workers", "2", "--log-every", "1",
               "--max-steps", "2000", "--no-progress"]
    returncode, stderr = signalled_once_training(command, tmp_path / "run", signal.SIGTERM)
    assert returncode == 128 + signal.SIGTERM, stderr[-3000:]
    assert "interrupted: checkpoint saved at step" in stderr
    assert ckpt.load_checkpoint(tmp_path / "run")["step"] >= 3


def test_a_run_whose_dataset_moved_resumes_with_its_new_place(pairs, tmp_path):
    Trainer(tiny_config(pairs, tmp_path / "run", max_steps=2, decay_start=1.0), progress=False).fit()  # lengthened, no rise
    moved = pairs.rename(tmp_path / "moved")
    with pytest.raises(OptionError, match=f"the run's dataset {re.escape(str(pairs))} does not exist; if it moved, pass "
                                          f"its new place: gantk train --resume {re.escape(str(tmp_path / 'run'))} --data NEW_PATH"):
        Trainer.resume(tmp_path / "run", {"max_steps": 4}, progress=False).fit()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same items: no warning
        Trainer.resume(tmp_path / "run", {"max_steps": 4, "data": str(moved)}, progress=False).fit()
    assert ckpt.load_checkpoint(tmp_path / "run")["train_config"]["data"] == str(moved)


def test_a_checkpoint_without_an_item_count_resumed_on_moved_data_warns(pairs, tmp_path):
    Trainer(tiny_config(pairs, tmp_path / "run", max_steps=2), progress=False).fit()
    path = ckpt.list_checkpoints(tmp_path / "run")[-1]
    payload = torch.load(path, weights_only=True)
    del payload["train_items"]  # as gantk saved it before counting items
    torch.save(payload, path)
    moved = pairs.rename(tmp_path / "moved")
    with pytest.warns(GantkWarning, match="the checkpoint predates item counts"):
        Trainer.resume(tmp_path / "run", {"max_steps": 3, "data": str(moved)}, progress=False).fit()


def test_resuming_on_a_dataset_that_changed_warns(pairs, tmp_path):
    Trainer(tiny_config(pairs, tmp_path / "run", max_steps=2), progress=False).fit()
    write_paired(pairs, count=8)
    with pytest.warns(GantkWarning, match="the run trained on 6 items and its dataset now holds 8"):
        Trainer.resume(tmp_path / "run", {"max_steps": 4}, progress=False).fit()


def test_resuming_with_another_number_of_processes_warns(pairs, tmp_path):
    Trainer(tiny_config(pairs, tmp_path / "run", epochs=2), progress=False).fit()
    path = ckpt.list_checkpoints(tmp_path / "run")[-1]
    payload = torch.load(path, weights_only=True)
    payload["rng"] = payload["rng"] * 2  # as two processes under torchrun save it
    payload["step"] = 1
    for saved in ckpt.list_checkpoints(tmp_path / "run"):
        saved.unlink()
    torch.save(payload, tmp_path / "run" / "checkpoint-00000001.pt")
    with pytest.warns(GantkWarning, match="trained with 2 process.es. and resumes with 1: a step now takes 2 image.s. "
                                          "instead of 4, the epochs are dealt out anew and the run ends at step 6"):
        Trainer.resume(tmp_path / "run", progress=False).fit()


def test_a_load_size_that_enlarges_most_images_warns(pairs, tmp_path):
    from gantk.data.io import write_png

    aligned = tmp_path / "aligned"
    for i in range(4):  # 80x60 A|B images: 40x60 halves
        write_png(torch.full((3, 60, 80), 100 + 10 * i, dtype=torch.uint8), aligned / "train" / f"{i}.png")
    for data, data_format in ((pairs, None), (aligned, "aligned")):
        with pytest.warns(GantkWarning, match=r"--load-size 64 enlarges half the training images of .* or more \(their median shorter side is 40 px\) 1.6 times or more"):
            Trainer(tiny_config(data, tmp_path / "run", load_size=64, crop_size=64, data_format=data_format), progress=False).open_data()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            Trainer(tiny_config(data, tmp_path / "run", load_size=56, crop_size=48, data_format=data_format), progress=False).open_data()


def test_a_resumed_run_is_not_warned_again_of_unseen_classes_or_a_val_split_without_val_every(tmp_path):
    from gantk.data.io import write_png

    for split, classes in (("train", 2), ("test", 3)):  # class 2 in the test masks alone
        for i in range(2):
            write_png(smooth_image(i), tmp_path / "data" / split / "images" / f"{i}.png")
            write_png((torch.arange(40) % classes).to(torch.uint8)[None, :, None].expand(1, 40, 40).contiguous(),
                      tmp_path / "data" / split / "masks" / f"{i}.png")
    config = tiny_config(tmp_path / "data", tmp_path / "run", recipe="seg", max_steps=1, val_split="test")
    warned_once = ("no training mask holds a pixel of class 2", "--val-split test names the split --val-every validates on")
    with pytest.warns(GantkWarning) as began:
        Trainer(config, progress=False).fit()
    assert all(any(text in str(w.message) for w in began) for text in warned_once), [str(w.message) for w in began]
    with warnings.catch_warnings(record=True) as resumed:
        warnings.simplefilter("always")
        Trainer.resume(config.out, {"max_steps": 2}, progress=False).open_data()
    assert not [str(w.message) for w in resumed if any(text in str(w.message) for text in warned_once)]


def test_a_model_trained_from_pretrained_weights_loads_and_resumes_without_them(pairs, tmp_path, monkeypatch):
    from huggingface_hub import constants

    from gantk.inference import TrainedModel

    config = tiny_config(pairs, tmp_path / "run", max_steps=2, gen="smp", gen_opt={"encoder": "resnet18", "encoder_depth": 3})
    run = Trainer(config, progress=False).fit()
    # What --gen-opt encoder_weights=imagenet records, on a machine whose cache lacks those weights.
    path = ckpt.list_checkpoints(run)[-1]
    payload = ckpt.load_checkpoint(path)
    for entry in (payload["system"], payload["train_config"]):
        entry["gen_opt"]["encoder_weights"] = "imagenet"
    del payload["path"], payload["system"]["gen_defaults"]["encoder_weights"]  # given, so not a default
    ckpt.save_checkpoint(path, payload)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    model = TrainedModel.load(run)
    torch.testing.assert_close(model.system.state_dict(), ckpt.load_checkpoint(path)["system_state"])
    Trainer.resume(run, {"max_steps": 4}, progress=False).fit()
    assert ckpt.load_checkpoint(run)["system"]["gen_opt"]["encoder_weights"] == "imagenet"


def test_a_checkpoint_keeps_the_defaults_its_networks_were_built_with(pairs, tmp_path):
    """A plugin whose default changes later rebuilds the trained network, not a new one."""
    def plugin_with(default_slope):
        def leaky(in_channels=3, out_channels=3, slope=default_slope, act=torch.nn.ReLU):
            """A one-layer generator with a leaky ReLU before its tanh."""
            net = torch.nn.Sequential(torch.nn.Conv2d(in_channels, out_channels, 1), torch.nn.LeakyReLU(slope), torch.nn.Tanh())
            net.slope = slope
            return net

        return components_with_generator("leaky", leaky)

    config = tiny_config(pairs, tmp_path / "run", max_steps=1, gen="leaky", gen_opt={})
    run = Trainer(config, components=plugin_with(0.1), progress=False).fit()
    assert ckpt.load_checkpoint(run)["system"]["gen_defaults"] == {"slope": 0.1}  # the class default is no plain value
    system, _ = ckpt.system_from_checkpoint(run, components=plugin_with(0.3))
    assert system.networks["G"].slope == 0.1
    with pytest.raises(CheckpointError, match=r"different settings \(gen_defaults.slope: 0.1 then, 0.3 now\); a default of its parts"):
        Trainer.resume(run, {"max_steps": 2}, components=plugin_with(0.3), progress=False).fit()


def test_a_resume_after_an_objectives_default_weight_or_option_changed_is_refused(pairs, tmp_path):
    from gantk import Objective, hookimpl, load_components

    def plugin_with(weight, margin):
        class Margined(Objective):
            """L1 beyond a margin."""

            default_weight = weight

            def __init__(self, margin: float = margin):
                super().__init__()
                self.margin = margin

            def generator_loss(self, ctx):
                return ((ctx.fake - ctx.real).abs() - self.margin).clamp(min=0).mean()

        class Plugin:
            @hookimpl
            def gantk_register_objectives(self, registry):
                registry.add("margined", Margined)

        return load_components(autoload=False, plugins=[Plugin()])

    run = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=1, loss="bce+margined"), components=plugin_with(10.0, 0.1),
                  progress=False).fit()
    system = ckpt.load_checkpoint(run)["system"]
    assert system["loss_weights"] == {"bce": 1.0, "margined": 10.0} and system["loss_defaults"]["margined"] == {"margin": 0.1}
    for weight, margin, changed in ((20.0, 0.1, "loss_weights.margined: 10.0 then, 20.0 now"),
                                    (10.0, 0.2, "loss_defaults.margined.margin: 0.1 then, 0.2 now")):
        with pytest.raises(CheckpointError, match=rf"was made with different settings \({changed}\); a default of its parts "
                                                  "changed since: install the gantk or plugin versions it was trained with"):
            Trainer.resume(run, {"max_steps": 2}, components=plugin_with(weight, margin), progress=False).fit()
    Trainer.resume(run, {"max_steps": 2}, components=plugin_with(10.0, 0.1), progress=False).fit()


def test_parameters_no_phase_trains_are_refused_before_training(pairs, tmp_path):
    config = tiny_config(pairs, tmp_path / "run", max_steps=1, loss="bce+learned")
    with pytest.raises(OptionError, match=r"objective.objectives.learned.scale take gradients, but no phase of the system trains them"):
        Trainer(config, components=learned_objective_components(), progress=False).fit()


def test_a_network_failing_for_another_reason_gets_no_word_on_the_recipes_options(pairs, tmp_path):
    def greedy(in_channels=3, out_channels=3, norm: str = "instance", width: int = 4):
        """A generator that fails on its width, not on the norm the recipe gives it."""
        raise MemoryError(f"cannot hold width {width}")

    config = tiny_config(pairs, tmp_path / "run", max_steps=1, gen="greedy", gen_opt={"width": 10**9})
    with pytest.raises(OptionError) as refusal:
        Trainer(config, components=components_with_generator("greedy", greedy), progress=False).fit()
    assert "norm='batch'" in str(refusal.value) and "cannot hold width" in str(refusal.value)
    assert "Recipe 'pix2pix'" not in str(refusal.value)
    abnormal_message = "abnormal width"  # 'norm' inside another word is not the option
    config = tiny_config(pairs, tmp_path / "run2", max_steps=1, gen="abnormal", gen_opt={})

    def abnormal(in_channels=3, out_channels=3, norm: str = "instance"):
        raise ValueError(abnormal_message)

    with pytest.raises(OptionError) as refusal:
        Trainer(config, components=components_with_generator("abnormal", abnormal), progress=False).fit()
    assert abnormal_message in str(refusal.value) and "Recipe 'pix2pix'" not in str(refusal.value)


def test_a_network_refusing_an_option_the_recipe_gave_it_says_so(pairs, tmp_path):
    def strict(in_channels=3, out_channels=3, norm: str = "instance"):
        """A generator without batch norm."""
        if norm == "batch":
            raise ValueError("no batch norm here")
        return torch.nn.Sequential(torch.nn.Conv2d(in_channels, out_channels, 1), torch.nn.Tanh())

    config = tiny_config(pairs, tmp_path / "run", max_steps=1, gen="strict", gen_opt={})
    with pytest.raises(OptionError, match=r"generator 'strict' .* could not be built with .*norm='batch'.*no batch norm here\. "
                                          r"Recipe 'pix2pix' gives the generator norm='batch' unless --gen-opt sets it\.$"):
        Trainer(config, components=components_with_generator("strict", strict), progress=False).fit()
    given = tiny_config(pairs, tmp_path / "given", max_steps=1, gen="strict", gen_opt={"norm": "batch"})
    with pytest.raises(OptionError, match=r"no batch norm here$"):  # typed by the user: no recipe to name
        Trainer(given, components=components_with_generator("strict", strict), progress=False).fit()
    own = tiny_config(pairs, tmp_path / "own", max_steps=1, gen_opt={"ngf": 8, "final_activation": "relu"})
    with pytest.raises(OptionError) as refused:  # the option refused is the user's, not the recipe's
        Trainer(own, progress=False).fit()
    assert "final_activation" in str(refused.value) and "Recipe" not in str(refused.value)


def test_a_checkpoint_loads_when_its_generator_no_longer_takes_a_default_option(pairs, tmp_path):
    def components(with_option):
        def plain(in_channels=3, out_channels=3, bias=True):
            """A one-layer generator."""
            return torch.nn.Sequential(torch.nn.Conv2d(in_channels, out_channels, 1, bias=bias), torch.nn.Tanh())

        def legacy(in_channels=3, out_channels=3, bias=True, legacy_flag=False):
            """The same generator with an option it later dropped."""
            return plain(in_channels, out_channels, bias)

        return components_with_generator("one", legacy if with_option else plain)

    run = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=1, gen="one", gen_opt={}), components=components(True),
                  progress=False).fit()
    with pytest.warns(GantkWarning, match="generator 'one' was trained with legacy_flag=False, which it no longer takes"):
        ckpt.system_from_checkpoint(run, components=components(False))
    given = Trainer(tiny_config(pairs, tmp_path / "given", max_steps=1, gen="one", gen_opt={"legacy_flag": True}),
                    components=components(True), progress=False).fit()
    refusal = (r"checkpoint .*given.checkpoint-00000001.pt was trained with settings that its parts do not take now: "
               r"generator 'one' has no option 'legacy_flag'.*\. The run's command line or recipe gave them: install the version")
    with pytest.raises(CheckpointError, match=refusal):
        ckpt.system_from_checkpoint(given, components=components(False))
    with pytest.raises(CheckpointError, match=refusal):
        Trainer.resume(given, {"max_steps": 2}, components=components(False), progress=False).fit()


def test_a_run_on_a_plugin_format_resumes_with_it_and_names_its_plugin_when_missing(pairs, tmp_path):
    from gantk import hookimpl, load_components
    from gantk.data.formats import PairedFormat
    from gantk.provenance import plugin_name

    class FolderPairs(PairedFormat):
        """A/ and B/ pairs, as the built-in paired format finds them too."""

    class Plugin:
        @hookimpl
        def gantk_register_data_formats(self, registry):
            registry.add("folder-pairs", FolderPairs)

    components = load_components(autoload=False, plugins=[Plugin()])
    with pytest.raises(DataError, match="folder-pairs"):  # two formats match: the user picks one
        Trainer(tiny_config(pairs, tmp_path / "ambiguous", max_steps=1), components=components, progress=False).fit()
    run = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=1, data_format="folder-pairs"), components=components,
                  progress=False).fit()
    payload = ckpt.load_checkpoint(run)
    assert payload["part_plugins"]["data_format"]["folder-pairs"]["plugin"] == plugin_name(Plugin())
    for overrides in ({"max_steps": 2}, {"max_steps": 3, "data_format": "folder-pairs"}):
        resumed = Trainer.resume(run, overrides, components=components, progress=False)
        resumed.fit()
        assert resumed.summary.format == "folder-pairs"
    with pytest.raises(CheckpointError, match=r"uses a part that no loaded plugin provides: unknown data_format 'folder-pairs'.*"
                                              r"Install \(or load\) the plugin\(s\) the run was trained with: .*Plugin"):
        Trainer.resume(run, {"max_steps": 4}, progress=False).fit()


def test_a_generator_too_deep_for_any_crop_size_says_so(pairs, tmp_path):
    with pytest.raises(OptionError, match=r"num_downs=20 is not valid: 20 stride-2 levels need images of at least 2\*\*20 px a side, "
                                          r"and gantk takes at most 16384 px \(14 levels\)"):  # before it is built
        Trainer(tiny_config(pairs, tmp_path / "run", max_steps=1, gen_opt={"ngf": 8, "num_downs": 20}), progress=False).fit()

    class Deep(torch.nn.Module):  # a plugin's generator, whose depth no option of gantk's bounds
        size_multiple = 2**20

        def __init__(self, in_channels=3, out_channels=3):
            super().__init__()
            self.conv = torch.nn.Conv2d(in_channels, out_channels, 1)

    config = tiny_config(pairs, tmp_path / "run", max_steps=1, gen="deep", gen_opt={})
    with pytest.raises(OptionError, match=r"G \(deep\) needs image sizes that are multiples of 1048576, more than the largest --crop-size "
                                          r"\(16384\): its options make it too deep for any image; lower them \(`gantk describe generator deep --opt KEY=VALUE,\.\.\.`"):
        Trainer(config, components=components_with_generator("deep", Deep), progress=False).fit()


def test_a_checkpoint_asking_for_huge_images_is_refused_as_edited(pairs, tmp_path):
    run = Trainer(tiny_config(pairs, tmp_path / "run", max_steps=1), progress=False).fit()
    path = run / "checkpoint-00000001.pt"
    payload = torch.load(path, weights_only=True)
    payload["system"]["load_size"] = 10**6
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=r"is incomplete or damaged \(system.load_size missing or of another kind"):
        ckpt.system_from_checkpoint(run)


def test_training_reads_and_checks_only_the_splits_it_uses(tmp_path):
    """A test split with one side only (testA/ without testB/, unlabelled test images) is no training problem;
    gantk data check still reports it, and validating on it is refused naming it."""
    unaligned = write_unaligned(tmp_path / "unaligned")
    write_unaligned(tmp_path / "spare")
    (tmp_path / "spare" / "trainA").rename(unaligned / "testA")
    with pytest.raises(DataError, match="testB/: folder missing"):
        check_dataset(unaligned)
    assert set(check_dataset(unaligned, splits=["train"]).splits) == {"train"}
    with pytest.raises(OptionError, match="splits is a list of split names, got the string 'train': pass \\['train'\\]"):
        check_dataset(unaligned, splits="train")
    run = Trainer(tiny_config(unaligned, tmp_path / "cycle", recipe="cyclegan", gen="resnet6", max_steps=1), progress=False).fit()
    assert ckpt.load_checkpoint(run)["step"] == 1

    pairs = tmp_path / "pairs"
    write_paired(pairs / "train")
    write_paired(pairs / "test")
    (pairs / "test" / "B" / "001.png").unlink()
    run = Trainer(tiny_config(pairs, tmp_path / "pix2pix", max_steps=1), progress=False).fit()
    assert ckpt.load_checkpoint(run)["step"] == 1
    with pytest.raises(DataError, match="test/A/001.png: no file named '001.\\*' in test/B/"):
        Trainer(tiny_config(pairs, tmp_path / "validated", max_steps=1, val_every=1), progress=False).fit()


def test_a_summary_given_that_lacks_the_validation_split_is_checked_again(tmp_path):
    from gantk.data.io import write_png

    pairs = tmp_path / "pairs"
    write_paired(pairs / "train", count=2)
    write_paired(pairs / "test", count=2)
    write_png(torch.zeros(3, 20, 20, dtype=torch.uint8), pairs / "test" / "B" / "001.png")  # seen by the check, not by opening
    summary = check_dataset(pairs, splits=["train"])
    with pytest.raises(DataError, match=r"test/A/001.png \(40x40\) and test/B/001.png \(20x20\) differ in size"):
        Trainer(tiny_config(pairs, tmp_path / "run", val_every=1), progress=False).open_data(summary)


def test_a_pool_size_for_a_run_that_keeps_no_pool_is_warned_of(pairs, tmp_path):
    with pytest.warns(GantkWarning, match="--pool-size 10 has no effect here: only CycleGAN's discriminators learn from a pool"):
        Trainer(tiny_config(pairs, tmp_path / "pix2pix", max_steps=1, pool_size=10), progress=False).fit()
    data = write_unaligned(tmp_path / "unaligned")
    with warnings.catch_warnings():
        warnings.filterwarnings("error", ".*pool", GantkWarning)  # CycleGAN's discriminators keep one
        Trainer(tiny_config(data, tmp_path / "cycle", recipe="cyclegan", gen="resnet6", max_steps=1, pool_size=10),
                progress=False).fit()
        Trainer(tiny_config(pairs, tmp_path / "unset", max_steps=1), progress=False).fit()  # the default is no one's choice


def test_the_pool_size_config_toml_records_and_a_dropout_of_0_are_not_warned_of(pairs, tmp_path):
    from gantk.train.resolve import FALLBACKS

    # a run fed its own config.toml is given the fallback pool size; a U-Net too shallow for dropout 0 loses nothing
    trainer = Trainer(tiny_config(pairs, tmp_path / "run", pool_size=FALLBACKS["pool_size"], gen_opt={"ngf": 8, "dropout": 0.0}),
                      progress=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.build_system(trainer.open_data()[0], torch.device("cpu"))
    assert not [str(w.message) for w in caught if "--pool-size" in str(w.message) or "dropout" in str(w.message)]


def test_a_folder_named_as_a_checkpoint_is_named_as_a_folder(tmp_path):
    (tmp_path / "run" / "checkpoint-00000012.pt").mkdir(parents=True)
    with pytest.raises(CheckpointError, match=r"checkpoint-00000012.pt: Is a directory; it is a folder named as a checkpoint: "
                                              "move it out of the run directory"):
        ckpt.load_checkpoint(tmp_path / "run")


@pytest.mark.filterwarnings("ignore:--load-size 68 enlarges")  # 64 px crops of 40 px images
def test_a_unet_given_its_depth_at_64_px_and_another_generator_under_it_are_warned_of_no_dropout(pairs, tmp_path):
    """The recipe's dropout goes unwarned only where a U-Net cannot have a dropout level (crops under 64 px): a U-Net
    given a depth too shallow at 64 px, or a generator of another kind taking it on small crops, is warned of, at the
    caller's line."""
    def built(crop_size, gen=None, components=None, **gen_opt):
        config = tiny_config(pairs, tmp_path / f"run-{crop_size}-{gen}", crop_size=crop_size, load_size=crop_size + 4,
                             gen=gen, gen_opt={"ngf": 8, **gen_opt} if gen is None else gen_opt)
        trainer = Trainer(config, components=components, progress=False)
        return trainer.build_system(trainer.open_data()[0], torch.device("cpu"))

    config = tiny_config(pairs, tmp_path / "run", crop_size=64, load_size=68, max_steps=1, gen_opt={"ngf": 8, "num_downs": 5})
    with pytest.warns(GantkWarning, match=r"takes dropout=0.5, .* \(num_downs=5\): a U-Net") as caught:
        Trainer(config, progress=False).fit()  # the recipe's dropout, and a depth that leaves 64 px crops no dropout level
    line = sys._getframe().f_lineno - 1
    assert [(w.filename, w.lineno) for w in caught if "dropout" in str(w.message)] == [(__file__, line)]

    def flat(in_channels=3, out_channels=3, norm="batch", dropout=0.0):  # takes the recipe's options, drops out nothing
        return torch.nn.Conv2d(in_channels, out_channels, 1)

    with pytest.warns(GantkWarning, match=r"generator 'flat' takes dropout=0.5, and as built it has no layer where dropout "
                                          r"applies, so it trains and translates without dropout noise\.$"):
        built(32, gen="flat", components=components_with_generator("flat", flat))
