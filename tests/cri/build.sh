#!/usr/bin/env bash
# Builds what the CRI tests need into OUT (under target/): the CRI api.proto from Debian's
# golang-github-kubernetes-cri-api-dev (trixie), compiled to Python messages, and a one-layer
# OCI image archive. Nothing is vendored; the host's apt setup is left alone (a private sources
# list, lists and cache under OUT). Quick when OUT is complete already.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build.sh OUT IMAGE_NAME}
image_name=${2:?usage: build.sh OUT IMAGE_NAME}
mkdir -p "$out"
cd "$out"
out=$PWD

if [ ! -s py/api_pb2.py ]; then
  pkg=golang-github-kubernetes-cri-api-dev
  suite=trixie
  # The host's own Debian mirror, whatever it is, as its apt setup names it: from apt's lists,
  # or (lists not fetched yet) from the sources files, one-line or deb822.
  . /etc/os-release
  codename=${VERSION_CODENAME:?}
  uri=$(apt-get indextargets --format '$(REPO_URI)' 'Identifier: Packages' 'Label: Debian' \
        "Codename: $codename" 'Component: main' | head -n 1 || true)
  if [ -z "$uri" ]; then
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk -v s="$codename" '
      $1 == "deb" { i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } if ($(i + 1) == s) { print $i; exit } }' || true)
  fi
  if [ -z "$uri" ]; then
    uri=$(awk -v s="$codename" 'BEGIN { RS = "" } {
        n = split($0, l, "\n"); t = ""; u = ""; su = ""
        for (j = 1; j <= n; j++) {
          if (l[j] ~ /^Types:/) t = " " substr(l[j], 7) " "
          if (l[j] ~ /^URIs:/) { u = substr(l[j], 6); sub(/^[ \t]+/, "", u); sub(/[ \t].*/, "", u) }
          if (l[j] ~ /^Suites:/) su = " " substr(l[j], 8) " "
        }
        if (t ~ / deb / && su ~ (" " s " ")) { print u; exit }
      }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  fi
  [ -n "$uri" ] || { echo "build.sh: no Debian repository for $codename in the host's apt setup" >&2; exit 1; }
  apt=$out/apt
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" deb
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $suite main" > "$apt/sources.list"
  opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o Dir::State::status=/dev/null
        -o Acquire::Languages=none -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
        -o Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false
        -o Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false
        -o Acquire::IndexTargets::deb::CNF::DefaultEnabled=false
        -o APT::Sandbox::User=root)
  apt-get "${opts[@]}" update -qq
  (cd deb && apt-get "${opts[@]}" download -qq "$pkg")
  rm -rf x && dpkg-deb -x deb/"$pkg"_*.deb x
  proto=x/usr/share/gocode/src/k8s.io/cri-api/pkg/apis/runtime/v1/api.proto
  mkdir -p py
  # gogoproto's options only matter to Go code generators; without them protoc needs no gogo.proto.
  sed -e '/gogoproto/d' "$proto" > py/api.proto
  (cd py && protoc --python_out=. api.proto)
  rm -rf "$apt/lists" "$apt/cache"
fi
cp "$here/cri.py" py/cri.py
if [ ! -s image.tar ] || [ image.tar -ot /bin/busybox ] || [ image.tar -ot "$here/cri.py" ]; then
  /usr/bin/python3 py/cri.py image image.tar "$image_name"
fi
