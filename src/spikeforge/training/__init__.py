"""Training of spiking classifiers: configuration and name validation (:mod:`.config`, :mod:`.choices`),
model builders (:mod:`.models`), the training loop (:mod:`.loop`) with its run directory and lock
(:mod:`.rundir`), resumption and per-epoch saving (:mod:`.resume`) and data splits (:mod:`.splits`),
evaluation (:mod:`.evaluate`, :mod:`.saved`), checkpoints (:mod:`.checkpoint`: file checks and safe loading;
:mod:`.checked`: the one checked way from a file's tensors to a model), memory and size caps (:mod:`.memory`)
and data parallelism (:mod:`.distributed`).

The public names are exported by the documented modules :mod:`spikeforge.train`, :mod:`spikeforge.models`
and :mod:`spikeforge.distributed`; code inside the package imports these submodules, never those three.
"""
