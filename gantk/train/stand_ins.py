"""Stand-ins for the parts of a trained model that translating never runs (its discriminator, its loss
terms), so that the model loads without the plugins that provided them."""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from ..errors import GantkError
from ..objectives.base import Objective
from ..objectives.spec import parse_spec
from ..plugins import Components
from ..provenance import same_provider

PLUGIN = "gantk (stand-in)"


class StandIn:
    """A part that no loaded plugin provides as trained, built so the system around it can be: it holds no
    weights and never runs."""

    def __init__(self, **options: Any):
        super().__init__()

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise GantkError(f"{type(self).__name__} stands in for a part that no loaded plugin provides as trained, and "
                         "cannot run; load the plugin the run was trained with.")


class StandInDiscriminator(StandIn, nn.Module):
    pass


class StandInObjective(StandIn, Objective):
    generator_loss = discriminator_loss = StandIn.forward


class StandInAdversarialObjective(StandInObjective):
    adversarial = True


RUN_PARTS = ("recipe", "generator")  # the kinds of part translating runs; the others may be stood in for


def with_stand_ins(payload: dict[str, Any], components: Components) -> Components:
    """``components`` with a stand-in for each discriminator and loss term of checkpoint ``payload`` that no
    loaded plugin provides, or another provider gives now; if the loss term the discriminator trains with is
    one of them, the first stand-in term is an adversarial one."""
    system_config, recorded = payload["system"], payload["part_plugins"]
    disc, terms = system_config.get("disc"), [name for name, _ in parse_spec(system_config["loss"])]

    def stood_in(kind: str, name: str) -> bool:
        registry = components.registry(kind)
        return name not in registry or (name in recorded.get(kind, {}) and not same_provider(registry.get(name), recorded[kind][name]))

    missing = {"discriminator": [disc] if disc and stood_in("discriminator", disc) else [],
               "objective": [name for name in terms if stood_in("objective", name)]}
    if not any(missing.values()):
        return components
    options = system_config.get("loss_opt") or {}
    kept_adversarial = any(components.create("objective", name, **options.get(name, {})).adversarial
                           for name in terms if name not in missing["objective"])
    registries = dict(components.registries)
    for kind, names in missing.items():
        if names:
            registries[kind] = registry = registries[kind].copy()
            for index, name in enumerate(names):
                adversarial = kind == "objective" and index == 0 and bool(disc) and not kept_adversarial
                stand_in = {"discriminator": StandInDiscriminator, "objective": StandInObjective}[kind]
                registry.add(name, StandInAdversarialObjective if adversarial else stand_in, plugin=PLUGIN, override=True)
    return dataclasses.replace(components, registries=registries)


def without_stand_in_state(system: nn.Module, state: dict[str, Any]) -> dict[str, Any]:
    """``state`` less the entries of the parts of ``system`` that stand-ins hold the place of."""
    prefixes = tuple(f"{name}." for name, module in system.named_modules() if isinstance(module, StandIn))
    return {key: value for key, value in state.items() if not key.startswith(prefixes)} if prefixes else state
