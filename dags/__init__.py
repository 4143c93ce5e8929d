"""The DAG files aistack ships: a deployment's DAG processor parses them from the installed package."""
