#!/usr/bin/env bash
# Side-by-side benchmark: catdog data vs the real dvc, in one run, on the same trees.
#   (a) the 2,002-photo dev set, (b) a generated tree of 25,000 small files.
# Operations: add, no-op status, push and pull to a local remote, plus the parallel md5 limit
# (find | xargs -P2 md5sum). Every figure is the median of $RUNS runs (default 3), page cache warm.
# Prints Markdown (RESULTS.md) on stdout; progress on stderr.
set -euo pipefail
CATDOG=${CATDOG:?path to the catdog binary (bin/catdog from make build)}
DVC=${DVC:?path to dvc}
SHARED=${SHARED:-../shared/data}
# The runs cd into their repositories: make every path absolute.
CATDOG=$(realpath "$(command -v "$CATDOG")"); DVC=$(realpath -s "$(command -v "$DVC")"); SHARED=$(realpath "$SHARED")
RUNS=${RUNS:-3}
# Where the repositories live. BENCH_FS=loop (the default when running as root) creates a fresh
# journaled ext4 file system on a loop device for the run, so both tools write to a standard
# ext4; BENCH_FS=tmp uses /tmp as it is. (This machine's root ext4 has no journal, and ext4
# without a journal scans every inode deleted in the last 60-360 s before it reuses one, so
# creating files right after the previous run's clean-up costs both tools up to 4x more
# kernel time than on a journaled ext4; see bench/dvc/RESULTS.md.)
BENCH_FS=${BENCH_FS:-$([ "$(id -u)" = 0 ] && command -v mkfs.ext4 >/dev/null && echo loop || echo tmp)}
WORK=$(mktemp -d /tmp/bench-dvc.XXXXXX)
FS_IMG=""
cleanup() {
  chmod -R u+w "$WORK" 2>/dev/null || true
  if [ -n "$FS_IMG" ]; then umount "$WORK" 2>/dev/null || true; rm -f "$FS_IMG"; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
if [ "$BENCH_FS" = loop ]; then
  FS_IMG=$(mktemp /tmp/bench-dvc-fs.XXXXXX)
  truncate -s 4G "$FS_IMG"
  mkfs.ext4 -q -F "$FS_IMG"
  mount -o loop "$FS_IMG" "$WORK"
fi
export DVC_NO_ANALYTICS=1 GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@b GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@b

now() { date +%s.%N; }
# t CMD...: run CMD quietly, print elapsed seconds.
t() { local s e; s=$(now); "$@" >/dev/null 2>&1 || { echo "FAILED: $*" >&2; exit 1; }; e=$(now); echo "$e - $s" | bc; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

make_gen() { # 25,000 files of 1-4 KiB in 50 folders
  python3 - "$1" <<'PY'
import os, sys, random
root = sys.argv[1]; rnd = random.Random(42)
for i in range(25000):
    d = os.path.join(root, f"d{i % 50:02d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:05d}.bin"), "wb") as f:
        f.write(rnd.randbytes(rnd.randint(1024, 4096)))
PY
}

# one_run TOOL SRC: prints "add status push pull" seconds for one fresh repository.
one_run() {
  local tool=$1 src=$2 dir="$WORK/run-$1" store="$WORK/store-$1"
  chmod -R u+w "$dir" "$store" 2>/dev/null || true; rm -rf "$dir" "$store"
  mkdir -p "$dir"; git -C "$dir" init -q
  cp -r "$src" "$dir/data"
  export DVC_SITE_CACHE_DIR="$WORK/site-$tool"; rm -rf "$DVC_SITE_CACHE_DIR"
  local add st push pull
  if [ "$tool" = dvc ]; then
    (cd "$dir" && "$DVC" init -q && "$DVC" remote add -q -d store "$store")
    add=$(cd "$dir" && t "$DVC" add -q data)
    st=$(cd "$dir" && t "$DVC" status)
    push=$(cd "$dir" && t "$DVC" push -q)
    chmod -R u+w "$dir/.dvc/cache"; rm -rf "$dir/.dvc/cache" "$dir/data"
    pull=$(cd "$dir" && t "$DVC" pull -q)
  else
    (cd "$dir" && "$CATDOG" data init -q >/dev/null && "$CATDOG" data remote add -q -d store "$store" >/dev/null)
    add=$(cd "$dir" && t "$CATDOG" data add -q data)
    st=$(cd "$dir" && t "$CATDOG" data status -q)
    push=$(cd "$dir" && t "$CATDOG" data push -q)
    chmod -R u+w "$dir/.dvc/cache"; rm -rf "$dir/.dvc/cache" "$dir/data"
    pull=$(cd "$dir" && t "$CATDOG" data pull -q)
  fi
  cmp -s <(cd "$src" && find . -type f | sort | xargs md5sum) <(cd "$dir/data" && find . -type f | sort | xargs md5sum) \
    || { echo "pulled data differs from the source ($tool)" >&2; exit 1; }
  echo "$add $st $push $pull"
}

bench_tree() { # NAME SRC
  local name=$1 src=$2 nfiles size
  nfiles=$(find "$src" -type f | wc -l); size=$(du -sh "$src" | cut -f1)
  declare -A res
  for i in $(seq "$RUNS"); do   # interleaved (dvc, catdog, dvc, ...): load changes hit both alike
    for tool in dvc catdog; do
      echo "[$name] $tool run $i/$RUNS" >&2
      read -r a s p l < <(one_run "$tool" "$src")
      res[$tool-add]+="$a "; res[$tool-status]+="$s "; res[$tool-push]+="$p "; res[$tool-pull]+="$l "
    done
  done
  local md5s=""
  for i in $(seq "$RUNS"); do md5s+="$(cd "$src" && t sh -c 'find . -type f -print0 | xargs -0 -P2 -n 200 md5sum') "; done
  local m_md5; m_md5=$(echo $md5s | tr ' ' '\n' | median)
  # The floor for writing the cache: cp -r of the same tree onto the benchmark file system.
  local cps=""
  for i in $(seq "$RUNS"); do rm -rf "$WORK/cp-floor"; cps+="$(t cp -r "$src" "$WORK/cp-floor") "; done
  rm -rf "$WORK/cp-floor"
  local m_cp; m_cp=$(echo $cps | tr ' ' '\n' | median)
  echo "### $name ($nfiles files, $size)"
  echo
  echo "| operation | dvc 3.67.1 (s) | catdog (s) | speed-up |"
  echo "|---|---:|---:|---:|"
  for op in add status push pull; do
    local d c
    d=$(echo ${res[dvc-$op]} | tr ' ' '\n' | median); c=$(echo ${res[catdog-$op]} | tr ' ' '\n' | median)
    printf '| %s | %.2f | %.2f | %.1fx |\n' "$op" "$d" "$c" "$(echo "$d / $c" | bc -l)"
  done
  local m_add; m_add=$(echo ${res[catdog-add]} | tr ' ' '\n' | median)
  printf '| md5 limit: `find | xargs -0 -P2 md5sum` | | %.2f | catdog add = %.2fx the limit |\n' "$m_md5" "$(echo "$m_add / $m_md5" | bc -l)"
  printf '| copy floor: `cp -r` of the tree (one process) | | %.2f | catdog add = %.2fx md5 limit + copy floor |\n' "$m_cp" "$(echo "$m_add / ($m_md5 + $m_cp)" | bc -l)"
  echo
}

echo "# dvc benchmark: catdog data vs dvc"
echo
echo "- command: \`make bench-dvc\` (bench/dvc/bench.sh, RUNS=$RUNS, medians; warm page cache; local remote on the same disk)"
fsdesc="$(df -T "$WORK" | awk 'NR==2 {print $2}') at $WORK"
[ "$BENCH_FS" = loop ] && fsdesc="a fresh journaled ext4 (4 GiB image on a loop device, mkfs.ext4 defaults) — BENCH_FS=loop"
echo "- machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr); repositories, cache and remote on $fsdesc"
echo "- peer: dvc $("$DVC" --version) (PyPI, default settings: cache.type reflink,copy -> copy here); catdog $(git rev-parse --short HEAD 2>/dev/null || echo dev),"
echo "  \`bin/catdog data ...\` as built by \`make build\` (the light build: no libtorch)"
echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg); runs interleaved (dvc, catdog, dvc, ...); compare columns within a row"
echo "- add = hash + copy into the cache + write .dvc; status = no-op \`status\` right after add;"
echo "  push = everything to an empty local remote; pull = fetch + checkout into an empty cache and workspace"
echo
bench_tree "petimages-dev" "$SHARED/petimages-dev"
if [ -z "${ONLY_DEV:-}" ]; then   # ONLY_DEV=1 skips the (slow) 25,000-file tree
  GEN="$WORK/gen25k"; make_gen "$GEN"
  bench_tree "generated 25,000 small files" "$GEN"
fi
