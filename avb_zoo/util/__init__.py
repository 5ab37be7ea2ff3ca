"""Small file utilities: atomic writes and bounded reads (the bottom layer above the errors)."""
