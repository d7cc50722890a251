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
  # The host's own Debian mirror, whatever it is, as its apt setup names it.
  . /etc/os-release
  uri=$(apt-get indextargets --format '$(REPO_URI)' 'Identifier: Packages' 'Label: Debian' \
        "Codename: ${VERSION_CODENAME:?}" 'Component: main' | head -n 1)
  [ -n "$uri" ] || { echo "build.sh: no Debian main repository for $VERSION_CODENAME in the host's apt setup" >&2; exit 1; }
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
