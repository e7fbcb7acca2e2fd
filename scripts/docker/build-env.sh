#!/bin/sh
# Run a build command with what build.py put in /build-inputs (docs/docker.md, "building behind a
# firewall or a mirror"): the extra CA bundle for apt, pip, uv and urllib, pre-built wheels for pip,
# and the package index and Python download mirror of the build args. Used in build stages only,
# which the final image does not keep.
#   build-env.sh COMMAND [ARG...]
set -eu
ca=/build-inputs/ca/ca.crt
if [ -s "$ca" ]; then
  # The public roots stay trusted: the extra bundle is added to the system's when there is one.
  bundle=/tmp/ymir-build-ca.pem
  cat /etc/ssl/certs/ca-certificates.crt "$ca" > "$bundle" 2>/dev/null || cp "$ca" "$bundle"
  export PIP_CERT="$bundle" SSL_CERT_FILE="$bundle" REQUESTS_CA_BUNDLE="$bundle" CURL_CA_BUNDLE="$bundle"
  mkdir -p /etc/apt/apt.conf.d
  echo "Acquire::https::CAInfo \"$bundle\";" > /etc/apt/apt.conf.d/99ymir-build-ca
fi
if ls /build-inputs/wheels/*.whl > /dev/null 2>&1; then
  export PIP_FIND_LINKS=/build-inputs/wheels
fi
if [ -n "${INDEX_URL:-}" ]; then
  export PIP_INDEX_URL="$INDEX_URL" UV_INDEX_URL="$INDEX_URL"
fi
if [ -n "${PYTHON_MIRROR:-}" ]; then
  export UV_PYTHON_INSTALL_MIRROR="$PYTHON_MIRROR"
fi
status=0
"$@" || status=$?
rm -f /etc/apt/apt.conf.d/99ymir-build-ca
exit "$status"
