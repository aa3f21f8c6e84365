"""Local multi-node clusters for testers: create, start, stop, and inject faults."""
