"""Inference speed of the generators: frames per second through each model plugin on CPU.

    python benchmarks/generate.py [--clips 4] [--threads 2] [--sizes tiny,paper] [--models ...]

For each model (``wav2lip``, ``talklip``, ``synctalklip``) and size: ``tiny`` runs the shipped
checkpoint (random weights of the same shapes if it is missing), ``paper`` a random-weight file at
the official size (Wav2Lip 36M; TalkLip: AV-HuBERT Base audio encoder; SyncTalklip: AV-HuBERT
Large). The plugin does the whole job on synthetic test clips (face crops, audio features,
network, paste-back); one warm-up call, then ``--clips`` clips timed. Target for tiny: at least 100
frames/s on 2 cores (real time is 25). Prints one line per model and size.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def paper_checkpoint(model: str, folder: Path) -> Path:
    """A random-weight checkpoint at the official size, in the format the plugin reads."""
    import torch

    path = folder / f"{model}-paper"
    if model.startswith("wav2lip"):
        from baselines.wav2lip.model import Wav2Lip

        path = path.with_suffix(".pth")
        torch.save({"state_dict": Wav2Lip().state_dict()}, path)
        return path
    from baselines.talklip.checkpoint import save_talklip

    path = path.with_suffix(".safetensors")
    if model == "talklip":
        from baselines.talklip.model import TalkLipConfig, build_talklip

        config = TalkLipConfig.for_size("paper")
        save_talklip(path, build_talklip(config), config, training_data="random weights (benchmark)")
        return path
    from synctalklip.generator import SyncTalklipVariant, build_generator
    from tfgbench.readers.avhubert import AVHubertConfig

    spec = SyncTalklipVariant(size="paper")
    gen, config = build_generator(spec, AVHubertConfig.large())
    save_talklip(path, gen, config, training_data="random weights (benchmark)", synctalklip=spec.to_dict())
    return path


def tiny_checkpoint(model: str, plugin_cls, folder: Path) -> tuple[Path | None, str]:
    from tfgbench.errors import MissingResourceError

    try:
        probe = plugin_cls()
        default = getattr(probe, "checkpoint_path", None) or getattr(probe, "weights_path", None)
        if default is not None and Path(default).is_file():
            return None, "shipped"
    except MissingResourceError:
        pass
    import torch

    path = folder / f"{model}-tiny.safetensors"
    if model.startswith("wav2lip"):
        from baselines.wav2lip.model import Wav2Lip

        path = path.with_suffix(".pth")
        torch.save({"state_dict": Wav2Lip(width=0.25).state_dict()}, path)
        return path, "random"
    from baselines.talklip.checkpoint import save_talklip

    if model == "talklip":
        from baselines.talklip.model import TalkLipConfig, build_talklip

        config = TalkLipConfig.for_size("tiny")
        save_talklip(path, build_talklip(config), config, training_data="random weights (benchmark)")
        return path, "random"
    from synctalklip.generator import SyncTalklipVariant, build_generator
    from tfgbench.readers.avhubert import AVHubertConfig

    spec = SyncTalklipVariant()
    gen, config = build_generator(spec, AVHubertConfig.tiny())
    save_talklip(path, gen, config, training_data="random weights (benchmark)", synctalklip=spec.to_dict())
    return path, "random"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clips", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--sizes", default="tiny,paper")
    p.add_argument("--models", default="wav2lip,talklip,synctalklip")
    args = p.parse_args()
    import torch

    from tfgbench import registry
    from tfgbench.data.synthetic import SyntheticDataset

    torch.set_num_threads(args.threads)
    data = SyntheticDataset(split="test")
    samples = [data.load(i) for i in data.ids()[: args.clips + 1]]
    frames = sum(s.num_frames for s in samples[1:])
    print(f"{args.clips} synthetic test clips ({frames} frames, {samples[0].frames.shape[1]}x"
          f"{samples[0].frames.shape[2]}), {args.threads} threads, torch {torch.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            cls = registry.load("models", name)
            for size in args.sizes.split(","):
                if size == "paper":
                    ckpt, weights = paper_checkpoint(name, Path(tmp)), "random, official size"
                else:
                    ckpt, weights = tiny_checkpoint(name, cls, Path(tmp))
                model = cls(device="cpu", checkpoint=str(ckpt) if ckpt else None)
                model.generate_batch(samples[:1])                       # load + warm-up
                t0 = time.perf_counter()
                for s in samples[1:]:
                    model.generate_batch([s])
                dt = time.perf_counter() - t0
                print(f"{name:<12} {size:<6} ({weights}): {frames / dt:7.1f} frames/s  ({dt / args.clips:.2f} s/clip)")


if __name__ == "__main__":
    main()
