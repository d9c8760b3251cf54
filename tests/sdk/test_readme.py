"""The README's Python example runs unchanged against the server."""

import ast
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_readme_example_buys_a_server_and_restarts_its_phones(cph, tmp_path):
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "README has no Python example"
    script = tmp_path / "example.py"
    script.write_text(blocks[0])
    # The example reads cph-data/bootstrap.json relative to where it runs.
    (tmp_path / "cph-data").symlink_to(cph.data_dir, target_is_directory=True)
    r = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    statuses = ast.literal_eval(r.stdout.strip().splitlines()[-1])  # the example prints the job statuses
    assert statuses and all(s == 2 for s in statuses), r.stdout
