"""The Hub transport: client settings and error mapping, hashes, pinned pulls and shipped copies, hf-hub repos,
upload, and the one function from a name or folder to a verified folder. Torch-free."""
