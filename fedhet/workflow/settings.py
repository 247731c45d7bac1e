"""Whether a cell's settings can run together: the one check shared by the workflow, which
refuses a grid or a choice before any job, and ``fedhet.training.cell.run_cell``, which refuses
a cell given on the command line before any hospital is built. Torch-free."""

from __future__ import annotations

from fedhet.workflow.algorithms import FEDAVG, AlgorithmSpec
from fedhet.workflow.specs import MODE_TAKES_ALGORITHM, DPSpec


def setting_problem(mode: str, algorithm: AlgorithmSpec, dp: DPSpec) -> tuple[str, str] | None:
    """The first reason a cell of ``mode``, ``algorithm`` and ``dp`` cannot run, as (the config
    field at fault: ``modes`` or ``algorithms``, the reason); None when it can."""
    key = algorithm.key()
    if algorithm != FEDAVG and not MODE_TAKES_ALGORITHM[mode]:
        return "algorithms", f"{key}: mode {mode} trains with fedavg only"
    if dp.client_level and mode != "federated":
        return "modes", f"client-level DP protects hospitals in a federation, not mode {mode}"
    if dp.client_level and not algorithm.info.client_level:
        return "algorithms", (
            f"{key} cannot run under client-level DP ({dp.key()}): its updates carry extras the server's"
            " noise does not cover"
        )
    if dp.enabled and not dp.client_level and not algorithm.info.dp_compatible:
        return "algorithms", (
            f"{key} cannot run under DP-SGD ({dp.key()}): it acts on a choice computed from private records"
            " that DP-SGD's accountant does not cover"
        )
    return None


def check_setting(mode: str, algorithm: AlgorithmSpec, dp: DPSpec) -> None:
    """Raise ``ValueError`` with ``setting_problem``'s reason."""
    problem = setting_problem(mode, algorithm, dp)
    if problem is not None:
        raise ValueError(problem[1])
