"""Does a generator follow the audio? Each model on synthetic test clips driven by their own audio and
by another clip's audio, both scored against the real clip (LSE on its audio, WER on its transcript).

    python benchmarks/audio_control.py [--models synctalklip,talklip,wav2lip] [--clips 20]
        [--checkpoint synctalklip=runs/x/last.safetensors]   # a candidate instead of the shipped file

A model that ignores the audio scores the same both ways; one that follows it loses sync and
intelligibility with the wrong audio. Uses the shipped checkpoints and the synthetic evaluators.
"""

from __future__ import annotations

import argparse


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="synctalklip,talklip,wav2lip")
    p.add_argument("--clips", type=int, default=20)
    p.add_argument("--dataset", default="synthetic")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--checkpoint", action="append", default=[], metavar="MODEL=FILE",
                   help="run MODEL with FILE instead of its shipped checkpoint (repeatable)")
    args = p.parse_args()
    import torch

    from tfgbench import registry
    from tfgbench.controls import audio_swap_scores

    torch.set_num_threads(args.threads)
    checkpoints = dict(item.split("=", 1) for item in args.checkpoint)
    data = registry.load("datasets", args.dataset)(split="test")
    samples = [data.load(i) for i in data.ids()[: args.clips]]
    metrics = [registry.load("metrics", fam)(proto) for fam, proto in
               (("lse", "lse/synthetic"), ("wer", "wer/synthetic-avhubert"), ("wer", "wer/synthetic-conformer"))]
    cols = ["lse/synthetic:lse_c", "lse/synthetic:lse_d", "wer/synthetic-avhubert:wer", "wer/synthetic-conformer:wer"]
    print(f"{len(samples)} {args.dataset} test clips; scored against each clip's own audio and transcript")
    print("| model | driving audio | LSE-C | LSE-D | WER AV-HuBERT (fraction) | WER Conformer (fraction) |")
    print("|---|---|---|---|---|---|")
    for name in args.models.split(","):
        model = registry.load("models", name)(checkpoint=checkpoints.get(name))
        result = audio_swap_scores(model, samples, metrics)
        for label, scores in result.items():
            print(f"| {name} | {label} | " + " | ".join(f"{scores[c]:.3f}" for c in cols) + " |")


if __name__ == "__main__":
    main()
