"""One SyncTalklip generator training step at ``paper`` size on CPU: its time and peak memory.

    python benchmarks/train_step.py [--clips 2] [--frames 50] [--window 5] [--threads 2] [--size paper]

Builds the paper-size networks with random weights (generator: Wav2Lip-width face encoder/decoder
+ AV-HuBERT Large audio encoder; supervisor: AV-SyncNet Large seq2seq with a 1000-token
vocabulary; the quality discriminator) and runs the training loop of ``synctalklip train
generator`` (:func:`baselines.talklip.recipe.train_talking_face`) for one step on random clips,
``--window`` generated frames per clip, the supervisor reading every clip's whole sequence. The
first step (``--steps 1``) includes the loop's start-up; ``--steps 3`` prints the mean of the
last two as well. Prints wall time per step and the process's peak resident memory.
"""

from __future__ import annotations

import argparse
import resource
import tempfile


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clips", type=int, default=2, help="clips per step (official: 8)")
    p.add_argument("--frames", type=int, default=50, help="frames per clip")
    p.add_argument("--window", type=int, default=5, help="generated frames per clip (official: 5)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--size", default="paper", choices=["paper", "tiny"])
    args = p.parse_args()
    import numpy as np
    import torch

    from baselines.talklip.data import TrainingClips
    from baselines.talklip.model import TalkLipDiscQual
    from baselines.talklip.recipe import train_talking_face
    from synctalklip.avsyncnet import AVSyncNet, word_codec
    from synctalklip.config import AVSyncNetConfig
    from synctalklip.generator import SyncTalklipVariant, build_generator
    from synctalklip.train_generator import build_recipe

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    cfg = AVSyncNetConfig.paper() if args.size == "paper" else AVSyncNetConfig.tiny()
    net = AVSyncNet(cfg, word_codec([f"w{i}" for i in range(996)]))
    spec = SyncTalklipVariant(size=args.size)
    gen, gen_cfg = build_generator(spec, net.seq2seq.cfg, net.seq2seq.encoder.state_dict())
    disc = TalkLipDiscQual(gen_cfg.width)
    t, n = args.frames, args.clips + 1
    clips = TrainingClips(faces=[rng.integers(0, 255, (t, 96, 96, 3), dtype=np.uint8) for _ in range(n)],
                          fbank=[rng.standard_normal((t, 104)).astype(np.float32) for _ in range(n)],
                          mouth=[np.tile(np.float32([0.25, 0.55, 0.75, 1.0]), (t, 1)) for _ in range(n)],
                          tokens=[list(rng.integers(4, 1000, 12)) + [2] for _ in range(n)],
                          ids=[str(i) for i in range(n)],
                          rois=[rng.integers(0, 255, (t, 48, 48), dtype=np.uint8) for _ in range(n)])
    train = TrainingClips(clips.faces[:-1], clips.fbank[:-1], clips.mouth[:-1], clips.tokens[:-1], clips.ids[:-1],
                          clips.rois[:-1])
    val = TrainingClips(clips.faces[-1:], clips.fbank[-1:], clips.mouth[-1:], clips.tokens[-1:], clips.ids[-1:],
                        clips.rois[-1:])
    recipe = build_recipe(spec, steps=args.steps, clips_per_step=args.clips, window=args.window,
                          val_every=10 ** 9, ckpt_every=10 ** 9, log_every=1)
    params = sum(p.numel() for p in gen.parameters()) / 1e6
    expert = sum(p.numel() for p in net.seq2seq.parameters()) / 1e6
    print(f"{args.size}: generator {params:.1f}M params, supervisor {expert:.1f}M, {args.clips} clips x {t} frames, "
          f"{args.window} generated per clip, {args.threads} threads")
    with tempfile.TemporaryDirectory() as run_dir:
        import baselines.talklip.recipe as loop

        original = loop.make_validator
        loop.make_validator = lambda *a, **k: None            # the step alone, no validation pass
        try:
            result = train_talking_face(recipe, train, val, gen, disc, net.seq2seq, run_dir, progress=False,
                                        pad=net.codec.dictionary.pad, eos=net.codec.dictionary.eos)
        finally:
            loop.make_validator = original
        from tfgbench.training import read_log

        stamps = [0.0] + [r["seconds"] for r in read_log(run_dir) if "val" not in r]
    steps = np.diff(stamps)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
    later = f", later steps {steps[1:].mean():.1f} s" if len(steps) > 1 else ""
    print(f"first step {steps[0]:.1f} s{later}; peak RSS {peak:.2f} GiB; losses {result.last_losses}")


if __name__ == "__main__":
    main()
