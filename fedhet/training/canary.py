"""The training side of the privacy audit: canaries planted in one hospital's training records,
and the auditor's score of each canary from the model that hospital ends with.

The canaries are drawn by ``fedhet.data.beyond_hospitals.draw_canaries`` (records outside every hospital,
labels flipped, each included with probability ½); the statistics that turn scores into an ε
lower bound are ``fedhet.privacy.audit``'s. The auditor plays the attacker: it holds the released model
and the canaries it planted, never the hospital's own records.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from fedhet.data.beyond_hospitals import Canaries, read_canaries
from fedhet.data.partition import HospitalData
from fedhet.training.model import build_model, to_tensor
from fedhet.training.strategy import Parameters
from fedhet.workflow.specs import CanarySpec, ModelSpec


@dataclass(frozen=True)
class CanaryAudit:
    spec: CanarySpec
    images: np.ndarray
    canaries: Canaries

    @classmethod
    def load(cls, spec: CanarySpec, path: Path) -> CanaryAudit:
        images, canaries = read_canaries(path)
        if len(canaries.labels) != spec.count:
            raise ValueError(
                f"{path}: holds {len(canaries.labels)} canaries, the audit {spec.key()} needs {spec.count}"
            )
        return cls(spec, images, canaries)

    def plant(self, hospitals: dict[str, HospitalData], training: set[str]) -> dict[str, HospitalData]:
        """The hospitals' data with the included canaries appended to the audited hospital's
        training records. Refuses a hospital that does not train in the cell's mode: its
        canaries would never reach a model."""
        name = self.spec.hospital
        if name not in hospitals:
            raise ValueError(f"audit {self.spec.key()}: no hospital {name!r} (the cell has {', '.join(hospitals)})")
        if name not in training:
            raise ValueError(f"audit {self.spec.key()}: hospital {name} does not train in this mode")
        data, keep = hospitals[name], self.canaries.included
        planted = replace(
            data,
            train_images=np.concatenate([data.train_images, self.images[keep]]),
            train_labels=np.concatenate([data.train_labels, self.canaries.labels[keep]]),
        )
        return {**hospitals, name: planted}

    def scores(self, model_spec: ModelSpec, state: Parameters, device: torch.device) -> pd.DataFrame:
        """Every canary's score under the final model ``state``: minus its loss with the
        flipped label, so that a canary the model was fitted to scores high."""
        model = build_model(model_spec, 0).to(device)
        model.load_state_dict(state)
        model.eval()
        x, y = to_tensor(self.images, device), torch.from_numpy(self.canaries.labels).to(device)
        loss = nn.CrossEntropyLoss(reduction="none")
        with torch.no_grad():
            values = torch.cat([loss(model(x[i : i + 2048]), y[i : i + 2048]) for i in range(0, len(y), 2048)])
        return pd.DataFrame(
            {
                "canary": np.arange(len(y)),
                "source_index": self.canaries.source_index,
                "included": self.canaries.included,
                "score": -values.cpu().numpy().astype(np.float64),
            }
        )
