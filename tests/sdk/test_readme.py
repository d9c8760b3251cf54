"""The README's Python example runs unchanged against the server."""

import ast
import os
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


def test_readme_adb_and_object_storage_examples(cph, tmp_path):
    from adb_tools import ADB, APK, StockAdb

    assert ADB, "stock adb is needed (apt-get install adb)"
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 2, "README has no ADB example"
    script = tmp_path / "adb_example.py"
    script.write_text(blocks[1])
    (tmp_path / "cph-data").symlink_to(cph.data_dir, target_is_directory=True)
    (tmp_path / "app.apk").symlink_to(APK)
    adb = StockAdb(None)  # an adb server of its own; the example adds its key pair
    try:
        env = {**os.environ, **{k: v for k, v in adb.env.items() if k != "PATH"}}
        r = subprocess.run(
            [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env
        )
        assert r.returncode == 0, r.stderr
        lines = r.stdout.strip().splitlines()
        assert "Success" in lines[-3], r.stdout
        assert ast.literal_eval(lines[-2]) == ["package:io.appium.settings"], r.stdout
        assert ast.literal_eval(lines[-1]) == [], r.stdout
        # The object storage example continues on the same server (its phone was reset).
        assert len(blocks) >= 3, "README has no object storage example"
        script = tmp_path / "obs_example.py"
        script.write_text(blocks[2])
        r = subprocess.run(
            [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env
        )
        assert r.returncode == 0, r.stderr
        lines = r.stdout.strip().splitlines()
        assert ast.literal_eval(lines[-2]) == [2] * len(ast.literal_eval(lines[-2])) and lines[-2] != "[]", r.stdout
        assert ast.literal_eval(lines[-1]) == ["package:io.appium.settings"], r.stdout
    finally:
        adb.close()
