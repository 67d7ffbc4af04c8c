"""The command line itself: usage errors, help, completion, version."""
from __future__ import annotations

from conftest import REPO, run_cli, run_cli_process

SPEC = REPO / "samples" / "basic.yaml"


def test_usage_errors_are_typers_messages_without_a_traceback():
    r = run_cli_process("render", SPEC, "--bogus")
    assert r.code == 2 and "Traceback" not in r.err
    assert "No such option: --bogus" in r.err and r.out == ""
    r = run_cli("endpoints")
    assert r.code == 2 and "Missing argument 'SPEC'" in r.err
