"""Client-level DP (DP-FedAvg, McMahan et al. 2018): the server clips each hospital's update
and adds Gaussian noise to their sum, so that what it releases protects whether a hospital
took part at all (all of its records at once), not one patient's record.

Owns ``ClientLevelDP``, which wraps a strategy with one global model (FedAvg, FedProx, FedPer's
shared layers, shared data) and replaces how it combines the updates (``Strategy.average``);
the strategy's own server step then runs on the privatised mean alone, and everything else is
the strategy's. A strategy whose updates carry extras (IFCA's pick, SCAFFOLD's control
variates) is refused: they would cross without the server's noise.
Each round, with w the global model the selected hospitals started from:

    Δ_k = w_k − w                       (hospital k's shared floating-point parameters)
    Δ̃_k = Δ_k · min(1, S / ‖Δ_k‖)       (clipped to norm S over all of them at once)
    w  ← w + (Σ_k Δ̃_k + N(0, σ²S² I)) / m,   m = max(1, ⌈C·K⌉), fixed before training.

Neighbouring relation: two federations that differ in whether one hospital's update is there
(add/remove: absent, it contributes nothing to the sum). The clipped sum then moves by at most
S, the sensitivity σ is calibrated for. Replacing one hospital's update by another moves it by up
to 2S: for that relation the guarantee is, by group privacy, at most (2ε, (1 + e^ε)δ). What is
public: K (the nominal number of
hospitals: ``dp.clients``, else the number in the federation's config), the fraction C, the
number of rounds, S and σ. The denominator m is a function of those alone, never of how many
updates arrived: dividing by the count received would let the noise scale of the released
mean, σS/m, reveal whether a hospital took part (McMahan et al. divide by a fixed count for
that reason). Equal weights, not FedAvg's record counts: adding or removing one hospital moves
the sum by at most S whatever its size. Under this wrapper no hospital's training loss leaves
it (``releases_loss``): the noise covers the update, not a loss sent beside it.

σ is calibrated once for the run, ``rounds`` compositions of the Gaussian mechanism, by the
accountant the record-level hospitals use (``fedhet.privacy.accounting``). With
``training.client_sampling: fixed`` (the default) the server selects ⌈C·K⌉ hospitals per round
and q = 1: no amplification by sampling is claimed. With ``poisson`` each hospital takes part in
a round independently with probability C (``fedhet.training.server.select_clients``), and the
accountant composes Poisson-subsampled Gaussian mechanisms with q = C (add/remove-one, the
relation above), cross-checked against dp_accounting in the tests. Every round releases a
model, even one that drew no hospital (then noise alone). The noise is drawn on the server from a generator
seeded by the cell's seed; the server still sees only ``Update``s.
"""

from __future__ import annotations

import math

import torch

from fedhet.device import CPU, stream_generator
from fedhet.privacy.accounting import PrivacyRecord, calibrate_sigma, epsilon_of_history
from fedhet.training.strategy import Parameters, Strategy, Update
from fedhet.workflow.specs import DPSpec

NOISE_STREAM = 9  # fedhet.device.stream_generator purpose: the server's client-level noise


def nominal_denominator(clients: int, fraction: float) -> int:
    """m = max(1, ⌈C·K⌉): the public count DP-FedAvg divides by (``select_clients``' count)."""
    if clients < 1:
        raise ValueError(f"dp clients {clients}: client-level DP needs a nominal number of hospitals ≥ 1")
    return max(1, math.ceil(fraction * clients - 1e-9))


class ClientLevelDP:
    """``strategy`` with its aggregation made client-level DP; every other hook is its own.
    ``clients`` is the federation's number of hospitals (K unless ``spec.clients`` states it)
    and ``fraction`` the share selected per round: together they fix the public denominator."""

    releases_loss = False  # a loss beside the update would be a second, unnoised release
    releases_every_round = True  # the accountant composes every round, drawn hospitals or not

    def __init__(
        self,
        strategy: Strategy,
        spec: DPSpec,
        rounds: int,
        seed: int,
        clients: int,
        fraction: float = 1.0,
        device=CPU,
        sampling: str = "fixed",
    ):
        if len(strategy.message().models) != 1:
            raise ValueError(
                f"algorithm {strategy.spec.key()}: client-level DP needs one global model; it sends"
                f" {len(strategy.message().models)}"
            )
        if strategy.sends:
            raise ValueError(
                f"algorithm {strategy.spec.key()}: its updates carry {', '.join(sorted(strategy.sends))}, which"
                f" client-level DP (dp {spec.key()}) does not noise"
            )
        self.strategy, self.spec = strategy, spec
        # Amplification by sampling only where the hospitals are a Poisson sample (q = C).
        self.q, self.rounds = (fraction if sampling == "poisson" else 1.0), rounds
        self.denominator = nominal_denominator(spec.clients or clients, fraction)
        self.sigma = calibrate_sigma(spec.epsilon, spec.delta, self.q, rounds, spec.accountant)
        self.generator = stream_generator(seed, NOISE_STREAM, device=device)
        self.history: list[tuple[float, float, int]] = []  # (σ, q, rounds released)

    def __getattr__(self, name):
        return getattr(self.strategy, name)

    def aggregate(self, updates: list[Update]) -> None:
        # The strategy's server step sees the privatised mean, never the updates themselves.
        self.strategy.server_step(self.average(updates), [])
        self._count_round()

    def average(self, updates: list[Update]) -> Parameters:
        """The clipped, noised mean of the updates, over the public denominator m."""
        (start,) = self.strategy.message().models
        total = {k: torch.zeros_like(v, dtype=torch.float64) for k, v in start.items() if v.is_floating_point()}
        for update in updates:
            delta = {k: update.parameters[k].to(torch.float64) - start[k].to(torch.float64) for k in total}
            norm = math.sqrt(sum(float(d.pow(2).sum()) for d in delta.values()))
            scale = min(1.0, self.spec.max_grad_norm / norm) if norm > 0 else 1.0
            for k, d in delta.items():
                total[k] += d * scale
        std = self.sigma * self.spec.max_grad_norm
        new: Parameters = {}
        for k, v in start.items():
            if k not in total:
                new[k] = v.clone()  # e.g. BatchNorm counters: not released, not averaged
                continue
            noise = torch.randn(v.shape, generator=self.generator, device=v.device, dtype=v.dtype) * std
            new[k] = (v.to(torch.float64) + (total[k] + noise.to(torch.float64)) / self.denominator).to(v.dtype)
        return new

    def _count_round(self) -> None:
        if self.history:
            sigma, q, steps = self.history[-1]
            self.history[-1] = (sigma, q, steps + 1)
        else:
            self.history.append((self.sigma, self.q, 1))

    def record(self, hospital: str) -> PrivacyRecord:
        """What the released models spent on ``hospital``'s participation (the same for all)."""
        spent = epsilon_of_history(self.history, self.spec.delta, self.spec.accountant)
        return PrivacyRecord(
            hospital=hospital,
            private=True,
            sigma=self.sigma,
            max_grad_norm=self.spec.max_grad_norm,
            q=self.q,
            steps=sum(steps for *_, steps in self.history),
            epsilon_target=self.spec.epsilon,
            epsilon_spent=float(spent),
            delta=self.spec.delta,
            accountant=self.spec.accountant,
            level="client",
        )
