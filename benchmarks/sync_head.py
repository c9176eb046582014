"""How far apart does SyncTalklip's frozen supervisor put synced and unsynced mouths?

On training batches exactly as stage 2 draws them (2 clips x 8 consecutive frames, the rest of each
clip real), the novel contrastive loss (eq. 12) with the supervisor's own head
(``tau ||F(a) - v||_1``, ``--sync-head expert``) is computed for the real mouths of the window and for
the same window with its mouths taken from 10 frames later in the clip (out of sync). The gap is the
most a generator can gain from the term by following the audio; it sets the scale of ``cont_w``.

    python benchmarks/sync_head.py [--supervisor FILE] [--batches 20] [--shift 10]
"""

from __future__ import annotations

import argparse


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--supervisor", default="synctalklip/weights/avsyncnet-base-tiny.safetensors")
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--shift", type=int, default=10)
    p.add_argument("--clips", type=int, default=60, help="training clips to draw from")
    args = p.parse_args()

    import numpy as np
    import torch

    from baselines.talklip.data import TrainingClips, sample_batch
    from baselines.talklip.losses import expert_audio_features
    from baselines.talklip.train import load_splits
    from synctalklip.avsyncnet import load_avsyncnet
    from synctalklip.losses import novel_contrastive_loss
    from synctalklip.train_generator import expert_sync_pair
    from tfgbench.data.faceclips import normalise_rois

    torch.set_num_threads(1)
    net = load_avsyncnet(args.supervisor)
    pair = expert_sync_pair(net, "novel")
    train_clips, _ = load_splits("synthetic", None, args.clips, 1)
    train = TrainingClips.from_face_clips(train_clips, net.codec, progress=False)
    rng = np.random.default_rng(0)
    encoder = net.seq2seq.encoder
    real, shifted = [], []
    for _ in range(args.batches):
        b = sample_batch(train, rng, 2, 8)
        rois = normalise_rois(b.clip_rois)
        clips = len(b.clips)
        with torch.no_grad():
            audio = expert_audio_features(net.seq2seq, b.fbank, b.padding)
            audio = audio.reshape(-1, audio.shape[-1])[b.index]
            moved = rois.clone()
            moved[b.index] = rois[torch.clamp(b.index + args.shift, max=len(rois) - 1)]
            for r, out in ((rois, real), (moved, shifted)):
                v = encoder(r.view(clips, 1, -1, *r.shape[1:]), b.padding)
                out.append(novel_contrastive_loss(*pair(audio, v.reshape(-1, v.shape[-1])[b.index])).item())
    r, s = np.array(real), np.array(shifted)
    print(f"{args.supervisor}: novel contrastive loss over {args.batches} training batches (2 clips x 8 frames)")
    print(f"real mouths           {r.mean():+.3f} (sd {r.std():.3f})")
    print(f"mouths {args.shift} frames later  {s.mean():+.3f} (sd {s.std():.3f})")
    print(f"gap                   {s.mean() - r.mean():.3f}")


if __name__ == "__main__":
    main()
