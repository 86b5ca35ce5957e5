import pytest
import torch

from gantk.errors import DuplicateNameError, OptionError, UnknownNameError
from gantk.registry import Registry


def make_net(in_channels=3, out_channels=3, width=8):
    """A tiny factory."""
    return (in_channels, out_channels, width)


def test_add_create_and_names():
    registry = Registry("generator")
    registry.add("tiny", make_net, plugin="demo")
    registry.add("tiny-wide", lambda **kw: make_net(width=64, **kw), plugin="demo")
    assert registry.names() == ["tiny", "tiny-wide"]
    assert registry.names("*wide") == ["tiny-wide"]
    assert registry.create("tiny", width=2) == (3, 3, 2)
    entry = registry.get("tiny")
    assert entry.plugin == "demo"
    assert entry.summary == "A tiny factory."
    assert entry.options() == {"in_channels": 3, "out_channels": 3, "width": 8}


def test_duplicate_needs_override():
    registry = Registry("generator")
    registry.add("tiny", make_net, plugin="first")
    with pytest.raises(DuplicateNameError, match="already registered by plugin 'first'.*override=True"):
        registry.add("tiny", make_net, plugin="second")
    registry.add("tiny", lambda: "replaced", plugin="second", override=True)
    assert registry.create("tiny") == "replaced"
    assert registry.get("tiny").plugin == "second"


def test_unknown_name_lists_choices_and_closest_match():
    registry = Registry("discriminator")
    for name in ("patch16", "patch70", "pixel"):
        registry.add(name, make_net, plugin="demo")
    with pytest.raises(UnknownNameError) as info:
        registry.create("patch71")
    message = str(info.value)
    assert "unknown discriminator 'patch71'" in message
    assert "Did you mean 'patch70'?" in message
    assert "patch16, patch70, pixel" in message


def test_unknown_option_lists_valid_options():
    registry = Registry("generator")
    registry.add("tiny", make_net, plugin="demo")
    with pytest.raises(OptionError, match="no option 'depth'.*in_channels, out_channels, width"):
        registry.create("tiny", depth=3)


@pytest.mark.parametrize("name", ["", "a+b", "a@1", "with space", "x*", "tv:smooth", "TV/2", "a\tb", None])
def test_invalid_names_rejected(name):
    with pytest.raises(OptionError, match="invalid"):
        Registry("objective").add(name, make_net)


def test_scoped_registry_records_plugin():
    registry = Registry("objective")
    registry.scoped("my-plugin").add("mine", make_net)
    assert registry.get("mine").plugin == "my-plugin"


@pytest.mark.parametrize("factory", [None, "make_net", torch.nn.Identity()])
def test_a_factory_must_build_the_component(factory):
    with pytest.raises(OptionError, match="not an instance"):
        Registry("generator").add("x", factory, plugin="mine")


def test_summary_is_the_factory_own_docstring():
    class Undocumented(torch.nn.Module):
        pass

    class Documented(torch.nn.Module):
        """Documented here.

        More.
        """

    registry = Registry("generator")
    registry.add("bare", Undocumented)
    registry.add("doc", Documented)
    assert registry.get("bare").summary == ""  # not nn.Module's docstring
    assert registry.get("doc").summary == "Documented here."


def test_options_without_a_default_must_be_given():
    def deep(in_channels=3, *, depth):
        """Needs its depth."""
        return depth

    registry = Registry("generator")
    registry.add("deep", deep, plugin="mine")
    with pytest.raises(OptionError, match="generator 'deep' .plugin 'mine'. needs the option.s. depth"):
        registry.create("deep")
    assert registry.create("deep", depth=4) == 4
