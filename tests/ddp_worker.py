"""Run under torchrun by test_distributed.py: trains (or, with "resume", continues the run in
config["out"] to config["max_steps"]), then saves this rank's parameters."""

import json
import os
import sys

import torch

from gantk.train import TrainConfig, Trainer

config = json.loads(sys.argv[1])
if sys.argv[3:] == ["resume"]:
    trainer = Trainer.resume(config["out"], {"max_steps": config["max_steps"]}, progress=False)
else:
    trainer = Trainer(TrainConfig(**config), progress=False)
trainer.fit()
rank = int(os.environ["RANK"])
parameters = {name: p.detach().clone() for name, p in trainer.system.named_parameters()}
torch.save(parameters, os.path.join(sys.argv[2], f"replica-{rank}.pt"))
