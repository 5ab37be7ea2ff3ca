"""Model cards: card text, the sample grid, and publishing a loaded model's folder with its card."""
