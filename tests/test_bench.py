"""The benchmark runner itself (the benchmarks are run by hand, never timed in tests)."""

import subprocess
import sys


def test_training_benchmarks_run_where_textual_is_not_installed():
    # A GPU box that only trains may lack the app's dependencies.
    code = "import sys; sys.modules['textual'] = None; from minigpt.bench import main; main(['train', '--help'])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--steps" in result.stdout
