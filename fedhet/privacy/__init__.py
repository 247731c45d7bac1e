"""Privacy: the accountant (``accounting``), per-sample clipping and the DP-SGD engines
(``clipping``, ``dpsgd``), what tuning costs (``tuning_charge``) and the audit's grid and
bounds (``audit``).

``accounting``, ``tuning_charge`` and ``audit`` are torch-free. Imports ``fedhet.workflow``,
``fedhet.data`` and the root modules."""
