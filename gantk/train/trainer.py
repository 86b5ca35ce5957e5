"""The shared trainer: runs any system's phases with one loop (CPU or CUDA, AMP, DDP, checkpoints)."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import inspect
import itertools
import os
import platform
import shlex
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Collection, Iterable, Iterator, TypedDict, Unpack

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset

from .. import __version__
from ..data import ResumableSampler
from ..data.device_augment import DeviceAugment
from ..data.validate import DatasetSummary
from ..data.worker_errors import WorkerEnded, drop_tracebacks, raised_as_in_workers, worker_ended
from ..errors import CheckpointError, DataError, GantkError, GantkWarning, OptionError, caller_stacklevel
from ..files import REFUSED_WRITES, WRITE_FAILURES, check_writable, first_names, foreign_entries, remove_abandoned, replacing
from ..host_memory import freed_memory_kept
from ..nn import one_value_per_channel
from ..objectives.spec import parse_spec
from ..plugins import Components, default_components
from ..systems.base import Phase, System, frozen_networks, in_float32, modes_kept
from . import checkpoint as ckpt
from . import run_files
from .config import MOST_STEPS, SETTING_NAMES, TrainConfig, default_workers, to_toml
from .health import RunHealth
from .distributed import (ProcessInfo, check_processes_agree, mean_over_processes, peer_loss_explained,
                          process_group, resolve_device, stop_agreement)
from .interrupt import (
    NotedSignals, StopTraining, TrainingInterrupted, WorkerStopSignals, stop_after_step_on_interrupt, stop_signals_noted,
)
from .logs import RunLog, read_metrics, save_sample_grid
from .plots import plot_losses
from .precision import autocast, grad_scaler, warn_if_slow
from .resolve import check_part_options, fit_generator_depth, resolve_config
from .resume import check_resumed_length, restore, resumed_config, warn_if_the_data_changed
from .run_checkpoints import model_entries, prune_checkpoints, save_run_checkpoint
from .run_data import open_run_data
from .run_system import build_run_system
from .run_validation import RunValidation
from .schedule import lr_factor
from .step_graph import StepGraphs, check_recordable

# Called after each step (its checkpoint, samples and validation done) with the step and, at --log-every
# steps, the logged loss means, with the val/ scores at --val-every steps ({} otherwise); may raise StopTraining.
StepCallback = Callable[["Trainer", int, dict[str, float]], object]  # what it returns is not read


class ResumeOptions(TypedDict, total=False):
    """The keyword arguments of :class:`Trainer` that :meth:`Trainer.resume` passes on."""

    components: Components | None
    callbacks: Iterable[StepCallback]
    progress: bool


def how_to_write(error: OSError) -> str:
    """What lets a folder that refused a write (``error``) take files again."""
    if error.errno in (errno.EACCES, errno.EPERM):
        return "its permissions changed so that this user may write there"
    return "the file system writable" if error.errno == errno.EROFS else "space freed"


def checked_callbacks(callbacks: Iterable[StepCallback]) -> list[StepCallback]:
    """``callbacks`` as a list, each checked to take ``(trainer, step, logged)``, so that a wrong one is refused before
    training rather than after its first step."""
    if callable(callbacks):
        raise OptionError(f"callbacks is a list of callables, got the callable {callbacks!r}: pass callbacks=[it].")
    checked = list(callbacks)
    for callback in checked:
        if not callable(callback):
            raise OptionError(f"callbacks must be callables, got {callback!r}.")
        try:
            signature = inspect.signature(callback)
        except (TypeError, ValueError):  # a builtin without one: called as it is
            continue
        try:
            signature.bind(None, 0, {})
        except TypeError as error:
            raise OptionError(f"callback {getattr(callback, '__qualname__', callback)!r}{signature} cannot be called as "
                              f"callback(trainer, step, logged) ({error}): give it those three parameters.") from None
    return checked


def trains_discriminators_only(system: System, phase: Phase) -> bool:
    """Whether every network ``phase`` trains was added as a discriminator (the phase ``--disc-lr`` sets)."""
    return all(system.network_parts.get(net, ("",))[0] == "discriminator" for net in phase.trains)


def check_every_parameter_trains(system: System) -> None:
    """Refuse parameters that take gradients but that no phase's optimizer updates (an objective's, say): they
    would stay as built while the user believes them learned."""
    trained = {id(p) for phase in system.phases for net in phase.trains for p in system.networks[net].parameters()}
    if idle := [name for name, p in system.named_parameters() if p.requires_grad and id(p) not in trained]:
        raise OptionError(
            f"{', '.join(idle[:3])}{' ...' if len(idle) > 3 else ''} take gradients, but no phase of the system trains "
            "them (an objective's parameters are not trained): freeze them (requires_grad_(False)), or make them part "
            "of a network a phase trains."
        )


def make_optimizers(system: System, config: TrainConfig, total_steps: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """One Adam per phase over the networks it trains, each with the schedule (warm-up, constant, decay) over the
    steps that phase takes (a ``total_steps / n`` of them, and of the warm-up, for a phase that runs every n-th step).
    A phase that trains discriminators only takes ``config.disc_lr`` where it is set (a run without
    one has no such phase, and ignores it, as it ignores ``disc_opt``)."""
    critics = {phase.name for phase in system.phases if trains_discriminators_only(system, phase)}
    optimizers = {
        phase.name: torch.optim.Adam(
            [p for net in phase.trains for p in system.networks[net].parameters()],
            lr=config.disc_lr if phase.name in critics and config.disc_lr is not None else config.lr,
            betas=(config.beta1, config.beta2), fused=True,  # one pass over the weights, CPU and CUDA
        )
        for phase in system.phases
    }
    schedulers = {
        phase.name: torch.optim.lr_scheduler.LambdaLR(optimizers[phase.name], lr_factor(
            total_steps // phase.every, config.decay_start, config.lr_schedule, config.warmup_steps // phase.every))
        for phase in system.phases
    }
    return optimizers, schedulers


@contextlib.contextmanager
def tuned_backends(device: torch.device) -> Iterator[None]:
    """On CUDA, for the block: make ``device`` the current GPU (pinned batches and cuDNN work on it), and
    let cuDNN time its convolution algorithms for the batch shape once and keep the fastest; both are set
    back after, so the caller's process is left as it was.

    Training batches all have one shape (the crop size), so the search pays off after the first step;
    the reference implementation does the same.
    """
    if device.type != "cuda":
        yield
        return
    benchmark, current = torch.backends.cudnn.benchmark, torch.cuda.current_device()
    torch.cuda.set_device(device)
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = benchmark
        torch.cuda.set_device(current)


@dataclasses.dataclass
class TrainingParts:
    """What a training step works with: the system, its networks as called (DDP-wrapped, compiled)
    and as called while frozen (compiled only: they take no part in a gradient sync), one optimizer,
    schedule and gradient scaler per phase, where it runs, the steps of the schedule, and with --cuda-graph its
    recorded steps."""

    system: System
    nets: dict[str, Any]
    frozen_nets: dict[str, Any]
    optimizers: dict[str, torch.optim.Optimizer]
    schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler]
    scaler: torch.amp.GradScaler
    device: torch.device
    process: ProcessInfo
    total_steps: int
    graphs: StepGraphs | None = None


def epoch_steps(items: int, batch_size: int) -> int:
    """The steps of an epoch of ``items`` (per process) in full batches of ``batch_size``; none is an error."""
    if items < batch_size:
        raise OptionError(f"the dataset has {items} samples per process, fewer than --batch-size {batch_size}: give a "
                          f"--batch-size of at most {items}, or more data.")
    return items // batch_size


def schedule_steps(max_steps: int | None, epochs: int | None, steps_per_epoch: int) -> int:
    """The steps of a schedule set in steps (``max_steps``, which wins) or in epochs."""
    return max_steps or (epochs or 0) * steps_per_epoch


class Trainer:
    """Trains the system a configuration describes.

    Example:
        >>> Trainer(TrainConfig(data="pairs/", max_steps=100, out="runs/demo")).fit()  # doctest: +SKIP
    """

    def __init__(
        self,
        config: TrainConfig,
        *,
        components: Components | None = None,
        callbacks: Iterable[StepCallback] = (),
        progress: bool = True,
        resume_from: dict[str, Any] | None = None,
    ):
        """Resolve ``config`` (the recipe's defaults, then the fallbacks) for a new run.

        Args:
            config: the run's settings.
            components: the plugins' parts (default: the installed ones).
            callbacks: called after each step as ``callback(trainer, step, logged)`` (:data:`StepCallback`).
            progress: show a progress bar.
            resume_from: a checkpoint's contents to continue from; :meth:`resume` reads and checks one.
        """
        if not isinstance(config, TrainConfig):
            raise OptionError(f"config must be a gantk.train.TrainConfig, got {type(config).__name__}: pass "
                              f"TrainConfig(**settings).")
        if resume_from is not None and not isinstance(resume_from, dict):
            raise OptionError(f"resume_from is a checkpoint's contents (gantk.train.checkpoint.load_checkpoint), got "
                              f"{type(resume_from).__name__}: to continue the run in a folder, call Trainer.resume(run_dir).")
        self.components = components or default_components()
        self.given_config = config  # as given, before the recipe and the fallbacks filled it
        self.config = fit_generator_depth(resolve_config(config, self.components), self.components)
        if resume_from is None:  # a resume's parts are checked against its checkpoint, which names what changed
            check_part_options(self.config, self.components)
        self.callbacks = checked_callbacks(callbacks)
        self.progress = progress
        self.resume_from = resume_from
        self.run_dir = Path(self.config.out)
        self.step = 0 if resume_from is None else int(resume_from["step"])  # steps done
        self.first_step = self.step  # where fit starts
        self.total_steps: int | None = None  # set by fit
        self.train_items: int | None = None  # set by fit
        self.device_augment: DeviceAugment | None = None  # set by open_data with --augment-on device
        self.summary: DatasetSummary | None = None  # set by open_data
        self.validation: RunValidation | None = None  # set by open_data
        self.system: System | None = None  # set by fit; trained_system gives it typed without None
        self.system_config: dict[str, Any] | None = None  # set by build_system: what checkpoints rebuild the system from
        self.part_plugins: dict[str, dict[str, dict[str, str]]] = {}  # set by build_system: each part's provider
        self.log: RunLog | None = None  # set by fit: the losses of the next metrics row, and the run's CSVs
        self.health = RunHealth(self.config, resumed=resume_from is not None)
        self.workers = 0  # set by fit: the loader's processes

    @property
    def trained_system(self) -> System:
        """The system ``fit`` trains (:attr:`system`), typed without ``None`` so that callbacks use it without a check of
        their own; raises ``GantkError`` before ``fit`` has built it."""
        if self.system is None:
            raise GantkError("Trainer.trained_system was read before fit() built the system: read it in a callback or "
                             "after fit() (trainer.system is None until then).")
        return self.system

    @classmethod
    def resume(cls, run_dir: str | os.PathLike[str], overrides: dict[str, Any] | None = None,
               **kwargs: Unpack[ResumeOptions]) -> "Trainer":
        """Continue the run in ``run_dir`` from its newest checkpoint, with the ``overrides`` that
        :func:`~gantk.train.resume.resumed_config` allows. InceptionV3 weights other than the reference network or
        ``$GANTK_INCEPTION_WEIGHTS``'s are named again in ``overrides`` (see :func:`gantk.metrics.fid.vouched_weights`).
        ``kwargs`` are :class:`Trainer`'s ``components``, ``callbacks`` and ``progress`` (:class:`ResumeOptions`)."""
        passed: dict[str, object] = dict(kwargs)  # as called, typed or not: settings and resume_from are refused by name
        if settings := sorted(set(passed) & SETTING_NAMES):
            given = ", ".join(f"{key!r}: {passed[key]!r}" for key in settings)
            raise OptionError(f"{', '.join(settings)} given as keyword: settings to change are passed as the overrides, "
                              f"Trainer.resume(run_dir, {{{given}}}).")
        if "resume_from" in passed:
            raise OptionError("Trainer.resume reads the checkpoint to resume from out of run_dir, so it takes no resume_from; "
                              "to resume from given checkpoint contents, call Trainer(config, resume_from=...).")
        components = kwargs["components"] = kwargs.get("components") or default_components()
        config, payload = resumed_config(run_dir, overrides, components)
        with ckpt.missing_plugin_errors(payload, components):
            if config.data_format:  # read when the data opens, after the checks of the parts
                components.registry("data_format").get(config.data_format)
            for name, _ in parse_spec(config.loss):  # built once the data opens: a missing plugin is named now
                components.registry("objective").get(name)
            return cls(config, resume_from=payload, **kwargs)

    # -- set-up -----------------------------------------------------------------------------

    def check_run_dir(self) -> None:
        """A new run needs an empty (or missing) folder, or one left by a run that stopped before its first checkpoint;
        a resumed one, that its checkpoint is still the newest (no other process trained it on meanwhile) and that its
        folder takes files. Neither writes through a link in place of its folders of samples and events."""
        if linked := [f"{name}/" for name in (run_files.SAMPLES, run_files.TENSORBOARD) if (self.run_dir / name).is_symlink()]:
            raise OptionError(f"{self.run_dir}: {' and '.join(linked)} {'is a link' if len(linked) == 1 else 'are links'} to "
                              "another folder, which the run would write its files into: remove the link (the run makes "
                              "a folder of its own), or choose another --out directory.")
        if self.resume_from is not None:
            read, newest = Path(self.resume_from["path"]).name, ckpt.list_checkpoints(self.run_dir)
            if newest and newest[-1].name != read:
                raise CheckpointError(
                    f"the run in {self.run_dir} went on while this resume read its checkpoint {read}: its newest is now "
                    f"{newest[-1].name}, so another process trained it; resume again once that one has stopped."
                )
            try:
                check_writable(self.run_dir / run_files.CONFIG)
            except OSError as error:  # a folder made read-only since: refused before the set-up
                raise OptionError(f"cannot resume the run in {self.run_dir}: {error.strerror}; once it can be written again "
                                  f"({how_to_write(error)}), resume it (a run writes its checkpoints, samples and logs "
                                  "there).") from None
            return
        if ckpt.list_checkpoints(self.run_dir):
            raise OptionError(
                f"{self.run_dir} already holds checkpoints of another run: pass --resume {shlex.quote(str(self.run_dir))} "
                f"(Trainer.resume({str(self.run_dir)!r}) in Python) to continue it, or choose a new --out directory."
            )
        if (self.run_dir / run_files.BEST).exists():
            raise OptionError(
                f"{self.run_dir} holds {run_files.BEST}, the best model an earlier run kept (--keep-best), which a new run "
                "would replace: move it out of the folder, or choose a new --out directory."
            )
        if self.run_dir.is_file():
            raise OptionError(f"--out {self.run_dir} is a file; choose a directory.")
        foreign = foreign_entries(self.run_dir, lambda path: path.name in run_files.ALL)
        if foreign:
            raise OptionError(
                f"--out {self.run_dir} holds files that are not a gantk run's ({foreign}); choose a new or empty directory."
            )
        if (left := run_files.left_outputs(self.run_dir)) and not run_files.written_by_gantk(self.run_dir):
            names = first_names([str(path.relative_to(self.run_dir)) for path in left])
            raise OptionError(
                f"--out {self.run_dir} holds files named as a gantk run's ({names}), but no {run_files.CONFIG} of the "
                "settings gantk writes, so they are not taken for an earlier run's and replaced; choose a new or empty directory."
            )

    def _write_run_dir(self, process: ProcessInfo, held: contextlib.ExitStack, settings: bool = True) -> None:
        """Claim the run directory for the rest of the run (``held``), tidy what a killed run left (a checkpoint
        not yet pruned, a sample's temporary file), then write its ``settings``."""
        if not process.is_main:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        held.enter_context(run_files.claimed(self.run_dir))
        self.check_run_dir()  # again, now that no other process can write checkpoints here
        prune_checkpoints(self.run_dir, self.config.keep_checkpoints)
        remove_abandoned(self.run_dir, run_files.BEST)
        remove_abandoned(self.run_dir / run_files.SAMPLES, "*")
        if not settings:
            return
        if self.resume_from is None:
            run_files.clear_outputs(self.run_dir)
        with replacing(self.run_dir / run_files.CONFIG, durable=True) as handle:  # as its checkpoints, which it must match
            handle.write(f"# written by gantk {__version__} (torch {torch.__version__}, Python {platform.python_version()}); "
                         "`gantk train --config` this file runs these settings again\n" + to_toml(self.config.to_dict()))

    def open_data(self, summary: DatasetSummary | None = None, progress: bool = False, also_check: Collection[str] = ()):
        """The training set and, with ``val_every``, the validation set, as :func:`~gantk.train.run_data.open_run_data`
        opens them; sets ``self.summary``, ``self.validation`` and with --augment-on device ``self.device_augment``."""
        data = open_run_data(self.config, self.components, self.run_dir, self.resume_from, summary, progress, also_check)
        self.summary, self.device_augment = data.summary, data.device_augment
        self.validation = RunValidation(self.config, self.run_dir, data.val, data.val_lpips, data.val_features, self.resume_from)
        return data.train, data.val

    def build_system(self, dataset: Any, device: torch.device) -> System:
        """The system the configuration describes for ``dataset`` (or the checkpoint's, resuming), on ``device``, as
        :func:`~gantk.train.run_system.build_run_system` builds it."""
        built = build_run_system(self.config, self.given_config, self.components, self.resume_from, dataset, device,
                                 self.summary)
        self.system_config, self.part_plugins, self.config = built.system_config, built.part_plugins, built.config
        return built.system

    def _wrap(self, system: System, process: ProcessInfo, device: torch.device) -> tuple[dict[str, Any], dict[str, Any]]:
        """Callables per network, trained and frozen: compiled with --compile, and the trained ones
        DDP-wrapped under torchrun."""
        mode = self.config.compile_mode
        compiled = (lambda net: torch.compile(net, mode=mode)) if self.config.compile else (lambda net: net)
        frozen = {name: compiled(net) for name, net in system.networks.items()}
        if not process.distributed:
            return dict(frozen), frozen
        device_ids = [device.index] if device.type == "cuda" else None
        return {name: compiled(DistributedDataParallel(net, device_ids=device_ids)) for name, net in system.networks.items()}, frozen

    # -- the loop ---------------------------------------------------------------------------

    def fit(self) -> Path:
        """Train to the end of the schedule, or until a callback raises :class:`StopTraining` (after the
        step's checkpoint); returns the run directory.

        Raises:
            TrainingInterrupted: on Ctrl-C or SIGTERM, after finishing the step and saving a checkpoint (under torchrun,
                in every process, after the same step).
        """
        if self.step != self.first_step:
            raise OptionError(f"this Trainer has trained the run in {self.run_dir} (to step {self.step}): continue it with "
                              f"Trainer.resume({str(self.run_dir)!r}) (a finished run with a longer max_steps or epochs "
                              "among the overrides).")
        with contextlib.ExitStack() as held:
            noted = held.enter_context(stop_signals_noted())  # a Ctrl-C in the set-up stops it, even if swallowed
            return self._fit(held, noted)

    def _fit(self, held: contextlib.ExitStack, noted: NotedSignals) -> Path:
        with process_group(self.config.device) as process, peer_loss_explained(process, lambda: self.step):
            return self._fit_in_group(held, process, noted)

    def _fit_in_group(self, held: contextlib.ExitStack, process: ProcessInfo, noted: NotedSignals) -> Path:
        config = self.config
        dataset, sampler, parts = self._set_up(held, process)
        steps_per_epoch = epoch_steps(len(sampler), config.batch_size)
        worker_signals = WorkerStopSignals()
        # The loader gets its own generator: starting an epoch must not draw from the global RNG,
        # or a run resumed mid-epoch would see other dropout masks than an uninterrupted one.
        self.workers = default_workers(process.local_world_size) if config.workers is None else config.workers
        loader = DataLoader(dataset, sampler=sampler, batch_size=config.batch_size, num_workers=self.workers, drop_last=True,
                            pin_memory=parts.device.type == "cuda", persistent_workers=self.workers > 0,
                            generator=torch.Generator().manual_seed(config.seed), worker_init_fn=worker_signals)
        log = RunLog(self.run_dir, self.step, self.total_steps, is_main=process.is_main,
                     validation=self.validation.dataset is not None, progress=self.progress,
                     logged=self.resume_from["logged_steps"] if self.resume_from is not None else None)
        self.log = log
        if self.resume_from is not None and process.rank < len(self.resume_from["loss_windows"]):
            log.window.carry(self.resume_from["loss_windows"][process.rank])
        self.trained_system.train()
        self._validate_unfinished(parts, log, steps_per_epoch)
        interrupted = None
        agreed = stop_agreement(process)  # under torchrun, every process stops after the step one was signalled in
        noted.act_on_any()
        try:
            with (stop_after_step_on_interrupt() as stop_signal, freed_memory_kept(parts.device), worker_signals.training()):
                stopped = False  # by a callback
                while self.step < self.total_steps and not stopped:
                    epoch, position = divmod(self.step, steps_per_epoch)
                    sampler.set_epoch(epoch)
                    sampler.set_start(position * config.batch_size)
                    waiting_since = time.perf_counter()
                    for batch in self._batches(loader, parts):
                        log.waited_for_data(time.perf_counter() - waiting_since)
                        try:
                            self._step(parts, log, batch, epoch)
                        except StopTraining:
                            self._save_unless_saved(parts)
                            stopped = True
                            break
                        self._stop_if_asked(parts, agreed(stop_signal()))
                        waiting_since = time.perf_counter()
        except TrainingInterrupted as signalled:  # raised once the losses are plotted
            interrupted = signalled
        except RuntimeError as error:  # torch raises a worker's end wherever the main process is, mid-step too
            if (ended := worker_ended(error)) is None:
                raise
            drop_tracebacks(error)
            then = self._how_to_go_on()
            raise DataError(f"{ended} Training stopped during step {self.step + 1}, which is not saved: with fewer --workers "
                            f"or more free memory, {then}.") from None
        except OSError as error:  # the run's folder taking no more writes (disk full, read-only): resumable once it does
            folder = None if error.filename is None else Path(error.filename).absolute().parent.resolve()
            if error.errno not in (*WRITE_FAILURES, *REFUSED_WRITES) or folder is None or not folder.is_relative_to(self.run_dir.resolve()):
                raise
            then = self._how_to_go_on()
            raise GantkError(f"{error.filename}: {error.strerror or error}. Training stopped at step {self.step}: once "
                             f"{Path(error.filename).parent} can be written again ({how_to_write(error)}), {then}.") from None
        finally:
            log.close()
            # The loader's last reference: its workers stop now, not at exit, where an error's traceback that
            # still holds this frame would leave them to be killed (with a DataLoader error printed).
            del loader
        if process.is_main:
            self._plot_losses()
        if process.distributed:  # every process leaves together, once the main one has drawn the plot
            dist.barrier()
        if interrupted is not None:
            raise interrupted
        return self.run_dir

    def _set_up(self, held: contextlib.ExitStack,
                process: ProcessInfo) -> tuple[Dataset, ResumableSampler, TrainingParts]:
        """All of a run before its first step: the checks, the data, the system and its optimisers, the run's folder written."""
        config = self.config
        if torch.get_default_dtype() != torch.float32:  # the networks would take it, the data are float32
            raise OptionError(f"torch's default dtype is {torch.get_default_dtype()} (torch.set_default_dtype), and gantk trains "
                              "in float32 (--precision sets faster types): set it back with "
                              "torch.set_default_dtype(torch.float32) before training.")
        device = resolve_device(config.device, process.local_rank)
        held.enter_context(tuned_backends(device))
        warn_if_slow(device, config.precision)
        self.check_run_dir()
        dataset, _ = self.open_data(progress=self.progress and process.is_main)
        check_processes_agree(dataclasses.asdict(config), len(dataset), process)
        if len(dataset) < process.world_size:
            raise OptionError(f"the training data has {len(dataset)} item(s), fewer than the {process.world_size} processes of "
                              f"this run, so each step would repeat some: start at most {len(dataset)} processes, or add data.")
        self.validation.warn_if_another_inception()
        self.validation.carry_kept_best()
        self.system = self.build_system(dataset, device)
        sampler = ResumableSampler(len(dataset), seed=config.seed, shuffle=True, rank=process.rank, world_size=process.world_size)
        self.train_items = len(dataset)
        self.plan_schedule(self.system, len(sampler))
        if config.warmup_steps > self.total_steps:
            warnings.warn(f"--warmup-steps {config.warmup_steps} is longer than the run's {self.total_steps} steps: the "
                          "learning rate never reaches --lr; give fewer warm-up steps.", GantkWarning, stacklevel=caller_stacklevel())
        if self.resume_from is not None:
            warn_if_the_data_changed(self.resume_from, self.train_items, config.data)
            check_resumed_length(self.resume_from, self.run_dir, self.total_steps, process.world_size, config)
        parts = self.training_parts(self.system, device, process, self.total_steps)
        # a finished run resumed for no step keeps the settings it was trained with
        self._write_run_dir(process, held, settings=self.step < self.total_steps)
        return dataset, sampler, parts

    def _validate_unfinished(self, parts: TrainingParts, log: RunLog, steps_per_epoch: int) -> None:
        """Validate a resumed run's checkpoint that was due a validation it stopped before ending."""
        if self.resume_from is None or log.validation is None or log.validation.last_step == self.step:
            return
        saved = self.resume_from["train_config"]
        ended = schedule_steps(saved.get("max_steps"), saved.get("epochs"), steps_per_epoch)  # the schedule it had
        if self._due(self.config.val_every) or self.step == ended:
            with log.window.untimed():
                self._validate(parts, log)

    def _plot_losses(self) -> None:
        """Draw the run's loss curves, where it has logged a row; a plot that cannot be written is warned of."""
        metrics = self.run_dir / run_files.METRICS
        if not (metrics.is_file() and read_metrics(metrics)):  # none when stopped before the first row
            return
        try:
            plot_losses(metrics, self.run_dir / run_files.LOSS_CURVES)
        except OSError as error:  # the steps and their checkpoint are written: a plot lost is no failed run
            warnings.warn(f"{self.run_dir / run_files.LOSS_CURVES} could not be written ({error.strerror or error}); the "
                          f"run is saved at step {self.step}, and `gantk plot {self.run_dir}` draws the plot once it can "
                          "be written.", GantkWarning, stacklevel=caller_stacklevel())

    def _how_to_go_on(self) -> str:
        """What a run stopped part-way does next: resume from its newest checkpoint, or start again without one."""
        return (f"continue from the run's last checkpoint with `gantk train --resume {self.run_dir}`"
                if ckpt.list_checkpoints(self.run_dir) else "start the run again (it has no checkpoint yet)")

    def _batches(self, loader: DataLoader, parts: TrainingParts) -> Iterator[dict[str, Any]]:
        """The batches left in this epoch. A data error in reading one (a file damaged or removed since the
        run began) stops training, with one process after a checkpoint of the steps done."""
        try:
            yield from raised_as_in_workers(itertools.islice(loader, self.total_steps - self.step))
        except DataError as error:
            del loader  # this frame is in the error's traceback: the loader's workers must not live on with it
            when = "with fewer --workers or more free memory" if isinstance(error, WorkerEnded) else "once the data are fixed"
            raise self._saved_before(error, parts, when) from None

    def _saved_before(self, error: DataError, parts: TrainingParts, when: str = "once the data are fixed") -> DataError:
        """``error`` (data that could not be read mid-run), after a checkpoint of the steps done when one
        process trains (every process would have to save together), saying how (and ``when``) to continue."""
        if parts.process.distributed or not self.step:
            return error
        self._save_unless_saved(parts)
        return DataError(f"{error} Training stopped at step {self.step}, which is saved: {when}, "
                         f"continue with `gantk train --resume {self.run_dir}`.")

    def _save_unless_saved(self, parts: TrainingParts) -> None:
        """A checkpoint of this step for a run that stops after it, unless the step wrote one."""
        if not self._due(self.config.checkpoint_every):
            self._save(parts)

    def _stop_if_asked(self, parts: TrainingParts, signum: int | None) -> None:
        """After a step during which signal ``signum`` came: save a checkpoint, then stop."""
        if signum is None or self.step >= self.total_steps:
            return
        self._save_unless_saved(parts)
        raise TrainingInterrupted(self.step, signum)

    def plan_schedule(self, system: System, items: int) -> None:
        """Set the run's length in steps, ``self.total_steps``, for ``items`` training items per process, once it is
        checked that every phase of ``system`` runs in it (G with --n-critic N, say)."""
        config = self.config
        self.total_steps = total_steps = schedule_steps(config.max_steps, config.epochs, epoch_steps(items, config.batch_size))
        length = "--max-steps" if config.max_steps else "--epochs"
        if total_steps > MOST_STEPS:
            raise OptionError(f"{length} {config.max_steps or config.epochs} makes {total_steps} steps, more than gantk takes "
                              f"({MOST_STEPS:.0e}); give fewer.")
        for phase in system.phases:
            if phase.every > total_steps:
                raise OptionError(
                    f"the {phase.name} step runs once every {phase.every} steps (as --n-critic sets it), so in a run of "
                    f"{total_steps} step(s) it never runs and {', '.join(phase.trains)} would not train: raise "
                    f"{length} to {phase.every} steps or more, or lower --n-critic."
                )

    def training_parts(self, system: System, device: torch.device, process: ProcessInfo, total_steps: int) -> TrainingParts:
        """Optimizers, schedulers, scaler and wrapped networks for ``system``; restored when resuming."""
        check_every_parameter_trains(system)
        optimizers, schedulers = make_optimizers(system, self.config, total_steps)
        parts = TrainingParts(system, {}, {}, optimizers, schedulers, grad_scaler(device, self.config.precision), device, process,
                              total_steps)
        if self.resume_from is not None:
            self.step = restore(self.resume_from, parts, self.config.seed)
        else:
            torch.manual_seed(self.config.seed + process.rank)
        parts.nets, parts.frozen_nets = self._wrap(system, process, device)  # after restoring: DDP starts from rank 0's weights
        if self.config.cuda_graph:
            check_recordable(system, self.config.recipe, device, process.distributed)
            parts.graphs = StepGraphs(optimizers, device)
        return parts

    def _step(self, parts: TrainingParts, log: RunLog, batch: dict[str, Any], epoch: int) -> None:
        """Train on ``batch``, then log, checkpoint, sample and validate where due."""
        config = self.config
        batch = self.augmented_on_device(batch, parts.device)
        # For the log: the rate of the first phase that trains a generator (--lr, where --disc-lr sets the others).
        shown = next((p for p in parts.system.phases if not trains_discriminators_only(parts.system, p)), parts.system.phases[0])
        lr = parts.optimizers[shown.name].param_groups[0]["lr"]
        with one_value_per_channel("use --batch-size 2 or more, a larger --crop-size, or a network with fewer downsamplings "
                                   "(e.g. a lower num_downs or encoder_depth)"):
            losses, outputs = self.train_step(parts, batch)
        log.step_done(losses)
        logged: dict[str, float] = {}
        if self._due(config.log_every):
            logged = log.write_losses(self.step, epoch, lr, config.batch_size * parts.process.world_size,
                                      lambda means: mean_over_processes(means, parts.process, parts.device))
            self.health.stop_if_diverged(self.step, logged, parts, self.part_plugins)
            self.health.warn_if_steps_skipped(self.step, parts)
            self.health.warn_if_waiting_for_data(log, parts, self.workers)
        chores = [config.sample_every, config.checkpoint_every, *([config.val_every] if log.validation is not None else [])]
        if parts.device.type == "cuda" and any(map(self._due, chores)):
            torch.cuda.synchronize(parts.device)  # the steps queued so far are training time, not the chores'
        with log.window.untimed():  # the rate logged is that of training steps
            try:  # the sample first: a run killed before the checkpoint writes it again when resumed
                if parts.process.is_main and self._due(config.sample_every):
                    sample = self.run_dir / run_files.SAMPLES / f"step-{self.step:08d}.png"
                    save_sample_grid(parts.system.sample_images(batch, in_float32(outputs)), sample)
            finally:  # a failing sample (or validation, after) loses no training
                if self._due(config.checkpoint_every):
                    self._save(parts)
            if log.validation is not None and self._due(config.val_every):
                logged = {**logged, **self._validate(parts, log)}
            with modes_kept(parts.system) if self.callbacks else contextlib.nullcontext():  # a callback's .eval() ends with it
                for callback in self.callbacks:
                    try:
                        callback(self, self.step, logged)
                    except StopTraining:
                        raise
                    except Exception:  # the step is done: keep it for a resume once the callback is fixed
                        if not parts.process.distributed:  # (every process would have to save together)
                            self._save_unless_saved(parts)
                        raise

    def _due(self, every: int) -> bool:
        """Whether a task done every ``every`` steps (and at the last) is due at this step."""
        return self.step % every == 0 or self.step == self.total_steps

    def _validate(self, parts: TrainingParts, log: RunLog) -> dict[str, float]:
        """Score the validation split, keep the best model and write the row; returns the ``val/`` scores."""
        try:
            scores = self.validation.scores(parts.system, parts.device)
        except DataError as error:
            raise self._saved_before(error, parts) from None
        # first: a run killed before the row is written validates this step again
        self.validation.keep_if_best(self.step, scores, parts.process.is_main, lambda: self._model_entries(parts))
        log.write_validation(self.step, scores)
        return scores

    def train_step(self, parts: TrainingParts, batch: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """One training step on a batch already on the device: each phase due at this step updates its
        networks and steps its schedule. Returns the detached losses and the system's outputs (with
        --cuda-graph, the outputs are overwritten by the next step)."""
        due = [phase for phase in parts.system.phases if phase.runs_at(self.step)]
        parts.system.training_progress.fill_(self.step / parts.total_steps)
        if self.config.compile:  # CUDA graphs (reduce-overhead, max-autotune) may reuse the previous step's output memory
            torch.compiler.cudagraph_mark_step_begin()
        if parts.graphs is None:
            losses, outputs = self._update(parts, batch, due)
        else:
            losses, outputs = parts.graphs.run(tuple(phase.name for phase in due), batch, lambda inputs: self._update(parts, inputs, due))
        for phase in due:
            parts.schedulers[phase.name].step()
        parts.scaler.update()
        self.step += 1
        return losses, outputs

    def _update(self, parts: TrainingParts, batch: dict[str, Any], due: list[Phase]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """The device work of a step: the system's forward, then each phase in ``due`` updates its networks."""
        precision, system = self.config.precision, parts.system
        with autocast(parts.device, precision):
            outputs = system(batch, parts.nets)
        losses: dict[str, torch.Tensor] = {}
        for phase in due:
            phase_nets = {name: (parts.frozen_nets[name] if name in phase.frozen else net) for name, net in parts.nets.items()}
            with frozen_networks(system.networks[name] for name in phase.frozen):
                with autocast(parts.device, precision):
                    terms = system.phase_losses(phase, batch, outputs, phase_nets)
                if not terms:
                    raise OptionError(
                        f"no loss term takes part in the {phase.name} step: every term of the objective returned None "
                        "there; check --loss."
                    )
                self.health.warn_of_untrained_terms(self.step + 1, phase, terms)
                optimizer = parts.optimizers[phase.name]
                optimizer.zero_grad(set_to_none=True)
                try:
                    parts.scaler.scale(sum(terms.values())).backward()
                except RuntimeError as error:
                    if "backward through the graph a second time" not in str(error) or not losses:
                        raise
                    raise GantkError(
                        f"the {phase.name} step's losses ({', '.join(terms)}) back-propagate through outputs whose graph an "
                        f"earlier step of this training step freed ({', '.join(losses)}): a term's discriminator loss must "
                        "read ctx.d_fake_detached, not ctx.d_fake (gantk.testing.ObjectiveConformance names the term)."
                    ) from error
                if self.config.grad_clip is not None:
                    parts.scaler.unscale_(optimizer)  # clip the gradients themselves, not fp16's scaled ones
                    torch.nn.utils.clip_grad_norm_([p for group in optimizer.param_groups for p in group["params"]],
                                                   self.config.grad_clip, foreach=True)
                parts.scaler.step(optimizer)
                with torch.no_grad():
                    system.after_optimizer_step(phase)
                system.update_averages(phase)
            losses.update({key: value.detach() for key, value in terms.items()})
        return losses, outputs

    def augmented_on_device(self, batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
        """The batch on ``device``; cropped and flipped there with --augment-on device; channels-last if asked."""
        moved = {key: value.to(device, non_blocking=True) if isinstance(value, torch.Tensor) else value for key, value in batch.items()}
        if self.device_augment is not None:
            moved = self.device_augment(moved)
        if self.config.channels_last:
            for key, value in moved.items():
                if isinstance(value, torch.Tensor) and value.dim() == 4:
                    moved[key] = value.contiguous(memory_format=torch.channels_last)
        return moved

    # -- checkpoints ------------------------------------------------------------------------

    def _save(self, parts: TrainingParts) -> None:
        self.health.stop_if_weights_diverged(self.step, parts)
        save_run_checkpoint(parts, self.run_dir, self.step, lambda: self._model_entries(parts), self.log,
                            self.validation.inception_sha1(), self.config.keep_checkpoints)

    def _model_entries(self, parts: TrainingParts) -> dict[str, Any]:
        """What a checkpoint holds of the model at this step (:func:`~gantk.train.run_checkpoints.model_entries`)."""
        return model_entries(parts.system, self.step, self.system_config, self.config, self.train_items, self.part_plugins)
