"""Static checks: ruff on Python, salt-lint on every SLS, yamllint on plain YAML files."""

import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent
BIN = pathlib.Path(sys.executable).parent


def _run(cmd):
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False,
                          stdin=subprocess.DEVNULL)


def test_ruff_is_clean():
    proc = _run([str(BIN / "ruff"), "check", "."])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_salt_lint_is_clean_on_every_sls():
    files = sorted(str(p) for p in REPO.glob("**/*.sls") if ".lab" not in p.parts
                   and ".venv" not in p.parts and ".scratch" not in p.parts)
    assert files
    proc = _run([str(BIN / "salt-lint"), *files])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_yamllint_is_clean_on_plain_yaml():
    files = ["pillar.example", ".yamllint", *[str(p.relative_to(REPO)) for p in
             sorted((REPO / "moodle_ha" / "parameters").rglob("*.yaml"))]]
    proc = _run([str(BIN / "yamllint"), "-c", ".yamllint", *files])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _shell_scripts():
    """Plain shell scripts of the repo: a shell shebang, not Jinja templates."""
    skip = {".git", ".venv", ".lab", ".scratch"}
    out = []
    for path in sorted(REPO.rglob("*")):
        if not path.is_file() or skip & set(path.relative_to(REPO).parts):
            continue
        if path.suffix in (".jinja", ".py", ".sls", ".yaml", ".md"):
            continue
        try:
            head = path.open("rb").readline()
        except OSError:
            continue
        if head.startswith(b"#!") and any(sh in head for sh in (b"/sh", b"bash")):
            out.append(str(path.relative_to(REPO)))
    return out


def test_shellcheck_is_clean_on_shell_scripts():
    files = _shell_scripts()
    assert ".ci/run" in files and "test/run.sh" in files
    proc = _run([str(BIN / "shellcheck"), *files])
    assert proc.returncode == 0, proc.stdout + proc.stderr
