"""Would another sentence encoder tell the organisation's articles apart better than MiniLM?

The organisation-KB misses that remain are the encoder's (docs/answer-engine.md): a covered question that its article
fits no better than an uncovered one. This probe compares MiniLM (the engine's encoder) with any sentence-transformers
checkpoint folder on the seven development companies only (never the held-out ones), on the signal the fit is built
on: each article's best cosine with the question over its title, example questions and sentences::

    .venv/bin/python bench/encoder_probe.py /path/to/all-mpnet-base-v2 --output bench/results/encoder_probe.json

* ``top1``: share of covered questions whose own article scores best among the company's articles;
* ``auc_*``: how well the best article's score ranks covered questions above uncovered ones (all of them, near
  misses, systems nothing covers) and above everyday questions (every 40th CLINC150 test question), mean over the
  companies;
* ``ms_per_text``: encoding time, batched, on this machine.

No query adapter: it was learnt for MiniLM's vectors. The checkpoint is read with transformers (mean pooling).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _auc(positive, negative) -> float:
    import numpy as np

    positive, negative = np.asarray(positive)[:, None], np.asarray(negative)[None, :]
    return float((positive > negative).mean() + 0.5 * (positive == negative).mean())


def _checkpoint_encoder(folder: Path, threads: int):
    import torch
    from transformers import AutoModel, AutoTokenizer

    torch.set_num_threads(threads)
    tokenizer, model = AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder).eval()

    def encode(texts: list[str]):
        import numpy as np

        out = []
        for start in range(0, len(texts), 64):
            batch = tokenizer(texts[start:start + 64], padding=True, truncation=True, max_length=128,
                              return_tensors="pt")
            with torch.inference_mode():
                hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).float()
            out.append(torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy())
        return np.concatenate(out)

    return encode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="a sentence-transformers model folder (config.json, weights)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    if not (args.checkpoint / "config.json").is_file():
        print(f"error: {args.checkpoint} is not a model folder (no config.json)", file=sys.stderr)
        return 2
    import numpy as np

    from answers.engine import build_engine
    from answers.retrieval import _sentences
    from bot.settings import Settings
    from data.org_sets import DEV_ORG_SETS
    from data.public_sets import clinc_rows
    from data.utterances import read_jsonl

    everyday = [row["text"] for row in clinc_rows("test")[::40]]
    other = _checkpoint_encoder(args.checkpoint, args.threads)
    settings = Settings(_env_file=None)
    per: dict[str, dict[str, list[float]]] = {}
    for company, (articles, questions, uncovered) in DEV_ORG_SETS.items():
        folder = Path(tempfile.mkdtemp(prefix="itbot-probe-"))
        try:
            shutil.copytree(articles, folder / company)
            engine = build_engine(replace(settings.engine_config(), kb_dir=folder, query_adapter=None))
            own = [a for a in engine.kb.articles if a.path and company in a.path.parts]
            texts, owner = [], []
            for index, article in enumerate(own):
                for text in (article.render_title(engine.org), *article.examples, *_sentences(article, engine.org)):
                    texts.append(text)
                    owner.append(index)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        owner = np.array(owner)
        covered, unc = read_jsonl(questions), read_jsonl(uncovered)
        asked = [q["text"] for q in covered] + [q["text"] for q in unc] + everyday
        ids = [a.id for a in own]
        for name, encode in (("minilm", lambda t: np.stack([engine.retriever.embed(x) for x in t])), ("other", other)):
            started = time.perf_counter()
            units, queries = encode(texts), encode(asked)
            ms = (time.perf_counter() - started) * 1000 / (len(texts) + len(asked))
            cosine = queries @ units.T
            scores = np.stack([cosine[:, owner == j].max(1) for j in range(len(own))], axis=1)
            best = scores.max(1)
            n, u = len(covered), len(unc)
            kinds = [q.get("kind") for q in unc]
            row = per.setdefault(name, {})
            row.setdefault("top1", []).append(float(np.mean([ids[k] == q["article"]
                                                             for k, q in zip(scores.argmax(1), covered)])))
            row.setdefault("auc_uncovered", []).append(_auc(best[:n], best[n:n + u]))
            row.setdefault("auc_near_miss", []).append(
                _auc(best[:n], [best[n + i] for i, k in enumerate(kinds) if k == "near_miss"]))
            row.setdefault("auc_other_system", []).append(
                _auc(best[:n], [best[n + i] for i, k in enumerate(kinds) if k == "other_system"]))
            row.setdefault("auc_everyday", []).append(_auc(best[:n], best[n + u:]))
            row.setdefault("ms_per_text", []).append(ms)
        print(company, {name: round(row["top1"][-1], 3) for name, row in per.items()}, flush=True)
    summary = {name: {key: round(float(np.mean(values)), 3) for key, values in row.items()}
               for name, row in per.items()}
    summary[args.checkpoint.name] = summary.pop("other")
    report = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}, "
                         f"{args.threads} threads", "companies": list(DEV_ORG_SETS), "mean_over_companies": summary}
    print(json.dumps(summary, indent=2))
    if args.output:
        args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
