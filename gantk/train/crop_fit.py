"""Whether the crop size suits every network of a system, and which sizes would."""

from __future__ import annotations

from ..errors import OptionError
from ..nn import round_up, size_rules
from ..systems.base import System
from .config import MAX_SIDE


def check_crop_fits(system: System, crop: int | None, load: int | None, largest: int | None = None) -> None:
    """Raise :class:`OptionError` when ``--crop-size`` (``crop``) is not a size every network of ``system``
    takes, naming the network and sizes that suit them all (a larger ``--load-size`` where needed; ``load``
    ``None`` where images are not resized, and no size above ``largest``, the smallest image, then)."""
    if not crop:
        return
    # Suggested sizes suit every network: a multiple of all their multiples, at least all their minimums.
    every_multiple, every_smallest = size_rules(system.networks.values())
    for name, net in system.networks.items():
        # A network a system added without add_network is named by its class, with no describe hint.
        kind, component = system.network_parts.get(name, ("network", type(net).__name__))
        describe = kind in ("generator", "discriminator")
        multiple, smallest = getattr(net, "size_multiple", 1), getattr(net, "min_input_size", 1)
        if crop % multiple and multiple > MAX_SIDE:
            raise OptionError(
                f"{name} ({component}) needs image sizes that are multiples of {multiple}, more than the largest "
                f"--crop-size ({MAX_SIDE}): its options make it too deep for any image; "
                + (f"lower them (`gantk describe {kind} {component} --opt KEY=VALUE,...` shows the size multiple of those "
                   "options)." if describe
                   else f"choose another {kind}.")
            )
        if crop % multiple:
            raise OptionError(
                f"{name} ({component}) needs image sizes that are multiples of {multiple}, but --crop-size is {crop}: "
                f"use {crop_sizes_to_try(crop, load, every_multiple, every_smallest, largest)}, or "
                + (f"other options for the {kind}, or another (`gantk describe {kind} {component} --opt KEY=VALUE,...` "
                   "shows the size multiple of those options)." if describe else f"another {kind}.")
            )
        if crop < smallest:
            fitting = round_up(every_smallest, every_multiple)
            raise OptionError(
                f"{name} ({component}) needs images of at least {smallest} px a side, but --crop-size is {crop}: "
                f"raise --crop-size{' (and --load-size)' if load else ''} to {fitting} or more, or choose a {kind} that sees less"
                + (f" (`gantk describe {kind} NAME` shows each one's min_input_size)." if describe else ".")
            )


def crop_sizes_to_try(crop: int, load: int | None, multiple: int, smallest: int = 1, largest: int | None = None) -> str:
    """The crop sizes nearest ``crop`` that are multiples of ``multiple`` and at least ``smallest``, the
    one below first when the one above needs a larger --load-size than ``load`` (which it then names),
    and the one below alone when the one above is larger than ``largest``."""
    below, above = crop // multiple * multiple, max(crop // multiple + 1, -(-smallest // multiple)) * multiple
    below = below if below >= smallest else 0
    if largest and above > largest and below:
        return f"--crop-size {below}"
    if load and above > load:
        larger = f"--crop-size {above} --load-size {above}"
        return f"--crop-size {below} (or {larger})" if below else larger
    return f"--crop-size {above}" + (f" or {below}" if below else "")
