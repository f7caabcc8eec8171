"""Pure drawing: a state (and statuses) to a matplotlib figure, PNG/SVG, dot or Mermaid text."""
