"""The strategy layer: algorithm keys, and each algorithm against FedAvg on synthetic hospitals."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from conftest import synthetic_hospital
from fedhet.training.client import Client
from fedhet.training.federated import Site, run_mode
from fedhet.training.model import to_tensor
from fedhet.workflow.algorithms import ALGORITHMS, FEDAVG, AlgorithmSpec, load_strategy
from fedhet.workflow.settings import check_setting
from fedhet.workflow.specs import DPSpec, ModelSpec, TrainSpec

SPEC = ModelSpec(conv1_channels=4, conv2_channels=8, kernel_size=3)
TRAIN = TrainSpec(rounds=2, local_epochs=1, batch_size=32, lr=0.05)
HOSPITALS = [("large_1", "large", 400, 0.5), ("small_1", "small", 80, 0.1), ("small_2", "small", 80, 0.1)]


def sites(seed: int = 0, dp: DPSpec | None = None, train: TrainSpec = TRAIN) -> list[Site]:
    return [
        Site(Client(synthetic_hospital(name, n, n // 4, ratio, i), SPEC, train, seed, i, dp=dp), kind)
        for i, (name, kind, n, ratio) in enumerate(HOSPITALS)
    ]


def public_set(n: int = 60):
    """A synthetic shared set G, as tensors."""
    g = synthetic_hospital("shared", n, 0, 0.3, 77)
    return to_tensor(g.train_images).contiguous(memory_format=torch.channels_last), torch.from_numpy(g.train_labels)


def run(key: str, seed: int = 0, dp: DPSpec | None = None, spy=None, hospitals=None, public=None):
    external = Site(Client(synthetic_hospital("external", 0, 100, 0.3, 99), SPEC, TRAIN, seed, 9), "external")
    algorithm = AlgorithmSpec.parse(key)
    if spy is not None:
        spy(algorithm)
    hospitals = sites(seed, dp) if hospitals is None else hospitals
    return run_mode("federated", hospitals, external, SPEC, TRAIN, seed, algorithm=algorithm, public=public)


def values(result) -> tuple[pd.Series, pd.Series]:
    metrics = result.metrics.set_index(["hospital", "metric"])["value"]
    rounds = result.rounds[result.rounds["quantity"] != "pick"].set_index(["round", "hospital", "quantity"])["value"]
    return metrics, rounds


# --- keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["fedavg", "fedprox-mu0.01", "fedprox-mu1", "fedper-head1", "fedper-head2", "shared-beta0.05-alpha0.5", "ifca-k2"],
)
def test_key_round_trips(key):
    spec = AlgorithmSpec.parse(key)
    assert spec.key() == key and AlgorithmSpec.parse(spec.key()) == spec


def test_left_out_parameters_take_defaults_and_the_key_spells_them():
    assert AlgorithmSpec.parse("fedprox").key() == "fedprox-mu0.01"
    assert AlgorithmSpec.parse("shared-alpha1").key() == "shared-beta0.05-alpha1"
    assert AlgorithmSpec.parse("ifca").key() == "ifca-k2"


@pytest.mark.parametrize(
    "key, named",
    [
        ("fedsgd", "unknown algorithm 'fedsgd'"),
        ("fedprox-mu-1", "bad parameter"),
        ("fedprox-lambda0.1", "bad parameter 'lambda0.1'"),
        ("fedper-head1.5", "head=1.5 must be a whole number"),
        ("fedper-head3", "head=3 is outside [1, 2]"),
        ("shared-beta2", "beta=2 is outside [0, 1]"),
        ("ifca-k0", "k=0 is outside"),
    ],
)
def test_bad_key_is_refused_naming_where_and_what(key, named):
    with pytest.raises(ValueError, match="experiments.x.algorithms") as err:
        AlgorithmSpec.parse(key, "experiments.x.algorithms[0]")
    assert named in str(err.value)


def test_every_registered_algorithm_loads_a_strategy():
    init = {k: v for k, v in Client(synthetic_hospital("h", 10, 2, 0.5, 0), SPEC, TRAIN, 0, 0).model_state().items()}
    for name in ALGORITHMS:
        context = dict(public=public_set(), model_spec=SPEC, train_spec=TRAIN, seed=0, clients=2)
        strategy = load_strategy(AlgorithmSpec.parse(name), initial=lambda j: init, **context)
        assert strategy.message().models, name


# --- equal to FedAvg at the neutral parameter ------------------------------------------------


@pytest.mark.parametrize("key", ["fedprox-mu0", "ifca-k1", "shared-beta0-alpha1"])
def test_neutral_parameter_is_fedavg_bit_for_bit(key):
    fedavg_metrics, fedavg_rounds = values(run("fedavg", seed=1))
    empty = (torch.zeros(0, 1, 28, 28), torch.zeros(0, dtype=torch.int64))
    metrics, rounds = values(run(key, seed=1, public=empty))
    assert metrics.equals(fedavg_metrics) and rounds.equals(fedavg_rounds)


def test_fedprox_pulls_the_local_model_towards_the_global_one():
    s = sites()
    init = s[0].client.model_state()
    moved = {}
    for key in ("fedavg", "fedprox-mu10"):
        strategy = load_strategy(AlgorithmSpec.parse(key), initial=lambda j: init)
        client = sites()[1].client
        sent = client.train(strategy.message(), 1, strategy).parameters
        moved[key] = math.sqrt(sum(float((sent[k] - init[k]).pow(2).sum()) for k in init))
    assert 0 < moved["fedprox-mu10"] < 0.9 * moved["fedavg"]


def test_fedprox_under_dp_adds_its_term_after_the_noise_and_spends_the_same_epsilon():
    dp = DPSpec("all", 4.0)
    a = [sites(dp=dp), sites(dp=dp)]
    for key, hospitals in zip(("fedavg", "fedprox-mu1"), a, strict=True):
        run_mode("federated", hospitals, None, SPEC, TRAIN, 0, algorithm=AlgorithmSpec.parse(key))
    records = [[s.client.privacy_record() for s in hospitals] for hospitals in a]
    assert [r.epsilon_spent for r in records[0]] == [r.epsilon_spent for r in records[1]]
    assert [r.steps for r in records[0]] == [r.steps for r in records[1]]
    assert not torch.equal(a[0][0].client.model_state()["fc.weight"], a[1][0].client.model_state()["fc.weight"])


# --- FedPer ----------------------------------------------------------------------------------


def test_fedper_head_never_reaches_the_server_and_each_hospital_keeps_its_own():
    received: list[set[str]] = []

    def spy(algorithm):
        import fedhet.training.algorithms.fedper as fedper

        original = fedper.Strategy.aggregate

        def aggregate(self, updates):
            received.extend(set(u.parameters) for u in updates)
            return original(self, updates)

        fedper.Strategy.aggregate = aggregate
        spy.restore = lambda: setattr(fedper.Strategy, "aggregate", original)

    try:
        result = run("fedper-head1", spy=spy)
    finally:
        spy.restore()
    assert received and all(keys == {"conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias"} for keys in received)
    own = result.metrics[result.metrics["hospital_type"] != "external"]
    assert (own["model"] == own["hospital"]).all()  # each hospital evaluated with its own head
    external = result.metrics[result.metrics["hospital_type"] == "external"]
    assert set(external["model"]) == {"large_1", "small_1", "small_2"}


def test_fedper_head2_keeps_the_second_convolution_too():
    init = sites()[0].client.model_state()
    strategy = load_strategy(AlgorithmSpec.parse("fedper-head2"), initial=lambda j: init)
    assert set(strategy.message().models[0]) == {"conv1.weight", "conv1.bias"}


# --- IFCA ------------------------------------------------------------------------------------


def test_ifca_logs_each_clients_pick_and_averages_within_clusters():
    result = run("ifca-k2")
    picks = result.rounds[result.rounds["quantity"] == "pick"]
    assert len(picks) == TRAIN.rounds * len(HOSPITALS) and set(picks["value"]) <= {0, 1}
    own = result.metrics[result.metrics["hospital_type"] != "external"]
    assert set(own["model"]) <= {"cluster0", "cluster1"}


def test_ifca_aggregation_leaves_an_unpicked_model_alone():
    from fedhet.training.strategy import Update

    init = {"w": torch.zeros(2)}
    strategy = load_strategy(AlgorithmSpec.parse("ifca-k3"), initial=lambda j: {"w": torch.full((2,), float(j))})
    strategy.aggregate(
        [
            Update({"w": torch.ones(2)}, 1, 0.0, {"choice": 0}),
            Update({"w": torch.full((2,), 4.0)}, 3, 0.0, {"choice": 0}),
        ]
    )
    assert torch.equal(strategy.models[0]["w"], torch.full((2,), 13 / 4))
    assert torch.equal(strategy.models[1]["w"], torch.ones(2)) and torch.equal(
        strategy.models[2]["w"], 2 * torch.ones(2)
    )
    assert init  # the initial sets are per-model


def test_algorithms_are_refused_where_they_cannot_run():
    dp = DPSpec("small_hospitals", 1.0, 1e-5, 1.0)
    with pytest.raises(ValueError, match="fedprox-mu0.1: mode local trains with fedavg only"):
        check_setting("local", AlgorithmSpec.parse("fedprox-mu0.1"), DPSpec())
    with pytest.raises(
        ValueError, match="ifca-k2 cannot run under DP-SGD .*: it acts on a choice computed from private"
    ):
        check_setting("federated", AlgorithmSpec.parse("ifca-k2"), dp)
    check_setting("federated", AlgorithmSpec.parse("fedprox-mu0.1"), dp)
    check_setting("local", FEDAVG, dp)
    check_setting("federated", AlgorithmSpec.parse("ifca-k2"), DPSpec())


# --- shared data -----------------------------------------------------------------------------


def test_shared_data_warms_up_and_hands_each_client_an_alpha_share():
    init = sites()[0].client.model_state()
    context = dict(public=public_set(60), model_spec=SPEC, train_spec=TRAIN, seed=0)
    strategy = load_strategy(AlgorithmSpec.parse("shared-beta0.05-alpha0.5"), initial=lambda j: init, **context)
    assert not torch.equal(strategy.message().models[0]["fc.weight"], init["fc.weight"])  # warm-up on G
    shares = [strategy.public_share(i) for i in range(3)]
    assert all(len(labels) == 30 for _, labels in shares)
    assert not torch.equal(shares[0][1], shares[1][1]) or not torch.equal(shares[0][0], shares[1][0])


def test_shared_data_keeps_fedavg_weights_at_the_hospitals_own_counts():
    hospitals = sites()
    received: list[int] = []
    import fedhet.training.algorithms.shared as shared

    original = shared.Strategy.aggregate

    def aggregate(self, updates):
        received.extend(u.n_samples for u in updates)
        return original(self, updates)

    shared.Strategy.aggregate = aggregate
    try:
        run("shared-beta0.1-alpha1", hospitals=hospitals, public=public_set(60))
    finally:
        shared.Strategy.aggregate = original
    assert received[:3] == [400, 80, 80]
    assert [s.client.train_images for s in hospitals] == [2 * 400, 2 * 80, 2 * 80]


def test_dp_with_shared_data_spends_the_same_epsilon_as_dp_alone():
    dp = DPSpec("all", 4.0)
    alone, with_g = sites(dp=dp), sites(dp=dp)
    run("fedavg", hospitals=alone)
    run("shared-beta0.1-alpha1", hospitals=with_g, public=public_set(60))
    a = [s.client.privacy_record() for s in alone]
    b = [s.client.privacy_record() for s in with_g]
    assert [(r.sigma, r.q, r.steps, r.epsilon_spent) for r in a] == [
        (r.sigma, r.q, r.steps, r.epsilon_spent) for r in b
    ]
    assert not torch.equal(alone[1].client.model_state()["fc.weight"], with_g[1].client.model_state()["fc.weight"])


def privacy_records(key: str, dp: DPSpec) -> list:
    hospitals = sites(dp=dp)
    run(key, hospitals=hospitals, dp=dp)
    return [site.client.privacy_record() for site in hospitals]


@pytest.mark.parametrize(
    "key, why",
    [
        ("scaffold-eta1", "its control variates are post-processing of DP-SGD's output"),
        ("ditto-lam0.1", "its personal model never leaves the hospital"),
        ("perfedavg-alpha0.01", "both gradients of a pair are DP-SGD's noised batch gradients"),
        ("fedprox-mu0.1", "its proximal term depends on no record"),
    ],
)
def test_an_algorithm_that_sends_nothing_uncovered_spends_fedavgs_epsilon_exactly(key, why):
    dp = DPSpec("all", 4.0)
    fedavg = privacy_records("fedavg", dp)
    assert privacy_records(key, dp) == fedavg, why
    assert all(r.private and r.epsilon_spent <= 4.0 for r in fedavg)
