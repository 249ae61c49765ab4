#!/bin/sh
# A custom runtime in shell: GET the next event, POST the response, forever. With EXIT_AFTER=N
# set, it exits with status 5 after answering N invocations.
set -eu
api="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation"
answered=0
while true; do
  headers="$(mktemp)"
  event="$(curl -sS -D "$headers" "$api/next")"
  id="$(grep -i '^Lambda-Runtime-Aws-Request-Id:' "$headers" | cut -d' ' -f2 | tr -d '\r')"
  rm -f "$headers"
  echo "got $id"
  curl -sS -o /dev/null -X POST "$api/$id/response" \
    -d "{\"id\": \"$id\", \"event\": $event}"
  answered=$((answered + 1))
  if [ "$answered" = "${EXIT_AFTER:-}" ]; then exit 5; fi
done
