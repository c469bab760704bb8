#!/usr/bin/env bash
# Graphviz's dot for tests/graph.rs: every `pipe graph` drawing must render with `dot -Tsvg`.
exec bash "$(dirname "$0")/apt-install.sh" dot graphviz
