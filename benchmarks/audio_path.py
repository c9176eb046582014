"""How much can the audio change a generator's output? Stage by stage through the face decoder.

    python benchmarks/audio_path.py [--models wav2lip,talklip,synctalklip] [--checkpoint MODEL=FILE]

Every generator here (Wav2Lip, TalkLip, SyncTalklip) injects the audio as one vector at the 1x1
bottleneck of a U-Net whose skip connections carry the face. For each model the script feeds the
same faces (the first 8 frames of synthetic test clip ``s36/u000``, lower half masked, frame 0 as
reference) with two different audio embeddings (two independent N(0, 1) draws at the bottleneck
input) and prints the mean absolute difference between the two passes after each decoder stage and
at the output (pixels in [0, 1]). ``fresh`` rows are the same networks with random weights (PyTorch
default init), in eval mode: BatchNorm's default running statistics (mean 0, variance 1) shrink the
activations at every stage, so their tiny output differences say little about training.

A weak proxy, read with care: the two embeddings are random draws, not audio features, and the
difference is averaged over the whole crop. The retrained ``synctalklip`` (mouths opening with the
speech in ``docs/synctalklip-strip.png``, LSE-C 0.30 with its own audio against 0.15 with another
clip's in ``benchmarks/audio_control.py``) moves its output by only ~4e-5 here. The audio-swap
control is the test of audio use.
"""

from __future__ import annotations

import argparse


def _stages(net, faces, embedding):
    """Per decoder stage output ``[(shape, tensor)]`` and the final image, for one bottleneck input."""
    import torch

    feats, out = [], []
    x = faces
    for block in net.face_encoder_blocks:
        x = block(x)
        feats.append(x)
    x = embedding
    for block in net.face_decoder_blocks:
        y = block(x)
        out.append(y)
        x = torch.cat((y, feats.pop()), dim=1)
    out.append(net.output_block(x))
    return out


def _load(name: str, path: str | None):
    """(trained network, the same architecture with fresh random weights)."""
    from baselines.talklip.model import build_talklip
    from baselines.wav2lip.model import Wav2Lip
    from tfgbench import registry

    plugin = registry.load("models", name)(checkpoint=path)
    if name.startswith("wav2lip"):
        net = plugin.network()
        return net, Wav2Lip(net.width).eval()
    net, config, _ = plugin.load_generator(plugin.checkpoint_path)
    return net.float().eval(), build_talklip(config).eval()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="wav2lip,talklip,synctalklip")
    p.add_argument("--checkpoint", action="append", default=[], metavar="MODEL=FILE")
    p.add_argument("--sample", default="s36/u000")
    args = p.parse_args()
    import torch

    from baselines.talklip.data import generator_input, to_float
    from tfgbench import registry
    from tfgbench.figures import crop_box

    torch.manual_seed(0)
    checkpoints = dict(item.split("=", 1) for item in args.checkpoint)
    sample = registry.load("datasets", "synthetic")(split="test").load(args.sample)
    frames = list(range(8))
    x0, y0, x1, y1 = (int(v) for v in crop_box(sample.boxes, frames, sample.frames.shape[1:], "face"))
    import numpy as np
    from PIL import Image

    crops = np.stack([np.asarray(Image.fromarray(f[y0:y1, x0:x1]).resize((96, 96))) for f in sample.frames[:8]])
    real = to_float(crops)
    faces = generator_input(real, real[:1].expand(len(real), -1, -1, -1))
    print(f"faces: {args.sample} frames 0-7 (96x96 crops); mean |difference| between two audio inputs per stage")
    print("| model | weights | " + " | ".join(f"stage {i}" for i in range(7)) + " | output |")
    print("|---|---|" + "---|" * 8)
    for name in args.models.split(","):
        net, fresh = _load(name, checkpoints.get(name))
        dim = net.audio_dim if hasattr(net, "audio_dim") else None
        for label, model in (("trained", net), ("fresh", fresh)):
            with torch.no_grad():
                if dim is None:   # Wav2Lip: the audio encoder's embedding is the bottleneck input itself
                    width = model.face_decoder_blocks[0][0].conv_block[0].in_channels
                    e1, e2 = torch.randn(2, len(faces), width, 1, 1)
                    b1, b2 = e1, e2
                else:
                    e1, e2 = torch.randn(2, len(faces), dim)
                    b1 = model.bottleneck(e1)[:, :, None, None]
                    b2 = model.bottleneck(e2)[:, :, None, None]
                s1, s2 = _stages(model, faces, b1), _stages(model, faces, b2)
            diffs = [float((a - b).abs().mean()) for a, b in zip(s1, s2)]
            print(f"| {name} | {label} | " + " | ".join(f"{d:.2g}" for d in diffs) + " |")


if __name__ == "__main__":
    main()
