"""`capport bench`: benchmarks in the namespace laboratory, against references.

One module per benchmark (responder, abuse, dataplane, grants, scale), the
runner that builds one testbed for all of them, and the report writer.
The modules run as helpers inside namespaces (loadgen, nftworker) import
nothing heavy from here.
"""
