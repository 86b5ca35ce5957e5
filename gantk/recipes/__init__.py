"""Built-in recipes: pix2pix, its segmentation variant, CycleGAN and CUT."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ..systems import ContrastiveSystem, CycleSystem, PairedSystem
from ..systems.contrastive import NCE_DEFAULTS
from ..systems.cycle import DOMAIN_WEIGHTS
from .base import Recipe

ADAM = {"lr": 2e-4, "beta1": 0.5, "beta2": 0.999}


def pix2pix() -> Recipe:
    """pix2pix: U-Net, conditional 70x70 PatchGAN, bce+l1 (lambda 100), batch 1, 286->256 crop + flip."""
    return Recipe(
        name="pix2pix",
        system=PairedSystem,
        defaults={
            "gen": "unet", "gen_opt": {"norm": "batch", "dropout": 0.5},
            "disc": "patch70", "disc_opt": {"norm": "batch"}, "conditional": True,
            "loss": "bce+l1@100", "batch_size": 1, "load_size": 286, "crop_size": 256, "flip": True,
            "epochs": 200, "decay_start": 0.5, **ADAM,
        },
        source="Isola et al. 2017, sections 3-4 and appendix 6.1-6.2",
    )


def seg() -> Recipe:
    """Segmentation: image -> mask logits, conditional 70x70 PatchGAN on probabilities, hinge+lovasz."""
    return Recipe(
        name="seg",
        system=PairedSystem,
        defaults={**pix2pix().defaults, "loss": "hinge+lovasz"},
        source="pix2pix photo->labels (Isola et al. 2017) with hinge and Lovasz-Jaccard objectives (Berman et al. 2018)",
    )


def cyclegan() -> Recipe:
    """CycleGAN: ResNet-9 generators, unconditional 70x70 PatchGANs, lsgan+cycle(10)+identity(5), pool 50."""
    return Recipe(
        name="cyclegan",
        system=CycleSystem,
        defaults={
            "gen": "resnet9", "gen_opt": {"norm": "instance", "dropout": 0.0},
            "disc": "patch70", "disc_opt": {"norm": "instance"}, "conditional": False,
            "loss": "lsgan+cycle@10+identity@5", "pool_size": 50, "batch_size": 1,
            "load_size": 286, "crop_size": 256, "flip": True, "epochs": 200, "decay_start": 0.5, **ADAM,
        },
        source="Zhu et al. 2017, section 4 and the reference implementation's defaults",
        options=dict(DOMAIN_WEIGHTS),
    )


def cut() -> Recipe:
    """CUT: a ResNet-9 generator, an unconditional 70x70 PatchGAN, lsgan + PatchNCE (weight 1, on B's images too)."""
    return Recipe(
        name="cut",
        system=ContrastiveSystem,
        defaults={
            "gen": "resnet9", "gen_opt": {"norm": "instance", "dropout": 0.0, "init": "xavier"},
            "disc": "patch70", "disc_opt": {"norm": "instance", "init": "xavier"}, "conditional": False,
            "loss": "lsgan", "pool_size": 0, "batch_size": 1, "load_size": 286, "crop_size": 256, "flip": True,
            "epochs": 400, "decay_start": 0.5, **ADAM,
        },
        source=("Park et al. 2020, section 3 and the reference implementation's defaults (CUT; FastCUT: nce_weight=10, "
                "nce_identity=false, flip_equivariance=true, 200 epochs decaying over the last 50)"),
        options=dict(NCE_DEFAULTS),
    )


@hookimpl
def gantk_register_recipes(registry):
    for factory in (pix2pix, seg, cyclegan, cut):
        registry.add(factory.__name__, factory)
