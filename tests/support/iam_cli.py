"""Running ``openhi iam ...`` on a test server's index (the same settings flags as ``openhi serve``)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from tests.support.server import BIN, ServerProcess


def iam(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    """``openhi iam ARGS`` on the server's index, as the operator would run it."""
    command = [str(BIN / "openhi"), "iam", *args, "--data-dir", str(server.data_dir), "--index-url", server.index_url]
    return subprocess.run(command, env=server.env, capture_output=True, text=True, timeout=120, check=False)


def iam_json(server: ServerProcess, *args: str) -> Any:
    """The JSON a successful ``openhi iam`` command prints (None when it prints nothing)."""
    result = iam(server, *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else None
