"""The vocabulary the workflow and the training share: spec dataclasses (``specs``), output keys
and path patterns (``keys``), the validated config and a cell's identity (``config``), the
algorithm registry (``algorithms``), experiment grids, choices and tuning cells
(``experiments``) and the figure registry (``figure_specs``).

Torch-free, so that Snakemake builds and checks a grid without loading torch. Imports only
``fedhet.data`` and ``fedhet.io`` from below."""
