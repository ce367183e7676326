"""Rules of the code itself (issue 24): no product function over 80 lines except numba kernels."""

import subprocess
import sys

from conftest import ROOT


def test_no_long_product_functions():
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "long_functions.py"), "--limit", "80"],
                       capture_output=True, text=True)
    assert r.returncode == 0, "functions over 80 lines (split them into named steps):\n" + r.stdout


def test_the_check_finds_long_functions():  # the rule's check can fail
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "long_functions.py"), "--limit", "30"],
                       capture_output=True, text=True)
    lines = r.stdout.splitlines()
    assert r.returncode == 1 and lines and all(int(line.split()[0]) > 30 for line in lines)
