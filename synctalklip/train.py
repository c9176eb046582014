"""``python -m synctalklip.train avsyncnet|generator [ARGS...]``: the ``synctalklip train`` command as a
module, so that ``torchrun`` can start it on several processes or GPUs::

    torchrun --nproc-per-node 2 -m synctalklip.train avsyncnet --size tiny --variant base
    torchrun --nproc-per-node 4 -m synctalklip.train generator --variant base --device cuda

Under ``torchrun`` each rank first takes GPU ``LOCAL_RANK`` where there are GPUs
(:func:`tfgbench.distributed.prepare_launch`); the stage then trains through
:func:`tfgbench.training.fit`, which joins the process group and averages the gradients over the
ranks. Without ``torchrun`` it is exactly ``synctalklip train ...``.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from synctalklip.cli import STAGES
    from synctalklip.cli import main as cli_main

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in STAGES:
        stages = "|".join(sorted(STAGES))
        print(f"usage: [torchrun --nproc-per-node N] python -m synctalklip.train {{{stages}}} [ARGS...]\n"
              f"  (`synctalklip train {{{stages}}} --help` lists a stage's arguments)",
              file=sys.stderr if argv and argv[0] not in ("-h", "--help") else sys.stdout)
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    from tfgbench.distributed import prepare_launch

    prepare_launch()
    return cli_main(["train", *argv])


if __name__ == "__main__":
    raise SystemExit(main())
