"""One trainer rank: the entry point torchrun starts (`python -m rftkit.trainer.roles.rank`).

    torchrun --nproc-per-node 2 -m rftkit.trainer.roles.rank --config DIR/run_config.json --output-dir DIR

Rank 0 runs the whole loop (RFTTrainer, which starts the other roles); every other rank follows
it (`TrainerRanks.follow`). The config is the validated run config as JSON (what `rft train`
writes to DIR/run_config.json before starting torchrun).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import RunConfig, load_config
from . import ranks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--config", type=Path, required=True, help="the run config (YAML, or rft train's JSON)"
    )
    parser.add_argument("--output-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.config.suffix == ".json":  # what rft train writes: the validated config
        config = RunConfig.model_validate_json(args.config.read_text(encoding="utf-8"))
    else:  # a config file as rft train takes it (started by hand, e.g. across hosts)
        config = load_config(args.config)
    if config.trainer.threads:
        import torch

        torch.set_num_threads(config.trainer.threads)
    group = ranks.TrainerRanks(config, ranks.init())
    clean = False
    try:
        if group.rank == 0:
            from ..loop import RFTTrainer

            RFTTrainer(config, args.output_dir, ranks=group).run()
        else:
            group.follow()
        clean = True
    finally:
        ranks.leave(clean=clean)
    return 0


if __name__ == "__main__":
    ranks.exit_rank(main())
