"""Pieces of ``benchmarks/peers.py``: the benchmark networks and one adapter per library.

* ``nets``: the configs, the shared weights and inputs, and each net as a list of stateless torch layers;
* ``base``: ``PeerAdapter``, what the harness asks of a library (installed? version, build the net for a
  config, the timed phases, the spike train for the agreement check), and the time loops adapters share;
* ``adapters``: one small adapter per library and ``ADAPTERS``, the table the harness runs (``--libs``).

Adding a library: one ``PeerAdapter`` subclass in ``adapters.py`` plus its entry in ``ADAPTERS``.
"""
