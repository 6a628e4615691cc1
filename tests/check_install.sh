#!/bin/bash
# The installed library is usable on its own: `meson install` into a temporary DESTDIR, then
# tests/install_example.c (only #include <otsolve.h>) compiled and linked with nothing but
# `pkg-config --cflags --libs otsolve` from that DESTDIR, run on 2 ranks; it checks two problems against
# their closed-form transport costs. Also: the installed header, programs and otsolve.pc are where they belong.
# usage: check_install.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 source=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/otsolve-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# where this build installs (e.g. /usr/local, lib/x86_64-linux-gnu), and its sanitizers (none, or e.g.
# address,undefined in the CI's second build: the example is then built with them too, as the library needs)
read -r prefix libdir includedir bindir sanitize < <(meson introspect "$build" --buildoptions | python3 -c '
import json, sys
opts = {o["name"]: o["value"] for o in json.load(sys.stdin)}
print(opts["prefix"], opts["libdir"], opts["includedir"], opts["bindir"], opts["b_sanitize"])')
abs() { case $1 in /*) echo "$1" ;; *) echo "$prefix/$1" ;; esac; }
libdir=$(abs "$libdir") includedir=$(abs "$includedir") bindir=$(abs "$bindir")

# a real install (meson test has already built everything)
meson install -C "$build" --no-rebuild --destdir "$tmp" > "$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; echo "meson install failed"; exit 1; }
for f in "$includedir/otsolve.h" "$libdir/pkgconfig/otsolve.pc" "$bindir/otsolve" "$bindir/otgen"; do
  [ -e "$tmp$f" ] || { echo "not installed: $f"; find "$tmp" -type f -o -type l; exit 1; }
done
ls "$tmp$libdir"/libotsolve.so* > /dev/null || { echo "no libotsolve.so* in $libdir"; exit 1; }
echo "--- $libdir/pkgconfig/otsolve.pc"
cat "$tmp$libdir/pkgconfig/otsolve.pc"

# otsolve.pc names its paths from ${prefix}, the final one; --define-prefix makes pkg-config take the prefix
# from where it finds the file instead (DESTDIR/prefix/lib/<triplet>/pkgconfig). That needs the .pc under
# PREFIX/lib*/.../pkgconfig; where it does not resolve into DESTDIR (another pkg-config, odd libdir), a copy
# of the .pc with prefix= pointing into DESTDIR. Only otsolve's own paths move: PETSc, MPI and HDF5 stay
# where the system has them.
pcdir=$tmp$libdir/pkgconfig
flags=$(PKG_CONFIG_PATH=$pcdir pkg-config --define-prefix --cflags --libs otsolve 2> /dev/null || true)
if [[ $flags != *"-I$tmp$includedir"* || $flags != *"-L$tmp$libdir"* ]]; then
  mkdir -p "$tmp/pc"
  sed "s|^prefix=.*|prefix=$tmp$prefix|" "$pcdir/otsolve.pc" > "$tmp/pc/otsolve.pc"
  pcdir=$tmp/pc
  flags=$(PKG_CONFIG_PATH=$pcdir pkg-config --cflags --libs otsolve)
fi
echo "--- pkg-config --cflags --libs otsolve"
echo "$flags"
[[ $flags == *"-I$tmp$includedir"* && $flags == *"-L$tmp$libdir"* && $flags == *"-lotsolve"* ]] || { echo "pkg-config does not point into the DESTDIR install"; exit 1; }

# compile and link with those flags only (no -I into the source tree), against the installed library
sanitize_flags=()
[ "$sanitize" = none ] || sanitize_flags=("-fsanitize=$sanitize")
# shellcheck disable=SC2086
cc -std=c11 -Wall -Wextra "${sanitize_flags[@]}" -o "$tmp/install_example" "$source/tests/install_example.c" $flags -Wl,-rpath,"$tmp$libdir"
# the program must load the installed library, not the one in the build tree (meson test puts the build tree
# on LD_LIBRARY_PATH, which comes before the rpath: the install's libdir goes first)
export LD_LIBRARY_PATH=$tmp$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
ldd "$tmp/install_example" | grep libotsolve
ldd "$tmp/install_example" | grep -q "libotsolve.so.* => $tmp$libdir/" || { echo "install_example does not load $tmp$libdir/libotsolve"; exit 1; }

echo "--- mpiexec -n 2 install_example"
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpiexec -n 2 --oversubscribe -x LD_LIBRARY_PATH "$tmp/install_example"
echo "install and pkg-config OK"
