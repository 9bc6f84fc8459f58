"""Lambda entry points, one module per state: thin wrappers that build clients and call plain functions."""
