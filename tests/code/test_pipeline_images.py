"""The container images, checked statically (no Docker daemon here): pinned bases, the lock, non-root."""

import re

import pytest


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.cuda"])
def test_image_is_pinned_non_root_and_installs_the_lock(dockerfile, repo_root):
    text = (repo_root / dockerfile).read_text()
    bases = re.findall(r"^ARG \w+_IMAGE=(\S+)$", text, flags=re.M)
    assert bases, "the base image is one ARG"
    for base in bases:
        tag = base.partition(":")[2]
        assert re.fullmatch(r"\d+\.\d+\.\d+-[\w.-]+", tag), f"{base}: pin an exact version tag"
    assert "pip install --no-deps -r /tmp/requirements.lock.txt" in text
    assert re.search(r"^USER 10001$", text, flags=re.M), "the image must not run as root"
    last_stage = text.rsplit("\nFROM ", 1)[1]
    # Only the built venv reaches the final image: no build tools, no pip cache.
    assert "COPY --from=build /opt/venv /opt/venv" in last_stage
    assert "ENV PATH=/opt/venv/bin:$PATH" in last_stage  # KFP runs `python3 -m kfp.dsl.executor_main`


def test_dockerignore_admits_only_what_the_images_need(repo_root):
    lines = (repo_root / ".dockerignore").read_text().splitlines()
    assert "*" in lines  # deny by default: no .venv, work/, data/ or .git in the build context
    assert {"!requirements/requirements.lock.txt", "!pyproject.toml", "!src/"} <= set(lines)
    # the benchmarks run from the checkout (make bench): never in an image
    assert not [line for line in lines if line.startswith("!") and "bench" in line]
    for dockerfile in ("Dockerfile", "Dockerfile.cuda"):
        copies = [
            line for line in (repo_root / dockerfile).read_text().splitlines() if line.startswith("COPY")
        ]
        assert not [line for line in copies if "bench" in line], dockerfile
        # every path a COPY takes from the build context must be let in, or the build fails
        admitted = [line[1:].rstrip("/") for line in lines if line.startswith("!")]
        for line in copies:
            if "--from=" in line:
                continue
            for src in line.split()[1:-1]:
                assert any(src == a or src.startswith(a + "/") for a in admitted), f"{dockerfile}: {line}"
