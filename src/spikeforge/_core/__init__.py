"""Private core: the spike function, reset rules, discretisation and the one time loop.

Nothing in here imports from the rest of the package.
"""
