#!/usr/bin/env bash
# Build and install Citus into the local PostgreSQL 15 when it is missing
# (sourced by scripts/citus.sh, also runnable alone, as root).
# CITUS_SRC_DIR: the Citus 13.2.2 source and its PG15 patch
# (citus-v13.2.2.tar.gz, citus-pg15-have_createdb_privilege.patch);
# default ../shared/vendor/citus relative to the repository root.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
SRC=${CITUS_SRC_DIR:-$ROOT/../shared/vendor/citus}
if [ -f "$("$PG_CONFIG" --pkglibdir)/citus.so" ]; then
  echo "citus: already installed in $("$PG_CONFIG" --pkglibdir)"
  exit 0
fi
SRC=$(cd "$SRC" && pwd)
[ -f "$SRC/citus-v13.2.2.tar.gz" ] || { echo "citus: no citus-v13.2.2.tar.gz in $SRC (set CITUS_SRC_DIR)" >&2; exit 1; }
echo "citus: building 13.2.2 from $SRC (about 2-5 minutes)"
apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
  postgresql-server-dev-15 libcurl4-openssl-dev liblz4-dev libzstd-dev libkrb5-dev \
  libssl-dev autoconf flex bison libicu-dev libxml2-dev libxslt1-dev libreadline-dev \
  zlib1g-dev libselinux1-dev libpam0g-dev make gcc >/dev/null
BUILD=$(mktemp -d)
tar -xzf "$SRC/citus-v13.2.2.tar.gz" -C "$BUILD"
cd "$BUILD"
[ -f configure ] || cd "$(find . -maxdepth 2 -name configure -printf '%h\n' | head -n1)"
patch -p1 < "$SRC/citus-pg15-have_createdb_privilege.patch"
PG_CONFIG=$PG_CONFIG ./configure >/dev/null
nice make -j2 >/dev/null
make install >/dev/null
rm -rf "$BUILD"
echo "citus: installed"
