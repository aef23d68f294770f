"""Recipes: the schema of every key, loading (base:, --set, versions), validation, the type registry."""
