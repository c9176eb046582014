"""The SyncTalklip paper's Tables 1-5 rendered from stored rows (``tfgbench table --paper tableN``).

Each layout fixes the rows (models, in the paper's order), the measures and, per dataset, the
protocol of every column (LRS2/LRS3 use the official protocols, the synthetic corpus its own
evaluators); ``--protocol KIND=PROTOCOL`` overrides one. A cell shows a value only when the model has
a successful row for every clip of the split (as :mod:`tfgbench.tables`); otherwise it says why,
in a note under the table. With ``--ci`` each value carries its 95 % clip bootstrap interval.
Bold marks a value only when it is *significantly* best among the generated rows (ground truth and
the static-frame control are references, not competitors): better than every other generated
row of its column in a paired permutation test over the clips both share, p < 0.05 each (an
intersection-union test: no multiplicity correction is needed for "better than all").

* Table 1: ground truth, Wav2Lip, TalkLip, SyncTalklip (then any other stored model): LSE-C, LSE-D,
  PSNR, SSIM, WER (AV-HuBERT reader) on two datasets side by side (LRS2 | LRS3, synthetic |
  synthetic-ood).
* Table 2: lip-reading WER of the lip experts (plain AV-HuBERT, AV-SyncNet, AV-SyncNet(conv)) and
  the Conformer reader on ground-truth video: rows are the ground-truth model's rows scored with
  each file as the reader (``--weights wer/<protocol>=FILE``), matched by the file's sha256.
* Table 3: the ablations: LSE-C, PSNR, WER (Conformer reader).
* Table 4: TalkLip and the SyncTalklip variants: LSE-C, LSE-D, PSNR, SSIM, WER (Conformer), in-domain
  and zero-shot.
* Table 5: human ratings (protocol ``rating/human``, one evaluator per rater, recorded by
  ``tfgbench rate``): mean ± std over all ratings, and Krippendorff's alpha between raters.

Module-level imports are standard library only: the ``table`` parser imports this module.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PAPER_TABLES = ("table1", "table2", "table3", "table4", "table5")
#: rows that are references, never "best"
CONTROLS = ("ground-truth", "static-frame")
PARTNER = {"lrs2": "lrs3", "lrs3": "lrs2", "synthetic": "synthetic-ood", "synthetic-ood": "synthetic"}
#: protocol per column kind and dataset family (``*``: any other dataset)
PROTOCOLS: dict[str, dict[str, str]] = {
    "synthetic": {"lse": "lse/synthetic", "psnr": "psnr/talklip", "ssim": "ssim/talklip",
                  "wer": "wer/synthetic-avhubert", "wer3": "wer/synthetic-conformer", "rating": "rating/human"},
    "lrs3": {"lse": "lse/wav2lip", "psnr": "psnr/talklip", "ssim": "ssim/talklip", "wer": "wer/avhubert-roi",
             "wer3": "wer/talklip-conformer", "rating": "rating/human"},
    "*": {"lse": "lse/wav2lip", "psnr": "psnr/talklip", "ssim": "ssim/talklip", "wer": "wer/talklip-avhubert",
          "wer3": "wer/talklip-conformer", "rating": "rating/human"},
}
MEASURES = {"lse_c": ("lse", "LSE-C"), "lse_d": ("lse", "LSE-D"), "psnr": ("psnr", "PSNR"),
            "ssim": ("ssim", "SSIM"), "wer": ("wer", "WER"), "wer3": ("wer3", "WER (Conformer)"),
            "intl": ("rating", "INTL"), "sync": ("rating", "SYNC"), "auth": ("rating", "AUTH")}
ROWS = {
    "table1": [("Ground Truth", "ground-truth"), ("Wav2Lip", "wav2lip"), ("TalkLip", "talklip"),
               ("SyncTalklip", "synctalklip")],
    "table3": [("SyncTalklip", "synctalklip"), ("w/o novel-contrastive learning", "synctalklip-supcon"),
               ("w/o AV-SyncNet", "synctalklip-avhubert"),
               ("w/o contrastive loss module", "synctalklip-no-contrastive"),
               ("w/o lip-reading loss module", "synctalklip-no-lip")],
    "table4": [("TalkLip", "talklip"), ("SyncTalklip", "synctalklip"), ("SyncTalklip(conv)", "synctalklip-conv"),
               ("SyncTalklip(freeze)", "synctalklip-freeze")],
    "table5": [("Wav2Lip", "wav2lip"), ("TalkLip", "talklip"), ("SyncTalklip", "synctalklip"),
               ("Ground Truth", "ground-truth")],
}
LABELS = {"ground-truth": "Ground Truth", "wav2lip": "Wav2Lip", "wav2lip-gan": "Wav2Lip+GAN", "talklip": "TalkLip",
          "synctalklip": "SyncTalklip", "synctalklip-conv": "SyncTalklip(conv)",
          "synctalklip-freeze": "SyncTalklip(freeze)", "static-frame": "static frame (control)"}
COLUMNS = {"table1": ("lse_c", "lse_d", "psnr", "ssim", "wer"), "table3": ("lse_c", "psnr", "wer3"),
           "table4": ("lse_c", "lse_d", "psnr", "ssim", "wer3"), "table5": ("intl", "sync", "auth")}
TITLES = {
    "table1": "Table 1: evaluation of ground truth and each model",
    "table2": "Table 2: lip-reading WER of the lip experts and the Conformer reader on ground-truth video",
    "table3": "Table 3: ablations",
    "table4": "Table 4: SyncTalklip variants, in-domain and zero-shot (WER by the Conformer reader)",
    "table5": "Table 5: perceptual evaluation (1-5, mean ± std over ratings)",
}
#: Table 2 readers: label, shipped file (relative to the repository), AV-Align, protocol kind
READERS = [("AV-HuBERT", "synctalklip/weights/avsyncnet-plain-tiny.safetensors", "×", "wer"),
           ("AV-SyncNet", "synctalklip/weights/avsyncnet-base-tiny.safetensors", "✓", "wer"),
           ("AV-SyncNet(conv)", "synctalklip/weights/avsyncnet-conv-tiny.safetensors", "✓", "wer"),
           ("Conformer", "tfgbench/weights/conformer-synthetic.safetensors", "×", "wer3")]


def protocol_for(kind: str, dataset: str, overrides: dict[str, str] | None = None) -> str:
    if overrides and kind in overrides:
        return overrides[kind]
    family = "synthetic" if dataset.startswith("synthetic") else dataset if dataset in PROTOCOLS else "*"
    return PROTOCOLS[family][kind]


def add_table_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``tfgbench table`` for paper layouts and confidence intervals."""
    p.description = ("Render stored results. Without --paper: one leaderboard per dataset split, every protocol. "
                     "With --paper tableN: the SyncTalklip paper's layout (rows, measures, one protocol per column, "
                     "bold only for significantly best values, a note for every empty cell).")
    p.add_argument("--paper", choices=PAPER_TABLES,
                   help="the paper's Table 1-5 layout (needs --dataset; Tables 1 and 4 add its zero-shot partner: "
                   "lrs2|lrs3, synthetic|synthetic-ood)")
    p.add_argument("--ci", action="store_true",
                   help="add a 95%% bootstrap confidence interval to every value (clips resampled; pooled measures "
                   "such as corpus WER and frame-pooled PSNR/SSIM recomputed from each resample)")
    p.add_argument("--resamples", type=int, default=2000,
                   help="bootstrap resamples for --ci and permutations for the bold test (default: 2000)")
    p.add_argument("--second", help="the second dataset of Tables 1 and 4 (default: the partner; 'none' for one)")
    p.add_argument("--models", help="paper tables: rows as comma-separated names (name@<checkpoint prefix> picks "
                   "one of several stored checkpoints)")
    p.add_argument("--protocol", action="append", metavar="KIND=PROTOCOL",
                   help="paper tables: use PROTOCOL for column kind lse, psnr, ssim, wer or wer3 "
                   "(e.g. psnr=psnr/talklip-uint8)")
    p.add_argument("--reader", action="append", metavar="LABEL=FILE",
                   help="Table 2: a reader row, matched to stored rows by the file's sha256 (default: the shipped "
                   "tiny experts and the synthetic Conformer)")


@dataclass
class PCol:
    """One column of a paper table: a measure on one dataset, or a text column."""

    key: str
    label: str
    dataset: str | None = None
    protocol: str | None = None
    measure: Any = None  # tfgbench.metrics.base.Measure
    evaluator: str | None = None

    @property
    def header(self) -> str:
        if self.measure is None:
            return self.label
        arrow = {True: " ↑", False: " ↓", None: ""}[self.measure.higher_is_better]
        unit = " %" if self.measure.percent else ""
        return f"{self.label}{unit}{arrow}"


@dataclass
class PCell:
    value: float | None = None
    ci: tuple[float, float] | None = None
    text: str | None = None
    std: float | None = None
    bold: bool = False
    note: str | None = None
    values: dict | None = None  # per-clip (value, num, den), for the bold test


@dataclass
class PaperTable:
    name: str
    title: str
    columns: list[PCol]
    rows: list[tuple[str, Any]]  # (label, model key or reader sha256 or None)
    cells: dict[tuple[int, int], PCell] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    bold_rule: str = ""
    ci: bool = False
    resamples: int = 2000


def cmd_table(args: argparse.Namespace) -> int:
    """``tfgbench table`` with ``--paper`` and/or ``--ci``."""
    from tfgbench.errors import TfgbenchError
    from tfgbench.store import Store

    path = Path(args.workdir) / "results.sqlite"
    if not path.is_file():
        raise TfgbenchError(f"no results at {path}: run `tfgbench run ...` first (or pass --workdir)")
    if not args.paper:
        from tfgbench.frame import to_frame
        from tfgbench.stats import attach_cis
        from tfgbench.tables import build_tables, render

        with Store(path) as store:
            rows, measures = store.rows(args.dataset), store.measures()
            tables = build_tables(to_frame(rows), measures, store.dataset_sizes())
        tables = [t for t in tables if args.split is None or t.dataset.split == args.split]
        if not tables:
            raise TfgbenchError(f"no stored results{' for ' + args.dataset if args.dataset else ''} in {path}")
        attach_cis(tables, rows, measures, resamples=args.resamples)
        from tfgbench.stats import ci_note

        note = ci_note(resamples=args.resamples)
        wrap = {"md": "{}\n", "html": "<p>{}</p>\n", "latex": "% {}\n", "csv-summary": ""}[args.format]
        return _emit("\n".join(render(t, args.format) + wrap.format(note) for t in tables), args.output)
    if not args.dataset:
        raise TfgbenchError("--paper needs --dataset (e.g. --dataset synthetic)")
    from tfgbench.paper_build import build_paper_table
    from tfgbench.paper_render import render_paper

    with Store(path) as store:
        table = build_paper_table(store, args.paper, args.dataset, split=args.split or "test", ci=args.ci,
                                  resamples=args.resamples, second=args.second,
                                  models=_split_list(args.models), overrides=_pairs(args.protocol, "--protocol"),
                                  readers=_pairs(args.reader, "--reader"))
    return _emit(render_paper(table, args.format), args.output)


def _split_list(text: str | None) -> list[str] | None:
    return [x.strip() for x in text.split(",") if x.strip()] if text else None


def _pairs(items: list[str] | None, flag: str) -> dict[str, str]:
    from tfgbench.errors import TfgbenchError

    out = {}
    for item in items or []:
        k, sep, v = item.partition("=")
        if not sep or not k or not v:
            raise TfgbenchError(f"{flag} must look like KEY=VALUE, got {item!r}")
        out[k.strip()] = v.strip()
    return out


def _emit(text: str, output: str | None) -> int:
    if output:
        Path(output).write_text(text)
        print(f"wrote {output}")
    else:
        print(text, end="" if text.endswith("\n") else "\n")
    return 0


def fmt_value(value: float | None, measure: Any) -> str:
    if value is None or math.isnan(value):
        return ""
    scale = 100 if measure is not None and measure.percent else 1
    digits = measure.digits if measure is not None else 2
    return f"{value * scale:.{digits}f}"
