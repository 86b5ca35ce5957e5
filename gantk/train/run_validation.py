"""A run's validation: its held-out split scored every --val-every steps, and with --keep-best the best model kept."""

from __future__ import annotations

import copy
import dataclasses
import math
import warnings
from pathlib import Path
from typing import Any, Callable

import torch

from ..data.datasets import UnpairedSplit
from ..errors import GantkWarning, caller_stacklevel
from ..metrics.lpips_distance import LpipsNetwork, weights_path
from ..metrics.ranking import improves
from ..systems.base import System
from . import checkpoint as ckpt
from . import run_files
from .best import best_record, kept_best
from .config import VALIDATION_PREFIX, TrainConfig
from .validation import FeatureScores, unpaired_validation_scores, validation_scores


class RunValidation:
    """The validation of the run in ``run_dir`` with the settings ``config``: the held-out ``dataset`` (``None``
    without --val-every), --val-lpips's network and the InceptionV3 of FID and KID, each read once and kept for the run,
    and with --keep-best the best score so far (that of best.pt) and its step. ``resume_from``: the checkpoint
    resumed, whose best.pt and InceptionV3 the run goes on from."""

    def __init__(self, config: TrainConfig, run_dir: Path, dataset: Any, lpips: LpipsNetwork | None,
                 features: FeatureScores | None, resume_from: dict[str, Any] | None):
        self.config = config
        self.run_dir = run_dir
        self.dataset = dataset
        self.lpips = lpips
        self.features = features
        self.resume_from = resume_from
        self.best_score: float | None = None
        self.best_step: int | None = None
        self.warned_of_best = False  # that a validation gave the keep_best score as NaN

    def scores(self, system: System, device: torch.device) -> dict[str, float]:
        """The ``val/`` scores of ``system`` on the held-out split."""
        # Images kept in shape (--resize short-side or none) differ in size, so they run one at a time.
        batch_size = self.config.batch_size if self.config.resize == "square" else 1
        if isinstance(self.dataset, UnpairedSplit):
            return unpaired_validation_scores(system, self.dataset.sides, device, batch_size, self.features)
        return validation_scores(system, self.dataset, device, batch_size, self._lpips_on(device), self.features)

    def _lpips_on(self, device: torch.device) -> LpipsNetwork | None:
        """--val-lpips's network, as read when the data opened (a file changed or removed since is not read
        again), on ``device``."""
        loaded = self.lpips
        if loaded is not None and next(loaded.network.parameters()).device != device:
            self.lpips = loaded = dataclasses.replace(loaded, network=copy.deepcopy(loaded.network).to(device))
        return loaded

    def keep_if_best(self, step: int, scores: dict[str, float], is_main: bool,
                     model_entries: Callable[[], dict[str, Any]]) -> None:
        """With --keep-best, write the model of ``step`` (``model_entries``, in the main process) as best.pt where its
        validation ``scores`` beat the best so far."""
        name = self.config.keep_best
        if name is None:
            return
        value = scores[VALIDATION_PREFIX + name]
        if not math.isfinite(value) and not self.warned_of_best:
            self.warned_of_best = True
            warnings.warn(f"--keep-best {name}: validation at step {step} gives {name} {value}, which keeps no model; "
                          "choose a score validation computes here (see validation.csv).", GantkWarning,
                          stacklevel=caller_stacklevel())
        if not improves(name, value, self.best_score):
            return
        self.best_score, self.best_step = value, step
        if is_main:  # the model alone: best.pt is for translating, scoring and exporting, not for resuming
            record = best_record(name, value, self.config.val_split, self.lpips and self.lpips.sha256,
                                 self.features and self.features.features.sha1)
            ckpt.save_checkpoint(self.run_dir / run_files.BEST, {**model_entries(), "best": record})

    def carry_kept_best(self) -> None:
        """Start from the --keep-best score and step of the best.pt a resumed run kept: what a new best must beat."""
        if self.resume_from is None:
            self.best_score, self.best_step = None, None
            return
        lpips = None if self.lpips is None else (weights_path(self.config.lpips_weights), self.lpips.sha256)
        features = None if self.features is None else self.features.features
        self.best_score, self.best_step = kept_best(
            self.run_dir / run_files.BEST, self.config.keep_best, self.config.val_split, self.resume_from["step"], lpips,
            None if features is None else (features.path, features.sha1))

    def inception_sha1(self) -> str | None:
        """The SHA-1 of the InceptionV3 of validation's FID and KID: this run's, else the last a resumed run scored with
        (so that a resume that turns them on again on another network warns)."""
        if self.features is not None:
            return self.features.features.sha1
        return None if self.resume_from is None else self.resume_from["validation_inception_sha1"]

    def warn_if_another_inception(self) -> None:
        """Warn when a resumed run's validation scores FID and KID on another InceptionV3 than before."""
        scored_with = None if self.resume_from is None else self.resume_from["validation_inception_sha1"]
        if scored_with is not None and self.features is not None and self.features.features.sha1 != scored_with:
            warnings.warn(f"the run scored validation FID and KID with another InceptionV3 (SHA-1 {scored_with}) and goes on "
                          f"with {self.features.features.path}: the FID and KID of validation.csv after step "
                          f"{self.resume_from['step']} are of another network than those before.", GantkWarning,
                          stacklevel=caller_stacklevel())
