"""Private core: the spike function, reset rules, discretisation, the one time loop, argument checks, the
integer codes of compiled kernels (``codes``) and the per-step constants of a LIF-family layer (``spec``).

Nothing in here imports from the rest of the package.
"""
