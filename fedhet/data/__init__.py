"""The records: source datasets (``sources``), scanner shifts (``shift``), the hospitals' draw
(``partition``), records no hospital holds (``beyond_hospitals``: the shared set and audit
canaries), public proxies of the hospitals (``public_proxy``) and the one prepare step that
loads, binarises, draws and writes a scenario's partitions for a holdout (``holdout``).

Torch-free. Imports nothing from fedhet but ``fedhet.io``."""
