"""The command line itself: usage errors, help, completion, version."""

from __future__ import annotations

from conftest import REPO, need_tool, run_cli, run_cli_process

SPEC = REPO / "samples" / "basic.yaml"


def test_usage_errors_are_typers_messages_without_a_traceback():
    r = run_cli_process("render", SPEC, "--bogus")
    assert r.code == 2 and "Traceback" not in r.err
    assert "No such option: --bogus" in r.err and r.out == ""
    r = run_cli("endpoints")
    assert r.code == 2 and "Missing argument 'SPEC'" in r.err


def command_paths() -> list[list[str]]:
    """Every command and command group of the CLI, as the words that name it ([] is acrrules itself)."""
    import typer

    from acrrules.cli import app

    paths, todo = [], [([], typer.main.get_command(app))]
    while todo:
        words, command = todo.pop()
        paths.append(words)
        for name, sub in getattr(command, "commands", {}).items():
            todo.append((words + [name], sub))
    return sorted(paths)


def test_the_walk_finds_every_command():
    """So that the loops below check every command (new ones included), not none."""
    found = {" ".join(words) for words in command_paths()}
    assert found >= {"", "validate", "endpoints", "render", "schema", "tags", "tags diff"}, found


def test_short_help_option_everywhere():
    for words in command_paths():
        long, short = run_cli(*words, "--help"), run_cli(*words, "-h")
        assert long.code == short.code == 0, (words, short.err)
        assert short.out == long.out and "Usage: acrrules" in short.out, words
        assert "-h" in short.out and "--help" in short.out, words


def test_help_shows_no_python_type_names():
    """typer's <str>/<bool> labels are fine; a Python annotation such as list[str] is not."""
    for words in command_paths():
        text = run_cli(*words, "--help").out
        for python_name in ("list[", "<list", "List[", "Optional[", "NoneType", "typing."):
            assert python_name not in text, (words, python_name, text)
    assert "SPEC..." in run_cli("validate", "--help").out  # its argument is explained in the text instead
    assert "table|json" in run_cli("endpoints", "--help").out and "text|json" in run_cli("tags", "diff", "-h").out
    assert '"changeNumber": [OLD,' in run_cli("tags", "diff", "-h").out  # rich markup ate "[old, new]"


def test_an_unknown_format_is_named_and_the_formats_listed():
    r = run_cli_process("endpoints", SPEC, "--format", "yaml")
    assert r.code == 2 and "Traceback" not in r.err and r.out == ""
    assert (
        r.err.splitlines()[-1] == "Error: Invalid value for '--format': 'yaml' is unknown: the formats are "
        "table and json"
    )
    r = run_cli("tags", "diff", "OLD.json", "NEW.json", "--format", "csv")
    assert r.code == 2
    assert (
        r.err.splitlines()[-1] == "Error: Invalid value for '--format': 'csv' is unknown: the formats are text and json"
    )
    assert run_cli("endpoints", SPEC, "--format", "json").out.startswith("[")


def run_under_bash(*args: str, env: dict | None = None):
    """The CLI started by bash (typer detects the shell from the parent processes)."""
    import os
    import subprocess
    import sys

    need_tool("bash")
    e = dict(os.environ, **(env or {}))
    e.pop("ACRRULES_DEBUG", None)
    return subprocess.run(
        ["bash", "-c", '"$@"; exit $?', "bash", sys.executable, "-m", "acrrules", *args],
        capture_output=True,
        text=True,
        env=e,
        cwd=REPO,
        timeout=60,
    )


def test_show_completion_prints_a_script_that_completes():
    import os
    import subprocess
    import sys

    r = run_under_bash("--show-completion")
    assert r.returncode == 0, r.stderr
    assert "complete -o default -F _acrrules_completion acrrules" in r.stdout
    assert "_ACRRULES_COMPLETE=complete_bash" in r.stdout
    # What the script asks the CLI for on <TAB>: commands, then the formats of --format.
    for words, cword, want in (
        ("acrrules ren", 1, ["render"]),
        ("acrrules tags ", 2, ["diff", "fetch", "prune"]),
        (f"acrrules endpoints {SPEC} --format ", 4, ["table", "json"]),
    ):
        env = dict(os.environ, COMP_WORDS=words, COMP_CWORD=str(cword), _ACRRULES_COMPLETE="complete_bash")
        c = subprocess.run(
            [sys.executable, "-m", "acrrules"], capture_output=True, text=True, env=env, cwd=REPO, timeout=60
        )
        assert c.returncode == 0 and c.stdout.split() == want, (words, c.stdout, c.stderr)


def test_install_completion_writes_the_script_for_bash(tmp_path):
    r = run_under_bash("--install-completion", env={"HOME": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    script = tmp_path / ".bash_completions" / "acrrules.sh"
    assert "_acrrules_completion" in script.read_text()
    assert f"source '{script}'" in (tmp_path / ".bashrc").read_text()


def test_readme_first_command_installs_only_what_running_needs():
    import re

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    first, tests = re.findall(r"```sh\n(.*?)```", readme, re.S)[:2]
    assert "pip install . &&" in first and "[test]" not in first, first
    assert "pip install '.[test]'" in tests and "pytest" in tests, tests


def test_acrrules_uses_no_private_module_or_name_of_another_package():
    """typer._click, typer._coercion, _socket, ...: the next release may change them without a word."""
    import ast

    found = []
    for path in sorted((REPO / "acrrules").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found += [(path.name, a.name) for a in node.names if any(p.startswith("_") for p in a.name.split("."))]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module != "__future__":
                parts = node.module.split(".") + [a.name for a in node.names]
                found += [(path.name, node.module)] if any(p.startswith("_") for p in parts) else []
    assert found == []


def test_the_version_is_written_in_one_place():
    """acrrules.__version__; pyproject.toml reads it at build time (the wheel test checks the built one)."""
    import tomllib

    from acrrules import __version__

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "acrrules.__version__"}
    assert run_cli("--version").out == f"acrrules {__version__}\n"
