"""Starting a run from another run's network weights (``gantk train --init-from``)."""

from __future__ import annotations

import warnings
from typing import Any

from ..errors import CheckpointError, GantkWarning, OptionError, caller_stacklevel
from ..systems.base import System
from . import checkpoint as ckpt


def start_from_weights(system: System, source: str) -> str:
    """Load the weights of checkpoint ``source`` (a file or run directory) into the networks of ``system``
    it has (fine-tuning); all else starts afresh. Returns the checkpoint file read, for the run's settings."""
    try:
        payload = ckpt.load_checkpoint(source)
    except CheckpointError as error:
        raise CheckpointError(f"--init-from: {error}") from None
    ckpt.check_entries(payload, {"system_state": ckpt.MODEL_ENTRIES["system_state"]})
    saved: dict[str, dict[str, Any]] = {}
    for key, value in payload["system_state"].items():
        if key.startswith("networks."):
            name, _, rest = key[len("networks."):].partition(".")
            saved.setdefault(name, {})[rest] = value
    if not saved.keys() & system.networks.keys():
        raise OptionError(f"--init-from {payload['path']} has none of this run's networks ({', '.join(system.networks)}), "
                          f"only {', '.join(saved) or 'none'}: start from a checkpoint of the same recipe.")
    for name in sorted(saved.keys() & system.networks.keys()):
        try:
            system.networks[name].load_state_dict(saved[name])
        except RuntimeError as error:
            raise OptionError(
                f"--init-from {payload['path']} holds other weights for {name} than this run's network "
                f"({ckpt.state_mismatch(str(error))}): train with the --gen, --disc and network options of the run "
                f"that wrote it (its config.toml), on data with its channels.{_differences(payload['system'], system.config)}"
            ) from None
    if bad := [name for name in ckpt.diverged_networks(system) if name in saved]:
        raise CheckpointError(
            f"--init-from {payload['path']} holds weights that are not finite (NaN or infinity) in {', '.join(bad)}: start "
            "from an earlier checkpoint of that run."
        )
    if (saved_task := _task(payload["system"])) != (task := _task(system.config)):
        warnings.warn(f"--init-from {payload['path']} translates {saved_task}, and this run {task}: its networks start from "
                      "weights learnt for other inputs or outputs.", GantkWarning, stacklevel=caller_stacklevel())
    fresh, unused = sorted(system.networks.keys() - saved.keys()), sorted(saved.keys() - system.networks.keys())
    if fresh or unused:
        warnings.warn(
            f"--init-from {payload['path']}: " + "; ".join(
                ([f"{', '.join(fresh)} start{'s' if len(fresh) == 1 else ''} from {'its' if len(fresh) == 1 else 'their'} "
                  f"initialisation (the checkpoint has no weights for {'it' if len(fresh) == 1 else 'them'})"] if fresh else [])
                + ([f"the checkpoint's {', '.join(unused)} {'is' if len(unused) == 1 else 'are'} not used"] if unused else [])
            ) + ".",
            GantkWarning,
            stacklevel=caller_stacklevel(),
        )
    return payload["path"]


def _differences(saved: dict[str, Any], config: dict[str, Any]) -> str:
    """The network settings in which a checkpoint's system config and this run's differ, as a sentence ("" if none)."""
    found = [change for key in ("gen", "gen_opt", "disc", "disc_opt", "channels") if saved.get(key) != config.get(key)
             for change in ckpt.setting_changes(key, saved.get(key), config.get(key))]
    return f" They differ in: {'; '.join(found)}." if found else ""


def _task(system_config: dict[str, Any]) -> str:
    """What a system translates, as far as its networks' weights mean: label maps or images to masks or images."""
    inputs = "label maps" if system_config.get("input_classes") is not None else "images"
    return f"{inputs} to {'masks' if system_config.get('num_classes') is not None else 'images'}"
