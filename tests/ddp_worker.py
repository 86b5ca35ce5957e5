"""Run under torchrun by test_distributed.py: trains (or, with "resume", continues the run in
config["out"] to config["max_steps"]), then saves this rank's parameters. With "diverge", the
objective "nan-on-rank-1" is loaded, and a gantk error is printed as "rank N: message" (exit 3)."""

import json
import os
import sys

import torch

from gantk import GantkError, Objective, hookimpl, load_components
from gantk.train import TrainConfig, Trainer

rank = int(os.environ["RANK"])


class NanOnRank1(Objective):
    """L1 that is NaN on rank 1 from its second step on."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def generator_loss(self, ctx):
        self.calls += 1
        loss = (ctx.fake - ctx.real).abs().mean()
        return loss * float("nan") if rank == 1 and self.calls >= 2 else loss


class Plugin:
    @hookimpl
    def gantk_register_objectives(self, registry):
        registry.add("nan-on-rank-1", NanOnRank1)


config = json.loads(sys.argv[1])
if sys.argv[3:] == ["resume"]:
    trainer = Trainer.resume(config["out"], {"max_steps": config["max_steps"]}, progress=False)
elif sys.argv[3:] == ["diverge"]:
    trainer = Trainer(TrainConfig(**config), progress=False, components=load_components(autoload=False, plugins=[Plugin()]))
    try:
        trainer.fit()
    except GantkError as error:
        print(f"rank {rank}: {error}", flush=True)
        sys.exit(3)
else:
    trainer = Trainer(TrainConfig(**config), progress=False)
trainer.fit()
parameters = {name: p.detach().clone() for name, p in trainer.system.named_parameters()}
torch.save(parameters, os.path.join(sys.argv[2], f"replica-{rank}.pt"))
