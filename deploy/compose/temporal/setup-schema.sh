#!/bin/sh
# One-shot of docker-compose.yml (service temporal-schema, image
# temporalio/admin-tools): creates or upgrades Temporal's own schema before the
# server starts: the `temporal` keyspace in Cassandra (the default store) and
# the visibility index in Elasticsearch. Every step is idempotent, so it runs
# on every `docker compose up`.
set -eu

: "${CASSANDRA_SEEDS:?}" "${TEMPORAL_KEYSPACE:?}" "${ES_SERVER:?}" "${ES_VISIBILITY_INDEX:?}"
schema=/etc/temporal/schema

echo "waiting for Cassandra at ${CASSANDRA_SEEDS}"
until temporal-cassandra-tool --ep "${CASSANDRA_SEEDS}" validate-health; do sleep 2; done

temporal-cassandra-tool --ep "${CASSANDRA_SEEDS}" create-keyspace -k "${TEMPORAL_KEYSPACE}" --rf "${TEMPORAL_REPLICATION_FACTOR:-1}"
temporal-cassandra-tool --ep "${CASSANDRA_SEEDS}" -k "${TEMPORAL_KEYSPACE}" setup-schema -v 0.0
temporal-cassandra-tool --ep "${CASSANDRA_SEEDS}" -k "${TEMPORAL_KEYSPACE}" update-schema -d "${schema}/cassandra/temporal/versioned"

echo "waiting for Elasticsearch at ${ES_SERVER}"
until temporal-elasticsearch-tool --ep "${ES_SERVER}" ping; do sleep 2; done
temporal-elasticsearch-tool --ep "${ES_SERVER}" setup-schema
temporal-elasticsearch-tool --ep "${ES_SERVER}" create-index --index "${ES_VISIBILITY_INDEX}"
# Picks up index mapping changes of a newer server version (no-op otherwise).
temporal-elasticsearch-tool --ep "${ES_SERVER}" update-schema --index "${ES_VISIBILITY_INDEX}"

echo "Temporal schema is up to date"
