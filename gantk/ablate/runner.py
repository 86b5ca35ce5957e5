"""Running a study: train and evaluate every cell, skip finished ones, resume interrupted ones."""

from __future__ import annotations

import inspect
import json
import numbers
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from ..data.batches import refuse_mixed_sizes, refuse_outputs_of_several_sizes, scored_inputs
from ..data.datasets import UnpairedSplit
from ..data.opening import get_format
from ..data.layout import ROOT_SPLIT
from ..data.validate import DatasetSummary
from ..errors import GantkError
from ..evaluate import evaluate, is_result_file, open_eval_split, save_result, unpaired_at_own_size, unscorable_unpaired
from ..files import foreign_entries, user_path
from ..inference import NOISE_SEEDING
from ..metrics import lpips_distance
from ..metrics.fid import RESIZE, find_inception_weights, sha1_of
from ..plugins import Components, default_components
from ..train import TrainConfig, Trainer
from ..train import checkpoint as ckpt
from ..train import run_files
from ..train.config import EXECUTION_KEYS, spelled
from ..train.trainer import check_every_parameter_trains
from .grids import (STUDY_FILES, AblationError, Cell, Grid, cell_config, check_grid, check_shared_loss_options,
                    check_shared_settings_reach_a_cell, with_seeds)
from .outputs import write_outputs

EVAL_FILE = run_files.EVAL
# Evaluation settings a finished cell was evaluated with; changing one re-evaluates without retraining.
EVALUATION_DEFAULTS = {"split": "test", "eval_mode": False, "batch_size": 1, "seed": 0}
# Evaluation settings added since: recorded only where set, so that cells scored before them keep their scores.
LATER_EVALUATION_DEFAULTS = {"size": "crop", "tile": None, "tile_overlap": None}
# What eval_options may hold: evaluate's options but those the study gives each cell.
FOLDER_OPTIONS = frozenset({"report_dir", "k_best_worst", "outputs_dir", "overwrite"})  # one folder would serve every cell
EVAL_OPTIONS = frozenset(inspect.signature(evaluate).parameters) - {"checkpoint", "data", "feature_cache"} - FOLDER_OPTIONS


def comparable(config: dict[str, Any]) -> dict[str, Any]:
    """A resolved configuration without the keys that only change how a run executes."""
    return {key: value for key, value in config.items() if key not in EXECUTION_KEYS}


def run_ablation(
    grid: Grid,
    data: str | Path,
    out: str | Path,
    *,
    common: dict[str, Any] | None = None,
    seeds: Sequence[int] | None = None,
    eval_options: dict[str, Any] | None = None,
    progress: bool = True,
    log: Callable[[str], object] = print,
    components: Components | None = None,
) -> list[dict[str, Any]]:
    """Train and evaluate every cell of ``grid`` (skipping finished ones), then write the study's outputs.

    Writes ``OUT/<cell>/`` (run directory and ``eval.json``), ``OUT/results.json``,
    ``OUT/results.md`` (markdown table), ``OUT/metrics.png`` and ``OUT/samples.png`` (three test
    images through every cell).

    Args:
        grid: the cells (see :func:`load_grid`).
        data: the dataset every cell trains and is evaluated on.
        out: the study's folder.
        common: training settings for every cell (e.g. ``{"max_steps": 500, "gen_opt": {"ngf": 32}}``).
        seeds: train each cell once per seed (``OUT/<cell>-seed-<S>/``); the table and plots show the mean and
            standard deviation over them, ``results.json`` each run and a ``summary``.
        eval_options: keyword arguments of :func:`gantk.evaluate.evaluate` (``split``, ``inception_weights``...).
        progress: progress bars of training and evaluation.
        log: receives one line per cell and stage.
        components: the plugin components cells are built from (default: the installed ones).

    Returns:
        The evaluation result of every cell, in grid order, each with a ``cell`` entry.
    """
    out, components = Path(user_path(out, "out (--out)")), components or default_components()
    common, eval_options = dict(common or {}), dict(eval_options or {})
    check_grid(grid)
    if seeds is not None:
        grid = with_seeds(grid, seeds, common)
    if reserved := sorted({"data", "out"} & set(common)):
        raise AblationError(f"{', '.join(reserved)} among the settings every cell shares: a study takes them as its data "
                            "and out (--data, --out); remove them.")
    if any("keep_best" in settings for settings in (common, grid.common, *(cell.settings for cell in grid.cells))):
        raise AblationError("keep_best among a study's settings: gantk ablate scores each cell's last checkpoint, not a "
                            "best.pt; remove it.")
    check_eval_options(eval_options)
    check_shared_settings_reach_a_cell(grid, common)
    check_shared_loss_options(grid, common, components)
    check_study_dir(grid, out)
    evaluation = {key: eval_options.get(key, default) for key, default in EVALUATION_DEFAULTS.items()}
    evaluation |= {key: int(value) if isinstance(value, numbers.Integral) else value  # numpy's too: recorded in JSON
                   for key, default in LATER_EVALUATION_DEFAULTS.items() if (value := eval_options.get(key, default)) != default}
    evaluation["inception_resize"] = RESIZE  # a cell scored with another resize is scored again
    if not evaluation["eval_mode"]:
        evaluation["dropout_noise"] = NOISE_SEEDING  # likewise a cell scored with noise drawn otherwise
    feature_cache: dict = {}
    results = []
    # The data is checked before training once per format and ignore label (each cell checks it again as it trains).
    summaries: dict[tuple, DatasetSummary] = {}
    weights = find_inception_weights(eval_options.get("inception_weights"))  # a wrong file is reported now, not after training
    trainers = [_checked_trainer(grid, cell, data, out, common, evaluation, summaries, progress, components,
                                 scorable_unpaired=weights is not None)
                for cell in grid.cells]
    evaluation["inception_sha1"] = sha1_of(weights) if weights is not None else None  # other weights: scored again
    if sha256 := _lpips_weights_checked(eval_options.get("lpips_weights"), trainers, components):
        evaluation["lpips_sha256"] = sha256  # recorded where scored, as later settings: cells scored without it are scored again
    earlier = []  # each cell's saved result; a cell trained with other settings stops the study now
    for cell, trainer in zip(grid.cells, trainers, strict=True):
        settings = comparable(trainer.config.to_dict())
        try:
            earlier.append(_saved_result(trainer.run_dir, settings, cell))
            if earlier[-1] is None:
                _checkpoint_checked(trainer.run_dir, settings, cell)  # read again when the cell's turn comes, not kept
        except AblationError as error:
            raise AblationError(f"grid {grid.label}, {error}") from None
        except GantkError as error:
            raise AblationError(f"grid {grid.label}, cell '{cell.name}': {error}") from None
    for number, (cell, trainer, saved) in enumerate(zip(grid.cells, trainers, earlier, strict=True), 1):
        label = f"[{number}/{len(grid.cells)}] {cell.name}"
        run_dir, settings = trainer.run_dir, comparable(trainer.config.to_dict())
        if saved is not None and saved["cell"].get("evaluation") == evaluation:
            log(f"{label}: finished earlier, skipped ({run_dir / EVAL_FILE})")
            results.append({**saved, "cell": {**saved["cell"], "group": cell.group or cell.name}})
            continue
        try:
            if saved is not None:
                log(f"{label}: trained earlier (step {saved['step']}), scored with other evaluation settings or weights "
                    "(or by an earlier gantk): evaluating again")
            else:
                if (payload := _checkpoint_checked(run_dir, settings, cell)) is not None:
                    done = payload["step"] >= trainer.total_steps  # stopped between its last step and its evaluation
                    log(f"{label}: " + (f"trained earlier (step {payload['step']}), not evaluated yet" if done else
                                        f"continuing {run_dir} from its checkpoint at step {payload['step']}"))
                    trainer = Trainer(cell_config(grid, cell, data, out, common, components), progress=progress, resume_from=payload,
                                      components=components)
                else:
                    log(f"{label}: training into {run_dir}")
                trainer.fit()
                log(f"{label}: evaluating")
            options = {"progress": progress, "data_format": trainer.config.data_format, "device": trainer.config.device,
                       "components": components, **eval_options}
            # the checkpoint it was scored with, where the cell's run went on since (gantk train --resume)
            result = evaluate(saved["checkpoint"] if saved else run_dir, data, feature_cache=feature_cache, **options)
        except AblationError:
            raise
        except GantkError as error:
            raise AblationError(f"grid {grid.label}, cell '{cell.name}': {error}") from None
        result["cell"] = {"name": cell.name, "group": cell.group or cell.name, "settings": cell.settings, "train_config": settings,
                          "evaluation": evaluation}
        save_result(result, run_dir / EVAL_FILE)
        results.append(result)
    write_outputs(grid, results, data, out, components, common)
    log(f"wrote {out / 'results.md'}, {out / 'results.json'}, {out / 'metrics.png'} and {out / 'samples.png'}")
    return results


def check_eval_options(eval_options: dict[str, Any]) -> None:
    """Refuse options :func:`~gantk.evaluate.evaluate` does not take, or that the study sets for each cell."""
    if folders := sorted(FOLDER_OPTIONS & set(eval_options)):
        raise AblationError(f"eval_options {', '.join(folders)}: a study passes no report or outputs folder to its cells, which "
                            "would share it; score a cell's run with gantk.evaluate.evaluate for them.")
    if unknown := sorted(set(eval_options) - EVAL_OPTIONS):
        raise AblationError(f"eval_options {', '.join(unknown)}: not options of gantk.evaluate.evaluate that a study "
                            f"passes on; it takes {', '.join(sorted(EVAL_OPTIONS))}.")


def check_study_dir(grid: Grid, out: Path) -> None:
    """Raise unless ``out`` is missing, empty or an earlier study's folder: its results, this grid's cell
    folders and other run directories (an earlier grid's cells); a cell folder's own files are the trainer's to check."""
    if out.is_file():
        raise AblationError(f"--out {out} is a file; choose a directory.")
    cells = {cell.folder for cell in grid.cells}

    def is_own(path: Path) -> bool:
        if path.is_dir():
            return path.name in cells or (path / run_files.CONFIG).is_file() or bool(ckpt.list_checkpoints(path))
        return path.name in STUDY_FILES

    foreign = foreign_entries(out, is_own)
    if foreign:
        raise AblationError(
            f"--out {out} holds files that are not a gantk ablate study's ({foreign}); choose a new or empty directory."
        )
    if (other := _study_grid(out)) not in (None, grid.name):
        raise AblationError(f"--out {out} holds the study of grid {other}, whose results grid {grid.name} would replace; "
                            "choose a new --out for it.")


def _study_grid(out: Path) -> str | None:
    """The name of the grid whose results ``out`` holds; ``None`` for none (or a damaged file)."""
    try:
        saved = json.loads((out / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return saved.get("grid") if isinstance(saved, dict) else None


def _checked_trainer(grid: Grid, cell: Cell, data: str | Path, out: str | Path, common: dict[str, Any],
                     evaluation: dict[str, Any], summaries: dict[tuple, DatasetSummary], progress: bool, components: Components,
                     *, scorable_unpaired: bool) -> Trainer:
    """The cell's trainer, once what would stop the cell later is checked: its settings, data and networks
    (the sizes they take, the discriminator against the objective), and the split it is evaluated on as
    ``evaluation`` says (unpaired data only when ``scorable_unpaired``: InceptionV3 weights were found).
    ``summaries`` keeps the data's validation per format and ignore label for the next cells."""
    split, size = evaluation["split"], evaluation.get("size", "crop")
    try:
        trainer = Trainer(cell_config(grid, cell, data, out, common, components), progress=progress, components=components)
        data_format = trainer.config.data_format
        read_as = (data_format, trainer.config.ignore_label)
        train, _ = trainer.open_data(summaries.get(read_as), progress=progress, also_check=(split,))  # the split it is scored on
        summaries[read_as] = trainer.summary
        system = trainer.build_system(train, torch.device("cpu"))
        check_every_parameter_trains(system)
        trainer.plan_schedule(system, len(train))
        if not ckpt.list_checkpoints(trainer.run_dir):  # one with checkpoints is resumed
            trainer.check_run_dir()
        evaluated = open_eval_split(data, trainer.system_config, split, data_format, components=components)
        if isinstance(evaluated, UnpairedSplit) and not scorable_unpaired:
            raise unscorable_unpaired(data)
        if isinstance(evaluated, UnpairedSplit) and size != "crop":
            raise unpaired_at_own_size(size, data, "--eval-size")
        scored = trainer.summary.splits.get(split) or trainer.summary.splits.get(ROOT_SPLIT)
        shapes = [shape for side in (scored.sizes.values() if scored else ()) for shape in side]
        refuse_mixed_sizes(shapes, size, evaluation["batch_size"], split, ("--eval-size", "--eval-batch-size"))
        for inputs in scored_inputs(evaluated) if size == "crop" else ():
            refuse_outputs_of_several_sizes(inputs, trainer.config.resize, evaluation["batch_size"], "--eval-batch-size")
    except GantkError as error:
        raise AblationError(f"grid {grid.label}, cell '{cell.name}': {error}") from None
    return trainer


def _lpips_weights_checked(given: str | Path | None, trainers: list[Trainer], components: Components) -> str | None:
    """The SHA-256 of the AlexNet weights LPIPS will score the study's cells with, read now rather than after
    training; ``None`` where no cell's outputs have targets to compare with, or the package or file is missing."""
    scored = any(trainer.system_config.get("num_classes") is None and get_format(trainer.summary.format, components).paired_targets
                 for trainer in trainers)
    if not scored:
        if given is not None:
            raise AblationError("--lpips-weights is for LPIPS, which compares each output image with its target, and no cell "
                                "of this study has one (its outputs are masks, or the data is unpaired): drop it.")
        return None
    if lpips_distance.missing_reason(given) is not None:
        return None
    return lpips_distance.named_network(given, torch.device("cpu")).sha256


def _saved_result(run_dir: Path, settings: dict[str, Any], cell: Cell) -> dict[str, Any] | None:
    """The result saved when the cell finished training and was evaluated; ``None`` when it has not
    (or the file is damaged or was not written by gantk ablate, or its checkpoint is gone)."""
    path = run_dir / EVAL_FILE
    if not is_result_file(path):
        return None
    result = json.loads(path.read_text(encoding="utf-8"))
    step, cell_entry = result["step"], result.get("cell")
    if not (isinstance(step, int) and isinstance(cell_entry, dict) and isinstance(cell_entry.get("train_config"), dict)):
        return None
    checkpoint = ckpt.checkpoint_path(run_dir, step)
    if not checkpoint.is_file():
        newest = [int(path.stem.split("-")[1]) for path in ckpt.list_checkpoints(run_dir)][-1:]  # oldest first
        if newest and newest[0] > step:
            raise AblationError(
                f"cell '{cell.name}' in {run_dir} was scored at step {step}, and its run went on since (gantk train --resume, to "
                f"step {newest[0]}) without keeping the checkpoint of step {step}: the study can neither "
                "score it again nor show its outputs. Choose a new --out, or delete that cell's folder to train it again."
            )
        return None
    _check_same(result["cell"]["train_config"], settings, run_dir, cell)
    return {**result, "checkpoint": str(checkpoint)}  # where the study's folder is now (it may have moved)


def _checkpoint_checked(run_dir: Path, settings: dict[str, Any], cell: Cell) -> dict[str, Any] | None:
    """The newest checkpoint of the cell's unfinished run, once its settings are found to be ``settings``; ``None``
    where it has none."""
    if not ckpt.list_checkpoints(run_dir):
        return None
    payload = ckpt.load_checkpoint(run_dir)
    ckpt.check_entries(payload, ckpt.RUN_ENTRIES)
    saved = comparable(payload["train_config"])
    for key in ("data_format", "ignore_label"):  # a run resumed by hand records the format's, as detected then
        if settings.get(key) is None and saved.get(key) == payload["system"].get(key):
            saved[key] = None
    _check_same(saved, settings, run_dir, cell)
    return payload


def _check_same(saved: dict[str, Any], wanted: dict[str, Any], run_dir: Path, cell: Cell) -> None:
    """Raise unless two resolved configurations agree (a key only one of them has counts when it is not the default)."""
    defaults = TrainConfig().to_dict()

    def value(config: dict[str, Any], key: str) -> Any:
        return config.get(key, defaults.get(key))

    changed = sorted(k for k in set(saved) | set(wanted) if value(saved, k) != value(wanted, k))
    if changed:
        differences = "; ".join(f"{spelled(k, value(saved, k))} then, {spelled(k, value(wanted, k))} now" for k in changed)
        raise AblationError(
            f"cell '{cell.name}' in {run_dir} was run with other settings ({differences}); "
            "run the study with its original settings, choose a new --out, or delete that cell's folder."
        )
