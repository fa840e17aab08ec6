"""NIR -> spikeforge, step one: check the node types and linearise the graph into a chain of items."""

from __future__ import annotations

from typing import Any

from spikeforge.nir import _mapping as m

__all__ = ["SUPPORTED_NODES", "Item", "node_error", "check_types", "chain", "fuse"]

SUPPORTED_NODES: tuple[str, ...] = (
    "Input", "Output", "Affine", "Linear", "Conv1d", "Conv2d", "Flatten", "SumPool2d", "AvgPool2d", "Scale",
    "Threshold", "IF", "LIF", "CubaLIF", "LI", "I (followed by Threshold)", "CubaLI (followed by Threshold)",
    "Delay (followed by Affine/Linear: per-axon delays)",
    "NIRGraph (a chain, or a LIF with a Linear/Affine recurrent loop)",
)  # fmt: skip
_KNOWN = {"Input", "Output", "Affine", "Linear", "Conv1d", "Conv2d", "Flatten", "SumPool2d", "AvgPool2d", "Scale",
          "Threshold", "IF", "LIF", "CubaLIF", "LI", "I", "CubaLI", "NIRGraph", "Delay"}  # fmt: skip


def node_error(where: str, msg: str) -> m.NIRImportError:
    return m.NIRImportError(f"NIR node {where!r}: {msg}")


Item = tuple[str, str, tuple[Any, ...]]  # (name, kind, NIR nodes)


def check_types(graph: Any, prefix: str) -> None:
    bad = []
    for name, node in graph.nodes.items():
        kind = type(node).__name__
        if kind not in _KNOWN:
            bad.append(f"{prefix}{name!r} ({kind})")
        elif kind == "NIRGraph":
            check_types(node, f"{prefix}{name}.")
    if bad:
        raise m.NIRImportError(f"unsupported NIR node(s): {', '.join(bad)}; supported: {', '.join(SUPPORTED_NODES)}")


def chain(graph: Any, prefix: str) -> list[Item]:
    """Nodes of ``graph`` in order from its Input to its Output; LIF<->Linear 2-cycles become one recurrent item."""
    nodes, edges = dict(graph.nodes), [(str(a), str(b)) for a, b in graph.edges]
    for a, b in edges:
        if a not in nodes or b not in nodes:
            raise m.NIRImportError(f"edge ({prefix}{a!r}, {prefix}{b!r}) names a node that does not exist")
    recurrent: dict[str, str] = {}
    for a, b in list(edges):
        if (b, a) in edges and a not in recurrent and b not in recurrent.values():
            kinds = (type(nodes[a]).__name__, type(nodes[b]).__name__)
            if kinds[0] in ("LIF", "CubaLIF") and kinds[1] in ("Linear", "Affine"):
                if sum(e[1] == b for e in edges) != 1 or sum(e[0] == b for e in edges) != 1:
                    raise node_error(prefix + b, "a recurrent weight must connect only its neuron to itself")
                recurrent[a] = b
    for a, b in recurrent.items():
        edges = [e for e in edges if e not in ((a, b), (b, a))]
        del nodes[b]
    ins: dict[str, list[str]] = {k: [] for k in nodes}
    outs: dict[str, list[str]] = {k: [] for k in nodes}
    for a, b in edges:
        outs[a].append(b)
        ins[b].append(a)
    for k in nodes:
        if len(ins[k]) > 1 or len(outs[k]) > 1:
            raise node_error(
                prefix + k,
                f"has {len(ins[k])} inputs and {len(outs[k])} outputs; only chains (and LIF recurrent loops) are supported",
            )
    roots = [k for k in nodes if type(nodes[k]).__name__ == "Input"] or [k for k in nodes if not ins[k]]
    if len(roots) != 1:
        raise m.NIRImportError(f"graph {prefix or '<top>'} needs exactly one Input, found {len(roots)}: {roots}")
    items: list[Item] = []
    seen: set[str] = set()
    cur: str | None = roots[0]
    while cur is not None:
        if cur in seen:
            raise node_error(prefix + cur, "lies on a cycle other than a LIF<->Linear recurrent loop")
        seen.add(cur)
        node, kind = nodes[cur], type(nodes[cur]).__name__
        if kind == "NIRGraph":
            items += chain(node, f"{prefix}{cur}.")
        elif cur in recurrent:
            items.append((prefix + cur, "R" + kind, (node, graph.nodes[recurrent[cur]])))
        elif kind not in ("Input", "Output"):
            items.append((prefix + cur, kind, (node,)))
        cur = outs[cur][0] if outs[cur] else None
    missing = sorted(set(nodes) - seen)
    if missing:
        raise m.NIRImportError(
            f"nodes {[prefix + k for k in missing]} are not connected to the chain from {prefix}{roots[0]!r}"
        )
    return items


def fuse(items: list[Item]) -> list[Item]:
    """LI / I / CubaLI followed by Threshold is a neuron without reset, Delay followed by Affine/Linear a
    per-axon DelayedLinear: fuse the pair."""
    out: list[Item] = []
    i = 0
    while i < len(items):
        name, kind, nodes = items[i]
        nxt = items[i + 1] if i + 1 < len(items) else None
        if kind in ("LI", "I", "CubaLI") and nxt is not None and nxt[1] == "Threshold":
            out.append((name, kind + "+Threshold", nodes + nxt[2]))
            i += 2
            continue
        if kind == "Delay":
            if nxt is None or nxt[1] not in ("Affine", "Linear"):
                raise node_error(
                    name, "a Delay must be followed directly by an Affine/Linear (spikeforge's per-axon DelayedLinear)"
                )
            out.append((name, "Delay+" + nxt[1], nodes + nxt[2]))
            i += 2
            continue
        if kind in ("I", "CubaLI"):
            raise node_error(
                name,
                f"{kind} without a following Threshold has no spikeforge equivalent; supported: {', '.join(SUPPORTED_NODES)}",
            )
        out.append(items[i])
        i += 1
    return out
