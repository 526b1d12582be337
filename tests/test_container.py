"""The serving image for real: the generated Dockerfile built with podman (runc) and `make qa` run
against the container, through the port it publishes from its own network namespace.

No registry can be reached here, so the base images are made locally and handed in as the
Dockerfile's build arguments: a Debian bookworm root filesystem from mmdebstrap (its python3 is
3.11, the default answer; written straight to a tarball, in half debootstrap's CPU time), with this
machine's CA bundle so the build's `uv pip install` can reach the package index through whatever
proxy the machine uses, and an image holding only uv's binary. `.ci/run` installs podman, runc and
mmdebstrap from Debian's packages; without them the test says so and skips.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from .conftest import UV, free_port, run, wait_healthy

pytestmark = pytest.mark.slow
TOOLS = ("podman", "runc", "mmdebstrap")
MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
LIMITS = ["--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]  # defaults need CAP_SYS_RESOURCE


@pytest.fixture(scope="module")
def podman(tmp_path_factory):
    """``podman`` with its storage in a temporary folder and the runc runtime; skips without the tools."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if os.geteuid() != 0:
        pytest.skip("mmdebstrap and podman's overlay storage need root here")
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
def base_system(podman, tmp_path_factory, project_env):
    """The base image's root filesystem as a tarball, started in the background: much of
    mmdebstrap's time is spent downloading, while the project is built (``base_images`` asks for
    ``project`` next). The machine's trust store (proxy CAs included) is copied in."""
    work = tmp_path_factory.mktemp("base")
    rootfs = work / "rootfs.tar"
    log = work / "mmdebstrap.log"
    bundle = Path(os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt")
    hooks = []
    if bundle.is_file():
        target = '"$1/etc/ssl/certs/ca-certificates.crt"'
        hooks = [f'--customize-hook=mkdir -p "$1/etc/ssl/certs" && cp {shlex.quote(str(bundle))} {target}']
    with log.open("w") as output:
        process = subprocess.Popen(
            ["mmdebstrap", "--variant=minbase", "--include=python3", *hooks, "bookworm", str(rootfs), MIRROR],
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
def base_images(podman, base_system, project, project_env) -> dict[str, str]:
    """The Dockerfile's PYTHON_IMAGE and UV_IMAGE, made locally."""
    work, rootfs, process, log = base_system
    code = process.wait(timeout=900)
    assert code == 0, f"mmdebstrap failed ({code}):\n{log.read_text()[-4000:]}"
    change = "ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"
    run([*podman, "import", "--change", change, str(rootfs), "localhost/py-base"], work, project_env)
    rootfs.unlink()  # the image holds it now
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
