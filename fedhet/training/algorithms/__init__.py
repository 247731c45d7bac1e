"""One module per federated algorithm, each a ``fedhet.training.strategy.Strategy``. Their
names, parameters and flags are registered in ``fedhet.workflow.algorithms``, which imports a
module here only when a cell trains with it."""
