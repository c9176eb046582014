"""``tfgbench wer VIDEO --text "..."``: lip-read one video and score it against its transcript.

Light at import (no torch): the scorer is imported in :func:`run`.
"""

from __future__ import annotations

import argparse
import json

from tfgbench.metrics.wer.protocols import CONFIGS

EPILOG = """readers (--reader FILE, else the environment variable, else $TFGBENCH_HOME/weights/NAME):
  wer/talklip-avhubert   TalkLip 'Lip reading observer 1' (fairseq .pt)   $TFGBENCH_AVHUBERT  lip_reading_observer1.pt
  wer/talklip-conformer  TalkLip 'Lip reading observer 2'                 $TFGBENCH_CONFORMER_OBSERVER  conformer.pt
  wer/avhubert-roi       an AV-HuBERT VSR checkpoint (fairseq .pt)        $TFGBENCH_AVHUBERT_VSR  large_vox_433h.pt
  wer/synthetic-*        the checkpoints shipped in tfgbench/weights/
  AV-HuBERT files without an embedded dictionary/tokenizer also need --spm (or $TFGBENCH_AVHUBERT_SPM).
examples:
  tfgbench wer result.mp4 --text "bin blue at f two now" --reader lip_reading_observer1.pt
  tfgbench wer result.mp4 --text "$(cat ref.txt)" --protocol wer/talklip-conformer --json
  tfgbench wer synth.mp4 --text "set red by u six soon" --protocol wer/synthetic-avhubert --mouth-box 27,60,93,126
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Lip-read a video with an official (or the synthetic corpus's) lip reader and print "
                          "its word error rate against the reference transcript.")
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("video", metavar="VIDEO", help="video file (frames are read; audio is not used)")
    parser.add_argument("--text", required=True, help="the reference transcript (what is said)")
    parser.add_argument("--reader", metavar="FILE", help="lip-reader checkpoint (see below)")
    parser.add_argument("--protocol", default="wer/talklip-avhubert", choices=list(CONFIGS),
                        help="scoring protocol (default wer/talklip-avhubert; see `tfgbench list protocols`)")
    parser.add_argument("--spm", metavar="FILE", help="SentencePiece .model of the AV-HuBERT checkpoint")
    parser.add_argument("--mouth-box", metavar="X1,Y1,X2,Y2",
                        help="fixed mouth box for the synthetic protocols (a single video has no per-frame boxes)")
    parser.add_argument("--landmarks", metavar="FILE", help="(T, 68, 2) .npy face landmarks for wer/avhubert-roi")
    parser.add_argument("--mean-face", metavar="FILE", help="20words_mean_face.npy for wer/avhubert-roi")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json", action="store_true",
                        help="print JSON: {wer, edits, words, hypothesis, protocol}")


def _mouth_box(text: str | None):
    import numpy as np

    from tfgbench.errors import TfgbenchError

    if text is None:
        return None
    try:
        box = [int(v) for v in text.split(",")]
    except ValueError:
        box = []
    if len(box) != 4:
        raise TfgbenchError(f"--mouth-box must be four integers X1,Y1,X2,Y2, got {text!r}")
    return np.asarray(box)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from tfgbench.errors import MediaError, TfgbenchError
    from tfgbench.media.io import read_video
    from tfgbench.metrics.wer.scorer import WERScorer

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    meta = {}
    if args.mouth_box is not None:
        meta["mouth_box"] = _mouth_box(args.mouth_box)
    elif args.protocol.startswith("wer/synthetic"):
        from tfgbench.data.boxes import boxes_beside

        boxes = boxes_beside(args.video, "mouth_boxes")  # a synthetic clip's alignment JSON
        if boxes is not None:
            meta["mouth_box"] = boxes
    if args.landmarks is not None:
        try:
            meta["landmarks"] = np.load(args.landmarks, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise TfgbenchError(f"{args.landmarks}: cannot read landmarks ({e})") from e
    media = read_video(args.video, audio=False)
    if media.frames is None or len(media.frames) == 0:
        raise MediaError(f"{args.video}: the video has no frames")
    scorer = WERScorer(args.protocol, weights=args.reader, device=args.device, spm=args.spm,
                       mean_face=args.mean_face)
    r = scorer.score(media.frames, args.text, meta, where=str(args.video))
    row = {"wer": r.errors.wer, "edits": r.errors.edits, "words": r.errors.words,
           "hypothesis": r.hypothesis, "protocol": args.protocol}
    if args.json:
        print(json.dumps(row))
    else:
        print(f"{args.video}: WER {100 * r.errors.wer:.1f}% ({r.errors.edits} edits / {r.errors.words} words, "
              f"{args.protocol})\n  reference:  {r.reference}\n  hypothesis: {r.hypothesis}")
    return 0
