"""The declared topology: the YAML file, its pydantic model and the flow graph."""

from mailtrace.topology.flow import FlowError, FlowGraph
from mailtrace.topology.loader import (
    TopologyError,
    load_topology,
    parse_topology,
    topology_json_schema,
)
from mailtrace.topology.model import Topology

__all__ = [
    "FlowError",
    "FlowGraph",
    "Topology",
    "TopologyError",
    "load_topology",
    "parse_topology",
    "topology_json_schema",
]
