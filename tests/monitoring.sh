#!/usr/bin/env bash
# The alerting rules in data/monitoring/ checked by Prometheus' own tool: `promtool check
# rules` (syntax, templates) and `promtool test rules` (each alert fires on the series that
# should raise it, at the time it should, with its labels and annotations, and stays quiet on
# the healthy series beside it). The dashboard's and the rules' metric names are checked
# against a live server by tests/monitoring.rs (part of `cargo test`).
#
#   tests/monitoring.sh     (installs Debian's prometheus package for promtool when missing)
. "$(dirname "$0")/../tests/lib.sh"

need promtool:prometheus
cd "$(dirname "$0")/../data/monitoring"
promtool check rules cnamed-alerts.yml
promtool test rules cnamed-alerts.test.yml
echo "monitoring: rules checked and their unit tests pass"
