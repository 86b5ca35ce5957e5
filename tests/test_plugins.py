import importlib.metadata
import sys
import types
import warnings

import pytest
import torch

import gantk
from gantk import hookimpl
from gantk.errors import OptionError
from gantk.plugins import BUILTIN_PLUGINS, KINDS, load_components
from gantk.registry import Registry

# the failures of the plugins these tests give are checked in components.failures (the warning: in one test)
pytestmark = pytest.mark.filterwarnings("ignore:plugin .* given to load_components")


def make_plugin(name, **hooks):
    module = types.ModuleType(name)
    for hook_name, function in hooks.items():
        setattr(module, hook_name, hookimpl(function))
    return module


def test_builtins_register_every_kind_through_hooks():
    components = load_components(autoload=False)
    assert not components.failures
    for kind in ("generator", "discriminator", "objective", "data_format", "recipe"):
        registry = components.registry(kind)
        assert len(registry) > 0, kind
        assert {registry.get(n).plugin for n in registry.names()} <= set(BUILTIN_PLUGINS)
    assert {"unet", "encoder-decoder", "resnet9", "smp"} <= set(components.registry("generator").names())
    assert {"pixel", "patch16", "patch70", "patch286", "image"} <= set(components.registry("discriminator").names())
    assert {"bce", "lsgan", "hinge", "l1", "l2", "lovasz", "cycle", "identity"} <= set(components.registry("objective").names())
    assert {"pix2pix", "seg", "cyclegan"} <= set(components.registry("recipe").names())


def test_extra_plugin_adds_a_component():
    def factory(in_channels=3, out_channels=3):
        """Identity generator."""
        import torch

        return torch.nn.Identity()

    plugin = make_plugin("my_gen_plugin", gantk_register_generators=lambda registry: registry.add("ident", factory))
    components = load_components(autoload=False, plugins=[plugin])
    assert components.registry("generator").get("ident").plugin == "my_gen_plugin"
    assert components.create("generator", "ident") is not None


def test_broken_plugin_is_isolated_and_named():
    def broken(registry):
        raise RuntimeError("boom")

    plugin = make_plugin("broken_plugin", gantk_register_objectives=broken)
    with pytest.warns(gantk.GantkWarning) as warned:  # plugins given by name are warned of, not only recorded
        components = load_components(autoload=False, plugins=[plugin, "no_such_module_for_gantk"])
    assert [str(w.message) for w in warned] == [
        f"plugin '{f.plugin}' given to load_components: {f.error} (components.failures lists it)" for f in components.failures]
    assert [w.filename for w in warned] == [__file__] * 2
    messages = [str(f) for f in components.failures]
    line = broken.__code__.co_firstlineno + 1
    assert f"plugin 'broken_plugin': gantk_register_objectives failed: RuntimeError: boom (raised at {__file__}:{line})" in messages
    assert "plugin 'no_such_module_for_gantk': could not be loaded: ModuleNotFoundError: No module named 'no_such_module_for_gantk'" in messages
    assert "l1" in components.registry("objective")


def test_clashing_name_is_reported_and_override_replaces():
    clash = make_plugin("clash", gantk_register_objectives=lambda registry: registry.add("l1", lambda: None))
    components = load_components(autoload=False, plugins=[clash])
    assert any("clash" in str(f) and "'l1' is already registered" in str(f) for f in components.failures)
    assert components.registry("objective").get("l1").plugin == "gantk.objectives"

    override = make_plugin("override", gantk_register_objectives=lambda registry: registry.add("l1", lambda: "mine", override=True))
    components = load_components(autoload=False, plugins=[override])
    assert components.registry("objective").get("l1").plugin == "override"


class FakeEntryPoint:
    def __init__(self, name, target, dist=None):
        self.name, self.target, self.value = name, target, f"{name.replace('-', '_')}:plugin"
        self.dist = types.SimpleNamespace(name=dist) if dist else None

    def load(self):
        if isinstance(self.target, Exception):
            raise self.target
        return self.target


@pytest.fixture
def fake_entry_points(monkeypatch):
    plugin = make_plugin(
        "ep_plugin", gantk_register_discriminators=lambda registry: registry.add("ep-disc", lambda in_channels=6: None)
    )
    points = [FakeEntryPoint("ep_plugin", plugin), FakeEntryPoint("ep_broken", ImportError("missing dependency xyz"))]

    def entry_points(group=None):
        return points if group == "gantk" else []

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    return points


def test_entry_points_load_and_failures_are_isolated(fake_entry_points, monkeypatch):
    monkeypatch.delenv("GANTK_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    components = load_components()
    assert components.registry("discriminator").get("ep-disc").plugin == "ep_plugin"
    assert any("ep_broken" in str(f) and "missing dependency xyz" in str(f) for f in components.failures)
    assert "patch70" in components.registry("discriminator")


def test_disable_autoload_env(fake_entry_points, monkeypatch):
    monkeypatch.setenv("GANTK_DISABLE_PLUGIN_AUTOLOAD", "1")
    components = load_components()
    assert "ep-disc" not in components.registry("discriminator")
    assert not components.failures
    for value in ("0", "false", "No", ""):  # values that leave autoload on
        monkeypatch.setenv("GANTK_DISABLE_PLUGIN_AUTOLOAD", value)
        assert "ep-disc" in load_components().registry("discriminator"), value


def test_gantk_plugins_loads_modules_not_installed_beside_the_installed_ones(tmp_path, monkeypatch):
    import os
    import subprocess
    import sys

    (tmp_path / "tried_plugin.py").write_text(
        "import gantk\nfrom torch import nn\n\n\n@gantk.hookimpl\ndef gantk_register_discriminators(registry):\n"
        "    registry.add('tried', lambda in_channels=6: nn.Conv2d(in_channels, 1, 1))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("GANTK_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.setenv("GANTK_PLUGINS", "tried_plugin, absent_plugin")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not given to load_components: the command line prints its failures
        components = load_components()
    assert components.registry("discriminator").get("tried").plugin == "tried_plugin"
    assert [failure.plugin for failure in components.failures] == ["absent_plugin"]
    assert "could not be loaded: ModuleNotFoundError" in str(components.failures[0])
    assert "tried" not in load_components(autoload=False).registry("discriminator")  # as installed plugins are not
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
           "GANTK_PLUGINS": "tried_plugin"}
    listed = subprocess.run([sys.executable, "-m", "gantk", "list", "discriminators"], capture_output=True, text=True, env=env,
                            timeout=120)
    assert listed.returncode == 0 and "tried" in listed.stdout.split() and "tried_plugin" in listed.stdout, listed.stdout


def test_an_unknown_name_says_when_the_environment_kept_installed_plugins_from_loading(fake_entry_points, monkeypatch):
    monkeypatch.setenv("GANTK_DISABLE_PLUGIN_AUTOLOAD", "1")
    for name in ("ep-disc", "ep-dis"):  # a close built-in name or none
        with pytest.raises(gantk.errors.UnknownNameError, match=r"Installed plugins are not loaded: "
                                                                r"GANTK_DISABLE_PLUGIN_AUTOLOAD is set; unset it to load them\.$"):
            load_components().create("discriminator", name)
    monkeypatch.setenv("GANTK_PLUGINS", "tried_plugin")  # named to try, and left out with the installed ones
    with pytest.raises(gantk.errors.UnknownNameError, match=r"Installed plugins and the modules GANTK_PLUGINS names are "
                                                            r"not loaded: GANTK_DISABLE_PLUGIN_AUTOLOAD is set; unset it"):
        load_components().create("discriminator", "tried")
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group=None: [])
    with pytest.raises(gantk.errors.UnknownNameError, match=r"'tried'\..*The modules GANTK_PLUGINS names are not loaded: "):
        load_components().create("discriminator", "tried")
    monkeypatch.delenv("GANTK_PLUGINS")
    monkeypatch.delenv("GANTK_DISABLE_PLUGIN_AUTOLOAD")
    for components in (load_components(), load_components(autoload=False)):  # loaded, or left out on purpose
        with pytest.raises(gantk.errors.UnknownNameError) as error:
            components.create("discriminator", "dilated")
        assert "not loaded" not in str(error.value)


def test_entry_points_load_in_name_order(monkeypatch):
    def claiming(name):
        return make_plugin(name, gantk_register_objectives=lambda registry: registry.add("shared-name", lambda: None))

    points = [FakeEntryPoint("zeta", claiming("zeta")), FakeEntryPoint("alpha", claiming("alpha"))]
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group=None: points if group == "gantk" else [])
    monkeypatch.delenv("GANTK_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    components = load_components()
    assert components.registry("objective").get("shared-name").plugin == "alpha"
    assert [f.plugin for f in components.failures] == ["zeta"]


def test_public_api(monkeypatch):
    monkeypatch.setenv("GANTK_DISABLE_PLUGIN_AUTOLOAD", "1")
    gantk.default_components.cache_clear()
    try:
        assert gantk.list_components("discriminator", "patch*") == ["patch", "patch16", "patch286", "patch70"]
        net = gantk.create("discriminator", "patch70", in_channels=4, ndf=8)
        assert net.receptive_field == 70
        with pytest.raises(gantk.GantkError, match="Known component kinds"):
            gantk.list_components("widget")
        assert gantk.GantkWarning is gantk.errors.GantkWarning  # to filter gantk's warnings
        # options are named as create takes them, not as gantk train's flags
        with pytest.raises(gantk.errors.OptionError, match=r"^generator 'unet' has no option 'depth'; its options \(set with "
                                                           r"create's keyword arguments\) are: in_channels, "):
            gantk.create("generators", "unet", depth=3)
        with pytest.raises(gantk.errors.OptionError, match=r"option ngf must be an integer \(default 64\), got 'x'\. Its "
                                                           r"options are set with create's keyword arguments\.$"):
            gantk.create("generator", "unet", ngf="x")
    finally:
        gantk.default_components.cache_clear()


def test_every_kind_has_a_hook():
    from gantk import hookspecs

    for hook in KINDS.values():
        assert hasattr(hookspecs, hook)


def test_hooks_pluggy_would_skip_are_reported():
    plugin = types.ModuleType("typo_plugin")
    plugin.gantk_register_generator = hookimpl(lambda registry: None)  # singular: not a hook
    plugin.gantk_register_objectives = lambda registry: None  # no @hookimpl
    messages = [str(f) for f in load_components(autoload=False, plugins=[plugin]).failures]
    assert any("'gantk_register_generator' is not a gantk hook; did you mean 'gantk_register_generators'" in m for m in messages)
    assert any("'gantk_register_objectives' is not decorated with @gantk.hookimpl" in m for m in messages)
    assert all(m.startswith("plugin 'typo_plugin'") for m in messages) and len(messages) == 2


def test_a_plugin_without_hooks_is_reported(fake_entry_points, monkeypatch):
    monkeypatch.delenv("GANTK_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    fake_entry_points.append(FakeEntryPoint("function_plugin", lambda registry: None))  # names a function, not its module
    messages = [str(f) for f in load_components(plugins=[types.ModuleType("empty_plugin")]).failures]
    assert sorted(m.split(":")[0] for m in messages if "implements no gantk hook, so it adds nothing" in m) == [
        "plugin 'empty_plugin'", "plugin 'function_plugin'"]


def test_a_class_of_static_hooks_is_a_plugin():
    class Namespace:
        @staticmethod
        @hookimpl
        def gantk_register_generators(registry):
            registry.add("static", torch.nn.Identity)

    components = load_components(autoload=False, plugins=[Namespace])
    assert not components.failures and "static" in components.registry("generator")


def test_a_plugin_class_or_a_misnamed_hook_parameter_is_reported_with_the_fix():
    class ClassPlugin:
        @hookimpl
        def gantk_register_generators(self, registry):
            registry.add("never", torch.nn.Identity)

    misnamed = make_plugin("misnamed", gantk_register_generators=lambda reg: None)
    components = load_components(autoload=False, plugins=[ClassPlugin, misnamed])
    messages = [str(f) for f in components.failures]
    assert any(m.endswith("ClassPlugin': is a class whose hooks take self; pass an instance (ClassPlugin()) or a module.") for m in messages)
    assert any(m.startswith("plugin 'misnamed': could not be loaded: PluginValidationError") and "{'reg'}" in m
               and m.endswith("can not be found in the hookspec. A hook's parameters are named as in gantk.hookspecs: registry "
                              "(or cli for gantk_register_commands).") for m in messages)
    assert "never" not in components.registry("generator")


@pytest.mark.parametrize("given", ["my_recipe", make_plugin("lone"), 3])
def test_plugins_must_be_a_list(given):
    with pytest.raises(OptionError, match=r"plugins must be a list of plugins .*put a single plugin in a list: plugins=\[\.\.\.\]"):
        load_components(autoload=False, plugins=given)


def test_plugins_given_as_a_mapping_load_under_their_keys():
    def register(registry):
        registry.add("keyed", torch.nn.Identity)

    components = load_components(autoload=False, plugins={"train.MyPlugin": make_plugin("mymodels", gantk_register_generators=register),
                                                            "gantk.generators": make_plugin("clash"), "": make_plugin("unnamed")})
    assert components.registry("generator").get("keyed").plugin == "train.MyPlugin"
    assert [str(failure) for failure in components.failures] == [
        "plugin 'gantk.generators': its name is that of a plugin loaded already; give this one another name.",
        "plugin '': a plugin's name must not be empty."]


def test_a_module_named_in_a_mapping_that_cannot_be_imported_is_a_failure_of_its_key():
    components = load_components(autoload=False, plugins={"train.MyPlugin": "no_such_module_for_gantk"})
    assert [failure.plugin for failure in components.failures] == ["train.MyPlugin"]
    assert "could not be loaded: ModuleNotFoundError" in str(components.failures[0])


def test_a_plugin_loaded_already_is_not_loaded_again_under_a_name(monkeypatch):
    def register(registry):
        registry.add("keyed", torch.nn.Identity)

    module = make_plugin("mymods", gantk_register_generators=register)
    monkeypatch.setitem(sys.modules, "mymods", module)
    monkeypatch.setenv("GANTK_PLUGINS", "mymods")
    components = load_components(autoload=True, plugins={"train.MyPlugin": "mymods"})
    assert components.registry("generator").get("keyed").plugin == "mymods"
    assert [str(failure) for failure in components.failures if failure.plugin == "train.MyPlugin"] == [
        "plugin 'train.MyPlugin': it is loaded already as 'mymods' (an entry point, or GANTK_PLUGINS): pass autoload=False to "
        "load it under this name."]
    renamed = load_components(autoload=False, plugins={"train.MyPlugin": module})
    assert renamed.registry("generator").get("keyed").plugin == "train.MyPlugin" and not renamed.failures


def test_a_hook_that_does_not_take_its_argument_refuses_the_plugin_whole():
    def keyword_only(*, registry):
        registry.add("kwgen", torch.nn.Identity)

    def extra_default(registry, width=8):
        registry.add("widegen", torch.nn.Identity)

    def defaulted(registry=None):
        registry.add("defaultedobj", lambda: None)

    broken = make_plugin("broken_sig", gantk_register_generators=keyword_only, gantk_register_objectives=lambda: None)
    fine = make_plugin("fine_sig", gantk_register_generators=extra_default, gantk_register_discriminators=lambda *args: None,
                       gantk_register_objectives=defaulted)
    components = load_components(autoload=False, plugins=[broken, fine])
    assert [str(f) for f in components.failures] == [
        "plugin 'broken_sig': could not be loaded: its hook gantk_register_generators(*, registry) must take one positional "
        "parameter, registry: define it as def gantk_register_generators(registry); its hook gantk_register_objectives() "
        "must take one positional parameter, registry: define it as def gantk_register_objectives(registry)."
    ]
    assert "kwgen" not in components.registry("generator") and "widegen" in components.registry("generator")
    assert not components.manager.has_plugin("broken_sig")


def test_an_entry_point_whose_name_is_taken_is_reported(fake_entry_points, monkeypatch):
    monkeypatch.delenv("GANTK_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    fake_entry_points.append(FakeEntryPoint("ep_plugin", make_plugin("shadow")))
    messages = [str(f) for f in load_components().failures]
    assert any(m.startswith("plugin 'ep_plugin'") and "is ignored: another plugin already has this name" in m for m in messages)


def test_a_plugin_command_cannot_replace_an_existing_one():
    import click

    from gantk.cli import GantkGroup

    group = GantkGroup()
    original = click.Command("train")
    group.add_command(original)
    fake_train, extra = click.Command("train"), click.Command("extra")

    def register(cli):
        cli.add_command(extra)
        cli.add_command(fake_train)

    components = load_components(autoload=False, plugins=[make_plugin("hijack", gantk_register_commands=register)])
    components.call_hook("gantk_register_commands", cli=group)
    assert group.commands["train"] is original and "extra" not in group.commands  # the failing hook adds nothing
    assert any("hijack" in str(f) and "command 'train' already exists" in str(f) for f in components.failures)
    components.call_hook("gantk_register_commands", cli=group)  # again: it fails again, the same way
    assert len(components.failures) == 2 and "extra" not in group.commands


def test_a_failing_commands_hook_leaves_no_subcommand_either():
    import click

    from gantk.cli import GantkGroup

    group, data = GantkGroup(), GantkGroup("data")
    group.add_command(data)

    def register(cli):
        cli.commands["data"].add_command(click.Command("extra-check"))
        raise RuntimeError("broken after adding")

    components = load_components(autoload=False, plugins=[make_plugin("half", gantk_register_commands=register)])
    components.call_hook("gantk_register_commands", cli=group)
    assert "extra-check" not in data.commands and any("broken after adding" in str(f) for f in components.failures)


def test_a_trylast_or_tryfirst_plugin_registers_after_the_builtins():
    def register(registry):
        registry.add("l1", lambda: "mine", override=True)

    for mark in ({"trylast": True}, {"tryfirst": True}):
        plugin = types.ModuleType("marked")
        plugin.gantk_register_objectives = hookimpl(**mark)(register)
        components = load_components(autoload=False, plugins=[plugin])
        assert not components.failures, mark
        assert components.create("objective", "l1") == "mine" and "bce" in components.registry("objective"), mark
        plugin.gantk_register_objectives = hookimpl(**mark)(lambda registry: registry.add("l1", lambda: "mine"))
        components = load_components(autoload=False, plugins=[plugin])  # without override: the plugin's hook fails
        assert [failure.plugin for failure in components.failures] == ["marked"], mark
        assert components.create("objective", "l1") != "mine" and "bce" in components.registry("objective"), mark


def test_a_plugin_passed_again_is_loaded_once_without_a_failure():
    plugin = make_plugin("once", gantk_register_objectives=lambda registry: registry.add("once-loss", lambda: None))
    components = load_components(autoload=False, plugins=[plugin, plugin])
    assert not components.failures and "once-loss" in components.registry("objective")


def test_a_plugin_whose_hook_fails_adds_nothing_of_that_kind():
    def register(registry):
        registry.add("mine-a", lambda: None)
        registry.add("bce", lambda: "replaced", override=True)
        registry.add("bce", lambda: "replaced again", override=True)  # never applied: the hook fails
        registry.add("l1", lambda: None)  # clashes: the hook fails here
        registry.add("mine-b", lambda: None)

    components = load_components(autoload=False, plugins=[make_plugin("partial", gantk_register_objectives=register)])
    objectives = components.registry("objective")
    assert "mine-a" not in objectives and "mine-b" not in objectives
    assert objectives.get("bce").plugin == "gantk.objectives"
    assert [str(f) for f in components.failures] == [
        "plugin 'partial': gantk_register_objectives failed: objective 'l1' is already registered by plugin "
        "'gantk.objectives'; plugin 'partial' must pass override=True to replace it, or pick another name."
    ]


def use_entry_points(monkeypatch, points):
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group=None: points if group == "gantk" else [])
    monkeypatch.delenv("GANTK_DISABLE_PLUGIN_AUTOLOAD", raising=False)


def test_an_entry_point_plugin_is_credited_to_the_distribution_that_declares_it(monkeypatch):
    from gantk.objectives.pixel import PixelL1Loss
    from gantk.train.checkpoint import part_plugins

    class Aliases:  # an object whose class lives in a module no distribution holds
        @hookimpl
        def gantk_register_objectives(self, registry):
            registry.add("l1-alias", PixelL1Loss)

    point = FakeEntryPoint("gantk-alias", Aliases())
    point.dist = types.SimpleNamespace(name="gantk-alias", version="0.3.0")
    use_entry_points(monkeypatch, [point])
    components = load_components()
    assert components.package("gantk-alias") == "gantk-alias 0.3.0"
    used = part_plugins({"recipe": "pix2pix", "gen": "unet", "disc": "patch70", "loss": "bce+l1-alias"}, components)
    assert used["objective"]["l1-alias"]["package"] == "gantk-alias 0.3.0"


def test_a_hook_that_returns_something_is_reported():
    import click

    def total_variation():
        """Total variation."""

    plugin = make_plugin(
        "returning",
        gantk_register_objectives=lambda registry: {"tv": total_variation},
        gantk_register_commands=lambda cli: [cli],
    )
    components = load_components(autoload=False, plugins=[plugin])
    components.call_hook("gantk_register_commands", cli=click.Group())
    assert "tv" not in components.registry("objective")
    assert [str(f) for f in components.failures] == [
        "plugin 'returning': gantk_register_objectives returned a dict, which gantk ignores; register components "
        "with registry.add(...) instead.",
        "plugin 'returning': gantk_register_commands returned a list, which gantk ignores; add commands with "
        "cli.add_command(...) instead.",
    ]


def test_a_registry_kept_past_its_hook_takes_no_more_parts():
    kept = []

    def register(registry):
        kept.append(registry)
        registry.add("early", torch.nn.Identity)

    components = load_components(autoload=False, plugins=[make_plugin("keeper", gantk_register_generators=register)])
    for override in (False, True):
        with pytest.raises(gantk.GantkError, match="plugin 'keeper' added generator 'unet' after its hook returned; a plugin "
                                                   "registers its parts inside its gantk_register_\\* hooks only."):
            kept[0].add("unet", torch.nn.Identity, override=override)
    registry = components.registry("generator")
    assert "early" in registry and registry.get("unet").plugin != "keeper"


def test_hook_wrappers_are_refused():
    def wrapping(registry):
        registry.add("wrapped", lambda: None)
        yield

    plugin = types.ModuleType("wrapping")
    plugin.gantk_register_objectives = hookimpl(wrapper=True)(wrapping)
    plugin.gantk_register_recipes = hookimpl(hookwrapper=True)(wrapping)
    components = load_components(autoload=False, plugins=[plugin])
    assert "wrapped" not in components.registry("objective") and "wrapped" not in components.registry("recipe")
    assert sorted(str(f) for f in components.failures) == [
        f"plugin 'wrapping': '{hook}' is a hook wrapper, which gantk never runs (it calls each implementation on its "
        "own); drop wrapper=True/hookwrapper=True from its @gantk.hookimpl."
        for hook in ("gantk_register_objectives", "gantk_register_recipes")
    ]


@pytest.mark.parametrize("overriding", ["bad-override", "zz-override"])  # loads before, then after gantk-tv
def test_an_override_wins_whatever_order_plugins_load_in(monkeypatch, overriding):
    def tv():
        """Total variation."""

    def replacement():
        """Another total variation."""

    override = make_plugin(overriding, gantk_register_objectives=lambda registry: registry.add("tv", replacement, override=True))
    plain = make_plugin("gantk-tv", gantk_register_objectives=lambda registry: registry.add("tv", tv))
    use_entry_points(monkeypatch, [FakeEntryPoint(overriding, override), FakeEntryPoint("gantk-tv", plain)])
    components = load_components()
    assert not components.failures, [str(f) for f in components.failures]
    assert components.registry("objective").get("tv").plugin == overriding
    for extra in ([override, plain], [plain, override]):
        components = load_components(autoload=False, plugins=extra)
        assert not components.failures and components.registry("objective").get("tv").factory is replacement


def test_two_plugins_overriding_one_name_are_reported():
    def unet_a():
        """One replacement."""

    def unet_b():
        """Another."""

    first = make_plugin("first", gantk_register_generators=lambda registry: registry.add("unet", unet_a, override=True))
    second = make_plugin("second", gantk_register_generators=lambda registry: registry.add("unet", unet_b, override=True))
    components = load_components(autoload=False, plugins=[first, second])
    assert components.registry("generator").get("unet").factory is unet_b
    assert [str(f) for f in components.failures] == [
        "plugin 'second': generator 'unet' is overridden by plugin 'first' too; this plugin's, loaded later, is kept: "
        "uninstall one of them to choose."
    ]


def test_an_override_of_a_name_close_to_a_loaded_one_is_reported():
    def unet():
        """A replacement, misspelt."""

    misspelt = make_plugin("misspelt", gantk_register_generators=lambda registry: registry.add("unte", unet, override=True))
    components = load_components(autoload=False, plugins=[misspelt])
    assert components.registry("generator").get("unet").plugin == "gantk.generators"
    assert [str(f) for f in components.failures] == [
        "plugin 'misspelt': overrides generator 'unte', which no loaded plugin provides. Did you mean 'unet'? It is added "
        "as a new name."
    ]
    # A part of a plugin that is not loaded (an add-on tested alone, say) is overridden without a word.
    add_on = make_plugin("add-on", gantk_register_generators=lambda registry: registry.add("hourglass", unet, override=True))
    assert not load_components(autoload=False, plugins=[add_on]).failures


@pytest.mark.parametrize("discovered", [["gantk-tv", "zz-fork"], ["zz-fork", "gantk-tv"]])
def test_of_two_distributions_with_one_entry_point_name_the_first_by_name_loads(monkeypatch, discovered):
    plugins = {
        dist: make_plugin(dist, gantk_register_objectives=lambda registry, dist=dist: registry.add("tv", lambda: dist))
        for dist in discovered
    }
    use_entry_points(monkeypatch, [FakeEntryPoint("tv-plugin", plugins[dist], dist=dist) for dist in discovered])
    components = load_components()
    assert components.create("objective", "tv") == "gantk-tv"
    assert [str(f) for f in components.failures] == [
        "plugin 'tv-plugin': the entry point of zz-fork (tv_plugin:plugin) is ignored: another plugin already has "
        "this name (that of gantk-tv, kept as the first by distribution name); rename the entry point in one "
        "pyproject.toml."
    ]


def test_a_hook_named_by_specname_runs_and_is_not_reported():
    plugin = types.ModuleType("extra_objectives")
    plugin.gantk_register_extra_objectives = hookimpl(specname="gantk_register_objectives")(
        lambda registry: registry.add("extra-loss", lambda: None)
    )
    plugin.register_more = hookimpl(specname="gantk_register_objective")(lambda registry: None)  # a typo
    components = load_components(autoload=False, plugins=[plugin])
    assert "extra-loss" in components.registry("objective")
    assert [str(f) for f in components.failures] == [
        "plugin 'extra_objectives': 'gantk_register_objective' is not a gantk hook; did you mean "
        "'gantk_register_objectives'?"
    ]


@pytest.mark.parametrize(
    "kind, built, expected",
    [
        ("generator", "text", "torch.nn.Module"),
        ("discriminator", None, "torch.nn.Module"),
        ("recipe", {"gen": "unet"}, "gantk.recipes.Recipe"),
        ("data_format", torch.nn.Identity(), "gantk.data.DataFormat"),
    ],
)
def test_a_factory_must_build_its_kind_of_component(kind, built, expected):
    def factory():
        """Builds the wrong thing."""
        return built

    plugin = make_plugin("wrong_builds", **{KINDS[kind]: lambda registry: registry.add("wrong", factory)})
    components = load_components(autoload=False, plugins=[plugin])
    with pytest.raises(OptionError) as error:
        components.create(kind, "wrong")
    assert str(error.value) == (
        f"{kind} 'wrong' (plugin 'wrong_builds') was built as a {type(built).__name__}, not a {expected}: "
        f"its factory must return a {expected}."
    )


@pytest.mark.parametrize("kind", ["generator", "objective"])
def test_a_module_whose_init_skips_the_base_init_is_refused(kind):
    base = gantk.Objective if kind == "objective" else torch.nn.Module

    class Forgetful(base):
        """Does not call super().__init__()."""

        def __init__(self, scale: float = 1.0):
            self.scale = scale

    plugin = make_plugin("forgetful", **{KINDS[kind]: lambda registry: registry.add("forgetful", Forgetful)})
    with pytest.raises(OptionError, match=rf"^{kind} 'forgetful' \(plugin 'forgetful'\) is a torch.nn.Module whose __init__ "
                                          r"does not call super\(\).__init__\(\): call it first in .*Forgetful.__init__.$"):
        load_components(autoload=False, plugins=[plugin]).create(kind, "forgetful")


def test_a_number_given_to_a_text_option_is_its_text():
    def versioned(revision="v1", label: str | None = None, strict=False):
        return revision, label, strict

    registry = Registry("generator")
    registry.add("versioned", versioned, plugin="mine")
    assert registry.create("versioned", revision=2024, label=15) == ("2024", "15", False)
    with pytest.raises(OptionError, match="option label must be a string .default None., got 1.5"):
        registry.create("versioned", label=1.5)  # 1.50 would read back as 1.5
    with pytest.raises(OptionError, match="option revision must be a string .default 'v1'., got True"):
        registry.create("versioned", revision=True)
    with pytest.raises(OptionError, match="option strict must be true or false .default False., got '1'"):
        registry.create("versioned", strict="1")


def test_an_unknown_option_names_the_plugin_and_the_closest_option():
    components = load_components(autoload=False)
    with pytest.raises(OptionError) as error:
        components.create("discriminator", "patch70", nfd=8)
    assert str(error.value) == (
        "discriminator 'patch70' has no option 'nfd'; its options (set with --disc-opt KEY=VALUE) are: in_channels, ndf, norm, n_layers, init, "
        "init_gain. Did you mean 'ndf' instead of 'nfd'? The discriminator comes from plugin 'gantk.discriminators'."
    )


def test_a_plugin_is_named_the_same_in_every_session(tmp_path):
    from gantk.provenance import plugin_name

    class Plugin:
        """A plugin object."""

    script = types.ModuleType("__main__")
    script.__file__ = str(tmp_path / "my_recipe.py")
    assert plugin_name(script) == "my_recipe"  # as `import my_recipe` names it
    script.__spec__ = types.SimpleNamespace(name="pkg.my_recipe")  # python -m pkg.my_recipe
    assert plugin_name(script) == "pkg.my_recipe"
    assert plugin_name(types.ModuleType("pkg.plugin")) == "pkg.plugin" == plugin_name("pkg.plugin")
    assert plugin_name(Plugin()) == plugin_name(Plugin()) == f"{__name__}.{Plugin.__qualname__}"


def test_two_plugin_objects_of_one_class_both_load():
    def adding(name):
        class Plugin:
            @hookimpl
            def gantk_register_objectives(self, registry):
                registry.add(name, type(name, (gantk.Objective,), {"__doc__": "A loss."}))

        return Plugin()

    first, second = adding("first-loss"), adding("second-loss")
    components = load_components(autoload=False, plugins=[first, second])
    assert not components.failures, [str(f) for f in components.failures]
    plugins = [components.registry("objective").get(name).plugin for name in ("first-loss", "second-loss")]
    assert plugins[1] == plugins[0] + "#2"


def test_kinds_are_taken_in_the_plural_and_with_hyphens():
    import gantk

    assert gantk.list_components("generators") == gantk.list_components("generator") and "unet" in gantk.list_components("Generators")
    assert gantk.list_components("data-formats") == gantk.list_components("data_format")


def test_a_part_is_the_recorded_one_when_its_plugin_or_its_code_is_the_same():
    from gantk.provenance import factory_name, same_provider

    entry = load_components(autoload=False).registry("generator").get("unet")
    assert same_provider(entry, {"plugin": entry.plugin, "factory": "moved.elsewhere"})  # an upgrade moved the code
    assert same_provider(entry, {"plugin": "renamed-plugin", "factory": factory_name(entry.factory)})  # loaded under another name
    assert not same_provider(entry, {"plugin": "renamed-plugin", "factory": "other.code"})
    assert not same_provider(entry, {"plugin": "renamed-plugin"})  # format 1 recorded the plugin only


def test_plugins_given_that_cannot_be_loaded_under_their_name_or_as_a_class_are_warned_of():
    class SelfHooks:
        @hookimpl
        def gantk_register_objectives(self, registry):
            """A hook that takes self: the class is no plugin, an instance is."""

    plugin = make_plugin("unnamed_plugin", gantk_register_objectives=lambda registry: None)
    with pytest.warns(gantk.GantkWarning) as warned:
        components = load_components(autoload=False, plugins={"": plugin, "as_class": SelfHooks})
    assert sorted(f.plugin for f in components.failures) == ["", "as_class"]
    assert [str(w.message) for w in warned] == [
        f"plugin '{f.plugin}' given to load_components: {f.error} (components.failures lists it)" for f in components.failures]


def test_a_plugin_given_that_its_entry_point_loaded_already_is_warned_of_by_that_name(monkeypatch):
    def broken(registry):
        raise RuntimeError("boom")

    plugin = make_plugin("broken_module", gantk_register_objectives=broken)
    points = [FakeEntryPoint("ep_alias", plugin)]
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group=None: points if group == "gantk" else [])
    monkeypatch.delenv("GANTK_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.delenv("GANTK_PLUGINS", raising=False)
    with pytest.warns(gantk.GantkWarning, match=r"^plugin 'ep_alias' given to load_components: gantk_register_objectives failed"):
        components = load_components(plugins=[plugin])
    assert [f.plugin for f in components.failures] == ["ep_alias"]


def test_plugins_left_out_by_autoload_false_are_not_said_to_be_kept_out_by_the_environment(fake_entry_points, monkeypatch):
    monkeypatch.delenv("GANTK_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    monkeypatch.setenv("GANTK_PLUGINS", "tried_plugin")
    with pytest.raises(gantk.errors.UnknownNameError) as error:
        load_components(autoload=False).create("discriminator", "ep-disc")
    assert "not loaded" not in str(error.value) and "GANTK_DISABLE_PLUGIN_AUTOLOAD" not in str(error.value)


def test_an_option_error_of_a_kind_set_with_no_train_flag_is_raised_as_it_is(monkeypatch):
    monkeypatch.setenv("GANTK_DISABLE_PLUGIN_AUTOLOAD", "1")
    gantk.default_components.cache_clear()
    try:
        with pytest.raises(OptionError, match=r"^data_format 'aligned' has no option 'nope'"):
            gantk.create("data_format", "aligned", nope=1)
    finally:
        gantk.default_components.cache_clear()
