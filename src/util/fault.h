/* Power-loss simulation for tests (build with FAULT=1, i.e. -DCAIRN_FAULT).
 *
 * Storage code does its writes, truncations and syncs of data files through
 * these wrappers. In a normal build they are the plain syscalls (inline, no
 * cost). In a fault build the wrappers record, per file (device + inode),
 * how far it was written and how far it is known to be synced; a "crash"
 * (SIGUSR1, or CAIRN_FAULT_CRASH_MS milliseconds after start) walks the data
 * directory and cuts every file back to what a power loss could leave:
 *   CAIRN_FAULT_MODE=1  (default) truncate to the synced length;
 *   CAIRN_FAULT_MODE=2  truncate to a random length between synced and
 *                       written, part of the unsynced tail replaced by
 *                       garbage (CAIRN_FAULT_SEED seeds the choice);
 * then _exit(137). Directory entries are not modelled (a file created and
 * not yet covered by a directory fsync survives). */
#ifndef CAIRN_FAULT_H
#define CAIRN_FAULT_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <unistd.h>

#ifdef CAIRN_FAULT
void fault_init(const char *data_dir);
ssize_t fault_pwrite(int fd, const void *buf, size_t len, int64_t pos);
ssize_t fault_write(int fd, const void *buf, size_t len);
int fault_ftruncate(int fd, int64_t len);
int fault_fsync(int fd);
int fault_fdatasync(int fd);
/* Simulations (tests/sim): cut every file under path now, as a power loss
 * would (cut_mode 1 or 2 as above; seed drives mode 2's lengths and
 * garbage), without exiting or printing a line per file. The caller has
 * closed its fds of those files. Returns 0 or -CN_EIO (walk failed). */
int fault_cut_dir(const char *path, int cut_mode, uint64_t seed);
#else
static inline void fault_init(const char *data_dir) { (void)data_dir; }
static inline ssize_t fault_pwrite(int fd, const void *buf, size_t len, int64_t pos)
{
    return pwrite(fd, buf, len, (off_t)pos);
}
static inline ssize_t fault_write(int fd, const void *buf, size_t len)
{
    return write(fd, buf, len);
}
static inline int fault_ftruncate(int fd, int64_t len) { return ftruncate(fd, (off_t)len); }
static inline int fault_fsync(int fd) { return fsync(fd); }
static inline int fault_fdatasync(int fd) { return fdatasync(fd); }
#endif
#endif
