"""The serving image for real: the generated Dockerfile built with podman (runc) and `make qa` run
against the container, through the port it publishes from its own network namespace.

No registry can be reached here, so the base images are made locally and handed in as the
Dockerfile's build arguments: a Debian bookworm root filesystem from debootstrap (its python3 is
3.11, the default answer), with this machine's CA bundle so the build's `uv pip install` can reach
the package index through whatever proxy the machine uses, and an image holding only uv's binary.
`.ci/run` installs podman, runc and debootstrap from Debian's packages; without them the test says so
and skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from .conftest import UV, free_port, run, wait_healthy

pytestmark = pytest.mark.slow
TOOLS = ("podman", "runc", "debootstrap")
MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
LIMITS = ["--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]  # defaults need CAP_SYS_RESOURCE


@pytest.fixture(scope="module")
def podman(tmp_path_factory):
    """``podman`` with its storage in a temporary folder and the runc runtime; skips without the tools."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if os.geteuid() != 0:
        pytest.skip("debootstrap and podman's overlay storage need root here")
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (.ci/run installs them from Debian's packages)")
    state = tmp_path_factory.mktemp("podman")
    runroot = Path(tempfile.mkdtemp(prefix="podman-"))  # podman refuses a runroot over 50 characters
    base = ["podman", "--root", str(state / "storage"), "--runroot", str(runroot), "--runtime", "runc"]
    yield base
    subprocess.run([*base, "rm", "--all", "--force"], capture_output=True)
    subprocess.run([*base, "rmi", "--all", "--force"], capture_output=True)
    shutil.rmtree(runroot, ignore_errors=True)
    shutil.rmtree(state, ignore_errors=True)  # the images' layers: a gigabyte the other tests need more


@pytest.fixture(scope="module")
def debootstrap(podman, tmp_path_factory, project_env):
    """The base image's root filesystem, started in the background: much of debootstrap's time is
    spent downloading, while the project is built (``base_images`` asks for ``project`` next)."""
    work = tmp_path_factory.mktemp("base")
    rootfs = work / "rootfs"
    log = work / "debootstrap.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            ["debootstrap", "--variant=minbase", "--include=python3", "bookworm", str(rootfs), MIRROR],
            cwd=work,
            env=project_env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    yield work, rootfs, process, log
    if process.poll() is None:  # the project could not be built
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def base_images(podman, debootstrap, project, project_env) -> dict[str, str]:
    """The Dockerfile's PYTHON_IMAGE and UV_IMAGE, made locally."""
    work, rootfs, process, log = debootstrap
    code = process.wait(timeout=900)
    assert code == 0, f"debootstrap failed ({code}):\n{log.read_text()[-4000:]}"
    bundle = Path(os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt")
    if bundle.is_file():  # the machine's trust store, proxy CAs included
        (rootfs / "etc/ssl/certs").mkdir(parents=True, exist_ok=True)
        shutil.copy(bundle, rootfs / "etc/ssl/certs/ca-certificates.crt")
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    imported = subprocess.run(
        [
            *podman,
            "import",
            "--change",
            "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
            "-",
            "localhost/py-base",
        ],
        stdin=tar.stdout,
        capture_output=True,
        text=True,
    )
    tar.stdout.close()  # if podman stopped reading, tar gets SIGPIPE instead of blocking forever
    tar.wait(timeout=120)
    assert imported.returncode == 0, imported.stderr
    shutil.rmtree(rootfs)  # the image holds it now
    uv_context = work / "uv"
    uv_context.mkdir()
    shutil.copy(UV, uv_context / "uv")
    (uv_context / "Containerfile").write_text("FROM scratch\nCOPY uv /uv\n")
    run([*podman, "build", *LIMITS, "--tag", "localhost/uv-bin", str(uv_context)], work, project_env)
    return {"PYTHON_IMAGE": "localhost/py-base", "UV_IMAGE": "localhost/uv-bin"}


@pytest.fixture(scope="module")
def project(default_built, project_env) -> Path:
    run(["make", "package"], default_built, project_env)
    return default_built


def test_the_image_builds_runs_as_non_root_and_passes_qa(podman, base_images, project, project_env):
    arguments = [f"--build-arg={name}={image}" for name, image in base_images.items()]
    run(
        [*podman, "build", "--format", "docker", *LIMITS, *arguments, "--tag", "localhost/model", "."],
        project,
        project_env,
    )
    port = free_port()
    run(
        [
            *podman,
            "run",
            "--detach",
            "--name",
            "model",
            *LIMITS,
            "--publish",
            f"127.0.0.1:{port}:8000",
            "localhost/model",
        ],
        project,
        project_env,
    )
    url = f"http://127.0.0.1:{port}"

    def logs() -> str:
        done = subprocess.run([*podman, "logs", "model"], capture_output=True, text=True)
        return done.stdout + done.stderr

    try:
        wait_healthy(url + "/health", 60, output=logs)
        user = run([*podman, "exec", "model", "id", "-u"], project, project_env).stdout.strip()
        assert user != "0", "the service runs as root in the image"
        qa = run(["make", "qa", f"URL={url}"], project, project_env)
        assert "QA passed" in qa.stdout
        inspect = run(
            [*podman, "image", "inspect", "--format", "{{.Config.Healthcheck}}", "localhost/model"],
            project,
            project_env,
        )
        assert "/health" in inspect.stdout
    finally:
        subprocess.run([*podman, "rm", "--force", "model"], capture_output=True)
