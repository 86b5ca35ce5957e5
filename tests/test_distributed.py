"""DistributedDataParallel through torchrun: 2 CPU processes on the gloo backend."""

import contextlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gantk.errors import OptionError
from gantk.train import TrainConfig, Trainer
from gantk.train.checkpoint import load_checkpoint
from helpers import signalled_once_training, write_paired, write_unaligned

WORKER = Path(__file__).with_name("ddp_worker.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(config: dict, replicas_dir: Path, *worker_args: str, check: bool = True) -> subprocess.CompletedProcess:
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
        "--master-port", str(free_port()), str(WORKER), json.dumps(config), str(replicas_dir), *worker_args,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONFAULTHANDLER": "1"}  # a crash prints every thread's stack
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0 or not check, result.stderr[-12000:]
    return result


def cyclegan_config(tmp_path: Path) -> dict:
    return {
        "recipe": "cyclegan", "data": str(write_unaligned(tmp_path / "data", 8, 6)), "load_size": 36, "crop_size": 32,
        "batch_size": 2, "workers": 0, "log_every": 1, "gen": "resnet6", "gen_opt": {"ngf": 8}, "disc_opt": {"ndf": 8},
    }


@pytest.mark.parametrize("recipe", ["pix2pix", "pix2pix-r1", "cyclegan", "cut"])
def test_two_process_replicas_stay_identical(tmp_path, recipe):
    if recipe.startswith("pix2pix"):  # with r1: a second D pass and a double backward through DDP
        config = {
            "recipe": "pix2pix", "data": str(write_paired(tmp_path / "data", count=8)), "load_size": 36, "crop_size": 32,
            "batch_size": 2, "workers": 0, "log_every": 1, "gen_opt": {"ngf": 8}, "disc_opt": {"ndf": 8},
            **({"loss": "bce+l1+r1"} if recipe.endswith("r1") else {}),
        }
    elif recipe == "cut":  # G through DDP three times a step (its output, then its encoder twice), and F
        config = {**cyclegan_config(tmp_path), "recipe": "cut"}
    else:
        config = cyclegan_config(tmp_path)
    torchrun({**config, "out": str(tmp_path / "run"), "max_steps": 3, "checkpoint_every": 3}, tmp_path)
    replicas = [torch.load(tmp_path / f"replica-{rank}.pt", weights_only=True) for rank in (0, 1)]
    assert replicas[0].keys() == replicas[1].keys()
    for name, value in replicas[0].items():
        assert torch.equal(value, replicas[1][name]), name
    run = tmp_path / "run"
    assert (run / "checkpoint-00000003.pt").is_file()
    assert len((run / "metrics.csv").read_text().splitlines()) == 1 + 3  # one writer: header + 3 steps
    rng = load_checkpoint(run)["rng"]  # each process draws its own dropout and pool choices
    assert not torch.equal(rng[0]["cpu"], rng[1]["cpu"])


def test_a_process_a_resumed_run_did_not_have_draws_its_own_random_numbers(tmp_path):
    config = {"data": str(write_paired(tmp_path / "data", count=8)), "out": str(tmp_path / "run"), "load_size": 36, "crop_size": 32,
              "batch_size": 2, "workers": 0, "checkpoint_every": 1, "gen_opt": {"ngf": 8}, "disc_opt": {"ndf": 8}}
    Trainer(TrainConfig(**config, max_steps=1), progress=False).fit()  # one process
    torchrun({**config, "max_steps": 2}, tmp_path, "resume")
    rng = load_checkpoint(tmp_path / "run")["rng"]
    assert len(rng) == 2 and not torch.equal(rng[0]["cpu"], rng[1]["cpu"])


def test_a_run_in_epochs_resumed_in_more_processes_past_its_new_end_is_refused_saying_why(tmp_path):
    config = {"data": str(write_paired(tmp_path / "data", count=8)), "out": str(tmp_path / "run"), "load_size": 36, "crop_size": 32,
              "batch_size": 2, "workers": 0, "gen_opt": {"ngf": 8}, "disc_opt": {"ndf": 8}}
    Trainer(TrainConfig(**config, epochs=1), progress=False).fit()  # 4 steps in one process, 2 in two
    result = torchrun(config, tmp_path, "resume", check=False)
    assert result.returncode != 0
    assert ("is at step 4, past the 2 steps asked for (with 2 processes instead of the 1 it trained with, an epoch has fewer "
            "steps); resume with a longer --max-steps or --epochs, or with 1 process(es).") in result.stderr


def test_two_process_cyclegan_resume_is_exact(tmp_path):
    # Each process has its own image pools; a resumed run must get back its own, not rank 0's.
    # A constant learning rate makes the first 2 steps of a 4-step run those of a 2-step run.
    config = {**cyclegan_config(tmp_path), "pool_size": 2, "decay_start": 1.0, "checkpoint_every": 2}
    torchrun({**config, "out": str(tmp_path / "straight"), "max_steps": 4}, tmp_path)
    torchrun({**config, "out": str(tmp_path / "resumed"), "max_steps": 2}, tmp_path)
    torchrun({**config, "out": str(tmp_path / "resumed"), "max_steps": 4}, tmp_path, "resume")
    straight, resumed = (load_checkpoint(tmp_path / run) for run in ("straight", "resumed"))
    assert resumed["step"] == straight["step"] == 4
    for name, value in straight["system_state"].items():
        assert torch.equal(value, resumed["system_state"][name]), name
    pools = [state["process_extra_state"] for state in (straight, resumed)]
    assert len(pools[0]) == 2 and not torch.equal(*(rank["pools.D_A._extra_state"] for rank in pools[0]))
    for rank_straight, rank_resumed in zip(*pools):
        assert rank_straight.keys() == rank_resumed.keys()
        for name, value in rank_straight.items():
            assert torch.equal(value, rank_resumed[name]), name


def test_a_loss_that_diverges_in_one_process_stops_every_process(tmp_path):
    config = {
        "data": str(write_paired(tmp_path / "data", count=8)), "load_size": 36, "crop_size": 32, "batch_size": 2,
        "workers": 0, "log_every": 1, "gen_opt": {"ngf": 8}, "disc": "none", "loss": "nan-on-rank-1",
        "out": str(tmp_path / "run"), "max_steps": 4,
    }
    result = torchrun(config, tmp_path, "diverge", check=False)
    for rank in (0, 1):  # rank 0's own loss is finite; the logged mean over the processes is not
        assert f"rank {rank}: training diverged at step 2: G/nan-on-rank-1 is not finite" in result.stdout, result.stderr[-4000:]


def test_processes_given_other_settings_or_another_number_of_items_are_refused(tmp_path):
    config = {
        "data": str(write_paired(tmp_path / "data", count=8)), "load_size": 36, "crop_size": 32, "batch_size": 2,
        "workers": 0, "gen_opt": {"ngf": 8}, "disc_opt": {"ndf": 8}, "out": str(tmp_path / "run"), "max_steps": 2,
        "lr": 2e-4, "on_rank_1": {"lr": 1e-3, "data": str(write_paired(tmp_path / "fewer", count=6))},
    }
    result = torchrun(config, tmp_path, "differ", check=False)
    for rank in (0, 1):  # another data path alone is not refused: each machine may keep its copy elsewhere
        assert (f"rank {rank}: the 2 processes of this run differ in lr (rank 0: 0.0002, rank 1: 0.001); training items "
                "(rank 0: 8, rank 1: 6): start every process with the same settings") in result.stdout, result.stderr[-4000:]
    assert not list((tmp_path / "run").glob("checkpoint-*"))
    one = {**config, "data": str(write_paired(tmp_path / "one", count=1)), "batch_size": 1, "out": str(tmp_path / "one-run"),
           "on_rank_1": {}}
    result = torchrun(one, tmp_path, "differ", check=False)
    assert ("rank 0: the training data has 1 item(s), fewer than the 2 processes of this run, so each step would repeat "
            "some: start at most 1 processes, or add data.") in result.stdout, result.stderr[-4000:]


def test_when_the_main_process_stops_on_an_error_the_other_says_why_it_stopped_without_a_traceback(tmp_path):
    import fcntl

    run = tmp_path / "run"
    run.mkdir()
    held = os.open(run, os.O_RDONLY)
    fcntl.flock(held, fcntl.LOCK_EX)  # another run trains there: only the main process claims the folder
    # torchrun's check of its processes waits long enough for rank 1 to end on its own.
    command = [sys.executable, "-m", "torch.distributed.run", "--monitor-interval", "5", "--nproc-per-node", "2",
               "--master-addr", "127.0.0.1", "--master-port", str(free_port()), "-m", "gantk", "train",
               "--data", str(write_paired(tmp_path / "pairs", count=8)), "--out", str(run), "--load-size", "36",
               "--crop-size", "32", "--batch-size", "2", "--gen-opt", "ngf=8", "--disc-opt", "ndf=8", "--workers", "0",
               "--max-steps", "2", "--no-progress"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    finally:
        os.close(held)
    assert result.returncode != 0
    assert f"Error: [rank 0] another process is training in {run}" in result.stderr, result.stderr[-4000:]
    assert ("Error: [rank 1] lost the connection to another process of this run, 0 step(s) into training (torch: Connection "
            "closed by peer") in result.stderr, result.stderr[-4000:]
    assert "[rank1]: Traceback" not in result.stderr


def test_only_gloo_losing_the_other_end_counts_as_a_lost_process():
    from gantk.errors import GantkError
    from gantk.torchrun import ProcessInfo
    from gantk.train.distributed import peer_loss_explained

    gloo = ("[/__w/pytorch/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:561] Connection closed by peer "
            "[127.0.0.1]:8940. This is typically caused by a remote worker crashing.")
    with pytest.raises(GantkError, match=r"^lost the connection to another process of this run, 3 step\(s\) into training "
                                         r"\(torch: Connection closed by peer \[127.0.0.1\]:8940\): "):
        with peer_loss_explained(ProcessInfo(0, 2), lambda: 3):
            raise RuntimeError(gloo)
    own = RuntimeError("upload of metrics failed: [Errno 104] Connection reset by peer")  # this process's own error
    for info in (ProcessInfo(0, 2), ProcessInfo()):
        with pytest.raises(RuntimeError) as raised:
            with peer_loss_explained(info, lambda: 3):
                raise own
        assert raised.value is own
    with pytest.raises(RuntimeError, match="Connection closed by peer"):  # a single process has no other end
        with peer_loss_explained(ProcessInfo(), lambda: 3):
            raise RuntimeError(gloo)


def test_a_lost_connection_of_torchs_own_store_counts_as_a_lost_process():
    import torch.distributed as dist

    from gantk.errors import GantkError
    from gantk.torchrun import ProcessInfo
    from gantk.train.distributed import peer_loss_explained

    lost = dist.DistNetworkError("Failed to recv, got 0 bytes. Connection was likely closed.")  # no gloo source
    with pytest.raises(GantkError, match=r"^lost the connection to another process of this run, 5 step\(s\) into training "
                                         r"\(torch: Failed to recv, got 0 bytes\): "):
        with peer_loss_explained(ProcessInfo(0, 2), lambda: 5):
            raise lost
    with pytest.raises(dist.DistNetworkError):  # a single process has no other end
        with peer_loss_explained(ProcessInfo(), lambda: 5):
            raise lost


def test_ctrl_c_under_torchrun_stops_every_process_after_one_step_with_a_checkpoint(tmp_path):
    # Ctrl-C signals the whole foreground group: torchrun, which passes the signal on, and its workers.
    import re
    import signal

    pairs = write_paired(tmp_path / "pairs", count=8)
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
               "--master-port", str(free_port()), "-m", "gantk", "train", "--data", str(pairs), "--out", str(tmp_path / "run"),
               "--load-size", "36", "--crop-size", "32", "--batch-size", "2", "--gen-opt", "ngf=8", "--disc-opt", "ndf=8",
               "--workers", "0", "--log-every", "1", "--checkpoint-every", "1000", "--max-steps", "2000", "--no-progress"]
    _, stderr = signalled_once_training(command, tmp_path / "run", signal.SIGINT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    stopped = re.findall(r"interrupted: checkpoint saved at step (\d+)", stderr)
    assert len(stopped) == 1, stderr[-4000:]  # said once, by the main process
    for rank in (0, 1):  # each process that got the signal says so, naming itself
        assert f"[rank {rank}] SIGINT: stopping after this step, with a checkpoint" in stderr, stderr[-4000:]
    checkpoint = load_checkpoint(tmp_path / "run")
    assert checkpoint["step"] == int(stopped[0]) >= 3 and len(checkpoint["rng"]) == 2


def test_no_process_leaves_a_checkpointed_step_before_the_checkpoint_is_written(tmp_path):
    """A process that went on (or stopped, on a signal of its own) while the main one still wrote could have torchrun end
    the main one first: every process waits for the file."""
    import time

    config = {"data": str(write_paired(tmp_path / "pairs", count=4)), "out": str(tmp_path / "run"), "load_size": 36, "crop_size": 32,
              "batch_size": 2, "workers": 0, "max_steps": 50, "checkpoint_every": 1000, "gen_opt": {"ngf": 8}, "disc_opt": {"ndf": 8}}
    (tmp_path / "ends").mkdir()
    torchrun(config, tmp_path / "ends", "slow-save")
    (checkpoint,) = (tmp_path / "run").glob("checkpoint-*.pt")  # after the step rank 1 was signalled in
    written = checkpoint.stat().st_mtime
    ended = [float((tmp_path / "ends" / f"ended-{rank}").read_text()) for rank in (0, 1)]
    assert min(ended) >= written - 0.05 and time.time() >= max(ended)  # the file's clock and time.time() agree to the mtime's grain


def test_two_processes_at_batch_2_train_as_one_at_batch_4_without_batch_statistics_or_dropout(tmp_path):
    from gantk.train.logs import read_metrics

    config = {
        "data": str(write_paired(tmp_path / "data", count=8)), "load_size": 36, "crop_size": 32, "workers": 0, "log_every": 1,
        "gen_opt": {"ngf": 8, "norm": "instance", "dropout": 0.0}, "disc_opt": {"ndf": 8, "norm": "instance"}, "max_steps": 3,
    }
    torchrun({**config, "batch_size": 2, "out": str(tmp_path / "two")}, tmp_path)
    Trainer(TrainConfig(**config, batch_size=4, out=str(tmp_path / "one")), progress=False).fit()
    two, one = (read_metrics(tmp_path / name / "metrics.csv") for name in ("two", "one"))
    assert len(two) == len(one) == 3
    for row_two, row_one in zip(two, one):  # the same batches, split between the processes, and the mean gradient
        for key in ("D/bce", "G/bce", "G/l1"):
            assert row_two[key] == pytest.approx(row_one[key], rel=1e-4), (key, row_two, row_one)


def _mean_of_ranks(rank: int, init_file: str, out: str) -> None:
    import torch.distributed as dist

    from gantk.torchrun import ProcessInfo
    from gantk.train.distributed import mean_over_processes

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    info = ProcessInfo(rank=rank, local_rank=rank, world_size=2)
    means = mean_over_processes({"G/l1": 10.0 * (rank + 1), "D/bce": float(rank)}, info, torch.device("cpu"))
    # A resumed process carries the losses its checkpoint saved (G's); a new one has the step's (D's) alone.
    uneven = mean_over_processes({"G/l1": 4.0, "D/bce": 1.0} if rank == 0 else {"D/bce": 3.0}, info, torch.device("cpu"))
    Path(out, f"rank-{rank}.json").write_text(json.dumps([list(means.items()), list(uneven.items())]))
    dist.destroy_process_group()


def test_logged_losses_are_the_mean_over_the_processes_that_hold_them(tmp_path):
    torch.multiprocessing.spawn(_mean_of_ranks, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    for rank in (0, 1):  # in the order each process gave them
        assert json.loads((tmp_path / f"rank-{rank}.json").read_text()) == [[["G/l1", 15.0], ["D/bce", 0.5]],
                                                                          [["G/l1", 4.0], ["D/bce", 2.0]]]


def _wait_for_each_other(name: str, rank: int, out: str) -> None:
    """Return once both processes have reached ``name`` (a barrier outside any process group)."""
    import time

    Path(out, f"{name}-{rank}").touch()
    deadline = time.monotonic() + 60
    while not Path(out, f"{name}-{1 - rank}").exists():
        assert time.monotonic() < deadline, f"the other process did not reach {name}"
        time.sleep(0.05)


def _groups_left_at_exit(rank: int, init_file: str, out: str) -> None:
    import atexit

    import torch.distributed as dist

    from gantk.train.distributed import process_group
    from gantk.train.interrupt import TrainingInterrupted

    os.environ.update(WORLD_SIZE="2", RANK=str(rank), MASTER_ADDR="127.0.0.1")
    kept = []
    for _ in range(2):  # a second run reuses the group
        with contextlib.suppress(TrainingInterrupted), process_group("cpu"):  # joins from torchrun's variables
            raise TrainingInterrupted(1, 15)
        kept.append(dist.is_initialized())
    atexit._run_exitfuncs()  # what exit does, while the interpreter is whole
    kept.append(dist.is_initialized())
    _wait_for_each_other("left", rank, out)  # the old group's sockets are closed on both sides before a new group connects
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    with process_group("cpu"):
        pass
    atexit._run_exitfuncs()
    kept.append(dist.is_initialized())  # the caller's group is the caller's to leave
    dist.destroy_process_group()
    Path(out, f"rank-{rank}.json").write_text(json.dumps(kept))


def test_the_group_a_run_joined_outlives_it_and_is_left_at_exit_but_not_the_callers(tmp_path, monkeypatch):
    monkeypatch.setenv("MASTER_PORT", str(free_port()))  # inherited by the spawned processes
    torch.multiprocessing.spawn(_groups_left_at_exit, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    for rank in (0, 1):
        assert json.loads((tmp_path / f"rank-{rank}.json").read_text()) == [True, True, False, True]


def test_a_second_trainer_in_a_torchrun_process_continues_the_run(tmp_path):
    config = {"data": str(write_paired(tmp_path / "data", count=8)), "out": str(tmp_path / "run"), "load_size": 36, "crop_size": 32,
              "batch_size": 2, "workers": 0, "max_steps": 2, "checkpoint_every": 1, "gen_opt": {"ngf": 8}, "disc_opt": {"ndf": 8}}
    torchrun(config, tmp_path, "fit-then-resume")
    replicas = [torch.load(tmp_path / f"replica-{rank}.pt", weights_only=True) for rank in (0, 1)]
    assert all(torch.equal(value, replicas[1][name]) for name, value in replicas[0].items())
    assert load_checkpoint(tmp_path / "run")["step"] == 3


def test_a_numbered_gpu_under_torchrun_is_refused(monkeypatch):
    from gantk.train import distributed

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(OptionError, match=r"--device cuda:1 names one GPU, but torchrun started 2 processes.*use --device cuda"):
        distributed.init_process_group("cuda:1")


def test_each_cuda_process_takes_its_local_gpu_before_joining(monkeypatch):
    # Collectives such as all_gather_object use the current CUDA device: every rank must set its own.
    from gantk.train import distributed

    calls = []
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")  # the second process of the second machine
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", lambda index: calls.append(("set_device", index)))
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: False)
    monkeypatch.setattr(distributed.dist, "init_process_group", lambda backend: calls.append(("init", backend)))
    info = distributed.init_process_group("cuda")
    assert (info.rank, info.world_size, info.local_rank, info.local_world_size) == (3, 4, 1, 2)
    assert calls == [("set_device", 1), ("init", "nccl")]
