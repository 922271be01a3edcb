"""The container artefacts: deploy/install.sh, deploy/entrypoint.sh, Dockerfile, .dockerignore, compose.yaml.

No image is built here (no container registry to pull the base image from), so these tests check what can be
checked without one: the install script, which the Dockerfile runs as its only install step, runs in a clean
virtual environment (``slow``: the full install, about 2 minutes plus the model fetch; ``--check`` for each step's
command in a second); the entry point migrates, then execs itbot; the Dockerfile and compose file say what
docs/deploy.md says they do, and set only settings that exist.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bot.settings import Settings, env_name

REPO = Path(__file__).resolve().parents[1]
INSTALL = REPO / "deploy" / "install.sh"
ENTRYPOINT = REPO / "deploy" / "entrypoint.sh"
DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "compose.yaml"
QUESTION = "i forgot my password"


def _torch_pin() -> str:
    """The pin `make setup` installs, which the script must install too."""
    return re.search(r"pip install[^\n#]*(torch==[0-9.]+)", (REPO / "Makefile").read_text()).group(1)


def _setting_names() -> set[str]:
    return {env_name(field) for field in Settings.model_fields}


def _documented_names() -> set[str]:
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (REPO / ".env.example").read_text(), re.MULTILINE))


def _install(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(INSTALL), *args], capture_output=True, text=True, timeout=timeout,
                          env=env if env is not None else dict(os.environ))


def _plan(result: subprocess.CompletedProcess) -> list[str]:
    assert result.returncode == 0, result.stderr
    return [line[2:] for line in result.stdout.splitlines() if line.startswith("+ ")]


def _dockerignore() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _ignored(path: str, patterns: list[str]) -> bool:
    """Whether Docker leaves ``path`` (relative, with /) out of the build context: the last matching pattern wins.

    Enough of the .dockerignore syntax for this file: ``**/`` prefixes, ``!`` exceptions, and a pattern that
    matches a folder excludes what is inside it.
    """
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        if pattern.startswith("**/"):
            hit = any(fnmatch.fnmatchcase(part, pattern[3:]) for part in parts)
        else:
            hit = any(fnmatch.fnmatchcase(prefix, pattern) for prefix in prefixes)
        if hit:
            ignored = not negate
    return ignored


def _build_context(destination: Path) -> Path:
    """A copy of what ``docker build .`` sends to the builder (the repository less .dockerignore)."""
    patterns = _dockerignore()
    for root, dirs, files in os.walk(REPO):
        relative = Path(root).relative_to(REPO)
        dirs[:] = [name for name in dirs if not _ignored((relative / name).as_posix(), patterns)]
        for name in files:
            if not _ignored((relative / name).as_posix(), patterns):
                target = destination / relative / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(Path(root) / name, target)
    return destination


# --- deploy/install.sh, fast: every step's command, and the one-line refusals

def test_install_script_is_valid_bash() -> None:
    assert subprocess.run(["bash", "-n", str(INSTALL)], capture_output=True).returncode == 0
    assert "set -euo pipefail" in INSTALL.read_text()
    assert os.access(INSTALL, os.X_OK) and os.access(ENTRYPOINT, os.X_OK)


def test_install_check_plans_every_step_in_order_and_installs_nothing(tmp_path: Path) -> None:
    venv, cache = tmp_path / "venv", tmp_path / "cache"
    plan = _plan(_install("--check", "--python", sys.executable, "--cache-dir", str(cache), "--fetch-model",
                          str(venv)))

    pip = f"{venv}/bin/python -m pip --disable-pip-version-check install --quiet"
    assert plan[0] == f"{sys.executable} -m venv {venv}"
    assert plan[1] == f"{pip} --upgrade pip"
    assert plan[2] == f"{pip} {_torch_pin()}"  # CPU torch first, at the Makefile's pin
    assert plan[3] == f"{pip} {REPO} {_torch_pin()}"  # the project itself, not editable, no [dev]
    assert plan[4] == f"env ITBOT_CACHE_DIR={cache} {venv}/bin/itbot model fetch"
    smoke = [line.split(f"{venv}/bin/itbot ", 1)[1] for line in plan[5:]]
    assert smoke == ["--help", "kb check", r"ask --json --mode kb i\ forgot\ my\ password"]
    assert all(f"ITBOT_CACHE_DIR={cache} " in line and " -C " in line for line in plan[5:])  # not in the cwd's .env
    assert not venv.exists() and not cache.exists()


def test_install_check_without_model_or_smoke(tmp_path: Path) -> None:
    plan = _plan(_install("--check", "--no-smoke", "--python", sys.executable, str(tmp_path / "venv")))
    assert len(plan) == 4 and not any("itbot " in line for line in plan)


def test_install_takes_torch_from_the_index_it_is_given(tmp_path: Path) -> None:
    env = dict(os.environ, TORCH_INDEX_URL="https://download.pytorch.org/whl/cpu")
    plan = _plan(_install("--check", "--no-smoke", "--python", sys.executable, str(tmp_path / "v"), env=env))
    torch_step, project_step = plan[2], plan[3]
    assert torch_step.endswith(f"--index-url https://download.pytorch.org/whl/cpu {_torch_pin()}")
    assert "--index-url" not in project_step  # every other package comes from the ordinary index


def test_install_reuses_an_existing_environment(tmp_path: Path) -> None:
    """Idempotent: a second run keeps the environment and lets pip skip what is there."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    os.symlink(sys.executable, venv / "bin" / "python")
    result = _install("--check", "--no-smoke", "--python", sys.executable, str(venv))
    assert not any(" -m venv " in line for line in _plan(result))
    assert "reusing the virtual environment" in result.stderr


def test_install_reads_the_torch_pin_from_the_makefile(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (source / "Makefile").write_text("setup:\n\t$(PY) -m pip install --quiet torch==9.8.7\n")
    plan = _plan(_install("--check", "--no-smoke", "--python", sys.executable, "--source", str(source),
                          str(tmp_path / "venv")))
    assert plan[2].endswith(" torch==9.8.7") and plan[3].endswith(f" {source} torch==9.8.7")

    (source / "Makefile").write_text("setup:\n\tpip install torch\n")
    result = _install("--check", "--python", sys.executable, "--source", str(source), str(tmp_path / "venv"))
    assert result.returncode != 0
    assert result.stderr.strip().startswith("install.sh: no 'pip install ... torch==X.Y.Z' line")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "usage: install.sh [options] VENV_DIR"),
        (["--frobnicate", "v"], "unknown option --frobnicate"),
        (["--fetch-model", "v"], "--fetch-model needs --cache-dir"),
        (["--python", "no-such-python3", "v"], "no Python interpreter 'no-such-python3'"),
        (["--source", "/nonexistent", "v"], "no pyproject.toml in /nonexistent"),
    ],
)
def test_install_refuses_with_one_line(args: list[str], message: str) -> None:
    result = _install("--check", *args)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr


def test_install_refuses_a_python_older_than_3_11(tmp_path: Path) -> None:
    old = tmp_path / "python3.10"
    old.write_text("#!/bin/sh\n"
                   "case \"$2\" in *print*) echo 3.10 ;; *version_info*) exit 1 ;; esac\n")
    old.chmod(0o755)
    result = _install("--check", "--python", str(old), str(tmp_path / "venv"))
    assert result.returncode == 1
    assert result.stderr == (f"install.sh: Python 3.11 or newer is needed, '{old}' is 3.10: "
                             "pass another with --python\n")


# --- deploy/install.sh, for real: a fresh virtual environment that shares nothing with this one

@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_install_script_in_a_clean_virtual_environment(tmp_path: Path, engine, cache_dir: Path) -> None:
    """The image's install steps end to end, on the files `docker build` would send, with the model fetch.

    The router and the KB index are copied from this run's shared cache (the ``engine`` fixture built them):
    training the router again would add minutes and test nothing the other tests do not.
    """
    context = _build_context(tmp_path / "context")
    venv, cache = tmp_path / "opt-itbot", tmp_path / "data-cache"
    cache.mkdir()
    for built in [*cache_dir.glob("router-*.pkl"), *cache_dir.glob("kb-index-*.npy")]:
        shutil.copy2(built, cache / built.name)
    env = {name: value for name, value in os.environ.items()
           if name not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME") and not name.startswith(("ITBOT_", "SLACK_"))}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(sys.prefix))
    base_python = getattr(sys, "_base_executable", sys.executable)

    result = subprocess.run(["nice", "bash", str(context / "deploy" / "install.sh"), "--python", base_python,
                             "--cache-dir", str(cache), "--fetch-model", str(venv)],
                            capture_output=True, text=True, timeout=1700, env=env, cwd=tmp_path)

    assert result.returncode == 0, result.stderr[-3000:]
    assert "smoke check passed" in result.stderr
    python = venv / "bin" / "python"
    probe = subprocess.run([str(python), "-c", (
        "import importlib.metadata as m, json, sys, torch, bot; "
        "print(json.dumps([sys.prefix, torch.__version__, bot.__file__, m.distribution('itbot').read_text("
        "'direct_url.json'), [d.metadata['Name'] for d in m.distributions()]]))")],
        capture_output=True, text=True, env=env, cwd=tmp_path)
    assert probe.returncode == 0, probe.stderr
    prefix, torch_version, bot_file, direct_url, installed = yaml.safe_load(probe.stdout)
    assert prefix == str(venv)
    assert torch_version.split("+")[0] == _torch_pin().split("==")[1]
    assert bot_file.startswith(str(venv)) and '"editable": true' not in (direct_url or "")  # a real install
    assert "pytest" not in installed and "selenium" not in installed  # no dev extras
    assert (cache / "models" / "smollm2-135m-instruct" / "config.json").exists()

    again = subprocess.run(["nice", "bash", str(context / "deploy" / "install.sh"), "--python", base_python,
                            "--cache-dir", str(cache), "--fetch-model", str(venv)],
                           capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "reusing the virtual environment" in again.stderr


# --- deploy/entrypoint.sh: migrate, fetch if needed, then exec itbot

@pytest.fixture
def fake_itbot(tmp_path: Path):
    """An ``itbot`` on PATH that logs its pid and arguments; ``db upgrade`` fails when FAIL_UPGRADE is set."""
    bin_dir, log = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    fake = bin_dir / "itbot"
    fake.write_text(f'#!/bin/sh\necho "$$ $*" >> {log}\n'
                    '[ "$1 $2" = "db upgrade" ] && [ -n "${FAIL_UPGRADE:-}" ] && exit 3\nexit 0\n')
    fake.chmod(0o755)

    def start(*args: str, **env: str) -> tuple[int, int, list[tuple[int, str]]]:
        variables = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", **env}
        process = subprocess.Popen(["sh", str(ENTRYPOINT), *args], env=variables)
        rc = process.wait(timeout=30)
        calls = [line.split(" ", 1) for line in log.read_text().splitlines()] if log.exists() else []
        log.unlink(missing_ok=True)
        return rc, process.pid, [(int(pid), argv) for pid, argv in calls]

    return start


def test_entrypoint_upgrades_postgres_then_execs_the_bot(fake_itbot) -> None:
    rc, pid, calls = fake_itbot("run", ITBOT_DATABASE_URL="postgresql+psycopg://itbot:pw@postgres:5432/itbot")
    assert rc == 0
    assert [argv for _, argv in calls] == ["db upgrade", "model fetch --if-needed", "run"]
    assert calls[-1][0] == pid  # exec: the bot replaces the shell, so `docker stop` signals it directly
    assert all(call_pid != pid for call_pid, _ in calls[:-1])


def test_entrypoint_defaults_to_run(fake_itbot) -> None:
    _, pid, calls = fake_itbot(ITBOT_DATABASE_URL="postgresql+psycopg://db/itbot")
    assert calls[-1] == (pid, "run")


def test_entrypoint_leaves_a_sqlite_upgrade_to_the_bot(fake_itbot) -> None:
    """`itbot run` migrates SQLite itself and refuses a lost database file; `db upgrade` would replace it."""
    for env in ({"ITBOT_DATABASE_URL": "sqlite:////data/itbot.db"}, {}):
        rc, pid, calls = fake_itbot("run", **env)
        assert rc == 0 and [argv for _, argv in calls] == ["model fetch --if-needed", "run"]


def test_entrypoint_stops_when_the_upgrade_fails(fake_itbot) -> None:
    rc, _, calls = fake_itbot("web", ITBOT_DATABASE_URL="postgresql+psycopg://db/itbot", FAIL_UPGRADE="1")
    assert rc == 3 and [argv for _, argv in calls] == ["db upgrade"]


def test_entrypoint_runs_other_commands_at_once(fake_itbot) -> None:
    _, pid, calls = fake_itbot("ask", "--json", QUESTION, ITBOT_DATABASE_URL="postgresql+psycopg://db/itbot")
    assert calls == [(pid, f"ask --json {QUESTION}")]


# --- Dockerfile and .dockerignore

def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", "\n".join(line for line in DOCKERFILE.read_text().splitlines()
                                            if not line.lstrip().startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in text.splitlines() if line.strip()]


def test_dockerfile_installs_only_through_the_install_script() -> None:
    instructions = _dockerfile()
    runs = [args for name, args in instructions if name == "RUN"]
    assert any("deploy/install.sh" in run and "/opt/itbot" in run for run in runs)
    assert not any(re.search(r"\bpip\b|apt-get|\bvenv\b", run) for run in runs)  # no step duplicated here
    stages = [args for name, args in instructions if name == "FROM"]
    assert all(stage.split()[0] == "${PYTHON_IMAGE}" for stage in stages)
    assert ("ARG", "PYTHON_IMAGE=python:3.11-slim") in instructions
    assert any(name == "ARG" and args.startswith("FETCH_MODEL=") for name, args in instructions)


def test_dockerfile_runs_as_a_non_root_user_owning_data() -> None:
    instructions = _dockerfile()
    users = [args for name, args in instructions if name == "USER"]
    assert users and users[-1] not in ("root", "0", "0:0")
    runs = " ".join(args for name, args in instructions if name == "RUN")
    assert re.search(rf"useradd .*\b{users[-1]}\b", runs) and f"chown {users[-1]}:{users[-1]} /data" in runs
    names = [name for name, _ in instructions]
    assert names.index("USER") < names.index("ENTRYPOINT")


def test_dockerfile_checks_health_on_healthz_without_curl() -> None:
    instructions = dict(_dockerfile())
    check = instructions["HEALTHCHECK"]
    assert "/healthz" in check and "urllib.request" in check and "curl" not in check
    assert "ITBOT_METRICS_PORT" in check


def test_dockerfile_healthcheck_passes_on_the_bots_health_server_and_fails_without_it() -> None:
    """The HEALTHCHECK command itself, run against the bot's own /healthz (bot/metrics.py)."""
    import json

    from bot.metrics import HealthServer, Metrics

    check = dict(_dockerfile())["HEALTHCHECK"]
    command = json.loads(check[check.index("CMD") + 3:])
    assert command[0] == "/opt/itbot/bin/python"
    command[0] = sys.executable  # the image's venv Python, here this one
    server = HealthServer(Metrics(), {"slack": lambda: False}).start()  # /healthz is up even when not ready
    env = {"PATH": os.environ["PATH"], "ITBOT_METRICS_PORT": str(server.port)}
    try:
        assert subprocess.run(command, env=env, capture_output=True, timeout=30).returncode == 0
    finally:
        server.stop()
    assert subprocess.run(command, env=env, capture_output=True, timeout=30).returncode != 0


def test_dockerfile_fetch_model_argument_reaches_the_install_script(tmp_path: Path) -> None:
    """The RUN line under /bin/sh, with install.sh swapped for a stand-in that prints its arguments."""
    run = next(args for name, args in _dockerfile() if name == "RUN" and "deploy/install.sh" in args)
    stand_in = tmp_path / "install.sh"
    stand_in.write_text('#!/bin/sh\necho "$TORCH_INDEX_URL|$*"\n')
    stand_in.chmod(0o755)
    line = run.replace("/src/deploy/install.sh", str(stand_in))
    outputs = {}
    for fetch in ("0", "1"):
        env = {"PATH": os.environ["PATH"], "FETCH_MODEL": fetch, "TORCH_INDEX_URL": "https://example.test/cpu"}
        outputs[fetch] = subprocess.run(["sh", "-c", line], env=env, capture_output=True, text=True).stdout.strip()
    assert outputs == {"0": "https://example.test/cpu|--cache-dir /data/cache /opt/itbot",
                       "1": "https://example.test/cpu|--cache-dir /data/cache --fetch-model /opt/itbot"}


def test_dockerfile_sets_real_settings_and_exposes_their_ports() -> None:
    from bot.cli import DEFAULT_WEB_PORT

    instructions = _dockerfile()
    env = dict(re.findall(r"(\w+)=(\S+)", " ".join(args for name, args in instructions if name == "ENV")))
    itbot = {name: value for name, value in env.items() if name.startswith("ITBOT_")}
    assert set(itbot) <= _setting_names() & _documented_names()
    assert itbot["ITBOT_CACHE_DIR"] == "/data/cache" and itbot["ITBOT_DATABASE_URL"] == "sqlite:////data/itbot.db"
    settings = Settings(_env_file=None, **{name.removeprefix("ITBOT_").lower(): value for name, value in itbot.items()})
    exposed = {int(port) for name, args in instructions if name == "EXPOSE" for port in args.split()}
    assert exposed == {settings.metrics_port, DEFAULT_WEB_PORT}
    assert ("ENTRYPOINT", '["itbot-entrypoint"]') in instructions and ("CMD", '["run"]') in instructions
    assert ("COPY", "deploy/entrypoint.sh /usr/local/bin/itbot-entrypoint") in instructions


def test_dockerignore_keeps_secrets_and_environments_out_and_the_build_in() -> None:
    patterns = _dockerignore()
    for path in (".env", ".git/HEAD", ".venv/bin/python", "runs/x/adapter.safetensors", "build/lib/bot/app.py",
                 "itbot.egg-info/PKG-INFO", "bot/__pycache__/app.cpython-311.pyc", "itbot.db", ".pytest_cache/v"):
        assert _ignored(path, patterns), path
    needed = ["pyproject.toml", "README.md", "Makefile", "deploy/install.sh", "deploy/entrypoint.sh",
              "llm/adapters/smollm2-135m-itbot/adapter_config.json", "data/kb/vpn", "storage/migrations/env.py"]
    packages = re.search(r"include = \[([^\]]*)\]", (REPO / "pyproject.toml").read_text()).group(1)
    needed += [f"{name}/__init__.py" for name in re.findall(r'"(\w+)\*"', packages)]
    for path in needed:
        assert not _ignored(path, patterns), path


# --- compose.yaml

@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_has_postgres_with_a_healthcheck_and_a_volume(compose: dict) -> None:
    postgres = compose["services"]["postgres"]
    assert postgres["image"] == "postgres:16"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    volume = postgres["volumes"][0].split(":")
    assert volume[1] == "/var/lib/postgresql/data" and volume[0] in compose["volumes"]
    assert postgres["restart"] == "unless-stopped"


def test_compose_bot_waits_for_postgres_and_keeps_data(compose: dict) -> None:
    bot = compose["services"]["bot"]
    assert bot["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert bot["build"]["context"] == "." and bot["env_file"] == ".env"
    assert bot["restart"] == "unless-stopped"
    assert "data:/data" in bot["volumes"] and "data" in compose["volumes"]
    url = bot["environment"]["ITBOT_DATABASE_URL"]
    assert re.fullmatch(r"postgresql\+psycopg://itbot:\$\{POSTGRES_PASSWORD:-itbot\}@postgres:5432/itbot", url)
    assert compose["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"] == "${POSTGRES_PASSWORD:-itbot}"
    assert bot.get("command", ["run"]) == ["run"]  # through the image's entry point, which migrates first


def test_compose_sets_only_real_settings(compose: dict) -> None:
    environment = compose["services"]["bot"]["environment"]
    assert set(environment) <= _setting_names() & _documented_names()
    values = {name.removeprefix("ITBOT_").lower(): str(value).replace("${POSTGRES_PASSWORD:-itbot}", "itbot")
              for name, value in environment.items()}
    settings = Settings(_env_file=None, **values)  # every value passes the settings' own validation
    published = [int(port.split(":")[-1]) for port in compose["services"]["bot"]["ports"]]
    assert published == [settings.metrics_port]


def test_compose_shows_a_second_replica(compose: dict) -> None:
    assert "deploy" not in compose["services"]["bot"]  # one replica unless asked
    assert re.search(r"#\s*deploy:\n\s*#\s*replicas: 2", COMPOSE.read_text())
