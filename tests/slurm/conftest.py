def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slurm: starts a one-node SLURM cluster (root, Debian); runs only with FEDHET_SLURM_TEST=1"
    )
