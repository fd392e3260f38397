"""The model store: manifest schema, lock and journalled swap, hashes."""
