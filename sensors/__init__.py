"""Airflow sensors: thin adapters that watch aistack's custom resources for new submissions."""
