// System calls the Swift Glibc module does not export.
#ifndef JETBACKUP_FILE_IO_H
#define JETBACKUP_FILE_IO_H
#include <stdint.h>

// Starts writeback of the dirty pages of [offset, offset+length) of `fd` (length 0: to the
// end) without waiting for it and without dropping anything from the page cache (Linux
// sync_file_range SYNC_FILE_RANGE_WRITE; a hint: 0 where unsupported). Returns 0 or errno.
int jb_start_writeback(int fd, int64_t offset, int64_t length);

// Names the calling thread (Linux keeps 15 bytes; longer names are cut). A no-op elsewhere.
void jb_set_thread_name(const char *name);

#endif
