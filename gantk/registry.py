"""Registry: named factories of one kind of component (generator, discriminator, ...)."""

from __future__ import annotations

import contextlib
import fnmatch
import functools
import inspect
import re
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from .errors import DuplicateNameError, GantkError, OptionError, UnknownNameError, did_you_mean
from .option_values import as_declared, close_options_hint, declared_type, described, type_mismatch, with_nones

NAME_PATTERN = re.compile(r"[A-Za-z0-9_.\-]+")  # also what objective specs accept
# How a user gives options to each kind of component.
OPTION_FLAGS = {"generator": "--gen-opt KEY=VALUE", "discriminator": "--disc-opt KEY=VALUE", "objective": "--loss-opt NAME.KEY=VALUE"}


@contextlib.contextmanager
def options_set_with(kind: str, how: str) -> Iterator[None]:
    """An ``OptionError`` raised inside names ``how`` as where ``kind``'s options are set, not train's flag."""
    try:
        yield
    except OptionError as error:
        if kind in OPTION_FLAGS:
            error.args = (str(error).replace(OPTION_FLAGS[kind], how), *error.args[1:])
        raise

_BUILT: dict[int, tuple[weakref.ref, str]] = {}  # id of a built component -> (the component, its label), for messages


def built_as(component: Any) -> str | None:
    """How messages name ``component`` if a registry built it, e.g. ``discriminator 'patch70' (plugin
    'gantk.discriminators')``; ``None`` for anything else."""
    ref, label = _BUILT.get(id(component), (None, None))
    return label if ref is not None and ref() is component else None


def _record_built(component: Any, label: str) -> None:
    """Remember ``label`` for ``component`` while it lives (by identity: a component may compare equal to another)."""
    try:
        ref = weakref.ref(component, lambda _, key=id(component): _BUILT.pop(key, None))
    except TypeError:  # not weakly referable (a plain value): messages name it otherwise
        return
    _BUILT[id(component)] = (ref, label)


def own_summary(obj: Any) -> str:
    """The first line of ``obj``'s own docstring (a class does not inherit its base's here; a
    ``functools.partial`` without one of its own gives its function's)."""
    if isinstance(obj, functools.partial) and obj.__doc__ == functools.partial.__doc__:
        obj = obj.func
    doc = inspect.cleandoc(getattr(obj, "__doc__", None) or "")
    return doc.splitlines()[0] if doc else ""


@dataclass(frozen=True)
class Entry:
    """One registered name: the factory that builds it and the plugin that provided it."""

    name: str
    factory: Callable[..., Any]
    plugin: str

    @property
    def summary(self) -> str:
        return own_summary(self.factory)

    @functools.cached_property
    def parameters(self) -> list[inspect.Parameter]:
        """The factory's parameters, read from its signature once."""
        return list(inspect.signature(self.factory).parameters.values())

    def _option_parameters(self) -> list[inspect.Parameter]:
        return [p for p in self.parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]

    def options(self) -> dict[str, Any]:
        """Keyword options of the factory with their defaults (``inspect.Parameter.empty`` if required)."""
        return {p.name: p.default for p in self._option_parameters()}

    def option_types(self) -> dict[str, tuple[type | None, bool]]:
        """Per option, the type its values must have and whether ``None`` is allowed (see :func:`declared_type`)."""
        return {p.name: declared_type(p) for p in self._option_parameters()}

    def required_options(self) -> list[str]:
        """Options of the factory that have no default."""
        return [name for name, default in self.options().items() if default is inspect.Parameter.empty]

    @property
    def starting_weight_options(self) -> tuple[str, ...]:
        """Options that only choose the starting weights (the factory's ``starting_weight_options``)."""
        return tuple(getattr(self.factory, "starting_weight_options", ()))

    def accepts_any_option(self) -> bool:
        return any(p.kind is p.VAR_KEYWORD for p in self.parameters)

    def takes_option(self, name: str) -> bool:
        return name in self.options() or self.accepts_any_option()


class Registry:
    """Named factories of one kind.

    Example:
        >>> r = Registry("generator")
        >>> r.add("identity", lambda in_channels=3, out_channels=3: None, plugin="demo")
        >>> r.names("id*")
        ['identity']
    """

    def __init__(self, kind: str, builds: tuple[type, str] | None = None):
        """``builds``: the type every factory must return and how messages name it (unchecked if None)."""
        self.kind = kind
        self.builds = builds
        self._entries: dict[str, Entry] = {}
        self.overridden_by: dict[str, str] = {}  # name -> the plugin whose override holds it
        self.failed_plugins: list[str] = []  # plugins that failed to load: an unknown name may be theirs
        self.plugins_note = ""  # why installed plugins were not loaded, if they were not

    def add(self, name: str, factory: Callable[..., Any], *, plugin: str = "?", override: bool = False) -> None:
        """Register ``factory`` under ``name``; an existing name is an error unless ``override``."""
        self.check_new_entry(name, factory, plugin)
        if name in self._entries and not override:
            owner = self._entries[name].plugin
            raise DuplicateNameError(
                f"{self.kind} '{name}' is already registered by plugin '{owner}'; "
                f"plugin '{plugin}' must pass override=True to replace it, or pick another name."
            )
        self._entries[name] = Entry(name, factory, plugin)

    def check_new_entry(self, name: str, factory: Callable[..., Any], plugin: str) -> None:
        """Raise ``OptionError`` if ``name`` is not a valid name or ``factory`` cannot build components."""
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise OptionError(f"{self.kind} name {name!r} is invalid: use letters, digits, '-', '_' and '.'.")
        if not callable(factory) or (not inspect.isclass(factory) and hasattr(factory, "forward")):
            raise OptionError(
                f"{self.kind} '{name}' of plugin '{plugin}' is registered with {described(factory)}: "
                "register the class or a function that builds the component, not an instance."
            )

    def copy(self) -> "Registry":
        """A registry of the same entries, to which entries can be added without changing this one."""
        copied = Registry(self.kind, self.builds)
        copied._entries, copied.overridden_by = dict(self._entries), dict(self.overridden_by)
        copied.failed_plugins, copied.plugins_note = list(self.failed_plugins), self.plugins_note
        return copied

    def get(self, name: str) -> Entry:
        if not isinstance(name, str):
            known = self.names()
            example = f" such as '{known[0]}'" if known else ""
            own = (f"; to use a {self.kind} of your own, register it by name in a plugin and pass its components "
                   "(gantk.load_components(plugins=[...]); see docs/writing-a-plugin.md in gantk's source)") if callable(name) else ""
            raise OptionError(f"a {self.kind} name must be a string{example}, not {described(name)}: 'gantk list' shows the "
                              f"names{own}.")
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self.names(), from_plugins=True, failed_plugins=self.failed_plugins,
                                   plugins_note=self.plugins_note) from None

    def checked_options(self, name: str, options: dict[str, Any]) -> dict[str, Any]:
        """``options`` of the component ``name`` as its factory takes them (see :meth:`create`); raises
        ``OptionError`` naming an option it does not take or a value of another type. Options without a
        default are not required here: a trainer gives some (channels), so they are checked by :meth:`create`."""
        entry = self.get(name)
        defaults = entry.options()
        if not entry.accepts_any_option():
            unknown = sorted(set(options) - set(defaults))
            if unknown:
                raise OptionError(
                    f"{self.kind} '{name}' has no option {', '.join(repr(u) for u in unknown)}; "
                    f"its options{f' (set with {OPTION_FLAGS[self.kind]})' if self.kind in OPTION_FLAGS else ''} are: "
                    f"{', '.join(defaults) or '(none)'}.{close_options_hint(unknown, defaults)}"
                    f" The {self.kind} comes from plugin '{entry.plugin}'."
                )
        return self._typed_options(entry, defaults, with_nones(options, defaults))

    def create(self, name: str, **options: Any) -> Any:
        """Build the component ``name`` with ``options``; unknown options and values of the wrong type are errors."""
        entry = self.get(name)
        missing = [key for key in entry.required_options() if key not in options]
        if missing:
            flag = f" with {OPTION_FLAGS[self.kind]}" if self.kind in OPTION_FLAGS else ""
            raise OptionError(
                f"{self._label(entry)} needs the option(s) {', '.join(missing)}, "
                f"which have no default: give them{flag}."
            )
        options = self.checked_options(name, options)
        try:
            component = entry.factory(**options)
        except OptionError as error:  # a component's own check: add which component, unless it starts with the name
            if str(error).startswith(f"{name} "):
                raise
            refusal = str(error) if str(error).endswith((".", "?", "!")) else f"{error}."
            raise OptionError(f"{self._label(entry)}: {refusal}{self._flag_hint()}") from error
        except GantkError:
            raise
        except Exception as error:  # a bad option value: say which component and options
            given = ", ".join(f"{key}={value!r}" for key, value in options.items()) or "no options"
            raise OptionError(
                f"{self._label(entry)} could not be built with {given}: {type(error).__name__}: {error}"
            ) from error
        if self.builds is not None and not isinstance(component, self.builds[0]):
            expected = self.builds[1]
            raise OptionError(
                f"{self._label(entry)} was built as a {type(component).__name__}, not a {expected}: "
                f"its factory must return a {expected}."
            )
        if _module_not_set_up(component):
            raise OptionError(
                f"{self._label(entry)} is a torch.nn.Module whose __init__ does not call super().__init__(): "
                f"call it first in {type(component).__qualname__}.__init__."
            )
        _record_built(component, self._label(entry))
        return component

    def _typed_options(self, entry: Entry, defaults: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        """``options`` as their options take them (:func:`as_declared`); raise ``OptionError`` naming every
        option whose value's type is not the one it takes."""
        types_ = entry.option_types()
        typed, problems = {}, []
        for key, value in options.items():
            wanted, none_allowed = types_.get(key, (None, True))
            typed[key] = value = as_declared(wanted, value)
            if wanted is None or (value is None and none_allowed):
                continue
            if problem := type_mismatch(key, wanted, defaults[key], value):
                problems.append(problem)
        if problems:
            raise OptionError(f"{self._label(entry)}: {'; '.join(problems)}.{self._flag_hint()}")
        return typed

    def _flag_hint(self) -> str:
        """Where a command line sets the options of this kind of component, for the end of a message."""
        return f" Its options are set with {OPTION_FLAGS[self.kind]}." if self.kind in OPTION_FLAGS else ""

    def _label(self, entry: Entry) -> str:
        """How messages name the component of ``entry``, e.g. ``generator 'unet' (plugin 'gantk.generators')``."""
        return f"{self.kind} '{entry.name}' (plugin '{entry.plugin}')"

    def names(self, pattern: str = "*") -> list[str]:
        return sorted(n for n in self._entries if fnmatch.fnmatchcase(n, pattern))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def scoped(self, plugin: str) -> "PluginRegistry":
        return PluginRegistry(self, plugin)


def _module_not_set_up(component: Any) -> bool:
    """Whether ``component`` is an ``nn.Module`` that ``nn.Module.__init__`` never ran on (torch fails
    on it later, far from the cause)."""
    from torch import nn

    return isinstance(component, nn.Module) and "_modules" not in vars(component)


class PluginRegistry:
    """What a plugin's hook receives: ``add`` records the plugin as the provider. An ``override=True``
    add is checked at once but applied by ``apply_overrides()``, once every plugin's plain adds are in,
    so it wins whatever order the plugins load in. Once the plugins are loaded it is closed: an add
    from a reference kept past the hook is an error."""

    def __init__(self, registry: Registry, plugin: str):
        self._registry = registry
        self._added: list[str] = []  # for rollback()
        self._overrides: list[tuple[str, Callable[..., Any]]] = []
        self._closed = False
        self.plugin = plugin

    def add(self, name: str, factory: Callable[..., Any], *, override: bool = False) -> None:
        if self._closed:
            raise GantkError(f"plugin '{self.plugin}' added {self._registry.kind} '{name}' after its hook returned; a plugin "
                             "registers its parts inside its gantk_register_* hooks only.")
        if override:
            self._registry.check_new_entry(name, factory, self.plugin)
            self._overrides.append((name, factory))
        else:
            self._registry.add(name, factory, plugin=self.plugin)
            self._added.append(name)

    def apply_overrides(self) -> list[str]:
        """Register the names this plugin overrides, replacing any other plugin's; returns what clashed
        with another plugin's override (this one is kept, as the later loaded), and overrides of a name no loaded plugin
        provides but close to one that is (misspelt, it would leave the part it meant as it was; a part of a plugin not
        loaded is overridden silently)."""
        clashes = []
        for name, factory in self._overrides:
            earlier = self._registry.overridden_by.get(name)
            if earlier not in (None, self.plugin):
                clashes.append(f"{self._registry.kind} '{name}' is overridden by plugin '{earlier}' too; this plugin's, "
                               "loaded later, is kept: uninstall one of them to choose.")
            elif name not in self._registry and (meant := did_you_mean(name, self._registry.names())):
                clashes.append(f"overrides {self._registry.kind} '{name}', which no loaded plugin provides.{meant} It is added "
                               "as a new name.")
            self._registry.add(name, factory, plugin=self.plugin, override=True)
            self._registry.overridden_by[name] = self.plugin
        self._overrides.clear()
        return clashes

    def close(self) -> None:
        """Refuse any later add (the plugins are loaded)."""
        self._closed = True

    def rollback(self) -> None:
        """Undo this plugin's additions (its hook failed part-way: it adds all or nothing)."""
        for name in self._added:
            del self._registry._entries[name]
        self._added.clear()
        self._overrides.clear()
