#!/usr/bin/env bash
# A tiny Linux guest for QEMU tests and benchmarks, built at test time from Debian packages:
# the current bookworm kernel image package (apt-get download + dpkg-deb -x, no install), a
# busybox-static initramfs whose /init loads the virtio modules, runs /test.sh, prints results
# on the serial console and powers off.
#
#   tests/env/guest.sh build  <dir> [--fio]     kernel + base initramfs into <dir> (cached; with
#                                                --fio also initrd-fio.cpio.gz holding fio + libs)
#   tests/env/guest.sh initrd <dir> <script> <out> [--fio]
#                                                base (or fio) initramfs + <script> as /test.sh
#   tests/env/guest.sh run    <dir> <script> <vhost-socket> [qemu options...]
#                                                boots the guest under TCG with a vhost-user-blk
#                                                disk on <vhost-socket>; serial console on stdout.
#                                                Env: GUEST_MEM (256M) GUEST_CPUS (1)
#                                                GUEST_QUEUES (1) GUEST_FIO (0|1)
#
# The guest script runs as root in the initramfs with busybox, /bin/vdtool (tests/env/guest/
# vdtool.c) and, in the fio initramfs, /usr/bin/fio. Its exit status is printed as
# "VDISK-GUEST-EXIT: <rc>". The kernel command line may carry vdisk.arg=<word> values, which
# /init exports as VDISK_ARGS.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$here/guest
GUEST_FORMAT=4  # bump when the initramfs layout changes

die() { echo "guest.sh: $*" >&2; exit 1; }

kernel_package() {
  local pkg
  pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  if [[ -z $pkg ]]; then
    apt-get update -q >/dev/null 2>&1 || true
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  fi
  [[ -n $pkg ]] || die "cannot find the bookworm kernel package (apt-cache depends linux-image-amd64)"
  echo "$pkg"
}

# Copies a binary and the shared libraries it needs (per ldd) into <root>.
copy_with_libs() {
  local bin=$1 root=$2 lib
  mkdir -p "$root$(dirname "$bin")"
  cp -L "$bin" "$root$bin"
  for lib in $(ldd "$bin" | awk '/=>/ {print $3} /^[ \t]*\// {print $1}'); do
    [[ -f $lib ]] || continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
}

build() {
  local dir=$1 want_fio=$2
  mkdir -p "$dir"
  exec 9>"$dir/.lock"
  flock 9
  local pkg kver stamp
  pkg=$(kernel_package)
  kver=${pkg#linux-image-}
  stamp="$pkg format=$GUEST_FORMAT $(cat "$src/init" "$src/vdtool.c" | sha256sum | cut -c1-16)"
  if [[ ! -f $dir/stamp || $(cat "$dir/stamp") != "$stamp" ]]; then
    echo "guest.sh: building guest ($pkg) in $dir" >&2
    rm -rf "$dir/work" "$dir/vmlinuz" "$dir/initrd.cpio.gz" "$dir/initrd-fio.cpio.gz" "$dir/stamp"
    mkdir -p "$dir/work/deb"
    (cd "$dir/work/deb" && apt-get download "$pkg" >/dev/null 2>&1) ||
      (apt-get update -q >/dev/null 2>&1; cd "$dir/work/deb" && apt-get download "$pkg" >/dev/null) ||
      die "apt-get download $pkg failed"
    dpkg-deb -x "$dir"/work/deb/*.deb "$dir/work/kroot"
    depmod -b "$dir/work/kroot" "$kver"
    cp "$dir/work/kroot/boot/vmlinuz-$kver" "$dir/vmlinuz"

    local root=$dir/work/initramfs
    mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,lib/modules,usr/bin}
    cp /bin/busybox "$root/bin/busybox"
    cp "$src/init" "$root/init"
    chmod 755 "$root/init"
    gcc -static -O2 -Wall -o "$root/bin/vdtool" "$src/vdtool.c"
    # Modules in dependency order, as modprobe would load them (virtio_pci pulls the PCI
    # transport, virtio_blk the block driver).
    : > "$root/lib/modules/load.order"
    local mod line path
    for mod in virtio_pci virtio_blk; do
      while read -r line; do
        [[ $line == insmod* ]] || continue
        path=$(awk '{print $2}' <<<"$line")
        local name
        name=$(basename "$path")
        name=${name%.xz}; name=${name%.zst}
        if ! grep -qx "$name" "$root/lib/modules/load.order"; then
          case "$path" in
            *.xz) xz -dc "$path" > "$root/lib/modules/$name" ;;
            *.zst) zstd -qdc "$path" > "$root/lib/modules/$name" ;;
            *) cp "$path" "$root/lib/modules/$name" ;;
          esac
          echo "$name" >> "$root/lib/modules/load.order"
        fi
      done < <(modprobe -S "$kver" -d "$dir/work/kroot" --show-depends "$mod")
    done
    [[ -s $root/lib/modules/load.order ]] || die "no virtio modules found for $kver"
    (cd "$root" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) > "$dir/initrd.cpio.gz.tmp"
    mv "$dir/initrd.cpio.gz.tmp" "$dir/initrd.cpio.gz"
    rm -rf "$dir/work/deb" "$dir/work/kroot"
    echo "$stamp" > "$dir/stamp"
  fi
  if [[ $want_fio == 1 && ! -f $dir/initrd-fio.cpio.gz ]]; then
    command -v fio >/dev/null || die "fio is not installed"
    local froot=$dir/work/fio
    rm -rf "$froot"
    mkdir -p "$froot"
    copy_with_libs "$(command -v fio)" "$froot"
    # fio's compiled-in path is /usr/bin/fio; keep it there.
    if [[ ! -f $froot/usr/bin/fio ]]; then mkdir -p "$froot/usr/bin"; mv "$froot$(command -v fio)" "$froot/usr/bin/fio"; fi
    (cd "$froot" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) > "$dir/fio.cpio.gz"
    cat "$dir/initrd.cpio.gz" "$dir/fio.cpio.gz" > "$dir/initrd-fio.cpio.gz"
    rm -rf "$froot" "$dir/fio.cpio.gz"
  fi
  flock -u 9
}

# initrd <dir> <script> <out> [--fio]: the base initramfs with <script> appended as /test.sh
# (the kernel unpacks concatenated cpio archives in order).
make_initrd() {
  local dir=$1 script=$2 out=$3 fio=${4:-}
  local base=$dir/initrd.cpio.gz
  [[ $fio == --fio ]] && base=$dir/initrd-fio.cpio.gz
  [[ -f $base ]] || die "$base missing: run guest.sh build $dir${fio:+ --fio} first"
  [[ -f $script ]] || die "no such script: $script"
  local tmp
  tmp=$(mktemp -d)
  cp "$script" "$tmp/test.sh"
  chmod 755 "$tmp/test.sh"
  (cd "$tmp" && echo test.sh | cpio -o -H newc --quiet | gzip -1) > "$tmp/script.cpio.gz"
  cat "$base" "$tmp/script.cpio.gz" > "$out"
  rm -rf "$tmp"
}

run() {
  local dir=$1 script=$2 sock=$3
  shift 3
  local fio_flag=
  [[ ${GUEST_FIO:-0} == 1 ]] && fio_flag=--fio
  build "$dir" "${GUEST_FIO:-0}"
  run_tmp=$(mktemp -d /tmp/vdisk-guest.XXXXXX)
  make_initrd "$dir" "$script" "$run_tmp/initrd" $fio_flag
  qpid=
  trap '[[ -n ${qpid:-} ]] && kill $qpid 2>/dev/null; wait; [[ -n ${run_tmp:-} ]] && rm -rf "$run_tmp"' EXIT
  trap 'exit 143' TERM INT
  # maxcpus >= 2: QEMU 7.2's TCG drops the guest's memory barriers when only one vCPU can
  # exist, and the guest then misses completions (docs/vhost.md, "Guest stalls").
  local cpus=${GUEST_CPUS:-1}
  qemu-system-x86_64 -accel tcg -nodefaults -display none -no-reboot \
    -m "${GUEST_MEM:-256M}" -smp "$cpus,maxcpus=$(( cpus > 2 ? cpus : 2 ))" \
    -object memory-backend-memfd,id=mem0,size="${GUEST_MEM:-256M}",share=on \
    -machine q35,memory-backend=mem0 \
    -kernel "$dir/vmlinuz" -initrd "$run_tmp/initrd" \
    -append "console=ttyS0 panic=-1 quiet loglevel=3 ${GUEST_APPEND:-}" \
    -serial stdio -monitor none \
    -chardev socket,id=c0,path="$sock" \
    -device vhost-user-blk-pci,chardev=c0,num-queues="${GUEST_QUEUES:-1}" \
    "$@" </dev/null &
  qpid=$!
  local rc=0
  wait $qpid || rc=$?
  qpid=
  return $rc
}


case "${1:-}" in
  build) [[ $# -ge 2 ]] || die "usage: guest.sh build <dir> [--fio]"
         build "$2" "$([[ ${3:-} == --fio ]] && echo 1 || echo 0)" ;;
  initrd) [[ $# -ge 4 ]] || die "usage: guest.sh initrd <dir> <script> <out> [--fio]"
          make_initrd "$2" "$3" "$4" "${5:-}" ;;
  run) [[ $# -ge 4 ]] || die "usage: guest.sh run <dir> <script> <vhost-socket> [qemu options]"
       d=$2 s=$3 k=$4; shift 4; run "$d" "$s" "$k" "$@" ;;
  *) sed -n '2,20p' "$0" >&2; exit 2 ;;
esac
