import numpy as np
import pytest
import torch

from fedhet.training.server import select_clients
from fedhet.training.strategy import Update
from fedhet.training.strategy import weighted_mean as fedavg


def test_fedavg_matches_hand_computation_with_unequal_counts():
    updates = [
        Update({"w": torch.tensor([1.0, 2.0]), "b": torch.tensor(0.0)}, n_samples=1, loss=0.0),
        Update({"w": torch.tensor([4.0, 0.0]), "b": torch.tensor(3.0)}, n_samples=3, loss=0.0),
        Update({"w": torch.tensor([0.0, 8.0]), "b": torch.tensor(6.0)}, n_samples=4, loss=0.0),
    ]
    avg = fedavg(updates)
    # w = (1·[1,2] + 3·[4,0] + 4·[0,8]) / 8 = [13/8, 34/8];  b = (0 + 9 + 24) / 8
    assert torch.equal(avg["w"], torch.tensor([13 / 8, 34 / 8]))
    assert avg["b"].item() == 33 / 8


def test_fedavg_single_client_is_identity_and_empty_is_an_error():
    state = {"w": torch.randn(3, 3)}
    assert torch.equal(fedavg([Update(state, 10, 0.0)])["w"], state["w"])
    with pytest.raises(ValueError):
        fedavg([])


def test_select_clients_fraction():
    rng = np.random.default_rng(0)
    assert select_clients(5, 1.0, rng) == [0, 1, 2, 3, 4]
    chosen = select_clients(5, 0.4, rng)
    assert len(chosen) == 2 and len(set(chosen)) == 2
    assert len(select_clients(5, 0.01, rng)) == 1
    with pytest.raises(ValueError, match="client_fraction"):
        select_clients(5, 0.0, rng)


def test_a_poisson_sampled_federation_records_its_draws_and_skips_empty_rounds():
    """Each round's sample is a ``selected`` row per drawn hospital; a round that drew none
    leaves the model as it was (no DP wrapper releases it)."""
    from dataclasses import replace

    from test_algorithms import SPEC, TRAIN, sites

    from fedhet.training.federated import run_mode

    spec = replace(TRAIN, rounds=6, client_fraction=0.3, client_sampling="poisson")
    result = run_mode("federated", sites(), None, SPEC, spec, seed=5)
    rounds = result.rounds
    selected = rounds[rounds["quantity"] == "selected"]
    expected = [select_clients(3, 0.3, rng, "poisson") for rng in [np.random.default_rng(5)] for _ in range(6)]
    names = ["large_1", "small_1", "small_2"]
    drawn = [sorted(selected.loc[selected["round"] == r, "hospital"]) for r in range(1, 7)]
    assert drawn == [sorted(names[i] for i in chosen) for chosen in expected]
    assert any(not d for d in drawn)  # this seed draws an empty round
    losses = rounds[rounds["quantity"] == "train_loss"]
    assert len(losses) == len(selected)  # only the drawn hospitals trained
