#!/usr/bin/env bash
# Installs the kube-event-logger index templates and retention policy.
#
#   es-templates/install.sh URL                 # Elasticsearch 8.x / 9.x: ILM policy + templates
#                                               # + the ingest pipeline (Filebeat → Elasticsearch;
#                                               # 8.8+, skipped with a message before 8.8)
#   es-templates/install.sh URL --opensearch    # OpenSearch 2.12+: ISM policy + templates
#
# Credentials: ES_API_KEY (Elasticsearch API key), or ES_USER and ES_PASSWORD. A private CA:
# ES_CA=/path/to/ca.crt. Run it again after an upgrade: templates, the ILM policy and the ingest
# pipeline are replaced in place (Elasticsearch moves managed indices to the new ILM policy
# version itself). OpenSearch: an existing ISM policy is updated with its sequence number
# (optimistic concurrency, `if_seq_no`/`if_primary_term`); indices ISM already manages keep the
# policy version they cached until `_plugins/_ism/change_policy` moves them (OpenSearch, "Managed
# indexes"), which this script then does (it takes effect once their current state's actions
# finish); and the policy is attached to backing indices that have none yet (ISM templates only
# pick up indices created after them).
set -euo pipefail

usage() {
    sed -n '2,/^set /p' "$0" | sed -e '/^set /d' -e 's/^# \{0,1\}//'
}
case "${1:-}" in
    -h | --help)
        usage
        exit 0
        ;;
    -*)
        echo "install.sh: unknown option $1; the first argument is the cluster's URL" >&2
        usage >&2
        exit 2
        ;;
esac
url=${1:?usage: install.sh URL [--opensearch]}
url=${url%/}
flavor=elasticsearch
if [ "${2:-}" = "--opensearch" ]; then
    flavor=opensearch
elif [ -n "${2:-}" ]; then
    echo "install.sh: unknown option $2 (use --opensearch)" >&2
    exit 2
fi
dir=$(cd "$(dirname "$0")" && pwd)

curl_args=(-fsS --retry 3 -H 'Content-Type: application/json')
if [ -n "${ES_API_KEY:-}" ]; then
    curl_args+=(-H "Authorization: ApiKey ${ES_API_KEY}")
elif [ -n "${ES_USER:-}" ]; then
    curl_args+=(-u "${ES_USER}:${ES_PASSWORD:-}")
fi
if [ -n "${ES_CA:-}" ]; then
    curl_args+=(--cacert "${ES_CA}")
fi

# The cluster's version (`GET /`: version.number, and version.distribution "opensearch" on
# OpenSearch), checked before anything is written: the compatibility table in
# docs/elasticsearch.md starts where every call below works.
root=$(curl "${curl_args[@]}" "${url}/") || {
    echo "install.sh: cannot read ${url}/ (the cluster's version); check the URL and credentials" >&2
    exit 1
}
version=$(printf '%s' "$root" | grep -o '"number" *: *"[0-9][0-9.]*' | head -n 1 | grep -o '[0-9][0-9.]*$' || true)
distribution=elasticsearch
if printf '%s' "$root" | grep -q '"distribution" *: *"opensearch"'; then
    distribution=opensearch
fi
major=${version%%.*}
minor=${version#*.}
minor=${minor%%.*}
if [ -z "$version" ] || [ -z "$major" ] || [ -z "$minor" ]; then
    echo "install.sh: ${url}/ does not say its version (version.number); is it Elasticsearch or OpenSearch?" >&2
    exit 1
fi
if [ "$distribution" = opensearch ] && [ "$flavor" = elasticsearch ]; then
    echo "install.sh: ${url} is OpenSearch ${version}; run install.sh with --opensearch" >&2
    exit 2
elif [ "$distribution" = elasticsearch ] && [ "$flavor" = opensearch ]; then
    echo "install.sh: ${url} is Elasticsearch ${version}; run install.sh without --opensearch" >&2
    exit 2
fi
at_least() { [ "$major" -gt "$1" ] || { [ "$major" -eq "$1" ] && [ "$minor" -ge "$2" ]; }; }
ingest_pipeline=yes
if [ "$flavor" = elasticsearch ]; then
    if ! at_least 8 0; then
        echo "install.sh: Elasticsearch ${version} is older than 8.0, the lowest this project supports (docs/elasticsearch.md, Compatibility); nothing was installed" >&2
        exit 1
    fi
    if ! at_least 8 8; then
        # The ingest pipeline routes with the `reroute` processor, first in Elasticsearch 8.8.
        ingest_pipeline=no
        echo "install.sh: Elasticsearch ${version} has no reroute processor (8.8+): the ingest pipeline for a Filebeat that ships straight to Elasticsearch is not installed; ship through Logstash (logstash/), or upgrade and run this again" >&2
    fi
elif ! at_least 2 12; then
    echo "install.sh: OpenSearch ${version} is older than 2.12, the lowest this project supports (flat_object for dotted label keys); nothing was installed" >&2
    exit 1
fi

put() {
    echo "PUT $1" >&2
    curl "${curl_args[@]}" -X PUT "${url}/$1" --data-binary "@${dir}/$2"
    echo
}

if [ "$flavor" = elasticsearch ]; then
    put _ilm/policy/kube-event-logger ilm-policy.json
    put _component_template/kube-event-logger-settings component-template-settings.json
    put _component_template/kube-event-logger-mappings component-template-mappings.json
    put _index_template/kube-event-logger index-template.json
    # For a Filebeat that ships straight to Elasticsearch (no Logstash): the same documents.
    if [ "$ingest_pipeline" = yes ]; then
        put _ingest/pipeline/kube-event-logger ingest-pipeline.json
    fi
else
    policy=_plugins/_ism/policies/kube-event-logger
    if existing=$(curl "${curl_args[@]}" "${url}/${policy}" 2>/dev/null); then
        seq_no=$(printf '%s' "$existing" | grep -o '"_seq_no":[0-9]*' | head -n 1 | cut -d: -f2)
        term=$(printf '%s' "$existing" | grep -o '"_primary_term":[0-9]*' | head -n 1 | cut -d: -f2)
        if [ -z "$seq_no" ] || [ -z "$term" ]; then
            echo "install.sh: cannot read the existing ISM policy's _seq_no/_primary_term" >&2
            exit 1
        fi
        put "${policy}?if_seq_no=${seq_no}&if_primary_term=${term}" opensearch/ism-policy.json
        # Managed indices run their cached copy of the old version until changed.
        echo "POST _plugins/_ism/change_policy/.ds-logs-kube_event_logger*" >&2
        curl "${curl_args[@]}" -X POST "${url}/_plugins/_ism/change_policy/.ds-logs-kube_event_logger*" \
            --data-binary '{"policy_id":"kube-event-logger"}'
        echo
    else
        put "${policy}" opensearch/ism-policy.json
    fi
    # Indices made before this policy (or before its template matched) are not managed yet.
    echo "POST _plugins/_ism/add/.ds-logs-kube_event_logger*" >&2
    curl "${curl_args[@]}" -X POST "${url}/_plugins/_ism/add/.ds-logs-kube_event_logger*" \
        --data-binary '{"policy_id":"kube-event-logger"}'
    echo
    put _component_template/kube-event-logger-settings opensearch/component-template-settings.json
    put _component_template/kube-event-logger-mappings opensearch/component-template-mappings.json
    put _index_template/kube-event-logger opensearch/index-template.json
fi
echo "installed the kube-event-logger templates into ${url} (${flavor})" >&2
