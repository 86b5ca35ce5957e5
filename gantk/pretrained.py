"""Pretrained torchvision networks' weights, read from files and never downloaded: where torchvision
keeps them once fetched, read without running code from the file, and checked layer by layer."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

from .errors import OptionError
from .torch_files import DamagedEntry, InflatingEntries, read_weights_only, unreadable_reason


def torchvision_file(name: str) -> Path:
    """Where torchvision saves the weights file ``name`` once fetched: ``$TORCH_HOME/hub/checkpoints``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def read_weights(path: Path, named: str) -> Any:
    """What the weights file ``path`` (``named`` so in errors) holds, read with ``weights_only``; a file that
    torch.save did not write, or that cannot be read, raises :class:`OptionError`."""
    with open(path, "rb") as handle:
        try:
            return read_weights_only(handle)
        except InflatingEntries:  # torch.save never writes such entries: they could unpack to far more than the file
            raise OptionError(f"{named} is not a file torch.save wrote (it holds zip entries that would unpack to more than "
                              "its size, or a zip directory that cannot be read).") from None
        except DamagedEntry as damaged:
            raise OptionError(f"{named} is damaged: its entry {damaged.entry} differs from the checksum written with it; copy "
                              "the file again from a sound copy.") from None
        except (MemoryError, torch.OutOfMemoryError):
            raise  # the machine's limit, not the file's fault
        except Exception as error:
            raise OptionError(f"{named} cannot be read as a weights file ({unreadable_reason(handle, error)}).") from None


def load_layers(module: nn.Module, saved: Any, saved_key: Callable[[str], str], named: str, network: str, advice: str) -> None:
    """Load into ``module`` (its tensors replaced: it may be built on the meta device) each of its tensors from
    ``saved[saved_key(key)]``, refusing, with ``advice``, a file that lacks one or holds it in another shape than ``network``'s."""
    found = saved if isinstance(saved, dict) else {}
    expected = module.state_dict()
    for key, meta in expected.items():
        value = found.get(saved_key(key))
        if not isinstance(value, Tensor) or value.shape != meta.shape or not value.is_floating_point():
            got = (f"shape {tuple(value.shape)}" if isinstance(value, Tensor) and value.shape != meta.shape
                   else f"{value.dtype} values" if isinstance(value, Tensor) else "no such tensor")
            raise OptionError(f"{named} does not hold {network}'s weights: {saved_key(key)} should have shape {tuple(meta.shape)} "
                              f"and floating-point values, it has {got}. {advice}")
    module.load_state_dict({key: found[saved_key(key)].float() for key in expected}, assign=True)
