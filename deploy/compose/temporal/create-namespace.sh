#!/bin/sh
# One-shot of docker-compose.yml (service temporal-namespace, image
# temporalio/admin-tools): waits for the Temporal frontend and registers the
# namespace artifactstate uses, unless it exists already.
set -eu

: "${TEMPORAL_ADDRESS:?}" "${NAMESPACE:?}"

echo "waiting for the Temporal frontend at ${TEMPORAL_ADDRESS}"
until temporal operator cluster health; do sleep 2; done

if temporal operator namespace describe --namespace "${NAMESPACE}" >/dev/null 2>&1; then
  echo "namespace ${NAMESPACE} exists"
else
  temporal operator namespace create --namespace "${NAMESPACE}" --retention "${RETENTION:-72h}" \
    --description "artifactstate entity workflows"
fi
# A new namespace reaches every frontend's cache within seconds; wait until it
# answers so the api and worker start against a namespace that is there.
until temporal workflow list --namespace "${NAMESPACE}" --limit 1 >/dev/null 2>&1; do sleep 2; done
echo "namespace ${NAMESPACE} is ready"
