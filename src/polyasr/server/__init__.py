"""OpenAI-compatible HTTP server for polyasr (`polyasr serve`, extra `polyasr[server]`).

Modules: `config` (settings), `errors` (OpenAI-shaped errors), `forms` (request fields to
options), `worker` (one batching thread per model), `responses` (response formats and server-sent
events), `limits` (upload size limit and request log), `app` (the routes and the web page).
"""
