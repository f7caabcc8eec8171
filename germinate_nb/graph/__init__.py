"""Algorithms over the networkx graph of a state's tasks: build, phases, validation."""
