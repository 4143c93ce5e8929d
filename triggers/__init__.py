"""Airflow triggers: what deferred tasks and asset watchers wait for in the triggerer."""
