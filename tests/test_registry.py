import functools
import inspect
from typing import Optional  # named in a written annotation below

import numpy as np
import pytest
import torch

from gantk.errors import DuplicateNameError, OptionError, UnknownNameError
from gantk.nn import check_choice
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
    assert "plugin" not in message  # a typo, most likely
    with pytest.raises(UnknownNameError) as info:
        registry.create("dilated")
    assert str(info.value) == ("unknown discriminator 'dilated'. Known discriminators: patch16, patch70, pixel. A plugin's "
                               "components are known once it is installed in this Python environment: 'gantk list' shows them.")


def test_an_unknown_name_names_the_plugins_that_failed_to_load():
    from gantk import hookimpl, load_components

    class Broken:
        @hookimpl
        def gantk_register_objectives(self, registry):
            raise ImportError("no module named 'kornia_tv'")

    components = load_components(autoload=False, plugins=[Broken()])
    with pytest.raises(UnknownNameError, match=r"unknown objective 'tv'\. Known objectives: .*\. Plugin\(s\) .*Broken failed to load and "
                                               r"may provide it: 'gantk list' says why \(in Python, components.failures\)\.$"):
        components.create("objective", "tv")
    with pytest.raises(UnknownNameError, match=r"Did you mean 'l1'\?.* Plugin\(s\) .*Broken failed to load"):  # a typo, or theirs
        components.create("objective", "l11")


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


def test_a_registered_network_is_named_by_its_type_not_its_repr():
    network = torch.nn.Sequential(*[torch.nn.Conv2d(3, 3, 3) for _ in range(20)])
    with pytest.raises(OptionError, match=r"^generator 'x' of plugin 'mine' is registered with a torch.nn.modules.container.Sequential "
                                          r"object: register the class"):
        Registry("generator").add("x", network, plugin="mine")
    with pytest.raises(OptionError, match="is registered with 'make_net': register"):
        Registry("generator").add("x", "make_net", plugin="mine")


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
    registry.add("variant", functools.partial(Documented))
    bound = functools.partial(Documented)
    bound.__doc__ = "A variant."
    registry.add("named-variant", bound)
    assert registry.get("variant").summary == "Documented here."  # not functools.partial's docstring
    assert registry.get("named-variant").summary == "A variant."


def test_options_without_a_default_must_be_given():
    def deep(in_channels=3, *, depth):
        """Needs its depth."""
        return depth

    registry = Registry("generator")
    registry.add("deep", deep, plugin="mine")
    with pytest.raises(OptionError, match="generator 'deep' .plugin 'mine'. needs the option.s. depth"):
        registry.create("deep")
    assert registry.create("deep", depth=4) == 4


def typed(*, ngf=64, gain=0.02, skips=True, norm="batch", encoder=None, scales=(1, 2), **extra):
    """Options of each type."""
    return dict(ngf=ngf, gain=gain, skips=skips, norm=norm, encoder=encoder, scales=scales, **extra)


def typed_registry() -> Registry:
    registry = Registry("generator")
    registry.add("typed", typed, plugin="mine")
    return registry


@pytest.mark.parametrize(
    "option, value, wanted",
    [
        ("ngf", "eight", "option ngf must be an integer (default 64), got 'eight'"),
        ("ngf", 8.0, "option ngf must be an integer (default 64), got 8.0"),
        ("ngf", True, "option ngf must be an integer (default 64), got True"),
        ("gain", "abc", "option gain must be a number (default 0.02), got 'abc'"),
        ("gain", False, "option gain must be a number (default 0.02), got False"),
        ("skips", 1, "option skips must be true or false (default True), got 1"),
        ("norm", 0.5, "option norm must be a string (default 'batch'), got 0.5"),
        ("ngf", None, "option ngf must be an integer (default 64), got None"),
    ],
)
def test_option_values_must_have_the_type_of_their_default(option, value, wanted):
    with pytest.raises(OptionError) as error:
        typed_registry().create("typed", **{option: value})
    assert str(error.value) == f"generator 'typed' (plugin 'mine'): {wanted}. Its options are set with --gen-opt KEY=VALUE."


def test_every_option_of_the_wrong_type_is_named():
    with pytest.raises(OptionError, match="option ngf must be .*; option norm must be "):
        typed_registry().create("typed", ngf="eight", norm=0.5)


@pytest.mark.parametrize(
    "options",
    [
        {"ngf": 8, "gain": 1, "skips": False, "norm": "none"},  # an int is a number too
        {"ngf": np.int64(8), "gain": np.float32(0.5)},
        {"encoder": "resnet18"},  # a None default takes any type
        {"encoder": 3},
        {"extra": "anything"},  # so does an option of **kwargs
        {"scales": [4, 8]},  # a list for a tuple default
        {"scales": 3},  # or one number, as torch's kernel_size=(4, 4) takes
    ],
)
def test_values_of_a_fitting_type_are_accepted(options):
    assert typed_registry().create("typed", **options).items() >= options.items()


def test_none_is_spelled_as_each_option_takes_it():
    built = typed_registry().create("typed", norm=None, encoder="None", extra="none")
    assert (built["norm"], built["encoder"], built["extra"]) == ("none", None, "none")
    assert typed_registry().create("typed", norm="none", encoder="null")["encoder"] is None


def test_an_option_without_a_default_takes_any_type():
    registry = Registry("generator")
    registry.add("deep", lambda *, depth: depth, plugin="mine")
    assert registry.create("deep", depth="4") == "4"


def test_an_option_error_from_the_factory_says_which_component():
    def normed(norm="batch"):
        check_choice("norm", norm, ("batch", "none"))

    registry = Registry("discriminator")
    registry.add("normed", normed, plugin="mine")
    with pytest.raises(OptionError) as error:
        registry.create("normed", norm="foo")
    assert str(error.value) == "discriminator 'normed' (plugin 'mine'): norm='foo' is not valid; choose one of: batch, none. Its options are set with --disc-opt KEY=VALUE."


def test_a_factorys_refusal_without_a_full_stop_is_ended_before_the_flag_hint():
    def wide(width=1):
        raise OptionError(f"width {width} is too big")

    registry = Registry("generator")
    registry.add("wide", wide, plugin="mine")
    with pytest.raises(OptionError) as error:
        registry.create("wide", width=100)
    assert str(error.value) == "generator 'wide' (plugin 'mine'): width 100 is too big. Its options are set with --gen-opt KEY=VALUE."


def test_an_option_error_that_names_the_component_is_kept():
    def fussy(depth=1):
        raise OptionError(f"fussy needs depth >= 2, got {depth}.")

    registry = Registry("generator")
    registry.add("fussy", fussy, plugin="mine")
    with pytest.raises(OptionError) as error:
        registry.create("fussy")
    assert str(error.value) == "fussy needs depth >= 2, got 1."


def annotated(*, margin: float = 1, depth: "int | None" = None, label: "Optional[str]" = None, sizes: tuple = (1, 2), ratio=1,
              layers: "list[int] | None" = None):
    """Options whose annotation, not their default, says what they take."""
    return dict(margin=margin, depth=depth, label=label, sizes=sizes, ratio=ratio, layers=layers)


def test_an_annotation_decides_over_the_default():
    registry = Registry("objective")
    registry.add("annotated", annotated, plugin="mine")
    built = registry.create("annotated", margin=0.5, depth=None, label=None, sizes=[3])  # float annotation, int default
    assert (built["margin"], built["depth"], built["label"], built["sizes"]) == (0.5, None, None, [3])
    for option, value, wanted in [("depth", "x", "option depth must be an integer (default None), got 'x'"),
                                  ("label", 0.5, "option label must be a string (default None), got 0.5"),
                                  ("ratio", 0.5, "option ratio must be an integer (default 1), got 0.5"),
                                  ("sizes", "3", "option sizes must be a list (default (1, 2)), got '3'"),
                                  ("layers", 3, "option layers must be a list (default None), got 3")]:
        with pytest.raises(OptionError) as error:
            registry.create("annotated", **{option: value})
        assert str(error.value) == f"objective 'annotated' (plugin 'mine'): {wanted}. Its options are set with --loss-opt NAME.KEY=VALUE."


def test_a_factory_signature_is_read_once(monkeypatch):
    reads = []
    signature = inspect.signature
    monkeypatch.setattr(inspect, "signature", lambda obj: reads.append(obj) or signature(obj))
    registry = Registry("generator")
    registry.add("small", make_net, plugin="demo")
    assert registry.create("small", width=4) == (3, 3, 4) and registry.create("small") == (3, 3, 8)
    assert len(reads) == 1


def test_scalars_of_numpy_and_torch_become_python_values():
    from gantk.option_values import plain

    values = plain({"flip": np.bool_(True), "gain": torch.tensor(0.5), "ngf": torch.tensor(3), "sizes": (np.int64(2), np.float32(0.25))})
    assert values == {"flip": True, "gain": 0.5, "ngf": 3, "sizes": [2, 0.25]}
    assert [type(value) for value in (values["flip"], values["gain"], values["ngf"], *values["sizes"])] == [bool, float, int, int, float]


def test_a_factory_taking_any_keyword_takes_every_option():
    registry = Registry("generator")
    registry.add("open", lambda in_channels=3, **options: options, plugin="mine")
    entry = registry.get("open")
    assert entry.takes_option("anything") and entry.takes_option("in_channels")


def test_a_network_given_instead_of_a_name_is_told_how_to_register_it():
    registry = Registry("generator")
    registry.add("tiny", torch.nn.Identity)
    with pytest.raises(OptionError, match=r"must be a string such as 'tiny', not <class 'torch.nn.modules.linear.Identity'>: "
                                          r"'gantk list' shows the names; to use a generator of your own, register it"):
        registry.get(torch.nn.Identity)
    with pytest.raises(OptionError, match=r"not 3: 'gantk list' shows the names\.$"):
        registry.get(3)


def test_a_built_component_is_named_as_built_by_identity_not_equality():
    import gc

    from torch import nn

    from gantk import hookimpl, load_components
    from gantk.registry import built_as

    class ValueEqual(nn.Module):
        """A module equal to any other of its channels."""

        def __init__(self, in_channels=3):
            super().__init__()
            self.in_channels = in_channels

        def __eq__(self, other):
            return isinstance(other, ValueEqual) and other.in_channels == self.in_channels

        def __hash__(self):
            return hash(self.in_channels)

    class Plugin:
        @hookimpl
        def gantk_register_discriminators(self, registry):
            registry.add("first", ValueEqual)
            registry.add("second", ValueEqual)

    components = load_components(autoload=False, plugins=[Plugin()])
    first, second = (components.create("discriminator", name) for name in ("first", "second"))
    assert [built_as(first), built_as(second)] == [f"discriminator '{name}' (plugin '{components.registry('discriminator').get(name).plugin}')"
                                                   for name in ("first", "second")]
    assert built_as(ValueEqual()) is None and built_as(3) is None
    del first
    gc.collect()
    assert built_as(second).startswith("discriminator 'second'")


def test_a_built_component_is_forgotten_once_it_is_gone():
    import gc

    from gantk import load_components, registry

    component = load_components(autoload=False).create("discriminator", "patch")
    key = id(component)
    assert registry.built_as(component) and key in registry._BUILT
    del component
    gc.collect()
    assert key not in registry._BUILT  # a run building many components keeps no label of those gone
