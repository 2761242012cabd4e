"""The application layer: one pipeline from data to results.

data → recipe → trainer → evaluation protocol → ``results.json``, report, exported encoder and
search index. This is what the command line runs; ``recipes/`` holds the methods only.
"""
