"""What the analysis scripts share, one module per job: request (parameters, context, patterns), drawing
(PNG pictures), result (numbers, impact, records) and clustering (k-means and pattern labels).

Nothing here imports django or does work at import; the package itself imports nothing, so the web
process may read processes.scripts.specs without loading numpy.
"""
