#!/usr/bin/env bash
# PostgreSQL 15 for the restore-drill tests (tests/deliver_drill_postgres.rs). Debian 12's
# `postgresql-15`; the tests start their own clusters, as the `postgres` user under root.
# Installing starts no service here, and the tests need none.
exec bash "$(dirname "$0")/apt-install.sh" /usr/lib/postgresql/15/bin/initdb postgresql-15 postgresql-client-15
