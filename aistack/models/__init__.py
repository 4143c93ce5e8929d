"""OllamaModelDefinitions become Ollama models: the Modelfile, the build pod, the build status.

- `modelfile`: one mapping from a definition to Ollama's create request, rendered as a Modelfile
  or as the API's JSON, with the build digest that says whether a build is current.
- `build_pod`: the pod that runs `ollama create` on a GPU node (script, environment, scheduling).
- `builds`: build decisions and the status each build writes back to the resource.
- `provision`: build the models a set of agents needs that Ollama lacks (local runs and agents).

Layer: above `aistack.resources` and `aistack.kube`. Imports no Airflow.
"""
