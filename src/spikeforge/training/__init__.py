"""Training of spiking classifiers: configuration and name validation (:mod:`.config`, :mod:`.choices`),
model builders (:mod:`.models`), the training loop (:mod:`.loop`), evaluation (:mod:`.evaluate`,
:mod:`.saved`), checkpoints (:mod:`.checkpoint`) and data parallelism (:mod:`.distributed`).

The public names are exported by the documented modules :mod:`spikeforge.train`, :mod:`spikeforge.models`
and :mod:`spikeforge.distributed`; code inside the package imports these submodules, never those three.
"""
