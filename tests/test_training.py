import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from conftest import synthetic_hospital
from fedhet.analysis.metrics import METRICS
from fedhet.training.client import Client
from fedhet.training.federated import Site, run_mode
from fedhet.training.model import build_model, predict_proba
from fedhet.workflow.specs import ModelSpec, TrainSpec

SPEC = ModelSpec(conv1_channels=4, conv2_channels=8, kernel_size=3)
TRAIN = TrainSpec(rounds=2, local_epochs=1, batch_size=32, lr=0.05)


HOSPITALS = [("large_1", "large", 400, 0.5), ("small_1", "small", 80, 0.1), ("small_2", "small", 80, 0.1)]


def sites(seed: int = 0) -> list[Site]:
    return [
        Site(Client(synthetic_hospital(name, n, n // 4, ratio, i), SPEC, TRAIN, seed, i), kind)
        for i, (name, kind, n, ratio) in enumerate(HOSPITALS)
    ]


def run(mode: str, seed: int = 0):
    external = Site(Client(synthetic_hospital("external", 0, 100, 0.3, 99), SPEC, TRAIN, seed, 9), "external")
    return run_mode(mode, sites(seed), external, SPEC, TRAIN, seed)


def test_same_seed_identical_metrics_and_rounds():
    a, b = run("federated", 3), run("federated", 3)
    pd.testing.assert_frame_equal(a.metrics, b.metrics)
    pd.testing.assert_frame_equal(a.rounds, b.rounds)
    c = run("federated", 4)  # the synthetic task is easy: metrics may tie, losses do not
    assert not a.rounds["value"].equals(c.rounds["value"])


def test_federated_learns_the_synthetic_task():
    m = run("federated").metrics
    auroc = m[(m.metric == "auroc") & (m.hospital_type != "external")]
    assert auroc["value"].min() > 0.9


@pytest.mark.parametrize(
    "mode, models",
    [
        ("federated", {"global"}),
        ("local", {"large_1", "small_1", "small_2"}),
        ("large_only", {"large"}),
    ],
)
def test_modes_evaluate_the_right_models(mode, models):
    m = run(mode).metrics
    assert set(m["model"]) == models
    own = m[m.hospital != "external"]
    if mode == "local":  # each hospital's own model on its own split only
        assert (own["model"] == own["hospital"]).all()
    else:  # one model, evaluated on every hospital and the external set
        assert set(m["hospital"]) == {"large_1", "small_1", "small_2", "external"}
    assert set(m["metric"]) == set(METRICS)


def test_scores_do_not_depend_on_the_evaluation_batch_size():
    # predict_proba's batch size is chosen for speed alone: a different one must not move a bit
    model = build_model(ModelSpec(), 0).to(memory_format=torch.channels_last)
    images = torch.rand(700, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    images = images.contiguous(memory_format=torch.channels_last)
    whole = predict_proba(model, images, batch_size=len(images))
    # an image scored alone takes another kernel; put one whose score that changes last
    alone = next(i for i in range(len(images)) if predict_proba(model, images[i : i + 1])[0] != whole[i])
    order = [i for i in range(len(images)) if i != alone] + [alone]
    for batch_size in (2, 100, 233, 256):  # 700 = 3 * 233 + 1
        assert (predict_proba(model, images[order], batch_size=batch_size) == whole[order]).all(), batch_size


def test_rounds_log_has_loss_per_client_and_round():
    r = run("federated").rounds
    loss = r[r.quantity == "train_loss"]
    assert sorted(loss["round"].unique()) == [1, 2]
    assert len(loss) == 2 * 3
    assert {"auroc", "recall"} <= set(r["quantity"])


def test_large_only_trains_only_the_large_hospital():
    s = sites()
    run_mode("large_only", s, None, SPEC, TRAIN, 0)
    assert [site.client.train_images for site in s] == [2 * 400, 0, 0]


def test_federated_equals_the_textbook_fedavg_loop():
    """fedhet's federated mode (clients, server, strategy) trains the same model as FedAvg
    written as one plain loop (the peer benchmark's baseline) on the same batches."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks" / "peers"))
    from common import fedavg_loop

    seed = 5
    federation = sites(seed)
    run_mode("federated", federation, None, SPEC, TRAIN, seed, eval_every_round=False)
    hospitals = [synthetic_hospital(name, n, n // 4, ratio, i) for i, (name, _, n, ratio) in enumerate(HOSPITALS)]
    loop = fedavg_loop(build_model(SPEC, seed), hospitals, TRAIN, seed).state_dict()
    for site in federation:  # each hospital ends holding the global model it was evaluated with
        for name, value in site.client.model_state().items():
            torch.testing.assert_close(value.contiguous(), loop[name], rtol=1e-4, atol=1e-6)


def test_a_training_process_loads_opacus_and_scipy_stats_only_when_needed():
    """Start-up is a large share of a quick cell: the cell module must not pull in Opacus
    (needed by private hospitals only) or scipy.stats (needed by summaries only)."""
    probe = "import sys, fedhet.training.cell; print(sorted(m for m in ('opacus', 'scipy.stats') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
