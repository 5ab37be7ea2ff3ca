"""The catalogue: id names, recipes, the registry, and the one parse of a user's name into a reference. Torch-free."""
