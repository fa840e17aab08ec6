"""Private core: the spike function, reset rules, discretisation, the one time loop, argument checks, the
integer codes of compiled kernels (``codes``), the per-step constants of a LIF-family layer (``spec``) and
typing names of newer Pythons (``compat``).

Nothing in here imports from the rest of the package.
"""
