"""--keep-best: what best.pt records of the score that kept it, and the score a resumed run's best.pt set to beat."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, GantkWarning, caller_stacklevel
from ..metrics.ranking import FEATURE_SCORES
from . import checkpoint as ckpt


def best_record(name: str, value: float, split: str | None, lpips_sha256: str | None,
                inception_sha1: str | None) -> dict[str, Any]:
    """What best.pt records of the validation score ``name`` that kept it, with the network that scored it."""
    record = {"score": name, "value": value, "split": split}
    if name == "lpips":
        record["lpips_sha256"] = lpips_sha256
    if name in FEATURE_SCORES:
        record["inception_sha1"] = inception_sha1
    return record


def kept_best(path: Path, name: str | None, split: str | None, resumed_step: int, lpips: tuple[Path, str] | None,
              inception: tuple[Path, str] | None) -> tuple[float | None, int | None]:
    """The score and step of the best.pt at ``path`` that a run resumed from ``resumed_step`` kept for ``name`` on
    ``split``, scored by the same ``lpips`` and ``inception`` networks (each ``(file, hash)``): what a new best must
    beat; ``(None, None)``, with a warning saying why, where it does not count."""
    if not path.is_file():
        return None, None
    if name is None:
        warnings.warn(f"{path} is kept as it is and no longer updated without --keep-best: it holds the best model of "
                      "the steps before, and may be deleted.", GantkWarning, stacklevel=caller_stacklevel())
        return None, None
    try:
        payload = ckpt.load_checkpoint(path)
    except CheckpointError as error:
        reason = str(error).split(";")[0]
        warnings.warn(f"{reason}; it is replaced at the next validation.", GantkWarning, stacklevel=caller_stacklevel())
        return None, None
    kept = payload.get("best")
    if not (isinstance(kept, dict) and isinstance(kept.get("score"), str) and isinstance(kept.get("value"), float)):
        return None, None
    replaced = f"it is replaced at the next validation by the best {name} from here on"
    if kept["score"] != name:
        why = f"{path} holds the model of the best validation {kept['score']}; with --keep-best {name} {replaced}."
    elif kept.get("split") != split:
        why = (f"{path} holds the model of the best {name} on the split {kept.get('split')}, and the run now validates on "
               f"{split}: {replaced}.")
    elif name == "lpips" and kept.get("lpips_sha256") != lpips[1]:
        why = f"{path} holds the model of the best LPIPS scored with another AlexNet weights file than {lpips[0]}: {replaced}."
    elif name in FEATURE_SCORES and kept.get("inception_sha1") != inception[1]:
        why = (f"{path} holds the model of the best {name.upper()} scored with another InceptionV3 file than {inception[0]}: "
               f"{replaced}.")
    elif payload.get("step", 0) > resumed_step:  # a run killed after its newest checkpoint trains those steps again
        why = (f"{path} is of step {payload['step']}, after the checkpoint resumed (step {resumed_step}), whose steps are "
               f"trained again: {replaced}.")
    else:
        return kept["value"], payload.get("step")
    warnings.warn(why, GantkWarning, stacklevel=caller_stacklevel())
    return None, None
