"""`cdk synth` builds the Lambda layer itself (CDK local bundling, no Docker), or fails.

pip is replaced by a stand-in that records its command and installs a marker package, so these
tests need no network; everything else is the real synthesis.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from infra.app import build_app
from infra.package import PLATFORMS, LayerBundler, layer_hash
from infra.stack import REPO_ROOT


class FakePip:
    """Records pip commands; "installs" one marker package into the `--target` folder."""

    def __init__(self, fail: bool = False) -> None:
        self.commands: list[list[str]] = []
        self.fail = fail

    def __call__(self, command: Sequence[str]) -> object:
        self.commands.append(list(command))
        if self.fail:
            raise subprocess.CalledProcessError(1, list(command), "no matching distribution")
        target = Path(command[command.index("--target") + 1])
        (target / "pydantic").mkdir(parents=True, exist_ok=True)
        (target / "pydantic" / "__init__.py").write_text("")
        return None


def test_the_bundler_builds_python_folder_with_library_examples_and_arm64_wheels(
    tmp_path: Path,
) -> None:
    pip = FakePip()

    assert LayerBundler(REPO_ROOT, run=pip).try_bundle(str(tmp_path / "out")) is True

    python = tmp_path / "out" / "python"
    assert (python / "durable_graph" / "mail.py").is_file()
    assert (python / "examples" / "email_approval.py").is_file()
    assert (python / "pydantic" / "__init__.py").is_file()
    [command] = pip.commands
    assert all(platform in command for platform in PLATFORMS)
    assert "--only-binary=:all:" in command and "boto3>=1.34" not in command


def test_cdk_synth_packages_the_layer_itself(tmp_path: Path) -> None:
    """Given the app with bundling on (as `cdk synth` runs it), when it is synthesised, then
    the layer asset in the cloud assembly holds `python/durable_graph` (what Lambda imports)."""
    pip = FakePip()
    app, _ = build_app({"mail_from": "agent@example.com"}, layer_bundler=LayerBundler(run=pip))

    assembly = app.synth()

    template = json.loads((Path(assembly.directory) / "DurableGraph.template.json").read_text())
    [layer_version] = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::LayerVersion"
    ]
    asset_hash = layer_version["Properties"]["Content"]["S3Key"].removesuffix(".zip")
    layer = Path(assembly.directory) / f"asset.{asset_hash}"
    assert (layer / "python" / "durable_graph" / "__init__.py").is_file()
    assert (layer / "python" / "examples" / "email_approval.py").is_file()
    assert len(pip.commands) == 1
    shutil.rmtree(assembly.directory, ignore_errors=True)


def test_a_layer_that_cannot_be_built_fails_the_synthesis_loudly() -> None:
    with pytest.raises(
        RuntimeError,
        match=r"building the Lambda layer into \S+ failed: Command .* returned non-zero",
    ):
        build_app(layer_bundler=LayerBundler(run=FakePip(fail=True)))


def test_the_layer_is_rebuilt_exactly_when_its_inputs_change(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "shared" / "durable_graph").mkdir(parents=True)
    (root / "examples").mkdir()
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (root / "shared" / "durable_graph" / "a.py").write_text("A = 1\n")
    first = layer_hash(root)
    (root / "shared" / "durable_graph" / "__pycache__").mkdir()
    (root / "shared" / "durable_graph" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"x")
    assert layer_hash(root) == first  # caches are not inputs

    (root / "examples" / "flow.py").write_text("")
    assert layer_hash(root) != first
