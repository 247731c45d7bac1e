"""The ``device`` setting: CPU by default, CUDA refused clearly where there is no GPU, and on a
GPU (tests skipped elsewhere) cells that rerun identically and agree with the CPU's."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from fedhet.cli import main
from fedhet.device import resolve_device
from fedhet.workflow.config import ConfigError, load_config

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")
no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is visible")


def test_cpu_is_the_default_and_auto_follows_the_hardware(tiny_config):
    assert load_config(tiny_config)["device"] == "cpu"
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_an_unknown_device_names_the_key(tiny_config):
    with pytest.raises(ConfigError, match="config key device: 'tpu' is not one of"):
        load_config(tiny_config, {"device": "tpu"})
    with pytest.raises(ValueError, match="device 'gpu' is not one of"):
        resolve_device("gpu")


@no_gpu
def test_cuda_without_a_gpu_stops_before_any_file(tmp_path, tiny_config, capsys):
    out = tmp_path / "cell"
    assert main(["cell", "--config", str(tiny_config), "--out", str(out), "--device", "cuda"]) == 2
    assert "device 'cuda': no CUDA GPU is visible" in capsys.readouterr().err
    assert not out.exists()


def _cell(tmp_path, config, name: str, device: str, *args: str) -> pd.DataFrame:
    out = tmp_path / name
    assert main(["cell", "--config", str(config), "--out", str(out), "--threads", "1", "--device", device, *args]) == 0
    assert f"on {device}" in (out / "cell.log").read_text()
    return pd.read_parquet(out / "metrics.parquet").drop(columns="missing_reason")


DP = ("--dp", "all-eps4-delta1e-05-clip1")
CASES = {
    "fedavg": (),
    "fedavg-dp": DP,
    "fedprox": ("--algorithm", "fedprox-mu0.1"),
    "fedper": ("--algorithm", "fedper-head1"),
    "shared-dp": ("--algorithm", "shared-beta0.1-alpha1", *DP),
    "ifca": ("--algorithm", "ifca-k2"),
}


@needs_gpu
@pytest.mark.parametrize("case", CASES)
def test_a_cuda_cell_reruns_identically_and_agrees_with_the_cpu(tmp_path, tiny_config, case):
    first = _cell(tmp_path, tiny_config, "gpu1", "cuda", *CASES[case])
    second = _cell(tmp_path, tiny_config, "gpu2", "cuda", *CASES[case])
    pd.testing.assert_frame_equal(first, second)  # deterministic kernels: bit for bit
    cpu = _cell(tmp_path, tiny_config, "cpu", "cpu", *CASES[case])
    auroc = [m[m["metric"] == "auroc"].set_index(["model", "hospital"])["value"] for m in (first, cpu)]
    # The same batches on both devices; float summation order differs, and under DP so do the
    # noise draws (the noise generator lives on the device, and CUDA's draws are not the CPU's).
    tolerance = 0.1 if "--dp" in CASES[case] else 0.02
    assert (auroc[0] - auroc[1]).abs().max() < tolerance, pd.concat(auroc, axis=1)
