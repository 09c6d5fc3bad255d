#!/usr/bin/env bash
# `cmake --install` and what it installs, one ctest test per step (tests/systemd/CMakeLists.txt):
#
#   install_test.sh stage      install the build tree into $STAGE (DESTDIR, prefix as configured)
#   install_test.sh files      every expected file is there; ternd runs from the staged tree
#   install_test.sh unit       systemd-analyze verify accepts the installed unit (ExecStart pointed
#                              at the staged ternd), security exposure stays low; the sysusers.d
#                              and tmpfiles.d snippets apply to an empty root
#   install_test.sh pkgconfig  a C program built with `pkg-config tern` links and runs
#   install_test.sh cmake      a CMake project with find_package(tern) builds and runs
#
# Environment: TERN_BUILD_DIR, TERN_SOURCE_DIR, STAGE, PREFIX (CMAKE_INSTALL_PREFIX),
# TERN_HAVE_TERND / TERN_HAVE_LIBTERN / TERN_HAVE_TERNCTL (1 when this build has them),
# TERN_PYTHON_DIR (where the Python package goes, when it is built).
set -euo pipefail

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
root="$STAGE$PREFIX"

case "${1:?mode}" in
stage)
  rm -rf "$STAGE"
  DESTDIR="$STAGE" cmake --install "$TERN_BUILD_DIR" >"$STAGE.log" 2>&1 || { cat "$STAGE.log"; fail "cmake --install"; }
  ok "installed into $root ($(grep -c Installing "$STAGE.log") files)"
  ;;

files)
  want=(lib/systemd/system/ternd.service lib/sysusers.d/tern.conf lib/tmpfiles.d/tern.conf
        share/doc/tern/ternd.toml.example share/doc/tern/operations.md share/doc/tern/configuration.md)
  [ "${TERN_HAVE_TERND:-0}" = 1 ] && want+=(sbin/ternd)
  [ "${TERN_HAVE_TERNCTL:-0}" = 1 ] && want+=(bin/ternctl)
  [ "${TERN_HAVE_LIBTERN:-0}" = 1 ] && want+=(include/tern/tern.h include/tern/tern.hpp lib/pkgconfig/tern.pc
                                               lib/cmake/tern/ternConfig.cmake lib/cmake/tern/ternConfigVersion.cmake)
  for f in "${want[@]}"; do [ -e "$root/$f" ] || fail "not installed: $PREFIX/$f"; done
  ok "${#want[@]} expected files installed"
  if [ "${TERN_HAVE_LIBTERN:-0}" = 1 ]; then
    ls "$root"/lib/libtern.so* >/dev/null 2>&1 || fail "libtern.so not installed in $PREFIX/lib"
    readelf -d "$root"/lib/libtern.so | grep -q 'SONAME.*libtern.so' || fail "libtern.so has no soname"
    ok "libtern: $(readelf -d "$root"/lib/libtern.so | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')"
  fi
  if [ "${TERN_HAVE_TERND:-0}" = 1 ]; then
    # The staged ternd runs (its runtime paths resolve without the build tree) and reads the
    # installed example as a valid configuration.
    out=$(env -i "$root/sbin/ternd" --version) || fail "staged ternd --version"
    [[ "$out" == "ternd (tern) "* ]] || fail "ternd --version printed '$out'"
    env -i "$root/sbin/ternd" --config "$root/share/doc/tern/ternd.toml.example" --check-config \
      || fail "the installed example configuration does not validate"
    ok "staged ternd runs; the installed example validates"
  fi
  if [ -n "${TERN_PYTHON_DIR:-}" ]; then
    # The installed package imports from the staged tree alone and loads the staged libtern.
    v=$(env -i PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$root/$TERN_PYTHON_DIR" /usr/bin/python3 -c \
        'import tern, tern._tern, tern.ddp; print(tern._tern.__file__, tern._tern.version())') \
      || fail "the installed Python package does not import"
    [[ "$v" == "$root/$TERN_PYTHON_DIR/tern/"*" $TERN_VERSION" ]] || fail "imported the wrong module: $v"
    ok "Python package: import tern (+ _tern, ddp) from $PREFIX/$TERN_PYTHON_DIR, libtern $TERN_VERSION"
  fi
  grep -q "^ExecStart=$PREFIX/sbin/ternd\$" "$root/lib/systemd/system/ternd.service" \
    || fail "ExecStart does not name $PREFIX/sbin/ternd"
  ok "unit's ExecStart names $PREFIX/sbin/ternd"
  ;;

unit)
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  # systemd-analyze verify checks that ExecStart exists: point it at the staged binary (or at
  # /bin/true while this build has no ternd).
  exe=/bin/true
  [ "${TERN_HAVE_TERND:-0}" = 1 ] && exe="$root/sbin/ternd"
  sed "s#^ExecStart=$PREFIX/sbin/ternd#ExecStart=$exe#" "$root/lib/systemd/system/ternd.service" >"$tmp/ternd.service"
  if ! systemd-analyze verify "$tmp/ternd.service" >"$tmp/verify.log" 2>&1 || [ -s "$tmp/verify.log" ]; then
    cat "$tmp/verify.log"
    fail "systemd-analyze verify rejected or warned about ternd.service"
  fi
  ok "systemd-analyze verify: no errors, no warnings"
  systemd-analyze security --offline=yes --threshold=25 "$tmp/ternd.service" >"$tmp/security.log" 2>&1 \
    || { tail -5 "$tmp/security.log"; fail "exposure level above 2.5 (a hardening setting was dropped?)"; }
  ok "$(grep -o 'Overall exposure level.*' "$tmp/security.log")"
  for key in Type=notify WatchdogSec= User=tern Group=tern RuntimeDirectory=tern LimitMEMLOCK=infinity \
             ProtectSystem=strict ProtectHome=yes PrivateTmp=yes NoNewPrivileges=yes 'CapabilityBoundingSet=$'; do
    grep -q "^$key" "$tmp/ternd.service" || fail "ternd.service lacks $key"
  done
  ok "hardening settings present"

  mkdir -p "$tmp/root/etc"
  systemd-sysusers --root="$tmp/root" "$root/lib/sysusers.d/tern.conf" >/dev/null
  grep -q '^tern:x:[0-9]*:[0-9]*:.*:/usr/sbin/nologin$' "$tmp/root/etc/passwd" || fail "sysusers: no user tern"
  grep -q '^tern:x:' "$tmp/root/etc/group" || fail "sysusers: no group tern"
  ok "sysusers.d/tern.conf creates user and group tern"
  systemd-tmpfiles --create --root="$tmp/root" "$root/lib/tmpfiles.d/tern.conf"
  [ "$(stat -c %a "$tmp/root/etc/tern")" = 755 ] || fail "tmpfiles: /etc/tern not created 0755"
  ok "tmpfiles.d/tern.conf creates /etc/tern"
  ;;

pkgconfig)
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  export PKG_CONFIG_PATH="$root/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$STAGE"
  version=$(pkg-config --modversion tern) || fail "pkg-config does not find tern.pc"
  [ "$version" = "$TERN_VERSION" ] || fail "pkg-config tern --modversion: $version, want $TERN_VERSION"
  # shellcheck disable=SC2046
  cc -std=c11 -Wall -Wextra -Werror -o "$tmp/consumer" "$TERN_SOURCE_DIR/tests/systemd/consumer/consumer.c" \
    $(pkg-config --cflags --libs tern) -Wl,-rpath,"$root/lib" || fail "building the pkg-config consumer"
  "$tmp/consumer" || fail "the pkg-config consumer failed"
  # Kept for the service-user test, which runs it against a live ternd.
  cp "$tmp/consumer" "$STAGE/consumer"
  ok "C consumer built with pkg-config tern $version runs"
  ;;

cmake)
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  cmake -S "$TERN_SOURCE_DIR/tests/systemd/consumer" -B "$tmp" -G Ninja -DCMAKE_PREFIX_PATH="$root" \
    -DCMAKE_BUILD_RPATH="$root/lib" >"$tmp/configure.log" 2>&1 \
    || { cat "$tmp/configure.log"; fail "configuring the find_package(tern) consumer"; }
  cmake --build "$tmp" >"$tmp/build.log" 2>&1 \
    || { cat "$tmp/build.log"; fail "building the find_package(tern) consumer"; }
  "$tmp/consumer_cc" || fail "the find_package(tern) consumer failed"
  # A version this tree cannot satisfy must be refused (ternConfigVersion.cmake).
  if cmake -S "$TERN_SOURCE_DIR/tests/systemd/consumer" -B "$tmp/v9" -G Ninja -DCMAKE_PREFIX_PATH="$root" \
       -DTERN_WANT_VERSION=9.0 >"$tmp/v9.log" 2>&1; then
    fail "find_package(tern 9.0) accepted version $TERN_VERSION"
  fi
  grep -q 'version: 9.0' "$tmp/v9.log" || grep -q '9.0' "$tmp/v9.log" || fail "no version message: $(cat "$tmp/v9.log")"
  ok "CMake consumer built with find_package(tern) runs"
  ;;

*) fail "unknown mode $1" ;;
esac
