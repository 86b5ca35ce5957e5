"""Run under torchrun by test_distributed.py: trains (or, with "resume", continues the run in
config["out"], to config["max_steps"] when given), then saves this rank's parameters. With "diverge", the
objective "nan-on-rank-1" is loaded, and a gantk error is printed as "rank N: message" (exit 3); with "differ" too, where
rank 1 takes the settings of config["on_rank_1"] over the others. With "slow-save",
writing a checkpoint takes 2 s more, rank 1 signals itself (SIGTERM) at its first step, and each rank writes the
time its training stopped (ended-N). With "fit-then-resume", the run is continued for one more step by a
second Trainer in the same process."""

import json
import os
import signal
import sys

import torch

from gantk import GantkError
from gantk.train import TrainConfig, Trainer
from helpers import exploding_components

rank = int(os.environ["RANK"])
config = json.loads(sys.argv[1])
if sys.argv[3:] == ["resume"]:
    trainer = Trainer.resume(config["out"], {key: config[key] for key in ("max_steps",) if key in config}, progress=False)
elif sys.argv[3:] == ["diverge"]:
    components = exploding_components("nan-on-rank-1", explodes=rank == 1)
    trainer = Trainer(TrainConfig(**config), progress=False, components=components)
    try:
        trainer.fit()
    except GantkError as error:
        print(f"rank {rank}: {error}", flush=True)
        sys.exit(3)
elif sys.argv[3:] == ["differ"]:
    overrides = config.pop("on_rank_1")
    try:
        Trainer(TrainConfig(**{**config, **(overrides if rank == 1 else {})}), progress=False).fit()
    except GantkError as error:
        print(f"rank {rank}: {error}", flush=True)
        sys.exit(3)
elif sys.argv[3:] == ["slow-save"]:
    import time

    from gantk.train import checkpoint as ckpt

    from gantk.train.interrupt import TrainingInterrupted

    save = ckpt.save_checkpoint
    ckpt.save_checkpoint = lambda path, payload: time.sleep(2) or save(path, payload)
    signal_once = lambda trainer, step, logged: rank == 1 and step == 1 and os.kill(os.getpid(), signal.SIGTERM)  # noqa: E731
    try:
        Trainer(TrainConfig(**config), callbacks=[signal_once], progress=False).fit()
    except TrainingInterrupted:
        pass
    with open(os.path.join(sys.argv[2], f"ended-{rank}"), "w") as handle:
        handle.write(repr(time.time()))
    sys.exit(0)
else:
    trainer = Trainer(TrainConfig(**config), progress=False)
trainer.fit()
if sys.argv[3:] == ["fit-then-resume"]:  # a second run of the process reuses the group the first joined
    trainer = Trainer.resume(config["out"], {"max_steps": config["max_steps"] + 1}, progress=False)
    trainer.fit()
parameters = {name: p.detach().clone() for name, p in trainer.system.named_parameters()}
torch.save(parameters, os.path.join(sys.argv[2], f"replica-{rank}.pt"))
