#!/bin/bash
# otsolve under valgrind's memcheck on small MPI runs (Sinkhorn and SNS, with a result file and a
# checkpoint): no definite leak and no invalid access or use of uninitialised memory whose stack passes
# through otsolve's own code (src/). Open MPI and PMIx report their own leaks and uninitialised bytes
# under valgrind; those are counted and printed but not ours to fix.
# usage: check_valgrind.sh BUILD_DIR CASE NP [otsolve options...]
set -uo pipefail
build=$1 name=$2 np=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/cases.sh
source "$here/cases.sh"
load_case_tmp "$build" "$name"
command -v valgrind > /dev/null || { echo "FAIL: valgrind is not installed (apt-get install valgrind)"; exit 1; }

mpiexec -n "$np" valgrind --leak-check=full --show-leak-kinds=definite --num-callers=30 --log-file="$dir/vg.%p" \
  "$build/otsolve" -problem "$dir/problem.h5" -ot_eps "$case_eps" -output "$dir/r.h5" -ot_checkpoint "$dir/ck.h5" -ot_checkpoint_interval 1e-9 \
  -ot_max_it 2000 "$@" > "$dir/out" 2>&1
status=$?
[ "$status" -eq 0 ] || { echo "FAIL: exit status $status under valgrind"; cat "$dir/out"; exit 1; }
cost=$(awk '$1 == "transport_cost" {print $3}' "$dir/out")
/usr/bin/python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); sys.exit(0 if abs(a - b) <= 1e-7 * abs(b) else 1)" "$cost" "$case_sinkhorn_cost" ||
  { echo "FAIL: transport_cost $cost under valgrind, POT $case_sinkhorn_cost"; exit 1; }

# valgrind's records are blocks of lines beginning with ==pid==, separated by empty ones: keep those that are
# errors or definite leaks and whose stack has a frame in our code (the library and the programs)
/usr/bin/python3 - "$here/../src" "$dir"/vg.* << 'PY'
import os, re, sys
# a frame is ours if it names one of our source files (valgrind prints the file's base name) or, without
# debug information, one of our binaries
names = "|".join(re.escape(f) for f in os.listdir(sys.argv[1]) if f.endswith(".c"))
frame_is_ours = re.compile(r"\((?:%s):\d+\)|\(in [^)]*/(?:libotsolve[^/)]*|otsolve|otgen)\)" % names)
generic = re.compile(r": (?:malloc|calloc|realloc|memalign|posix_memalign|aligned_alloc|strdup|strndup|free|operator new[^ ]*|"
                     r"mem(?:cpy|move|set|cmp|chr)|str(?:len|cpy|ncpy|cmp|chr)|__[a-z_]+|"
                     r"PetscMallocAlign|PetscMallocA|PetscCallocA|PetscReallocAlign|PetscFreeAlign|PetscFreeA|PetscStrallocpy) ")
ours, theirs, leaks = [], 0, 0
for path in sys.argv[2:]:
    records, current = [], []
    for line in open(path, errors="replace"):
        text = re.sub(r"^==\d+== ?", "", line.rstrip("\n"))
        if text.strip():
            current.append(text)
        elif current:
            records.append(current)
            current = []
    if current:
        records.append(current)
    for rec in records:
        head = rec[0]
        is_leak = "definitely lost in loss record" in head
        is_error = re.match(r"(Invalid (read|write|free)|Conditional jump|Use of uninitialised|Syscall param|Mismatched free|Source and destination overlap)", head)
        if not (is_leak or is_error):
            continue
        leaks += is_leak
        # whose is it: the first frame below the allocator (for a leak) or below a libc string routine (for an
        # error); an allocation made inside MPI, HDF5 or PETSc on our behalf is theirs
        frames = [f for f in rec[1:] if re.match(r"\s*(at|by) 0x", f)]
        while frames and generic.search(frames[0]):
            frames.pop(0)
        if frames and frame_is_ours.search(frames[0]):
            ours.append("\n".join(rec))
        else:
            theirs += 1
print("valgrind: %d record(s) through otsolve's code, %d in MPI/HDF5/PETSc internals only (%d definite leak records in all)" % (len(ours), theirs, leaks))
for rec in ours:
    print(rec + "\n")
sys.exit(1 if ours else 0)
PY
result=$?
echo "transport_cost $cost (POT $case_sinkhorn_cost) on $np rank(s) under valgrind"
exit $result
