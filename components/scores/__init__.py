"""Scores: a reward model's scores of both sides of every pair, kept per dataset version, model and
model revision."""
