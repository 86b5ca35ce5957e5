"""Safe writes: a file or folder appears whole or not at all."""

import os
import stat
import sys
from pathlib import Path

import pytest

from gantk.files import building_folder, replacing
from gantk.train.logs import MetricsLog


def test_replacing_writes_whole_files_with_the_default_mode(tmp_path):
    path = tmp_path / "result.json"
    path.write_text("old")
    with replacing(path) as handle:
        handle.write("new")
    mask = os.umask(0)
    os.umask(mask)
    assert path.read_text() == "new" and stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    with pytest.raises(RuntimeError), replacing(path) as handle:
        handle.write("half")
        raise RuntimeError("crash")
    assert path.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["result.json"]
    (tmp_path / "best.pt").mkdir()  # a folder where the file goes: named, before anything is written
    with pytest.raises(IsADirectoryError) as error, replacing(tmp_path / "best.pt") as handle:
        handle.write("x")
    assert error.value.filename == str(tmp_path / "best.pt") and sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "result.json"]


def test_the_umask_is_read_without_being_changed(tmp_path, monkeypatch):
    from gantk.files import umask

    before = os.umask(0o027)
    try:
        if Path("/proc/self/status").is_file():  # read there, never set
            with monkeypatch.context() as patched:
                patched.setattr(os, "umask", lambda mask: pytest.fail("the umask was set"))
                assert umask() == 0o027
        assert umask() == 0o027
        with replacing(tmp_path / "private.txt") as handle:
            handle.write("x")
        assert stat.S_IMODE((tmp_path / "private.txt").stat().st_mode) == 0o640
    finally:
        os.umask(before)


def test_a_failed_metrics_rewrite_keeps_the_old_file_and_leaves_nothing_beside_it(tmp_path, monkeypatch):
    log = MetricsLog(tmp_path / "metrics.csv")
    log.write({"step": 1, "G/l1": 0.5})
    before = (tmp_path / "metrics.csv").read_text()
    monkeypatch.setattr("csv.DictWriter.writerows", lambda self, rows: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        log.write({"step": 2, "G/l1": 0.4, "D/bce": 0.7})  # a new column rewrites the file
    assert (tmp_path / "metrics.csv").read_text() == before and [p.name for p in tmp_path.iterdir()] == ["metrics.csv"]


def test_building_folder_appears_whole_or_not_at_all(tmp_path):
    with pytest.raises(RuntimeError), building_folder(tmp_path / "out") as tmp:
        (tmp / "a.png").write_bytes(b"x")
        raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "out").mkdir()  # an empty folder is replaced
    with building_folder(tmp_path / "out") as tmp:
        (tmp / "a.png").write_bytes(b"x")
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and [p.name for p in (tmp_path / "out").iterdir()] == ["a.png"]


def test_a_shared_folder_another_caller_finished_first_is_kept(tmp_path):
    with building_folder(tmp_path / "cache", shared=True) as tmp:
        (tmp / "mine").write_text("x")
        (tmp_path / "cache").mkdir()
        (tmp_path / "cache" / "theirs").write_text("y")
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["theirs"] and len(list(tmp_path.iterdir())) == 1
    with pytest.raises(OSError), building_folder(tmp_path / "cache") as tmp:  # not shared: a clash is an error
        (tmp / "mine").write_text("x")
    assert len(list(tmp_path.iterdir())) == 1


def test_a_folder_left_by_a_killed_build_is_removed_by_the_next_one(tmp_path):
    import socket
    import subprocess
    import sys

    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(finished.stdout)
    host = socket.gethostname()
    abandoned = tmp_path / f".out.building+{host}+{dead}+x1y2"
    running = tmp_path / f".out.building+{host}+{os.getpid()}+z3w4"  # a build still under way here
    other = tmp_path / f".out.building+{host}-{dead}+{dead}+q5"  # host '{host}-{dead}', a different machine
    for folder in (abandoned, running, other):
        folder.mkdir()
    with building_folder(tmp_path / "out") as tmp:
        (tmp / "a.png").write_bytes(b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([running.name, other.name, "out"])


def test_a_file_left_by_a_killed_write_is_removed_by_the_next_one(tmp_path):
    import signal
    import subprocess
    import sys

    path = tmp_path / "last.pt"
    killed = subprocess.run(
        [sys.executable, "-c", "import os, signal, sys\nfrom gantk.files import replacing\n"
         f"with replacing({str(path)!r}, binary=True) as handle:\n"
         "    handle.write(b'half'); handle.flush(); os.kill(os.getpid(), signal.SIGKILL)"],
        capture_output=True)
    assert killed.returncode == -signal.SIGKILL
    (left,) = tmp_path.iterdir()
    assert left.name.startswith(".last.pt.writing+") and left.read_bytes() == b"half"
    other = tmp_path / ".metrics.csv.writing+host+1+x.tmp"  # another file's: not touched
    other.write_bytes(b"")
    with replacing(path, binary=True) as handle:
        handle.write(b"whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([other.name, "last.pt"])
    assert path.read_bytes() == b"whole"


def test_a_checkpoint_save_removes_any_checkpoint_a_killed_process_was_writing(tmp_path):
    import socket
    import subprocess
    import sys

    from gantk.train import checkpoint as ckpt

    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout)
    host = socket.gethostname()
    abandoned = tmp_path / f".checkpoint-00000006.pt.writing+{host}+{dead}+ab12.tmp"  # a step never written again
    running = tmp_path / f".checkpoint-00000007.pt.writing+{host}+{os.getpid()}+cd34.tmp"
    for path in (abandoned, running):
        path.write_bytes(b"half")
    ckpt.save_checkpoint(tmp_path / "checkpoint-00000008.pt", {"system": {}})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([running.name, "checkpoint-00000008.pt"])



def test_a_temporary_left_under_a_name_with_glob_characters_is_removed(tmp_path):
    import socket
    import subprocess
    import sys

    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout)
    abandoned = tmp_path / f".run[1].json.writing+{socket.gethostname()}+{dead}+x1.tmp"
    abandoned.write_text("half")
    with replacing(tmp_path / "run[1].json") as handle:
        handle.write("{}")
    assert [p.name for p in tmp_path.iterdir()] == ["run[1].json"]


def test_a_file_whose_name_is_near_the_limit_is_written_and_its_killed_write_removed(tmp_path, monkeypatch):
    name = "é" * 120 + ".png"  # 244 bytes: its temporary name could not hold it and the writer's marks
    with replacing(tmp_path / name) as handle:
        handle.write("first")
    temporaries = []
    monkeypatch.setattr(os, "replace", lambda src, dst: temporaries.append(Path(src).name) or (_ for _ in ()).throw(OSError("killed")))
    with pytest.raises(OSError), replacing(tmp_path / name) as handle:
        handle.write("second")
    monkeypatch.undo()
    left = tmp_path / temporaries[0].replace(f"+{os.getpid()}+", "+999999999+")  # as if its writer had been killed
    left.write_text("half")
    with replacing(tmp_path / name) as handle:
        handle.write("third")
    assert [p.name for p in tmp_path.iterdir()] == [name] and (tmp_path / name).read_text() == "third"


@pytest.mark.parametrize("length", [10, 200])
def test_a_file_whose_name_is_not_utf8_is_written(tmp_path, length):
    name = os.fsdecode(b"caf\xe9" + b"x" * length + b".png")  # a Latin-1 name, as the file system gives it
    with replacing(tmp_path / name) as handle:
        handle.write("written")
    assert os.listdir(os.fsencode(tmp_path)) == [os.fsencode(name)] and (tmp_path / name).read_text() == "written"


def test_the_temporaries_of_another_users_process_are_kept(tmp_path, monkeypatch):
    import socket

    from gantk.files import remove_abandoned

    def not_permitted(pid, signal):
        raise PermissionError(f"process {pid} belongs to another user")

    theirs = tmp_path / f".out.writing+{socket.gethostname()}+4242+x1.tmp"
    theirs.write_text("half")
    monkeypatch.setattr(os, "kill", not_permitted)
    remove_abandoned(tmp_path, "out")
    assert theirs.exists()


FULL_DISK_WRITER = """
import sys, torch
from pathlib import Path
from gantk.data.io import write_png
from gantk.errors import CheckpointError
from gantk.train.checkpoint import save_checkpoint
from gantk.train.logs import save_sample_grid

out = Path(sys.argv[1])
try:
    write_png(torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)), out / "image.png")
except OSError as error:
    print("png:", error.filename, error.strerror)
try:
    save_checkpoint(out / "checkpoint-00000002.pt", {"system": {}, "weights": torch.rand(10000)})
except CheckpointError as error:
    print("checkpoint:", error)
try:
    save_sample_grid([torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1], out / "grid.png")
except OSError as error:
    print("grid:", error.filename, error.strerror)
(out / "new").mkdir()
try:
    save_checkpoint(out / "new" / "best.pt", {"system": {}, "weights": torch.rand(10000)})
except CheckpointError as error:
    print("best:", error)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="file size limits are POSIX")
def test_writes_cut_short_by_a_full_disk_are_errors_that_keep_the_old_files(tmp_path):
    import resource
    import subprocess

    (tmp_path / "image.png").write_bytes(b"an earlier image")
    (tmp_path / "checkpoint-00000001.pt").write_bytes(b"an earlier checkpoint")
    limit = 4096  # bytes a file may grow to: less than either write needs, as on a full disk
    done = subprocess.run([sys.executable, "-c", FULL_DISK_WRITER, str(tmp_path)], capture_output=True, text=True, check=True,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))
    assert done.stdout.splitlines() == [
        f"png: {tmp_path / 'image.png'} File too large",
        f"checkpoint: cannot write checkpoint {tmp_path / 'checkpoint-00000002.pt'}: File too large; the file is larger than "
        "this process may write (ulimit -f) or the file system holds; raise the limit or choose another location. The "
        f"checkpoints written before it are intact: once there is room, resume from the newest with `gantk train --resume "
        f"{tmp_path}` (each write needs room for one more checkpoint than --keep-checkpoints keeps).",
        f"grid: {tmp_path / 'grid.png'} File too large",
        f"best: cannot write checkpoint {tmp_path / 'new' / 'best.pt'}: File too large; the file is larger than this process may "
        "write (ulimit -f) or the file system holds; raise the limit or choose another location. Once there is room, start the "
        "run again, as it has no checkpoint.",
    ], done.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["checkpoint-00000001.pt", "image.png", "new"]
    assert (tmp_path / "image.png").read_bytes() == b"an earlier image"


def test_a_folder_that_takes_no_file_is_named_with_the_file_meant(tmp_path, monkeypatch):
    import errno
    import tempfile

    def denied(prefix, suffix, dir):
        raise PermissionError(errno.EACCES, "Permission denied", os.path.join(dir, prefix + "x" + suffix))

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    with pytest.raises(PermissionError) as info:
        with replacing(tmp_path / "config.toml") as handle:
            handle.write("seed = 0\n")
    assert info.value.filename == str(tmp_path / "config.toml") and info.value.errno == errno.EACCES


def test_a_checkpoint_refused_by_its_folder_says_how_to_go_on(tmp_path, monkeypatch):
    import errno
    import tempfile

    import torch

    from gantk.errors import CheckpointError
    from gantk.train.checkpoint import save_checkpoint

    def denied(prefix, suffix, dir):
        raise PermissionError(errno.EPERM, "Operation not permitted", os.path.join(dir, prefix + "x" + suffix))

    (tmp_path / "checkpoint-00000001.pt").write_bytes(b"an earlier checkpoint")
    monkeypatch.setattr(tempfile, "mkstemp", denied)
    with pytest.raises(CheckpointError) as info:
        save_checkpoint(tmp_path / "checkpoint-00000002.pt", {"weights": torch.zeros(2)})
    assert str(info.value) == (
        f"cannot write checkpoint {tmp_path / 'checkpoint-00000002.pt'}: Operation not permitted; change its permissions (or "
        "its folder's) so that this user may use it, or choose another location. The checkpoints written before it are "
        f"intact: once the folder may be written, resume from the newest with `gantk train --resume {tmp_path}`.")


def test_a_folder_that_takes_no_folder_is_named_with_the_folder_meant(tmp_path, monkeypatch):
    import errno
    import tempfile

    def denied(prefix, dir):
        raise PermissionError(errno.EACCES, "Permission denied", os.path.join(dir, prefix + "x"))

    monkeypatch.setattr(tempfile, "mkdtemp", denied)
    with pytest.raises(PermissionError) as info:
        with building_folder(tmp_path / "pairs"):
            pass
    assert info.value.filename == str(tmp_path / "pairs") and info.value.errno == errno.EACCES
