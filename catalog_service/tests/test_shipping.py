"""The Docker, compose, swarm and Jenkins files, checked without a Docker engine."""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import compose
import pytest
import yaml

from catalog_service.cli import build_parser

from .conftest import REPO_ROOT

SERVICE = REPO_ROOT / "catalog_service"
DOCKERFILE = SERVICE / "Dockerfile"
# The README's configuration table is the contract for the environment.
README = REPO_ROOT / "README.md"
COMPOSE_FILES = [REPO_ROOT / "docker-compose.yml", REPO_ROOT / ".swarm" / "catalog-stack.yml"]
# The pip wrapper around the binary drops its exit status: call the binary itself.
DOCKER_COMPOSE = Path(compose.__file__).parent / "docker-compose"
BIN = Path(sys.executable).parent


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    result = subprocess.run(
        [str(BIN / "hadolint"), "--no-color", str(DOCKERFILE)], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_compose_and_stack_files_follow_the_compose_specification(path: Path) -> None:
    result = subprocess.run(
        [str(DOCKER_COMPOSE), "--project-directory", str(REPO_ROOT), "-f", str(path), "config", "--quiet"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"},
    )
    assert result.returncode == 0, result.stderr
    assert "level=error" not in result.stderr


def test_a_schema_violation_in_a_compose_file_is_caught(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text((REPO_ROOT / "docker-compose.yml").read_text().replace("healthcheck:", "healthchek:"))
    result = subprocess.run(
        [str(DOCKER_COMPOSE), "--project-directory", str(REPO_ROOT), "-f", str(broken), "config", "--quiet"],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "HOME": "/tmp"},
    )
    assert result.returncode != 0 and "healthchek" in result.stderr


def _ignored(relative: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: the last pattern matching the path or a parent wins."""
    parts = relative.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        regex = re.compile(fnmatch.translate(pattern).replace(".*", "[^/]*").replace("[^/]*[^/]*", ".*"))
        if any(regex.fullmatch(c) for c in candidates):
            ignored = not negate
    return ignored


def build_context_files() -> set[str]:
    patterns = [
        line.strip()
        for line in (SERVICE / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "the .dockerignore is an allowlist: '*' first"
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=SERVICE,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return {f for f in files if not _ignored(f, patterns)}


def copied_files() -> set[str]:
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=SERVICE,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    wanted: set[str] = set()
    for instruction, args in dockerfile_instructions():
        if instruction != "COPY" or "--from=" in args:
            continue
        *sources, _ = args.split()
        for source in sources:
            source = source.rstrip("/")
            wanted |= {f for f in tracked if f == source or f.startswith(source + "/")}
    return wanted


def test_the_dockerignore_lets_in_exactly_what_the_dockerfile_copies() -> None:
    assert build_context_files() == copied_files()


def test_the_image_runs_a_real_command_and_checks_a_real_route() -> None:
    instructions = dockerfile_instructions()
    cmd = json.loads(next(args for kind, args in instructions if kind == "CMD"))
    scripts = tomllib.loads((SERVICE / "pyproject.toml").read_text())["project"]["scripts"]
    assert cmd[0] in scripts
    build_parser().parse_args(cmd[1:])  # exits on an unknown subcommand or flag

    healthcheck = next(args for kind, args in instructions if kind == "HEALTHCHECK")
    # The health check asks the port the service listens on: CATALOG_PORT, 8080 unless set.
    url = re.search(r"http://127\.0\.0\.1:%s(/[\w/]+)", healthcheck)
    assert url is not None
    default = re.search(r"os\.environ\.get\('CATALOG_PORT', '(\d+)'\)", healthcheck)
    exposed = next(args for kind, args in instructions if kind == "EXPOSE")
    assert default is not None and default.group(1) == exposed == "8080"
    spec = yaml.safe_load((REPO_ROOT / "openapi" / "catalog.yaml").read_text())
    base = spec["servers"][0]["url"]
    assert url.group(1).removeprefix(base) in spec["paths"]
    assert "get" in spec["paths"][url.group(1).removeprefix(base)]


def test_the_wheel_in_the_image_carries_the_spec_the_migrations_the_pages_and_the_rules(
    tmp_path: Path,
) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            ".",
        ],
        cwd=SERVICE,
        check=True,
        capture_output=True,
    )
    [wheel] = tmp_path.glob("catalog_service-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert (
            archive.read("catalog_service/openapi/catalog.yaml")
            == (REPO_ROOT / "openapi" / "catalog.yaml").read_bytes()
        )
    migrations = {
        p.name for p in (SERVICE / "src" / "catalog_service" / "store" / "migrations").glob("*.sql")
    }
    assert {f"catalog_service/store/migrations/{m}" for m in migrations} <= names
    pages = SERVICE / "src" / "catalog_service" / "pages"
    page_files = {
        f"catalog_service/pages/{p.relative_to(pages)}"
        for folder in ("templates", "translations", "static")
        for p in (pages / folder).iterdir()
    }
    assert page_files <= names
    # The default API design rules, with their licence and provenance.
    rulesets = SERVICE / "src" / "catalog_service" / "lint" / "rulesets"
    assert {f"catalog_service/lint/rulesets/{p.name}" for p in rulesets.iterdir()} <= names


def documented_variables() -> set[str]:
    text = README.read_text()
    section = text.split("\n## Configuration", 1)[1].split("\n## ", 1)[0]
    table = [line for line in section.splitlines() if line.startswith("| `")]
    names = {name for line in table for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1])}
    assert {"DATABASE_URL", "CATALOG_ADMIN_TOKEN", "CATALOG_PORT", "DATABASE_URL_FILE"} <= names
    return names


def test_every_variable_the_service_reads_is_in_the_readme() -> None:
    source = "\n".join(p.read_text() for p in (SERVICE / "src").rglob("*.py"))
    read = set(re.findall(r"\"((?:CATALOG|DATABASE)_[A-Z0-9_]+)\"", source))
    read |= {f"{name}_FILE" for name in re.findall(r"secret\(\"([A-Z0-9_]+)\"\)", source)}
    assert read, "no variable found: the pattern no longer matches settings.py"
    assert read <= documented_variables()


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.name)
def test_the_catalog_service_is_configured_only_through_documented_variables(path: Path) -> None:
    service = yaml.safe_load(path.read_text())["services"]["catalog"]
    assert set(service["environment"]) <= documented_variables()
    assert (
        "CATALOG_ADMIN_TOKEN" in service["environment"]
        or "CATALOG_ADMIN_TOKEN_FILE" in service["environment"]
    )
    # No secret is written into the files themselves.
    admin = str(service["environment"].get("CATALOG_ADMIN_TOKEN", ""))
    assert admin in ("", "${CATALOG_ADMIN_TOKEN:-}")


def test_the_dockerfile_environment_uses_documented_variables() -> None:
    names = set()
    for kind, args in dockerfile_instructions():
        if kind == "ENV":
            names |= set(re.findall(r"([A-Z][A-Z0-9_]+)=", args))
    assert {n for n in names if n.startswith(("CATALOG_", "DATABASE_"))} <= documented_variables()


def test_the_swarm_stack_runs_several_replicas_with_secrets_and_rolling_updates() -> None:
    stack = yaml.safe_load((REPO_ROOT / ".swarm" / "catalog-stack.yml").read_text())
    catalog = stack["services"]["catalog"]
    assert catalog["deploy"]["replicas"] >= 2
    assert {"update_config", "restart_policy", "resources"} <= set(catalog["deploy"])
    assert set(catalog["secrets"]) <= set(stack["secrets"])
    assert all(stack["secrets"][name].get("external") for name in stack["secrets"])
    assert catalog["healthcheck"]["test"][0] == "CMD"


def test_the_jenkins_pipeline_has_every_stage_and_a_manual_production_step() -> None:
    pipeline = (REPO_ROOT / ".jenkins" / "Jenkinsfile").read_text()
    stages = re.findall(r"stage\('([^']+)'\)", pipeline)
    assert stages == ["Test", "Build image", "Push", "Deploy to acceptance", "Deploy to production"]
    production = pipeline.split("stage('Deploy to production')", 1)[1]
    assert "input " in production and "branch 'master'" in production
    assert "make test" in pipeline
