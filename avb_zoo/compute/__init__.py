"""Where and how torch computes: device choice, keyed random generators, the distributed process group."""
