#!/usr/bin/env bash
# Installs the kube-event-logger index templates and retention policy.
#
#   es-templates/install.sh URL                 # Elasticsearch 8.x / 9.x: ILM policy + templates
#   es-templates/install.sh URL --opensearch    # OpenSearch 2.x: ISM policy + templates
#
# Credentials: ES_API_KEY (Elasticsearch API key), or ES_USER and ES_PASSWORD. A private CA:
# ES_CA=/path/to/ca.crt. Run it again after an upgrade: templates are replaced in place
# (an existing OpenSearch ISM policy is left as it is; update it in Dashboards).
set -euo pipefail

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
else
    if curl "${curl_args[@]}" -o /dev/null "${url}/_plugins/_ism/policies/kube-event-logger" 2>/dev/null; then
        echo "ISM policy kube-event-logger exists; left as it is" >&2
    else
        put _plugins/_ism/policies/kube-event-logger opensearch/ism-policy.json
    fi
    put _component_template/kube-event-logger-settings opensearch/component-template-settings.json
    put _component_template/kube-event-logger-mappings opensearch/component-template-mappings.json
    put _index_template/kube-event-logger opensearch/index-template.json
fi
echo "installed the kube-event-logger templates into ${url} (${flavor})" >&2
