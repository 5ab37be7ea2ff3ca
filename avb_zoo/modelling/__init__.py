"""The torch model: networks, objectives, the model class, weights, from_pretrained and the factory (make/load)."""
