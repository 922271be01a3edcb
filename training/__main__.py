"""Fine-tune a LoRA adapter on itbot's SFT data (``itbot train`` runs the same code).

Usage::

    # the embedded SmolLM2-135M on a CPU (after `itbot model fetch`)
    python -m training --config training/configs/smollm2-135m-cpu.yaml

    # Mistral-7B-Instruct with QLoRA on one 16 GB GPU
    python -m training --config training/configs/mistral-7b-qlora.yaml --set base_model=/models/Mistral-7B-Instruct-v0.3

    # a smoke run: 5 optimizer steps into a scratch folder
    python -m training --config smollm2-135m-cpu --max-steps 5 --output-dir runs/smoke

    # start over instead of resuming from the last checkpoint in the output folder
    python -m training --config smollm2-135m-cpu --no-resume

    # every config key, its default and meaning
    python -m training --help-config

    # the curves
    tensorboard --logdir runs/smollm2-135m-lora/tensorboard

Writes ``<output_dir>/checkpoint-N/`` (resumable), ``<output_dir>/tensorboard/`` and
``<output_dir>/adapter/`` (the adapter, ``README.md`` model card, ``training.json``);
point ``ITBOT_ADAPTER`` at the last one.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

__all__ = ["build_parser", "main"]

log = logging.getLogger("training")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="YAML/TOML config file, or the name of one in training/configs "
                        "(default: smollm2-135m-cpu)")
    parser.add_argument("--max-steps", type=int, help="stop after N optimizer steps (smoke runs)")
    parser.add_argument("--output-dir", help="run folder (checkpoints, tensorboard/, adapter/)")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config key, e.g. --set learning_rate=1e-4 (repeatable)")
    parser.add_argument("--resume", action=argparse.BooleanOptionalAction, default=None,
                        help="resume from the last checkpoint in the output folder (default: when there is one); "
                        "--no-resume deletes its checkpoints and starts over")
    parser.add_argument("--cache-dir", default=os.environ.get("ITBOT_CACHE_DIR") or str(Path.home() / ".cache/itbot"),
                        help="where `itbot model fetch` put the embedded model (default: ITBOT_CACHE_DIR)")
    parser.add_argument("--help-config", action="store_true", help="list every config key and exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    from llm.errors import LLMError
    from training.config import config_from_options, describe_fields
    from training.errors import TrainingConfigError

    args = build_parser().parse_args(argv)
    if args.help_config:
        for name, text, default in describe_fields():
            sys.stdout.write(f"{name} (default {default!r})\n    {text}\n")
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = config_from_options(args.config, max_steps=args.max_steps, output_dir=args.output_dir,
                                     sets=args.sets)
        from training.trainer import train

        result = train(config, cache_dir=Path(args.cache_dir).expanduser(), resume=args.resume)
    except TrainingConfigError as error:
        sys.stderr.write(f"training: {error}\n")
        return 2
    except LLMError as error:
        sys.stderr.write(f"training: {error}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("training: interrupted; run the same command again to resume from the last checkpoint\n")
        return 130
    sys.stdout.write(f"{result.adapter_dir}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
