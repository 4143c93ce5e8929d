"""Airflow hooks: connections to what aistack's tasks call (A2A agents, Airflow's REST API)."""
