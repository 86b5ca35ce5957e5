import importlib.metadata
import types

import pytest

import gantk
from gantk import hookimpl
from gantk.plugins import BUILTIN_PLUGINS, KINDS, load_components


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
    components = load_components(autoload=False, plugins=[plugin, "no_such_module_for_gantk"])
    messages = [str(f) for f in components.failures]
    assert any("broken_plugin" in m and "boom" in m for m in messages)
    assert any("no_such_module_for_gantk" in m for m in messages)
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
    def __init__(self, name, target):
        self.name, self.target = name, target

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


def test_a_plugin_passed_again_is_loaded_once_without_a_failure():
    plugin = make_plugin("once", gantk_register_objectives=lambda registry: registry.add("once-loss", lambda: None))
    components = load_components(autoload=False, plugins=[plugin, plugin])
    assert not components.failures and "once-loss" in components.registry("objective")


def test_a_plugin_whose_hook_fails_adds_nothing_of_that_kind():
    def register(registry):
        registry.add("mine-a", lambda: None)
        registry.add("bce", lambda: "replaced", override=True)
        registry.add("bce", lambda: "replaced again", override=True)  # undone last-first, the built-in comes back
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
