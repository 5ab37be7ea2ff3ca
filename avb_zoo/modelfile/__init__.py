"""The model folder format: config.json, file names, provenance records. Torch-free."""
