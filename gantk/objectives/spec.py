"""Objective specs: ``"bce+l1"``, ``"hinge+l1@0.5"``, ``"lsgan+cycle@10+identity@5"``.

A spec names registered objectives and optionally weights them; a term without a weight
uses its objective's ``default_weight``. A weight scales everything its term contributes,
to the generator's loss and to the discriminator's.
"""

from __future__ import annotations

import difflib
import math
import re
import warnings
from typing import Any, Iterable, Mapping, NamedTuple, Sequence

import torch
from torch import Tensor, nn

from ..errors import GantkWarning, OptionError, PLUGIN_HINT, SpecError, caller_stacklevel
from ..plugins import Components, default_components
from ..option_values import described
from ..registry import NAME_PATTERN, Registry
from .base import FLOAT32_MAX, FLOAT32_TINY, LossContext, Objective, feature_extractor

GRAMMAR = "spec := term ('+' term)*, term := name ['@' weight], weight a positive number (e.g. 'bce+l1@100')"

_EXPONENT_CUT = re.compile(r"@\s*(\d+\.?\d*|\.\d+)[eE]$")  # 'l1@1e' of 'l1@1e+3' split at its '+'


class ObjectiveTerm(NamedTuple):
    """One term of a spec: the objective's registered name, its weight, the objective and the plugin providing it."""

    name: str
    weight: float
    objective: Objective
    plugin: str = "?"


def _error(text: str, problem: str, known: Sequence[str], hint: str = "") -> SpecError:
    listing = f" Known objectives: {', '.join(known)}." if known else ""
    return SpecError(f"invalid objective spec (--loss) {text!r}: {problem}.{hint} Expected {GRAMMAR}.{listing}")


def _weight_hint(name: str) -> str:
    """A hint for a weight written after another sign than '@' (``l1:100``, ``l1*100``, ``l1=100``)."""
    for sign in ":*=":
        base, found, weight = (part.strip() for part in name.partition(sign))
        value = _parse_weight(weight)
        if found and NAME_PATTERN.fullmatch(base) and value is not None and math.isfinite(value) and value > 0:
            return f" A weight follows '@': {base}@{weight}."
    return ""


def _format_weight(weight: float) -> str:
    short = f"{weight:g}"
    return short if float(short) == weight else repr(weight)


def _parse_weight(raw: str) -> float | None:
    try:
        return None if "_" in raw else float(raw)
    except ValueError:
        return None


def _split_terms(text: str) -> list[str]:
    """Split at '+', except the sign of an exponent in a weight such as ``1e+3``."""
    terms: list[str] = []
    for piece in text.split("+"):
        if terms and _EXPONENT_CUT.search(terms[-1]):
            terms[-1] += "+" + piece
        else:
            terms.append(piece)
    return terms


def parse_spec(text: str, known: Sequence[str] = ()) -> list[tuple[str, float | None]]:
    """Parse an objective spec into ``(name, weight)`` pairs, ``None`` where no weight is written.

    Args:
        text: the spec, e.g. ``"bce+l1@100"``; whitespace around tokens is ignored.
        known: objective names to list in error messages.

    Raises:
        SpecError: empty spec or term, invalid name, missing, non-numeric, non-finite or
            non-positive weight, or a name given twice.

    Example:
        >>> parse_spec("hinge + l1@0.5")
        [('hinge', None), ('l1', 0.5)]
    """
    if not isinstance(text, str):
        raise SpecError(f"an objective spec is text such as 'bce+l1@100', got {described(text)}.")
    if not text.strip():
        raise _error(text, "the spec is empty", known)
    terms: list[tuple[str, float | None]] = []
    for raw in _split_terms(text):
        term = raw.strip()
        name, has_weight, raw_weight = (part.strip() for part in term.partition("@"))
        if not term:
            raise _error(text, "it has an empty term (a '+' with nothing on one side)", known)
        if not name:
            raise _error(text, f"term {term!r} has no name", known)
        if not NAME_PATTERN.fullmatch(name):
            raise _error(text, f"{name!r} in term {term!r} is not a valid name (letters, digits, '-', '_', '.')", known,
                         _weight_hint(name))
        weight = None
        if has_weight:
            weight = _parse_weight(raw_weight)
            if not raw_weight:
                signed = "@+" in "".join(text.split())
                raise _error(text, f"term {term!r} has no weight after '@'"
                             + (" (a '+' there starts the next term: write the weight without a sign)" if signed else ""), known)
            if weight is None:
                raise _error(text, f"weight {raw_weight!r} in term {term!r} is not a number", known)
            if not math.isfinite(weight):
                raise _error(text, f"weight {raw_weight!r} in term {term!r} is not finite", known)
            if weight <= 0:
                raise _error(text, f"weight {raw_weight!r} in term {term!r} is not positive", known)
            if not FLOAT32_TINY <= weight <= FLOAT32_MAX:
                raise _error(text, f"weight {raw_weight!r} in term {term!r} is outside the range of the float32 numbers losses are "
                                   f"computed in ({FLOAT32_TINY:.2g} to {FLOAT32_MAX:.2g})", known)
        if any(name == seen for seen, _ in terms):
            raise _error(text, f"term {name!r} appears more than once; give each objective once", known)
        terms.append((name, weight))
    return terms


_MODULE_ATTRIBUTES = frozenset(dir(nn.ModuleDict()))  # of the class ('train') and of each instance ('training')


def _module_key(name: str) -> str:
    """The term's key among the set's modules: no '.', and none of a module's attributes ('train', 'training')."""
    key = name.replace(".", "_")
    return f"{key}_term" if key in _MODULE_ATTRIBUTES else key


def _terms_problem(terms: Sequence[ObjectiveTerm]) -> str | None:
    """What makes ``terms`` unusable together, or ``None``."""
    keys = [_module_key(t.name) for t in terms]
    clashes = sorted({t.name for t, key in zip(terms, keys, strict=True) if keys.count(key) > 1})
    if clashes:
        return f"terms {', '.join(map(repr, clashes))} clash; give each objective once"
    adversarial = [t.name for t in terms if t.objective.adversarial]
    if len(adversarial) > 1:
        return (
            f"it has more than one adversarial term ({', '.join(map(repr, adversarial))}); "
            "a spec trains against one discriminator, keep one of them"
        )
    regularisers = [t.name for t in terms
                    if not t.objective.adversarial and type(t.objective).discriminator_loss is not Objective.discriminator_loss]
    readers = [t.name for t in terms if not t.objective.adversarial and t.objective.reads_discriminator_features]
    for names, one, several in ((regularisers, "trains", "train"), (readers, "reads the features of", "read the features of")):
        if names and not adversarial:
            listed = ", ".join(map(repr, names))
            return (f"{listed} {one if len(names) == 1 else several} the discriminator, and the spec has no adversarial term "
                    f"to train it with: add one (bce, lsgan or hinge), or drop {listed}")
    return None


class ObjectiveSet(nn.Module):
    """The weighted terms of an objective spec, evaluated together for each training step.

    Build one with :meth:`from_spec`; the constructor takes terms built elsewhere.

    Example:
        >>> import gantk
        >>> objectives = gantk.load_components(autoload=False).registry("objective")
        >>> ObjectiveSet.from_spec("bce + l1", objectives).spec
        'bce@1+l1@100'
    """

    def __init__(self, terms: Iterable[ObjectiveTerm]):
        super().__init__()
        terms = tuple(ObjectiveTerm(*term) for term in terms)
        if not terms:
            raise SpecError(f"an objective needs at least one term. Expected {GRAMMAR}.")
        spec = "+".join(f"{t.name}@{_format_weight(t.weight)}" for t in terms)
        bad = [t.name for t in terms if not (math.isfinite(t.weight) and t.weight > 0)]
        problem = f"the weights of {', '.join(map(repr, bad))} are not positive and finite" if bad else _terms_problem(terms)
        if problem:
            raise _error(spec, problem, ())
        self.terms = terms
        self.spec = spec
        self.adversarial = next((t for t in terms if t.objective.adversarial), None)
        self.objectives = nn.ModuleDict({_module_key(t.name): t.objective for t in terms})

    def cuda_graph_obstacle(self) -> str | None:
        """Why a step computing these terms cannot be replayed as a CUDA graph, or ``None``."""
        reasons = [f"its {t.name} term {t.objective.cpu_decides}" for t in self.terms if t.objective.cpu_decides]
        return "; ".join(reasons) or None

    @classmethod
    def from_spec(
        cls,
        text: str,
        registry: Registry | Components | None = None,
        options: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> "ObjectiveSet":
        """Build the objectives named in ``text`` from ``registry``, the registry of objectives.

        Args:
            text: an objective spec such as ``"lsgan+cycle@10+identity@5"``.
            registry: where the names are looked up: a registry of objectives, or components, whose objectives
                are taken (default: the installed objectives).
            options: factory options per term name, e.g. ``{"bce": {"real_label": 0.9}}``.

        Raises:
            SpecError: the spec does not parse, names an unknown objective, or has more than one
                adversarial term.
            OptionError: options for a name not in the spec, or options an objective rejects.
        """
        if registry is None:
            registry = default_components().registry("objective")
        elif isinstance(registry, Components):
            registry = registry.registry("objective")
        parsed = checked_spec(text, registry, options)
        options = dict(options or {})
        terms = []
        for name, weight in parsed:
            objective = registry.create(name, **options.get(name, {}))
            plugin = registry.get(name).plugin
            if not isinstance(objective, Objective):
                raise OptionError(
                    f"objective {name!r} (plugin '{plugin}') was built as a {type(objective).__name__}, not a "
                    "gantk.Objective: its factory must return an Objective subclass."
                )
            if (type(objective).generator_loss is Objective.generator_loss
                    and type(objective).discriminator_loss is Objective.discriminator_loss):
                raise OptionError(
                    f"objective {name!r} (plugin '{plugin}') overrides neither generator_loss nor discriminator_loss, so it "
                    "would take part in no step: override one of them (see gantk.objectives.base.Objective)."
                )
            if objective.adversarial and type(objective).discriminator_loss is Objective.discriminator_loss:
                raise OptionError(
                    f"objective {name!r} (plugin '{plugin}') is adversarial but has no discriminator_loss, so the "
                    "discriminator would never train: override discriminator_loss, or set adversarial = False."
                )
            default = objective.default_weight
            if weight is None and not (isinstance(default, (int, float)) and not isinstance(default, bool) and default > 0):
                raise OptionError(
                    f"objective {name!r} (plugin '{plugin}') has default_weight {objective.default_weight!r}, which no "
                    f"spec can use: give it a weight ({name}@W) or fix the plugin."
                )
            terms.append(ObjectiveTerm(name, objective.default_weight if weight is None else weight, objective, plugin))
        problem = _terms_problem(terms)
        if problem:
            raise _error(text, problem, registry.names())
        return cls(terms)

    def generator_losses(self, ctx: LossContext) -> dict[str, Tensor]:
        """Weighted generator losses keyed by term name; terms without a generator loss are left out."""
        reads_features = any(term.objective.reads_discriminator_features for term in self.terms)
        if reads_features and feature_extractor(ctx.discriminator) is not None:
            _ = ctx.d_fake_features  # one discriminator pass for the features and the adversarial term's logits
        return self._losses(ctx, "generator_loss")

    def discriminator_losses(self, ctx: LossContext) -> dict[str, Tensor]:
        """Weighted discriminator losses keyed by term name; terms without one are left out."""
        return self._losses(ctx, "discriminator_loss")

    def _losses(self, ctx: LossContext, step: str) -> dict[str, Tensor]:
        losses = {}
        for term in self.terms:
            read = _context_versions(ctx)
            try:
                loss = getattr(term.objective, step)(ctx)
            except Exception as error:
                error.add_note(f"(raised in {step} of objective {term.name!r}, plugin '{term.plugin}')")
                raise
            if changed := [name for name, version in _context_versions(ctx).items() if version != read[name]]:
                raise OptionError(
                    f"objective {term.name!r} (plugin '{term.plugin}') changed the context's {', '.join(changed)} in place in "
                    f"{step} (itself, or a network it ran, such as the discriminator), which the other terms read: compute on a "
                    f"copy (such as ctx.{changed[0]}.clone()), or keep the network from changing its input in place."
                )
            if loss is None:
                continue
            if not isinstance(loss, Tensor) or loss.dim() != 0:
                got = f"a tensor of shape {tuple(loss.shape)}" if isinstance(loss, Tensor) else type(loss).__name__
                raise OptionError(
                    f"objective {term.name!r} (plugin '{term.plugin}') returned {got} from {step}; a loss must be a scalar "
                    "tensor: reduce it (with .mean(), say) in the objective."
                )
            if loss.dtype in (torch.float16, torch.bfloat16):  # warned once per term, as warnings are
                warnings.warn(f"objective {term.name!r} (plugin '{term.plugin}') gives its {step} as {loss.dtype}, rounded to "
                              "that precision: compute it on float32 values (.float(), or under mixed precision inside "
                              "torch.autocast(device_type, enabled=False)).", GantkWarning, stacklevel=caller_stacklevel())
            losses[term.name] = term.weight * loss
        return losses

    def extra_repr(self) -> str:
        return f"spec={self.spec!r}"


def checked_spec(text: str, registry: Registry, options: Mapping[str, Mapping[str, Any]] | None = None
                 ) -> list[tuple[str, float | None]]:
    """The ``(name, weight)`` terms of the spec ``text``, checked without building them: known names of ``registry``,
    and ``options`` (one table per term) that their objectives take (see :meth:`ObjectiveSet.from_spec`)."""
    known = registry.names()
    parsed = parse_spec(text, known)
    for name, _ in parsed:
        if name not in registry:
            close = difflib.get_close_matches(name.lower(), known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else PLUGIN_HINT
            raise _error(text, f"unknown objective {name!r}", known, hint)
    options = dict(options or {})
    if untabled := [name for name, value in options.items() if not isinstance(value, Mapping)]:
        raise OptionError(f"options are given per term as tables, e.g. {{'bce': {{'real_label': 0.9}}}}; those of "
                          f"{', '.join(map(repr, untabled))} are not: {options[untabled[0]]!r}.")
    stray = sorted(set(options) - {name for name, _ in parsed})
    if stray:
        raise OptionError(
            f"options were given for {', '.join(map(repr, stray))}, which the objective spec {text!r} "
            f"does not use; its terms are: {', '.join(name for name, _ in parsed)}."
        )
    for name, _ in parsed:
        registry.checked_options(name, dict(options.get(name, {})))
    return parsed


def _context_versions(ctx: LossContext) -> dict[str, int]:
    """The in-place version counters of the tensors ``ctx`` gives every term (inference tensors keep none)."""
    return {name: tensor._version for name in ("input", "fake", "real", "fake_logits", "target", "kept")
            if isinstance(tensor := getattr(ctx, name), Tensor) and not tensor.is_inference()}
