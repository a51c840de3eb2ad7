"""Data model: schemas, loading, manifest, bundled datasets and simulation."""
