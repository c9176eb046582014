"""``tfgbench lse VIDEO [VIDEO ...]``: lip-sync offset, LSE-C and LSE-D of videos.

Several videos are scored with the next one decoded while the network runs on the current one.
Light at import (no torch): the scorer is imported in :func:`run`.
"""

from __future__ import annotations

import argparse
import json
import math

from tfgbench.metrics.lse.protocols import CONFIGS

EPILOG = """weights:
  the official protocols need syncnet_python's syncnet_v2.model: --syncnet FILE, or
  $TFGBENCH_SYNCNET, or $TFGBENCH_HOME/weights/syncnet_v2.model. lse/synthetic uses the
  shipped evaluator unless --syncnet names another tfgbench checkpoint.
examples:
  tfgbench lse result.mp4 --syncnet syncnet_v2.model
  tfgbench lse result.mp4 --protocol lse/syncnet-python --s3fd sfd_face.pth --json
  tfgbench lse out/*.mp4 --json > scores.json
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Score lip sync: AV offset (frames), LSE-C (confidence, higher is better) and "
                          "LSE-D (min distance, lower is better), as the official scripts compute them.")
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("videos", nargs="+", metavar="VIDEO", help="video file(s) with an audio track")
    parser.add_argument("--syncnet", metavar="FILE", help="SyncNet weights (syncnet_v2.model)")
    parser.add_argument("--protocol", default="lse/wav2lip", choices=list(CONFIGS),
                        help="scoring protocol (default lse/wav2lip; see `tfgbench list protocols`)")
    parser.add_argument("--s3fd", metavar="FILE",
                        help="S3FD weights sfd_face.pth for lse/syncnet-python (else $TFGBENCH_S3FD, "
                             "$TFGBENCH_HOME/weights/sfd_face.pth, then OpenCV's Haar detector)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json", action="store_true",
                        help="print JSON: {offset, lse_c, lse_d, protocol} (several videos: keyed by path)")


def run(args: argparse.Namespace) -> int:
    from tfgbench.errors import TfgbenchError
    from tfgbench.metrics.lse.scorer import SyncScorer

    scorer = SyncScorer(args.protocol, weights=args.syncnet, device=args.device, s3fd=args.s3fd,
                        threads=args.threads)
    if len(args.videos) == 1:
        r = scorer.score_file(args.videos[0])  # errors propagate: the CLI prints them, exit 2
        row = {"offset": r.offset, "lse_c": r.lse_c, "lse_d": r.lse_d, "protocol": args.protocol}
        if args.json:
            print(json.dumps(row))
        else:
            print(f"{args.videos[0]}: offset {r.offset:+d}  LSE-C {r.lse_c:.3f}  LSE-D {r.lse_d:.3f}  "
                  f"({args.protocol})")
        return 0
    rows: dict[str, dict] = {}
    failed = 0
    for path, r in scorer.score_files(args.videos):
        if isinstance(r, TfgbenchError):
            failed += 1
            rows[str(path)] = {"error": str(r)}
            if not args.json:
                print(f"{path}: error: {r}")
            continue
        rows[str(path)] = {"offset": r.offset, "lse_c": r.lse_c, "lse_d": r.lse_d, "protocol": args.protocol}
        if not args.json:
            print(f"{path}: offset {r.offset:+d}  LSE-C {r.lse_c:.3f}  LSE-D {r.lse_d:.3f}")
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        ok = [v for v in rows.values() if "error" not in v]
        mean = (lambda k: sum(v[k] for v in ok) / len(ok)) if ok else (lambda k: math.nan)
        print(f"mean over {len(ok)} videos ({failed} failed): LSE-C {mean('lse_c'):.3f}  "
              f"LSE-D {mean('lse_d'):.3f}  ({args.protocol})")
    return 1 if failed else 0
