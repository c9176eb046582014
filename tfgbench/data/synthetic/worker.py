"""A corpus generator worker process: reads a job (JSON on stdin: seed, sizes, frame size, output
folder, clip specs), renders and writes each clip, and prints its manifest entry as one JSON
line on stdout. Started by :func:`tfgbench.data.synthetic.generation._render`."""

from __future__ import annotations

import json
import sys

from tfgbench.data.synthetic.generation import ClipSpec, _init_worker, _job


def main() -> int:
    job = json.loads(sys.stdin.read())
    sizes = {k: tuple(v) for k, v in job["sizes"].items()}
    _init_worker(job["seed"], sizes, job["size"], job["out"])
    for spec in job["specs"]:
        entry = _job(ClipSpec(**spec))
        sys.stdout.write(json.dumps(entry) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
