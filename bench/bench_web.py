"""The dashboard's bench (bench_web.mjs, in headless Chromium against a real local race), run by `make bench`."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

if shutil.which("node") is None:
    sys.exit("bench_web needs Node.js 18+ (and Chromium): see README")
subprocess.run([str(ROOT / "scripts" / "build-web.sh")], check=True)
sys.exit(subprocess.run(["node", str(ROOT / "bench" / "bench_web.mjs"), *sys.argv[1:]], cwd=ROOT).returncode)
