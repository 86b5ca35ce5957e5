"""Plugin manager: built-in plugins and entry-point plugins fill one registry per kind."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib
import importlib.metadata
import inspect
import os
import sys
import sysconfig
import traceback
import types
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Literal, Mapping, overload

import pluggy

from . import hookspecs
from .errors import GantkError, GantkWarning, OptionError, UnknownNameError, caller_stacklevel
from .option_values import described
from .provenance import package_of, plugin_name
from .registry import Registry

if TYPE_CHECKING:
    from torch import nn

    from .data.formats import DataFormat
    from .objectives.base import Objective
    from .recipes.base import Recipe

ENTRY_POINT_GROUP = "gantk"
AUTOLOAD_ENV = "GANTK_DISABLE_PLUGIN_AUTOLOAD"
PLUGINS_ENV = "GANTK_PLUGINS"  # module names of plugins to load beside the installed ones (not installed themselves)

BUILTIN_PLUGINS = (
    "gantk.generators",
    "gantk.discriminators",
    "gantk.objectives",
    "gantk.data.formats",
    "gantk.data.voc",
    "gantk.data.cityscapes",
    "gantk.data.ade20k",
    "gantk.recipes",
)

# kind -> hook that fills its registry
KINDS = {
    "generator": "gantk_register_generators",
    "discriminator": "gantk_register_discriminators",
    "objective": "gantk_register_objectives",
    "data_format": "gantk_register_data_formats",
    "recipe": "gantk_register_recipes",
}

# The kinds' spellings normalize_kind takes, by what create builds; another spelling, or a kind known at run time only, gives Any.
NetworkKind = Literal["generator", "generators", "discriminator", "discriminators"]
ObjectiveKind = Literal["objective", "objectives"]
DataFormatKind = Literal["data_format", "data_formats", "data-format", "data-formats"]
RecipeKind = Literal["recipe", "recipes"]


@dataclass(frozen=True)
class PluginFailure:
    plugin: str
    error: str

    def __str__(self) -> str:
        return f"plugin '{self.plugin}': {self.error}"


@dataclass
class Components:
    """Everything the loaded plugins registered, one ``Registry`` per kind."""

    manager: pluggy.PluginManager
    registries: dict[str, Registry]
    failures: list[PluginFailure] = field(default_factory=list)
    distributions: dict[str, str] = field(default_factory=dict)  # entry-point plugin -> "name version" that declares it

    def package(self, plugin: str) -> str | None:
        """The installed distribution (``gantk-wgan 0.1.0``) of the loaded plugin named ``plugin``: the one whose entry
        point loaded it, else the one holding its code (:func:`package_of`)."""
        return self.distributions.get(plugin) or package_of(self.manager.get_plugin(plugin))

    def registry(self, kind: str) -> Registry:
        kind = normalize_kind(kind)
        return self.registries[kind]

    @overload
    def create(self, kind: NetworkKind, name: str, **options: Any) -> nn.Module: ...
    @overload
    def create(self, kind: ObjectiveKind, name: str, **options: Any) -> Objective: ...
    @overload
    def create(self, kind: DataFormatKind, name: str, **options: Any) -> DataFormat: ...
    @overload
    def create(self, kind: RecipeKind, name: str, **options: Any) -> Recipe: ...
    @overload
    def create(self, kind: str, name: str, **options: Any) -> Any: ...

    def create(self, kind: str, name: str, **options: Any) -> Any:
        """Build the registered component ``name`` of ``kind`` (see :func:`gantk.create`)."""
        component = self.registry(kind).create(name, **options)
        if normalize_kind(kind) == "recipe" and component.name != name:  # it goes by the name it is registered under
            component = dataclasses.replace(component, name=name)
        return component

    def call_hook(self, hook_name: str, **kwargs: Any) -> None:
        """Call every implementation of a hook on its own, recording a plugin that raises; one that
        raises while adding commands to ``cli=group`` leaves none of its commands there."""
        group = kwargs.get("cli")
        for impl in hook_impls(self.manager, hook_name):
            commands = _command_tables(group) if group is not None else []
            try:
                result = impl.function(*[kwargs[name] for name in impl.argnames])
            except Exception as error:  # a broken plugin must not break the others
                for subgroup, table in commands:  # its commands go, in subgroups too
                    subgroup.commands.clear()
                    subgroup.commands.update(table)
                self.failures.append(PluginFailure(impl.plugin_name, f"{hook_name} failed: {_describe(error)}"))
                continue
            if result is not None:
                self.failures.append(PluginFailure(impl.plugin_name, _ignored_result(hook_name, result)))


def _command_tables(group: Any) -> list[tuple[Any, dict[str, Any]]]:
    """Each click group in ``group`` (itself included) with a copy of its commands."""
    tables = [(group, dict(group.commands))]
    for command in group.commands.values():
        if hasattr(command, "commands"):
            tables += _command_tables(command)
    return tables


def hook_impls(manager: pluggy.PluginManager, hook_name: str) -> list[Any]:
    """The implementations of a hook in the order their plugins were registered (built-ins first),
    whatever their ``tryfirst``/``trylast`` marks: a plugin never registers before the built-ins.
    Wrappers are left out (``load_components`` reports them): each implementation is called on its own."""
    order = {name: index for index, (name, _) in enumerate(manager.list_name_plugin())}
    impls = [i for i in getattr(manager.hook, hook_name).get_hookimpls() if not (i.wrapper or i.hookwrapper)]
    return sorted(impls, key=lambda impl: order[impl.plugin_name])


def normalize_kind(kind: str) -> str:
    """Accept 'generators', 'data-format', ... as well as the canonical singular names."""
    if not isinstance(kind, str):
        raise OptionError(f"a component kind must be a string such as 'generator', not {kind!r}.")
    key = kind.strip().lower().replace("-", "_")
    for candidate in (key, key[:-1] if key.endswith("s") else key):
        if candidate in KINDS:
            return candidate
    raise UnknownNameError("component kind", kind, sorted(k.replace("_", "-") for k in KINDS))


def autoload_enabled() -> bool:
    return os.environ.get(AUTOLOAD_ENV, "").strip().lower() in ("", "0", "false", "no")


def environment_plugins() -> list[str]:
    """The module names ``GANTK_PLUGINS`` lists, separated by commas: plugins to try before installing them."""
    return [name.strip() for name in os.environ.get(PLUGINS_ENV, "").split(",") if name.strip()]


def load_components(*, autoload: bool | None = None, plugins: Iterable[Any] | Mapping[str, Any] = ()) -> Components:
    """Build a fresh plugin manager and registries.

    Args:
        autoload: load plugins from the ``gantk`` entry-point group, and the modules ``GANTK_PLUGINS`` names;
            defaults to on unless ``GANTK_DISABLE_PLUGIN_AUTOLOAD`` is set.
        plugins: extra plugin objects or module names, registered after the built-ins; a mapping registers each
            under its key, as the plugin a run recorded (one moved from a script into a module since, say).

    A plugin that fails is recorded in ``failures`` and adds nothing of the hook that failed; one of ``plugins``
    is also warned of (``GantkWarning``).
    """
    if isinstance(plugins, (str, types.ModuleType)) or not isinstance(plugins, Iterable):
        raise OptionError(f"plugins must be a list of plugins (modules, module names or objects), got {described(plugins)}; "
                          "put a single plugin in a list: plugins=[...].")
    manager = pluggy.PluginManager("gantk")
    manager.add_hookspecs(hookspecs)
    failures: list[PluginFailure] = []
    for name in BUILTIN_PLUGINS:
        manager.register(importlib.import_module(name), name=name)
    autoload = autoload_enabled() if autoload is None else autoload
    distributions = _load_entry_points(manager, failures) if autoload else {}
    named = list(plugins.items()) if isinstance(plugins, Mapping) else [(None, plugin) for plugin in plugins]
    for name, plugin in ((None, plugin) for plugin in (environment_plugins() if autoload else [])):
        _register(manager, plugin, failures, name)
    given = {_register(manager, plugin, failures, name) for name, plugin in named}
    failures.extend(_hooks_never_run(manager))

    components = Components(manager, {}, failures, distributions)
    products = _products()
    for kind, hook_name in KINDS.items():
        registry = Registry(kind, builds=products.get(kind))
        components.registries[kind] = registry
        added = []
        for impl in hook_impls(manager, hook_name):
            scoped = registry.scoped(impl.plugin_name)
            try:
                result = impl.function(scoped)
            except Exception as error:  # reported by name, adds nothing; the other plugins keep working
                scoped.rollback()
                scoped.close()
                failures.append(PluginFailure(impl.plugin_name, f"{hook_name} failed: {_describe(error)}"))
                continue
            added.append(scoped)
            if result is not None:
                failures.append(PluginFailure(impl.plugin_name, _ignored_result(hook_name, result)))
        for scoped in added:  # after every plain add, so an override wins whatever order plugins load in
            failures.extend(PluginFailure(scoped.plugin, clash) for clash in scoped.apply_overrides())
            scoped.close()
    unloaded = _unloaded_plugins_note(autoload)
    for registry in components.registries.values():
        registry.failed_plugins = sorted({failure.plugin for failure in failures})
        registry.plugins_note = unloaded
    for failure in (failure for failure in failures if failure.plugin in given):
        warnings.warn(f"plugin '{failure.plugin}' given to load_components: {failure.error} (components.failures lists it)",
                      GantkWarning, stacklevel=caller_stacklevel())
    return components


def _unloaded_plugins_note(autoload: bool) -> str:
    """What an unknown name's message says when GANTK_DISABLE_PLUGIN_AUTOLOAD kept installed plugins, or the modules
    GANTK_PLUGINS names, from loading; "" otherwise."""
    if autoload or autoload_enabled():
        return ""
    unloaded = [what for what, present in (("Installed plugins", importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)),
                                           (f"the modules {PLUGINS_ENV} names", environment_plugins())) if present]
    if not unloaded:
        return ""
    what = " and ".join(unloaded)
    return f"{what[0].upper()}{what[1:]} are not loaded: {AUTOLOAD_ENV} is set; unset it to load them."


def _products() -> dict[str, tuple[type, str]]:
    """Per kind, the type its factories must build and how messages name it (``ObjectiveSet`` checks
    objectives). Imported here: these modules import the plugin layer."""
    from torch import nn

    from .data.formats import DataFormat
    from .recipes.base import Recipe

    module = (nn.Module, "torch.nn.Module")
    return {"generator": module, "discriminator": module, "data_format": (DataFormat, "gantk.data.DataFormat"),
            "recipe": (Recipe, "gantk.recipes.Recipe")}


def _ignored_result(hook_name: str, result: Any) -> str:
    """The failure of a hook implementation that returned something: pluggy's results are not read."""
    if hook_name in KINDS.values():
        how = "register components with registry.add(...)"
    else:
        how = "add commands with cli.add_command(...)"
    return f"{hook_name} returned a {type(result).__name__}, which gantk ignores; {how} instead."


def _register(manager: pluggy.PluginManager, plugin: Any, failures: list[PluginFailure], given_name: str | None = None) -> str:
    """Register ``plugin`` under ``given_name`` (default its own), or record why it cannot be; returns the name it
    goes by, in ``failures`` too."""
    name = plugin_name(plugin) if given_name is None else given_name
    if given_name is not None and (problem := _unnamable(manager, plugin, given_name)):
        failures.append(PluginFailure(given_name, problem))
        return given_name
    if not isinstance(plugin, str) and manager.get_plugin(name) not in (None, plugin):  # another object of one class
        name += f"#{sum(1 for other, _ in manager.list_name_plugin() if other.split('#')[0] == name) + 1}"
    if isinstance(plugin, type) and any(inspect.isfunction(inspect.getattr_static(plugin, hook, None)) for hook in dir(plugin)
                                        if manager.parse_hookimpl_opts(plugin, hook) is not None):
        failures.append(PluginFailure(name, f"is a class whose hooks take self; pass an instance ({plugin.__name__}()) or a module."))
        return name
    try:
        obj = importlib.import_module(plugin) if isinstance(plugin, str) else plugin
        if manager.is_registered(obj):  # already loaded, e.g. through its entry point
            return manager.get_name(obj)
        _register_checked(manager, obj, name)
    except Exception as error:
        failures.append(PluginFailure(name, f"could not be loaded: {_describe(error)}"))
    return name


def _unnamable(manager: pluggy.PluginManager, plugin: Any, name: str) -> str | None:
    """Why ``plugin`` cannot be loaded under ``name`` (a key of ``load_components``' mapping); ``None`` where it can."""
    if not name:
        return "a plugin's name must not be empty."
    if manager.get_plugin(name) is not None:
        return "its name is that of a plugin loaded already; give this one another name."
    obj = sys.modules.get(plugin) if isinstance(plugin, str) else plugin  # a module not imported yet is not loaded
    if obj is not None and (loaded := manager.get_name(obj)) is not None:
        return (f"it is loaded already as '{loaded}' (an entry point, or GANTK_PLUGINS): pass autoload=False to load it "
                "under this name.")
    return None


def _register_checked(manager: pluggy.PluginManager, plugin: Any, name: str) -> None:
    """Register ``plugin``, refusing it whole if a hook cannot be called with the hook's one argument, positionally,
    as gantk calls it (pluggy checks the names of the parameters, not that a hook takes them at all)."""
    manager.register(plugin, name=name)
    problems = []
    for caller in manager.get_hookcallers(plugin) or ():
        wanted = list(caller.spec.argnames) if caller.spec else None
        for impl in (impl for impl in caller.get_hookimpls() if impl.plugin is plugin and wanted):
            signature = inspect.signature(impl.function)
            try:
                signature.bind(*wanted)
            except TypeError:
                problems.append(f"its hook {caller.name}{signature} must take one positional parameter, {wanted[0]}: "
                                f"define it as def {caller.name}({wanted[0]})")
    if problems:
        manager.unregister(plugin)
        raise GantkError("; ".join(problems) + ".")


def _load_entry_points(manager: pluggy.PluginManager, failures: list[PluginFailure]) -> dict[str, str]:
    """Register the entry points' plugins; returns each loaded one's distribution and version, where known."""
    # By name, then distribution: which of two plugins of one name loads does not depend on the file system.
    kept: dict[str, str] = {}  # entry-point name -> distribution whose plugin has it
    versions: dict[str, str] = {}
    points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    for entry_point in sorted(points, key=lambda point: (point.name, _distribution(point))):
        dist = _distribution(entry_point) or "an unnamed distribution"
        if manager.get_plugin(entry_point.name) is not None:
            holder = kept.get(entry_point.name)
            owner = f"that of {holder}, kept as the first by distribution name" if holder else "a built-in"
            failures.append(PluginFailure(
                entry_point.name,
                f"the entry point of {dist} ({getattr(entry_point, 'value', '?')}) is ignored: another plugin already "
                f"has this name ({owner}); rename the entry point in one pyproject.toml.",
            ))
            continue
        try:
            _register_checked(manager, entry_point.load(), entry_point.name)
        except Exception as error:
            failures.append(PluginFailure(entry_point.name, f"could not be loaded: {_describe(error)}"))
            continue
        kept[entry_point.name] = dist
        if version := getattr(getattr(entry_point, "dist", None), "version", None):
            versions[entry_point.name] = f"{dist} {version}"
    return versions


def _distribution(entry_point: Any) -> str:
    """The name of the distribution that declares ``entry_point`` ("" if unknown)."""
    return getattr(getattr(entry_point, "dist", None), "name", None) or ""


def _hooks_never_run(manager: pluggy.PluginManager) -> list[PluginFailure]:
    """Plugins that implement no hook, and functions meant as hooks that would never run: unknown hook
    names (a function's own or its ``specname``), functions named like hooks without ``@hookimpl``, and wrappers."""
    hooks = [name for name in dir(hookspecs) if name.startswith("gantk_")]
    failures = []
    for name, plugin in manager.list_name_plugin():
        found = len(failures)
        for attr in dir(plugin):
            if not callable(getattr(plugin, attr, None)):
                continue
            opts = manager.parse_hookimpl_opts(plugin, attr)
            if opts is None and not attr.startswith("gantk_"):
                continue
            hook = (opts or {}).get("specname") or attr
            if hook not in hooks:
                close = difflib.get_close_matches(hook, hooks, n=1)
                hint = f"did you mean '{close[0]}'?" if close else f"the hooks are: {', '.join(hooks)}."
                failures.append(PluginFailure(name, f"'{hook}' is not a gantk hook; {hint}"))
            elif opts is None:
                failures.append(PluginFailure(name, f"'{attr}' is not decorated with @gantk.hookimpl, so it is never called."))
            elif opts.get("wrapper") or opts.get("hookwrapper"):
                failures.append(PluginFailure(
                    name,
                    f"'{attr}' is a hook wrapper, which gantk never runs (it calls each implementation on its own); "
                    "drop wrapper=True/hookwrapper=True from its @gantk.hookimpl.",
                ))
        if len(failures) == found and not manager.get_hookcallers(plugin):
            failures.append(PluginFailure(
                name,
                f"{plugin!r} implements no gantk hook, so it adds nothing; a plugin is a module or an object with "
                "functions decorated with @gantk.hookimpl (an entry point names the module, not a function).",
            ))
    return failures


def _describe(error: Exception) -> str:
    """The error on one line (pluggy's validation errors span several), with where a plugin's own code raised it."""
    text = str(error) if isinstance(error, GantkError) else f"{type(error).__name__}: {error}"
    if isinstance(error, pluggy.PluginValidationError):
        text = text.rstrip(". ") + ". A hook's parameters are named as in gantk.hookspecs: registry (or cli for gantk_register_commands)."
    elif not isinstance(error, GantkError) and (where := _raised_in_plugin_code(error)):
        text = f"{text} (raised at {where})"
    return " ".join(text.split())


def _raised_in_plugin_code(error: Exception) -> str | None:
    """``file:line`` of the innermost frame of ``error``'s traceback in a file outside gantk, pluggy and the
    standard library (importlib's loading), if any."""
    own = (Path(__file__).parent, Path(pluggy.__file__).parent, Path(sysconfig.get_paths()["stdlib"]))
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if not frame.filename.startswith("<")
              and not any(Path(frame.filename).is_relative_to(folder) for folder in own)]
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else None


@functools.lru_cache(maxsize=1)
def default_components() -> Components:
    """The process-wide components, loaded once; ``default_components.cache_clear()`` reloads."""
    return load_components()
