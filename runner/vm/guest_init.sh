#!/bin/busybox sh
# /init of the mmapconf guest (runs as PID 1 from the initramfs).
#
# Kernel command line parameters (set by runner/vm/qemu.py):
#   mmapconf.job=PATH   host job dir, shared read-write over 9p (tag "job")
#   mmapconf.fs=NAME    filesystem of the scratch disk /dev/vda, or "none"
#   mmapconf.tmp=1      mount a fresh tmpfs on /tmp (0: keep the host's /tmp
#                       visible, read-only, because the project lives there)
#   mmapconf.project=PATH  the root (tag "hostroot") is a guest root of another
#                       architecture; the project is the 9p share "project",
#                       mounted read-only at PATH
#   mmapconf.mount=0    leave the disks unmounted (a power cut's judge boot: the
#                       command mounts each disk it judges)
#
# The host's / is mounted read-only over 9p (tag "hostroot") and the command
# runs chrooted into it, so the guest sees the same interpreter and project
# checkout at the same paths.  Results come back only through files in the
# job dir: never parse the serial console (it carries \r\n and noise).

/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev

JOB= FS=none TMP=1 PROJECT= MOUNT=1
for a in $(cat /proc/cmdline); do
    case "$a" in
        mmapconf.job=*) JOB="${a#*=}" ;;
        mmapconf.fs=*) FS="${a#*=}" ;;
        mmapconf.tmp=*) TMP="${a#*=}" ;;
        mmapconf.project=*) PROJECT="${a#*=}" ;;
        mmapconf.mount=*) MOUNT="${a#*=}" ;;
    esac
done

die() {
    echo "MMAPCONF-INIT-ERROR: $*"
    reboot -f
}

load() {
    [ -f "/modules/$1.list" ] || return 0
    while read -r m; do
        # EEXIST for a module loaded by an earlier group is expected.
        insmod "/modules/$m" 2>/dev/null
    done <"/modules/$1.list"
}

load boot
[ "$FS" != none ] && load "$FS"

R=/newroot
RO9P=ro,trans=virtio,version=9p2000.L,msize=512000,cache=loose
if [ -z "$PROJECT" ]; then
    mount -t 9p -o $RO9P hostroot $R || die "cannot mount the host root over 9p"
else
    # The guest root holds no project: its top-level folders are bound into a tmpfs
    # root, where mount points for the project and the job dir can be made at their
    # host paths.
    mkdir -p /sysroot
    mount -t 9p -o $RO9P hostroot /sysroot || die "cannot mount the guest root over 9p"
    mount -t tmpfs -o mode=755 root $R
    for d in /sysroot/*; do
        n=${d##*/}
        if [ -L "$d" ]; then
            cp -a "$d" "$R/$n"
        elif [ -d "$d" ]; then
            mkdir "$R/$n" && mount -o bind "$d" "$R/$n"
        fi
    done
fi
mount -t proc proc $R/proc
mount -t sysfs sys $R/sys
mount -t devtmpfs dev $R/dev
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts devpts $R/dev/pts
mount -t tmpfs -o mode=1777 shm $R/dev/shm
mount -t tmpfs -o mode=755 run $R/run
[ "$TMP" = 1 ] && mount -t tmpfs -o mode=1777 tmp $R/tmp
mkdir -p $R/run/tmp && chmod 1777 $R/run/tmp

if [ -n "$PROJECT" ]; then
    mkdir -p "$R$PROJECT" || die "cannot make a mount point for the project at $PROJECT"
    mount -t 9p -o $RO9P project "$R$PROJECT" || die "cannot mount the project over 9p"
fi

[ -n "$JOB" ] || die "no mmapconf.job= on the kernel command line"
mkdir -p "$R$JOB" 2>/dev/null # only possible (and needed) on a tmpfs
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 job "$R$JOB" ||
    die "cannot mount the job dir"

if [ "$FS" != none ]; then
    mkdir -p $R/run/mmapconf/disk
fi
if [ "$FS" != none ] && [ "$MOUNT" = 1 ]; then
    mount -t "$FS" /dev/vda $R/run/mmapconf/disk ||
        die "cannot mount /dev/vda as $FS"
    chmod 1777 $R/run/mmapconf/disk
fi

cat /proc/sys/kernel/tainted >"$R$JOB/tainted-before"
cut -d' ' -f1 /proc/uptime >"$R$JOB/uptime-start"
# Markers in the kernel log bound the command's part of dmesg.
echo "mmapconf: command start" >/dev/kmsg
chroot $R /bin/sh "$JOB/cmd.sh"
rc=$?
echo "mmapconf: command end rc=$rc" >/dev/kmsg
cut -d' ' -f1 /proc/uptime >"$R$JOB/uptime-end"
cat /proc/sys/kernel/tainted >"$R$JOB/tainted-after"
dmesg >"$R$JOB/dmesg.txt"
[ "$FS" != none ] && umount $R/run/mmapconf/disk
# Written last: its presence means the guest got through the whole run.
echo $rc >"$R$JOB/exit-status"
echo "MMAPCONF-EXIT=$rc"
sync
# reboot, not poweroff: under -no-reboot it ends qemu whether or not the kernel has ACPI
# (poweroff -f halts a kernel without ACPI and leaves qemu running until the timeout).
reboot -f
