"""Record-level DP per hospital: spec and checks, accounting against Google's dp-accounting,
clipping and noise, placement, reproducibility, multi-round budgets, the cell's privacy table."""

from __future__ import annotations

import logging

import dp_accounting
import numpy as np
import pandas as pd
import pytest
import torch
from opacus.accountants import RDPAccountant
from opacus.grad_sample.conv import compute_conv_grad_sample
from torch import nn
from torch.func import functional_call, grad, vmap

from conftest import TINY_CONFIG
from fedhet.data.partition import HospitalData
from fedhet.privacy.accounting import (
    RDP_ORDERS,
    calibrate_sigma,
    epsilon_spent,
    private_hospitals,
    sampling_rate,
    steps_per_epoch,
    validate_dp,
)
from fedhet.privacy.dpsgd import _conv2d_grad_sample
from fedhet.training.cell import run_cell
from fedhet.training.client import Client, TrainSpec
from fedhet.training.model import ModelSpec, build_model
from fedhet.training.strategy import Message
from fedhet.workflow.algorithms import FEDAVG, load_strategy
from fedhet.workflow.config import Cell
from fedhet.workflow.specs import GRAD_SAMPLE_MODES, DPSpec

SMALL_MODEL = ModelSpec(conv1_channels=4, conv2_channels=8, kernel_size=5)
TYPES = {"large_1": "large", "small_1": "small", "small_2": "small"}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Tiny models: a second thread only adds synchronisation, and on a busy machine much more.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def hospital(name: str, n: int, seed: int = 0) -> HospitalData:
    rng = np.random.default_rng(seed)
    return HospitalData(
        name=name,
        train_images=rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
        train_labels=rng.integers(0, 2, n),
        test_images=rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
        test_labels=np.arange(10) % 2,
    )


def client(data: HospitalData, dp: DPSpec | None, rounds: int = 1, seed: int = 0, index: int = 0) -> Client:
    spec = TrainSpec(rounds=rounds, batch_size=16, lr=0.05)
    return Client(data, SMALL_MODEL, spec, seed, index, dp=dp)


def initial_state() -> dict[str, torch.Tensor]:
    return build_model(SMALL_MODEL, 0).state_dict()


def train(c: Client, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """One FedAvg round of local training from ``state``; the parameters the client sends."""
    return c.train(Message([state]), 1, load_strategy(FEDAVG, initial=lambda j: initial_state())).parameters


def assert_states_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def dp_events(sigma: float, q: float, steps: int):
    return dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), steps
    )


def google_rdp(sigma: float, q: float, steps: int, delta: float) -> float:
    accountant = dp_accounting.rdp.RdpAccountant(orders=list(RDP_ORDERS))
    return accountant.compose(dp_events(sigma, q, steps)).get_epsilon(delta)


def google_pld(sigma: float, q: float, steps: int, delta: float) -> float:
    return dp_accounting.pld.PLDAccountant().compose(dp_events(sigma, q, steps)).get_epsilon(delta)


# --- spec, key and checks ------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, key",
    [
        (DPSpec(), "nodp"),
        (DPSpec("all", 1.0), "all-eps1-delta1e-05-clip1"),
        (DPSpec("small_hospitals", 0.1, 1e-6, 0.5), "small_hospitals-eps0.1-delta1e-06-clip0.5"),
        (DPSpec("large_hospitals", 8.0, 1e-5, 2.0, accountant="rdp"), "large_hospitals-eps8-delta1e-05-clip2-rdp"),
    ],
)
def test_key_round_trips(spec, key):
    assert spec.key() == key
    assert DPSpec.parse(key) == spec


def test_parse_takes_options_the_key_leaves_out_and_rejects_garbage():
    assert DPSpec.parse("all-eps1-delta1e-05-clip1", grad_sample_mode="ew").grad_sample_mode == "ew"
    with pytest.raises(ValueError, match="'eps1-all'"):
        DPSpec.parse("eps1-all")


def test_private_hospitals_by_placement():
    assert private_hospitals(DPSpec(), TYPES) == set()
    assert private_hospitals(DPSpec("all", 1.0), TYPES) == set(TYPES)
    assert private_hospitals(DPSpec("small_hospitals", 1.0), TYPES) == {"small_1", "small_2"}
    assert private_hospitals(DPSpec("large_hospitals", 1.0), TYPES) == {"large_1"}


@pytest.mark.parametrize(
    "spec, named",
    [
        (DPSpec("all", 0.0), "epsilon 0"),
        (DPSpec("all", -1.0), "epsilon -1"),
        (DPSpec("all", 1.0, delta=0.0), "delta 0"),
        (DPSpec("all", 1.0, delta=-1e-5), "delta -1e-05"),
        (DPSpec("all", 1.0, delta=1.0), "delta 1"),
        (DPSpec("all", 1.0, delta=2.0), "delta 2"),
        (DPSpec("all", 1.0, max_grad_norm=0.0), "max_grad_norm 0"),
        (DPSpec("all", 1.0, max_grad_norm=-0.5), "max_grad_norm -0.5"),
        (DPSpec("everywhere", 1.0), "'everywhere'"),
    ],
)
def test_bad_dp_input_names_the_value(spec, named):
    with pytest.raises(ValueError, match=named):
        validate_dp(spec, {"small_1": 1000}, TYPES)


def test_delta_not_below_one_over_n_warns_naming_the_private_hospital(caplog):
    n_train = {"large_1": 40, "small_1": 40, "small_2": 10}
    with caplog.at_level(logging.WARNING, logger="fedhet"):
        validate_dp(DPSpec("small_hospitals", 1.0, delta=0.05), n_train, TYPES)
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "small_1" in warned and "1/40" in warned
    assert "large_1" not in warned  # also δ ≥ 1/n, but it trains without DP
    assert "small_2" not in warned  # δ < 1/10


# --- accounting ------------------------------------------------------------------------------


def test_sampling_rate_is_opacus_one_over_loader_length():
    # The study's hospitals: 3000 and 30000 images, 80% for training, batch 64.
    assert steps_per_epoch(2400, 64) == 38 and sampling_rate(2400, 64) == 1 / 38  # not 64/2400
    assert steps_per_epoch(24000, 64) == 375 and sampling_rate(24000, 64) == 1 / 375


STUDY_VECTORS = [
    (1.1, 0.01, 1000, 1e-5),
    (1.0, sampling_rate(2400, 64), 10 * steps_per_epoch(2400, 64), 1e-5),  # small hospital, 10 rounds
    (1.0, sampling_rate(24000, 64), 10 * steps_per_epoch(24000, 64), 1e-5),  # large hospital, 10 rounds
    (3.0, sampling_rate(2400, 64), 10 * steps_per_epoch(2400, 64), 1e-6),
]


@pytest.mark.parametrize("sigma, q, steps, delta", STUDY_VECTORS)
def test_rdp_epsilon_matches_google_rdp(sigma, q, steps, delta):
    ours = epsilon_spent(sigma, q, steps, delta, "rdp")
    assert ours == pytest.approx(google_rdp(sigma, q, steps, delta), rel=1e-3)


@pytest.mark.parametrize("sigma, q, steps, delta", STUDY_VECTORS)
def test_prv_epsilon_matches_google_pld(sigma, q, steps, delta):
    ours = epsilon_spent(sigma, q, steps, delta, "prv")
    assert ours == pytest.approx(google_pld(sigma, q, steps, delta), rel=0.02)


def test_default_rdp_orders_cannot_certify_small_epsilon_but_ours_can():
    q, steps = sampling_rate(2400, 64), 380
    opacus_default = RDPAccountant()
    opacus_default.history = [(1000.0, q, steps)]
    with pytest.warns(UserWarning):
        assert opacus_default.get_epsilon(1e-5) > 0.1  # floor ~0.103 whatever σ
    assert epsilon_spent(1000.0, q, steps, 1e-5, "rdp") < 0.01


@pytest.mark.parametrize(
    "epsilon, n, accountant",
    [(1.0, 2400, "prv"), (0.1, 2400, "prv"), (8.0, 24000, "prv"), (0.1, 2400, "rdp"), (1.0, 24000, "rdp")],
)
def test_calibrated_sigma_lands_just_under_target(epsilon, n, accountant):
    q, steps, delta = sampling_rate(n, 64), 10 * steps_per_epoch(n, 64), 1e-5
    sigma = calibrate_sigma(epsilon, delta, q, steps, accountant)
    assert epsilon_spent(sigma, q, steps, delta, accountant) <= epsilon
    independent = (google_pld if accountant == "prv" else google_rdp)(sigma, q, steps, delta)
    assert 0.97 * epsilon <= independent <= epsilon


# --- training --------------------------------------------------------------------------------


def silence(trainer) -> None:
    """Turn a private hospital's noise off, in whichever engine it trains with."""
    if hasattr(trainer.engine, "dp_optimizer"):
        trainer.engine.dp_optimizer.noise_multiplier = 0.0
    else:
        trainer.engine.sigma = 0.0


def per_example_norms(trainer, model, x, y) -> torch.Tensor:
    """The per-example gradient norms the engine clipped the last batch (x, y) with."""
    if hasattr(trainer.engine, "clipper"):
        return trainer.engine.clipper.clipped_sum(x, y, trainer.spec.max_grad_norm)[1]
    return torch.stack([p.grad_sample.flatten(1).norm(dim=1) for p in model.parameters()], dim=1).norm(dim=1)


@pytest.mark.parametrize("mode", GRAD_SAMPLE_MODES)
def test_summed_gradient_is_sum_of_per_example_gradients_clipped_to_c(mode):
    clip = 0.05  # small enough that most examples are clipped
    c = client(hospital("small_1", 200), DPSpec("all", 1.0, max_grad_norm=clip, grad_sample_mode=mode))
    trainer = c.batches
    silence(trainer)
    x, y = next(iter(trainer.loader))  # a Poisson batch, in the client's memory format

    reference = build_model(SMALL_MODEL, 0)
    reference.load_state_dict(c.model.state_dict())
    params = {k: v.detach() for k, v in reference.named_parameters()}

    def loss_one(p, xi, yi):
        return nn.functional.cross_entropy(functional_call(reference, p, (xi[None],)), yi[None])

    per_example = vmap(grad(loss_one), in_dims=(None, 0, 0))(params, x, y)
    norms = torch.stack([g.flatten(1).norm(dim=1) for g in per_example.values()], dim=1).norm(dim=1)
    assert len(y) >= 5 and (norms > clip).all()
    factor = (clip / (norms + 1e-6)).clamp(max=1.0)

    trainer.gradient(x, y)  # p.grad ← the clipped (noise-free) sum / expected batch
    engine_norms = per_example_norms(trainer, c.model, x, y)
    assert torch.allclose(engine_norms, norms, rtol=1e-4, atol=1e-6)
    assert (engine_norms * factor).max() <= clip * (1 + 1e-5)
    expected_batch = trainer.engine.expected_batch_size
    for name, p in c.model.named_parameters():
        summed_clipped = torch.einsum("i,i...->...", factor, per_example[name])
        assert torch.allclose(p.grad * expected_batch, summed_clipped, rtol=1e-4, atol=1e-6), name


@pytest.mark.parametrize(
    "conv",
    [
        dict(kernel_size=3, padding=1),
        dict(kernel_size=(3, 2), stride=2, padding=(1, 0)),
        dict(kernel_size=3, dilation=2, padding=2, bias=False),
        dict(kernel_size=3, stride=(2, 1), padding=1),
    ],
)
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_conv_rule_matches_opacus_on_nchw_in_any_layout(conv, layout):
    torch.manual_seed(0)
    layer = nn.Conv2d(3, 5, **conv)
    x = torch.randn(4, 3, 11, 9)
    backprops = torch.randn_like(layer(x))
    expected = compute_conv_grad_sample(layer, [x], backprops)
    layer.to(memory_format=layout)
    got = _conv2d_grad_sample(layer, [x.contiguous(memory_format=layout)], backprops.contiguous(memory_format=layout))
    assert got.keys() == expected.keys()
    for param, value in expected.items():
        assert torch.allclose(got[param], value, atol=1e-5)


def test_noise_is_really_added():
    spec = DPSpec("all", 1.0)
    noisy, silent = client(hospital("small_1", 200), spec), client(hospital("small_1", 200), spec)
    silence(silent.batches)  # same seed: same Poisson batches
    a, b = train(noisy, initial_state()), train(silent, initial_state())
    assert not torch.equal(a["fc.weight"], b["fc.weight"])
    plain = train(client(hospital("small_1", 200), None), initial_state())
    assert not torch.equal(a["fc.weight"], plain["fc.weight"])


def test_dp_run_is_reproducible_with_a_fixed_seed():
    spec = DPSpec("all", 2.0)
    runs = [client(hospital("small_1", 200), spec, rounds=2) for _ in range(2)]
    states = []
    for c in runs:
        state = initial_state()
        for _ in range(2):
            state = train(c, state)
        states.append(state)
    assert_states_equal(*states)
    assert runs[0].privacy_record() == runs[1].privacy_record()
    other_seed = train(client(hospital("small_1", 200), spec, seed=1), initial_state())
    assert not torch.equal(states[0]["fc.weight"], other_seed["fc.weight"])


def test_budget_composes_over_rounds_and_is_not_reset():
    rounds, epsilon = 3, 1.0
    c = client(hospital("small_1", 200), DPSpec("all", epsilon), rounds=rounds)
    state = initial_state()
    for _ in range(rounds):
        state = train(c, state)
    assert not any(k.startswith("_module.") for k in state)
    record, per_round = c.privacy_record(), steps_per_epoch(200, 16)
    assert record.steps == rounds * per_round
    assert record.epsilon_spent == pytest.approx(epsilon_spent(record.sigma, record.q, rounds * per_round, 1e-5))
    assert epsilon_spent(record.sigma, record.q, per_round, 1e-5) < 0.7 * record.epsilon_spent
    assert 0.97 * epsilon <= record.epsilon_spent <= epsilon
    with pytest.raises(RuntimeError, match="overspend"):
        train(c, state)  # σ was calibrated for 3 rounds only


def test_empty_poisson_batches_still_count_as_steps():
    c = Client(hospital("small_1", 5), SMALL_MODEL, TrainSpec(rounds=4, batch_size=2), 0, 0, dp=DPSpec("all", 4.0))
    state = initial_state()
    for _ in range(4):
        state = train(c, state)  # q = 1/3 over 5 records: some batches are empty
    assert c.privacy_record().steps == 4 * 3
    assert all(torch.isfinite(v).all() for v in state.values())


# --- the cell's privacy table ------------------------------------------------------------------


# Who trains in each mode, and who is private under each placement among those who train.
TRAINS = {"federated": {"large", "small"}, "local": {"large", "small"}, "large_only": {"large"}}
PLACED = {"none": set(), "all": {"large", "small"}, "small_hospitals": {"small"}, "large_hospitals": {"large"}}


def privacy_rows(tmp_path, tiny_partitions, mode: str, dp: DPSpec) -> pd.DataFrame:
    scenario, parts = tiny_partitions
    out = tmp_path / f"{mode}-{dp.key()}"
    cell = Cell(scenario.key(), mode, 0, dp.key())
    run_cell(TINY_CONFIG, cell, parts, None, out / "m.parquet", out / "r.parquet", privacy_out=out / "p.parquet")
    return pd.read_parquet(out / "p.parquet")


@pytest.mark.parametrize("mode", sorted(TRAINS))
@pytest.mark.parametrize("placement", sorted(PLACED))
def test_run_cell_makes_private_exactly_the_hospitals_that_train_under_the_placement(
    tmp_path, tiny_partitions, mode, placement
):
    dp = DPSpec(placement, 2.0)
    table = privacy_rows(tmp_path, tiny_partitions, mode, dp)
    kinds = table["hospital"].str.rsplit("_", n=1).str[0]
    assert sorted(table["hospital"]) == ["large_1", "small_1", "small_2"]
    assert table["trained"].tolist() == [k in TRAINS[mode] for k in kinds]
    assert table["private"].tolist() == [k in TRAINS[mode] & PLACED[placement] for k in kinds]
    private, public = table[table["private"]], table[~table["private"]]
    steps = {"large": 2 * steps_per_epoch(240, 16), "small": 2 * steps_per_epoch(200, 16)}
    assert private["steps"].tolist() == [steps[k] for k in kinds[table["private"]]]
    assert ((0.97 * 2.0 <= private["epsilon_spent"]) & (private["epsilon_spent"] <= 2.0)).all()
    # A hospital that is not private (trains without DP, or only evaluates) has no σ and spends nothing.
    assert public[["sigma", "epsilon_spent", "q"]].isna().all().all() and public["steps"].isna().all()
    assert (table["dp"] == dp.key()).all() and (table["mode"] == mode).all()


def test_private_and_plain_hospitals_train_through_the_same_loop(tmp_path, tiny_partitions):
    """With DP at the small hospitals only, the large hospital's own model (local mode) is the
    one it gets without DP: the placement changes nothing for a hospital it does not cover."""
    scenario, parts = tiny_partitions
    runs = {}
    for dp in (DPSpec(), DPSpec("small_hospitals", 2.0)):
        out = tmp_path / dp.key()
        cell = Cell(scenario.key(), "local", 0, dp.key())
        runs[dp.key()] = run_cell(TINY_CONFIG, cell, parts, None, out / "m.parquet", out / "r.parquet")
    plain, dp = (runs[k].set_index(["model", "hospital", "metric"])["value"] for k in runs)
    assert plain.loc["large_1"].equals(dp.loc["large_1"])
    assert not plain.loc["small_1"].equals(dp.loc["small_1"])


def test_run_cell_refuses_partitions_drawn_for_another_holdout(tmp_path, tiny_partitions):
    """A selection (validation) cell must never read the partitions that hold the test splits."""
    scenario, parts = tiny_partitions
    cell = Cell(scenario.key(), "federated", 0, "nodp", "fedavg", "validation")
    with pytest.raises(ValueError, match="partitions are for .*'test'"):
        run_cell(TINY_CONFIG, cell, parts, None, tmp_path / "m.parquet", tmp_path / "r.parquet")
    assert not (tmp_path / "m.parquet").exists()
