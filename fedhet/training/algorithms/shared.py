"""Shared data (Zhao et al. 2018, arXiv 1806.00582): a small public set G that every client
trains on beside its own records.

G is drawn from the pool, disjoint from every hospital and at the pool's class balance, with
β × (all hospitals' training records) images (``fedhet.data.beyond_hospitals.draw_shared``); in hospitals it
would come from patients who consented to sharing. The server first trains the initial model
one epoch on G (warm-up), then hands each client a random α share of G, once; the client trains
on its records plus that share every round. FedAvg weights stay the hospitals' own record
counts: G is common to all, so weighting by it would only flatten the weights toward equal.

G is public by consent: under DP it costs no ε. A private hospital's Poisson sampler draws only
its own records (q and steps unchanged); its share of G is spread over the steps of each epoch
and enters the noised gradient unclipped and noise-free (``fedhet.privacy.dpsgd.PrivateBatches``).
With β = 0 it is FedAvg exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from fedhet.device import stream_generator
from fedhet.training import strategy
from fedhet.training.local import PlainBatches, train_local
from fedhet.training.model import build_model
from fedhet.training.optimizer import make_optimizer
from fedhet.workflow.algorithms import AlgorithmSpec
from fedhet.workflow.specs import ModelSpec, TrainSpec


class Strategy(strategy.Strategy):
    def __init__(
        self,
        spec: AlgorithmSpec,
        initial: Callable[[int], strategy.Parameters],
        public: strategy.PublicRecords | None = None,
        model_spec: ModelSpec | None = None,
        train_spec: TrainSpec | None = None,
        seed: int = 0,
        **context,
    ):
        if public is None or model_spec is None or train_spec is None:
            raise ValueError(f"algorithm {spec.key()}: needs the shared set G, the model and the training spec")
        super().__init__(spec, initial)
        self.public, self.seed = public, seed
        if len(public[1]):
            self.models = [self.sent(self._warm_up(initial(0), model_spec, train_spec))]

    def _warm_up(self, start: strategy.Parameters, model_spec: ModelSpec, train_spec: TrainSpec):
        """One epoch of plain SGD on G at the server, from the cell's initial model."""
        images, labels = self.public
        model = build_model(model_spec, self.seed).to(images.device, memory_format=torch.channels_last)
        model.load_state_dict(start)
        optimizer = make_optimizer(model.parameters(), train_spec)
        batches = PlainBatches(model, optimizer, images, labels, train_spec.batch_size, stream_generator(self.seed, 7))
        train_local(batches, 1)
        return {k: v.detach().clone() for k, v in model.state_dict().items()}

    def public_share(self, index: int) -> strategy.PublicRecords:
        images, labels = self.public
        n = int(round(self.spec["alpha"] * len(labels)))
        pick = (
            torch.randperm(len(labels), generator=stream_generator(self.seed, 8, index))[:n]
            .sort()
            .values.to(images.device)
        )
        return images[pick], labels[pick]
