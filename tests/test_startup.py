"""`import tfgbench` and `tfgbench --help` must not import torch, Ray or pandas (fast start)."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
import tfgbench
from tfgbench import cli, registry
try:
    cli.main({argv!r})
except SystemExit:
    pass
heavy = {{m.split('.')[0] for m in sys.modules}} & {{'torch', 'pandas', 'ray'}}
print(','.join(sorted(heavy)).upper() or 'CLEAN')
"""


def probe(argv: list[str]) -> str:
    out = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv)], capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def test_import_and_help_do_not_import_torch_ray_or_pandas():
    assert probe(["--help"]) == "CLEAN"
    assert probe(["run", "--help"]) == "CLEAN"
    assert probe(["run", "--executor", "ray", "--help"]) == "CLEAN"
    assert probe(["table", "--help"]) == "CLEAN"
    assert probe(["list", "models"]) == "CLEAN"
    assert probe(["list", "protocols"]) == "CLEAN"


def test_probe_detects_torch():
    # the check itself must be able to fail
    out = subprocess.run([sys.executable, "-c", PROBE.replace("import tfgbench\n", "import tfgbench, torch\n")
                          .format(argv=["--help"])], capture_output=True, text=True)
    assert out.stdout.strip().splitlines()[-1] == "TORCH"
    out = subprocess.run([sys.executable, "-c", PROBE.replace("import tfgbench\n", "import tfgbench, pandas\n")
                          .format(argv=["--help"])], capture_output=True, text=True)
    assert out.stdout.strip().splitlines()[-1] == "PANDAS"


def test_synctalklip_help_does_not_import_torch():
    code = ("import sys\nfrom synctalklip import cli\n"
            "for argv in (['--help'], ['train', '--help'], ['plot-log', '--help']):\n"
            "    try:\n        cli.main(argv)\n    except SystemExit:\n        pass\n"
            "print('TORCH' if any(m == 'torch' or m.startswith('torch.') for m in sys.modules) else 'CLEAN')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip().splitlines()[-1] == "CLEAN"
