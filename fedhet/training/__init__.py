"""Training: the model (``model``), the one local loop (``local``), the strategy layer
(``strategy``) and one module per algorithm (``algorithms``), hospitals and the server
(``client``, ``server``), DP-FedAvg's aggregation wrapper (``client_dp``), a federated run
(``federated``), the privacy audit's training runs (``canary``, ``gradient_audit``) and one grid
cell end to end (``cell``).

The only layer that imports torch for training. May import every layer below it."""
