"""Power-cut durability of what a case stored (docs/durability.md): the write log of qemu's
blklogwrites filter (writelog), one case's cut and judge boots (cut), the guest's side of them as
the native executor's batch runs it (batchboot), where "stored" is in the log (marker), and how
the table reads a result (survival)."""
