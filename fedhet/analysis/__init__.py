"""Reading results: per-hospital metrics (``metrics``), tables and their aggregation
(``tables``), trend tests (``sweeps``), hyperparameter selection (``tuning``), figures
(``chart``, ``figures``, ``privacy_figures``), the job plan and its cost (``plan``), and
provenance and reproduction checks (``provenance``, ``repro``).

Torch-free. Imports ``fedhet.privacy`` (torch-free modules only), ``fedhet.workflow``,
``fedhet.data`` and the root modules."""
