"""Run under torchrun by test_distributed.py: trains, then saves this rank's parameters."""

import json
import os
import sys

import torch

from gantk.train import TrainConfig, Trainer

config = TrainConfig(**json.loads(sys.argv[1]))
trainer = Trainer(config, progress=False)
trainer.fit()
rank = int(os.environ["RANK"])
parameters = {name: p.detach().clone() for name, p in trainer.system.named_parameters()}
torch.save(parameters, os.path.join(sys.argv[2], f"replica-{rank}.pt"))
