"""Airflow operators: thin adapters that run aistack's core (model builds, A2A agent calls) as tasks."""
